"""The ``connect:`` section of scenario files: a Kafka Connect pipeline on the simulated cluster.

Example::

    duration_ms: 120000
    topics: [{name: lines, partitions: 3, replication_factor: 3}]
    connect:
      workers: 2                      # distributed workers connect-1, connect-2
      topic: lines
      source: {lines: 600, rate_per_s: 12}
      sink: {tasks: 2}
      config: {scheduled.rebalance.max.delay.ms: 5000}
    faults:
      - {at_ms: 8000, connect_crash: {worker: connect-1}}
      - {at_ms: 20000, connect_restart: {worker: connect-1}}

The pipeline is file → topic → SQLite: a ``FileStreamSource`` connector (``src``, one task)
reads the lines of a file into ``topic`` (each value hoisted into a struct field ``line``), and a
``JdbcSinkConnector`` (``db``, ``sink.tasks`` tasks) upserts every record of ``topic`` into a
table keyed by its Kafka coordinates (``pk.mode=kafka``), so a record delivered twice lands on
the same row. The workers form one Connect cluster (group ``connect-cluster``, internal topics
``connect-configs`` / ``connect-offsets`` / ``connect-status``); the connectors' configs are in
the config topic when the run starts, as if created through the REST API before it.

The source file is written during the run, by the set-up: ``source.lines`` lines at
``source.rate_per_s`` from ``source.start_ms``, each ``<n> <word>`` with the word drawn from the
run's seed, so the same seed writes the same file. The file and the database live in a
temporary folder of the run's own, removed with the kernel.

Worker faults: ``connect_crash`` (the worker process dies: no commit, no LeaveGroup, its tasks
move once the group notices, after ``session.timeout.ms`` and ``scheduled.rebalance.max.delay.ms``)
and ``connect_restart`` (a new process with the same worker id and configs, which learns the
cluster's state from the internal topics). Network faults may name the Connect clients
(``client_ids``): the source task's producer ``connector-producer-src-0``, the sink tasks'
consumers ``connector-consumer-db-<n>`` and the internal topics' producers, wherever the worker
running them is and whichever instance: Kafka Connect gives a restarted task's clients, and
every worker's producer of an internal topic, the same ``client.id``, so a fault naming one
reaches each client with that id, also those the lab numbers (``Network.name_client``). A
worker frozen past its session timeout (a long GC pause) is not modelled: the lab's worker has
no way to freeze its tasks and clients together.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FIELDS = {"workers", "topic", "source", "sink", "config"}
SOURCE_FIELDS = {"lines", "rate_per_s", "start_ms"}
SINK_FIELDS = {"tasks"}
FAULTS = ("connect_crash", "connect_restart")
MAX_WORKERS = 10
MAX_LINES = 100_000
MAX_DURATION_MS = 3_600_000
"""Workers poll their internal topics all the time: at most an hour of a run with them."""
GROUP = "connect-cluster"
SOURCE = "src"
SINK = "db"
WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
         "juliet", "kilo", "lima", "mike", "november", "oscar", "papa")
WORKER_PROPS = {
    "key.converter": "org.apache.kafka.connect.json.JsonConverter",
    "value.converter": "org.apache.kafka.connect.json.JsonConverter",
    "offset.flush.interval.ms": "10000",  # connect-distributed.properties
    "group.id": GROUP, "config.storage.topic": "connect-configs",
    "offset.storage.topic": "connect-offsets", "status.storage.topic": "connect-status",
    "offset.storage.partitions": "1"}
"""The sample ``connect-distributed.properties``; a scenario's ``config`` overrides them, but for
``offset.storage.partitions``: the source partition ``{"filename": …}`` names the run's own
temporary folder, whose name is random, and with the default 25 partitions its offsets would
land on a partition chosen by that name's hash, so runs of one seed would differ."""


def worker_names(spec: dict[str, Any]) -> list[str]:
    return [f"connect-{n}" for n in range(1, spec["workers"] + 1)]


def client_ids(spec: dict[str, Any] | None) -> list[str]:
    """The clients of the pipeline, for network faults (a fault naming one reaches every
    instance: a task's clients wherever and however often it starts, each worker's clients of
    the internal topics)."""
    if not spec:
        return []
    return ([f"connector-producer-{SOURCE}-0"]
            + [f"connector-consumer-{SINK}-{n}" for n in range(spec["sink"]["tasks"])]
            + [f"{GROUP}-{log}" for log in ("configs", "statuses", "offsets")])


def check(checker: Any, data: dict[str, Any], topics: set[str]) -> dict[str, Any] | None:
    """Validate ``connect``; return the spec with its defaults filled in (None without one).

    ``checker`` is the scenario module's ``_Checker`` (it raises ``ScenarioError`` naming the
    file and the field).
    """
    from sim.connect.distributed import DISTRIBUTED_CONFIG
    from sim.connect.worker import WORKER_CONFIG
    from sim.errors import ConfigError

    spec = checker.typed(data, "connect", dict, "", default=None)
    if spec is None:
        return None
    if data.get("duration_ms") is None:
        checker.fail("duration_ms", "is required with connect: workers poll forever, so the "
                     "run needs an end time")
    if data["duration_ms"] > MAX_DURATION_MS:
        checker.fail("duration_ms", f"is {data['duration_ms']} ms; with connect the lab "
                     f"simulates at most {MAX_DURATION_MS:,} ms (an hour)")
    checker.known(spec, FIELDS, "connect")
    workers = checker.typed(spec, "workers", int, "connect", default=1)
    if not 1 <= workers <= MAX_WORKERS:
        checker.fail("connect.workers", f"must be between 1 and {MAX_WORKERS} but is {workers}")
    topic = checker.typed(spec, "topic", str, "connect", required=True)
    if topic not in topics:
        checker.fail("connect.topic", f"names topic {topic!r}, which the scenario does not "
                     f"create (topics: {', '.join(sorted(topics))})")
    source = checker.typed(spec, "source", dict, "connect", required=True)
    checker.known(source, SOURCE_FIELDS, "connect.source")
    lines = checker.typed(source, "lines", int, "connect.source", required=True)
    if not 0 <= lines <= MAX_LINES:
        checker.fail("connect.source.lines", f"must be between 0 and {MAX_LINES:,} but is "
                     f"{lines}")
    rate = checker.typed(source, "rate_per_s", (int, float), "connect.source", required=True)
    if not 0 < rate < math.inf:
        checker.fail("connect.source.rate_per_s", f"must be > 0 lines a second but is {rate}")
    start = checker.typed(source, "start_ms", (int, float), "connect.source", default=0)
    if not 0 <= start < math.inf:
        checker.fail("connect.source.start_ms", f"must be a time in ms ≥ 0 but is {start}")
    sink = checker.typed(spec, "sink", dict, "connect", default={})
    checker.known(sink, SINK_FIELDS, "connect.sink")
    tasks = checker.typed(sink, "tasks", int, "connect.sink", default=1)
    if not 1 <= tasks <= 10:
        checker.fail("connect.sink.tasks", f"must be between 1 and 10 but is {tasks}")
    config = checker.typed(spec, "config", dict, "connect", default={})
    own = {"group.id", "listeners", "config.storage.topic", "offset.storage.topic",
           "status.storage.topic", "offset.storage.partitions"} & set(config)
    if own:
        checker.fail(f"connect.config.{sorted(own)[0]}", "is set by the scenario (one cluster "
                     "named connect-cluster, workers named connect-<n>, one offset partition)")
    props = {**WORKER_PROPS, **{k: str(v) for k, v in config.items()}}
    try:
        WORKER_CONFIG.parse(props)
        DISTRIBUTED_CONFIG.parse({k: v for k, v in props.items()
                                  if k in DISTRIBUTED_CONFIG.keys})
    except ConfigError as exc:
        checker.fail("connect.config", f"is invalid: {exc}")
    return {"workers": workers, "topic": topic,
            "source": {"lines": lines, "rate_per_s": float(rate), "start_ms": float(start)},
            "sink": {"tasks": tasks}, "config": dict(config)}


def is_connect_fault(fault: Any) -> bool:
    """True for a fault entry of a Connect kind (``connect_crash``, ``connect_restart``)."""
    return isinstance(fault, dict) and any(kind in fault for kind in FAULTS)


def check_faults(checker: Any, faults: list[dict[str, Any]], spec: dict[str, Any] | None
                 ) -> None:
    """Validate the Connect faults: known workers, and crashes and restarts alternating."""
    names = worker_names(spec) if spec else []
    crashed: set[str] = set()
    order = sorted(range(len(faults)), key=lambda i: faults[i].get("at_ms", 0))
    for i in order:
        fault = faults[i]
        if not is_connect_fault(fault):
            continue
        where = f"faults[{i}]"
        kind, at_ms, body = checker.fault_header(fault, FAULTS, where)
        checker.known(body, {"worker"}, f"{where}.{kind}")
        name = checker.typed(body, "worker", str, f"{where}.{kind}", required=True)
        if name not in names:
            checker.fail(f"{where}.{kind}.worker", f"names worker {name!r}; the scenario's "
                         f"Connect workers are: {', '.join(names) or 'none'}")
        down = name in crashed
        if down != (kind == "connect_restart"):
            verb = "restarts" if kind == "connect_restart" else "crashes"
            checker.fail(f"{where}.{kind}", f"{verb} worker {name} at {at_ms} ms, but it is "
                         f"{'already crashed' if down else 'running'} then")
        (crashed.discard if down else crashed.add)(name)


@dataclass
class Pipeline:
    """What the set-up made: the workers (the newest process of each), the files."""

    spec: dict[str, Any]
    folder: Any
    workers: dict[str, Any]

    @property
    def source_file(self) -> Path:
        return Path(self.folder.name) / "in.txt"

    @property
    def database(self) -> Path:
        return Path(self.folder.name) / "out.db"

    def props(self, name: str) -> dict[str, str]:
        return {**WORKER_PROPS, **{k: str(v) for k, v in self.spec["config"].items()},
                "listeners": f"http://{name}:8083"}

    def start_worker(self, kernel: Any, name: str) -> Any:
        from sim.connect.distributed import DistributedHerder

        self.workers[name] = DistributedHerder(kernel, self.props(name))
        return self.workers[name]

    def connector_configs(self) -> dict[str, dict[str, str]]:
        topic = self.spec["topic"]
        return {
            SOURCE: {"connector.class": "FileStreamSource", "topic": topic,
                     "file": str(self.source_file), "transforms": "hoist",
                     "transforms.hoist.type":
                         "org.apache.kafka.connect.transforms.HoistField$Value",
                     "transforms.hoist.field": "line"},
            SINK: {"connector.class": "JdbcSinkConnector", "topics": topic,
                   "tasks.max": str(self.spec["sink"]["tasks"]),
                   "connection.url": f"jdbc:sqlite:{self.database}", "auto.create": "true",
                   "insert.mode": "upsert", "pk.mode": "kafka"}}


def pipeline(kernel: Any) -> Pipeline | None:
    """The kernel's Connect pipeline, if its scenario has one."""
    return vars(kernel).get("_connect_pipeline")


def setup(kernel: Any, spec: dict[str, Any] | None) -> Pipeline | None:
    """Start the workers, put the connectors' configs in the config topic, start the writer."""
    if not spec:
        return None
    folder = tempfile.TemporaryDirectory(prefix="kafka-connect-")
    made = Pipeline(spec, folder, {})
    kernel._connect_pipeline = made
    made.source_file.write_text("", encoding="utf-8")
    for name in worker_names(spec):
        made.start_worker(kernel, name)
    first = made.workers[worker_names(spec)[0]]
    for name, config in made.connector_configs().items():
        props = first._validated(name, config, allow_replace=False)
        first.config_store.put_connector_config(name, props, "RUNNING")
    kernel.env.process(_write_lines(kernel, made, kernel.spawn_rng()))
    return made


def line_text(n: int, word: str) -> str:
    return f"{n:06d} {word}"


def _write_lines(kernel: Any, made: Pipeline, rng: Any) -> Generator[Any, Any, None]:
    """Append the source lines, every 100 ms those that are due."""
    source = made.spec["source"]
    total, rate = source["lines"], source["rate_per_s"]
    words = [WORDS[int(i)] for i in rng.integers(len(WORDS), size=total)]
    yield kernel.env.timeout(source["start_ms"])
    written = 0
    while written < total:
        due = min(total, int((kernel.now_ms - source["start_ms"]) * rate / 1000) + 1)
        if due > written:
            with made.source_file.open("a", encoding="utf-8") as out:
                out.writelines(f"{line_text(n, words[n])}\n" for n in range(written, due))
            written = due
        yield kernel.env.timeout(100)


@dataclass(frozen=True)
class ConnectCrash:
    """Kill a worker's process: no offsets committed, no LeaveGroup, no last status."""

    worker: str

    def apply(self, kernel: Any) -> None:
        made = pipeline(kernel)
        assert made is not None
        made.workers[self.worker].crash()


@dataclass(frozen=True)
class ConnectRestart:
    """Start a crashed worker again: a new process with the same worker id and configs."""

    worker: str

    def apply(self, kernel: Any) -> None:
        made = pipeline(kernel)
        assert made is not None
        made.start_worker(kernel, self.worker)


def make_fault(fault: dict[str, Any]) -> ConnectCrash | ConnectRestart:
    """The fault object for a validated Connect fault entry."""
    if "connect_crash" in fault:
        return ConnectCrash(fault["connect_crash"]["worker"])
    return ConnectRestart(fault["connect_restart"]["worker"])
