"""Lesson 08 (Kafka Connect): the runs, tables and the failover figure the notebook shows.

Every function here is what one cell of ``notebooks/08_connect.ipynb`` calls, and
``tests/test_lessons_connect.py`` calls the same functions to back each number the lesson
states. Files the lesson writes (input files, SQLite databases, ``.properties`` files) go to a
fresh temporary folder from :func:`workspace`, never into the repository.
"""

from __future__ import annotations

import json
import re
import sqlite3
import tempfile
import urllib.request
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from pandas.io.formats.style import Styler

from sim.connect import (
    DistributedHerder,
    JsonConverter,
    Schema,
    StandaloneHerder,
    StringConverter,
    Worker,
    create_app,
    serve,
    standalone,
    struct_schema,
    topic_records,
)
from sim.kernel import Kernel
from sim.producer import Producer

with warnings.catch_warnings():  # newer Starlette suggests httpx2; httpx is what the lab pins
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

JSON = "org.apache.kafka.connect.json.JsonConverter"
STRING = "org.apache.kafka.connect.storage.StringConverter"
HOIST = "org.apache.kafka.connect.transforms.HoistField$Value"

WORKER = {
    "bootstrap.servers": "localhost:9092",
    "key.converter": JSON,
    "value.converter": JSON,
    "key.converter.schemas.enable": "true",
    "value.converter.schemas.enable": "true",
    "offset.flush.interval.ms": "10000",
}
"""The settings of Kafka's ``config/connect-standalone.properties`` (offsets kept in memory)."""

SEED = 8
FAILOVER_WORKERS = (8083, 8084, 8085)
FAILOVER_CRASH_MS = 30_000.0
FAILOVER_END_MS = 400_000.0
DEFAULT_DELAY_MS = 300_000
CONNECTOR = "orders-gen"


def workspace() -> Path:
    """A fresh temporary folder for the files a lesson or a check writes."""
    return Path(tempfile.mkdtemp(prefix="kafka-lab-connect-"))


# --- a standalone worker and its REST API, in process ------------------------------------------


@dataclass
class Lab:
    """A cluster, one standalone Connect worker on it, and its REST API in process."""

    kernel: Kernel
    herder: StandaloneHerder
    rest: TestClient

    def run_until(self, seconds: float) -> str:
        """Run the simulation to ``seconds`` of simulated time."""
        self.kernel.run(until_ms=seconds * 1000)
        return f"simulated time: {self.kernel.now_ms / 1000:g} s"


def standalone_lab(seed: int = SEED, **worker: str) -> Lab:
    """A three-broker cluster with a standalone worker (``WORKER`` plus ``worker``)."""
    kernel = Kernel(seed=seed, brokers=3)
    herder = StandaloneHerder(Worker(kernel, {**WORKER, **worker}))
    return Lab(kernel, herder, TestClient(create_app(herder)))


def file_source(name: str, path: Path | str, topic: str) -> dict[str, Any]:
    """A FileStreamSource request body; each line is hoisted into a struct field ``line``."""
    return {"name": name, "config": {
        "connector.class": "FileStreamSource", "file": str(path), "topic": topic,
        "transforms": "hoist", "transforms.hoist.type": HOIST,
        "transforms.hoist.field": "line"}}


def sqlite_sink(name: str, topic: str, database: Path | str) -> dict[str, Any]:
    """A JDBC sink request body writing ``topic`` into a table of the same name."""
    return {"name": name, "config": {
        "connector.class": "JdbcSinkConnector", "topics": topic,
        "connection.url": f"jdbc:sqlite:{database}", "auto.create": "true"}}


def answer(response: Any) -> dict[str, Any]:
    """An HTTP response as its status, ``Location`` header (if any) and JSON body."""
    out: dict[str, Any] = {"status": response.status_code}
    if "location" in response.headers:
        out["location"] = response.headers["location"]
    out["body"] = response.json() if response.content else None
    return out


def statuses(lab: Lab) -> pd.DataFrame:
    """One row per connector and task: its state and worker (``GET /connectors?expand=status``)."""
    rows = []
    for name, entry in lab.rest.get("/connectors?expand=status").json().items():
        status = entry["status"]
        rows.append({"connector": name, "type": status["type"], "task": "connector",
                     "state": status["connector"]["state"],
                     "worker_id": status["connector"]["worker_id"]})
        rows += [{"connector": name, "type": status["type"], "task": task["id"],
                  "state": task["state"], "worker_id": task["worker_id"]}
                 for task in status["tasks"]]
    return pd.DataFrame(rows, columns=["connector", "type", "task", "state", "worker_id"])


def topic_frame(kernel: Kernel, topic: str) -> pd.DataFrame:
    """What a console consumer prints: partition, offset, key and value as text."""
    rows = [{"partition": r["partition"], "offset": r["offset"],
             "key": _text(r["key"]), "value": _text(r["value"])}
            for r in topic_records(kernel, topic)]
    return pd.DataFrame(rows, columns=["partition", "offset", "key", "value"])


def _text(data: Any) -> Any:
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else data


def read_table(database: Path | str, table: str) -> pd.DataFrame:
    """The rows of a SQLite table, in insertion order."""
    with sqlite3.connect(database) as connection:
        return pd.read_sql(f"SELECT * FROM `{table}` ORDER BY rowid", connection)


def append_line(path: Path | str, line: str) -> str:
    """Append one line to a file (what ``echo line >> file`` does)."""
    with open(path, "a", encoding="utf-8") as out:
        out.write(line + "\n")
    return f"appended {line!r} to {Path(path).name}"


# --- converters: what the bytes in the topic look like -----------------------------------------


LINE_SCHEMA = struct_schema(None, [("line", Schema("string"))])


SHORT_TEXT = 24
"""A column whose values are all at most this many characters never wraps in :func:`table`."""


def table(frame: pd.DataFrame) -> Styler:
    """``frame`` shown in full with its text left-aligned and long values wrapped: JupyterLab
    right-aligns table cells, which makes JSON and class names hard to read. Long values may
    wrap anywhere, so a table of JSON fits the output; short ones (offsets, ``None``, a size)
    never wrap, or the browser squeezes their column to make room and prints ``Non`` over
    ``e``."""
    left = [{"selector": "th, td", "props": "text-align: left !important"},
            {"selector": "td", "props": "overflow-wrap: anywhere"}]  # long JSON wraps, never clips
    styler = frame.style.set_table_styles(left)
    short = [column for column in frame.columns
             if frame[column].map(str).str.len().max() <= SHORT_TEXT]
    return styler.set_properties(subset=short, **{"white-space": "nowrap"}) if short else styler


def converted_bytes(text: str = "foo") -> pd.DataFrame:
    """The bytes each converter writes for a string (and how many) and for a struct
    ``{"line": text}``."""
    converters = {"StringConverter": StringConverter(), "JsonConverter, schemas.enable=true":
                  JsonConverter(), "JsonConverter, schemas.enable=false": JsonConverter()}
    converters["JsonConverter, schemas.enable=false"].configure({"schemas.enable": "false"}, False)
    rows = []
    for name, converter in converters.items():
        string = converter.from_connect_data("t", Schema("string"), text)
        if isinstance(converter, StringConverter):
            struct = "(a struct becomes its Python text, not JSON)"
        else:
            struct = converter.from_connect_data("t", LINE_SCHEMA, {"line": text}).decode()
        rows.append({"converter": name, "string value": string.decode(),
                     "string bytes": len(string), "struct value": struct})
    return pd.DataFrame(rows).set_index("converter")


# --- standalone mode from .properties files: Kafka's quickstart ---------------------------------


QUICKSTART_SOURCE = ("name=local-file-source\nconnector.class=FileStreamSource\ntasks.max=1\n"
                     "file={folder}/test.txt\ntopic=connect-test\n")
QUICKSTART_SINK = ("name=local-file-sink\nconnector.class=FileStreamSink\ntasks.max=1\n"
                   "file={folder}/test.sink.txt\ntopics=connect-test\n")


@dataclass
class Quickstart:
    """Kafka's quickstart in standalone mode, run in a temporary folder."""

    folder: Path
    herder: StandaloneHerder
    files: dict[str, str] = field(default_factory=dict)

    def sink_file(self) -> str:
        return (self.folder / "test.sink.txt").read_text(encoding="utf-8")

    def offsets(self) -> dict[str, Any]:
        return self.herder.connector_offsets("local-file-source")


def quickstart(seed: int = SEED, until_s: float = 15) -> Quickstart:
    """``connect-standalone.sh worker.properties source.properties sink.properties`` after
    ``echo -e "foo\\nbar" > test.txt``, run for ``until_s`` simulated seconds."""
    folder = workspace()
    (folder / "test.txt").write_text("foo\nbar\n", encoding="utf-8")
    files = {
        "worker.properties": "".join(f"{k}={v}\n" for k, v in WORKER.items())
        + f"offset.storage.file.filename={folder}/connect.offsets\n",
        "connect-file-source.properties": QUICKSTART_SOURCE.format(folder=folder),
        "connect-file-sink.properties": QUICKSTART_SINK.format(folder=folder),
    }
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    kernel = Kernel(seed=seed, brokers=3)
    herder = standalone(kernel, *(folder / name for name in files))
    kernel.run(until_ms=until_s * 1000)
    return Quickstart(folder, herder, files)


# --- distributed mode: a worker dies ------------------------------------------------------------


def distributed_props(port: int, delay_ms: int) -> dict[str, str]:
    """``connect-distributed.properties`` for the worker listening on ``port``."""
    return {**WORKER, "group.id": "connect-cluster", "config.storage.topic": "connect-configs",
            "offset.storage.topic": "connect-offsets", "status.storage.topic": "connect-status",
            "listeners": f"http://:{port}", "scheduled.rebalance.max.delay.ms": str(delay_ms)}


@dataclass
class FailoverRun:
    """Three workers, a data generator with five tasks, one worker crashed; what happened when."""

    delay_ms: int
    crashed: str
    timeline: pd.DataFrame
    snapshots: pd.DataFrame

    def moved(self) -> pd.DataFrame:
        """The crashed worker's tasks: when and where each started again."""
        lost = self.timeline[self.timeline.event == "lost"].unit.tolist()
        started = self.timeline[(self.timeline.event == "started")
                                & (self.timeline.time_ms > FAILOVER_CRASH_MS)
                                & self.timeline.unit.isin(lost)]
        restarted_s = (started.time_ms / 1000).round(1)  # 340.0, not 340.010303
        return pd.DataFrame({"task": started.unit, "restarted at (s)": restarted_s,
                             "on worker": started.worker}).reset_index(drop=True)


def failover_run(delay_ms: int = DEFAULT_DELAY_MS, *, tasks: int = 5, crash_port: int = 8084,
                 crash_ms: float = FAILOVER_CRASH_MS, end_ms: float = FAILOVER_END_MS,
                 snapshot_s: tuple[float, ...] = (29, 45, 339, 345),
                 seed: int = SEED) -> FailoverRun:
    """Workers on ports 8083–8085 share ``group.id``; a data generator (one record per task, so
    that the run stays quick) with ``tasks`` tasks is created at 10 s; the worker on
    ``crash_port`` crashes at ``crash_ms``."""
    kernel = Kernel(seed=seed, brokers=3)
    workers = {port: DistributedHerder(kernel, distributed_props(port, delay_ms))
               for port in FAILOVER_WORKERS}
    first = workers[FAILOVER_WORKERS[0]]
    kernel.run(until_ms=10_000)
    first.put_connector_config(CONNECTOR, {
        "connector.class": "DatagenConnector", "kafka.topic": "orders", "quickstart": "orders",
        "tasks.max": str(tasks), "iterations": "1"}, allow_replace=False)
    rows = []
    moments = sorted({*(s * 1000 for s in snapshot_s), crash_ms, end_ms})
    for moment in moments:
        if moment == crash_ms:
            kernel.run(until_ms=moment)
            workers[crash_port].crash()
            continue
        kernel.run(until_ms=moment)
        if moment in {s * 1000 for s in snapshot_s}:
            status = first.connector_status(CONNECTOR)
            rows += [{"time (s)": moment / 1000, "task": f"{CONNECTOR}-{t['id']}",
                      "state": t["state"], "worker_id": t["worker_id"]} for t in status["tasks"]]
    snapshots = pd.DataFrame(rows).pivot(index="task", columns="time (s)", values="state")
    workers_at = pd.DataFrame(rows).pivot(index="task", columns="time (s)", values="worker_id")
    table = snapshots + " on " + workers_at.map(lambda w: w.rsplit(":", 1)[-1])
    return FailoverRun(delay_ms, workers[crash_port].worker.worker_id, first.timeline(), table)


def ownership(timeline: pd.DataFrame, end_ms: float) -> pd.DataFrame:
    """Intervals: which worker ran which unit from when to when (``start_ms``, ``end_ms``)."""
    rows = []
    for unit, events in timeline.groupby("unit", sort=True):
        running: dict[str, float] = {}
        for event in events.itertuples(index=False):
            if event.event == "started":
                running[event.worker] = event.time_ms
            elif event.worker in running:
                rows.append({"unit": unit, "worker": event.worker,
                             "start_ms": running.pop(event.worker), "end_ms": event.time_ms})
        rows += [{"unit": unit, "worker": w, "start_ms": s, "end_ms": end_ms}
                 for w, s in running.items()]
    return pd.DataFrame(rows, columns=["unit", "worker", "start_ms", "end_ms"])


def _is_task(unit: str) -> bool:
    """Timeline units are a connector's name or ``<connector>-<task number>``."""
    return re.fullmatch(r".+-\d+", unit) is not None


WORKER_COLOURS = {"127.0.0.1:8083": "#4c72b0", "127.0.0.1:8084": "#dd8452",
                  "127.0.0.1:8085": "#55a868"}


def failover_figure(runs: dict[str, FailoverRun], end_ms: float = FAILOVER_END_MS) -> Figure:
    """One panel per run: a row per connector / task, coloured by the worker running it; the
    hatched gap is the time no worker ran the task (its worker dead, then UNASSIGNED). 8.2
    inches wide (840 pixels inline with the margins), as wide as a notebook output: not shrunk
    to fit it."""
    fig = Figure(figsize=(8.2, 1.4 + 1.9 * len(runs)), layout="constrained")
    axes = fig.subplots(len(runs), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (title, run) in zip(axes, runs.items(), strict=True):
        spans = ownership(run.timeline, end_ms)
        units = sorted(spans.unit.unique(), key=lambda u: (_is_task(u), u))
        for row, unit in enumerate(units):
            mine = spans[spans.unit == unit].sort_values("start_ms")
            for span in mine.itertuples(index=False):
                ax.barh(row, (span.end_ms - span.start_ms) / 1000, left=span.start_ms / 1000,
                        height=0.6, color=WORKER_COLOURS.get(span.worker, "grey"))
            for before, after in zip(mine.end_ms[:-1], mine.start_ms[1:], strict=True):
                if after > before:
                    ax.barh(row, (after - before) / 1000, left=before / 1000, height=0.6,
                            color="white", edgecolor="grey", hatch="///")
        ax.set_yticks(range(len(units)),
                      [u if _is_task(u) else f"{u} (connector)" for u in units])
        ax.invert_yaxis()
        ax.axvline(FAILOVER_CRASH_MS / 1000, color="black", linestyle="--", linewidth=1)
        ax.set_title(f"scheduled.rebalance.max.delay.ms: {title}", loc="left", fontsize=10)
        ax.set_xlim(0, end_ms / 1000)
    axes[-1].set_xlabel("simulated time (s); dashed line: worker 8084 crashes")
    handles = [Patch(color=c, label=w.rsplit(":", 1)[-1]) for w, c in WORKER_COLOURS.items()]
    handles.append(Patch(facecolor="white", edgecolor="grey", hatch="///", label="not running"))
    fig.legend(handles=handles, loc="outside upper right", ncols=4, title="worker",
               fontsize=9, title_fontsize=9)
    return fig


# --- errors, errors.tolerance and the dead letter queue ----------------------------------------


GOOD = '{{"schema":{{"type":"string","optional":false}},"payload":"{}"}}'
PAYMENTS = [GOOD.format("pay-1"), "not json", GOOD.format("pay-2")]


@dataclass
class ErrorsRun:
    """A file sink reading a topic with one bad record, under one ``errors.tolerance``."""

    lab: Lab
    out: Path

    def task(self) -> dict[str, Any]:
        return self.lab.rest.get("/connectors/payments-file/tasks/0/status").json()

    def written(self) -> list[str]:
        return self.out.read_text(encoding="utf-8").splitlines() if self.out.exists() else []

    def dead_letters(self) -> pd.DataFrame:
        """The DLQ's records with their ``__connect.errors.*`` headers, one column each."""
        if "payments-dlq" not in self.lab.kernel.cluster.topics:
            return pd.DataFrame()
        rows = [{"dlq offset": r["offset"], "value": _text(r["value"]),
                 **{name.removeprefix("__connect.errors."): _text(value)
                    for name, value in r["headers"] if not name.endswith("stacktrace")}}
                for r in topic_records(self.lab.kernel, "payments-dlq")]
        return pd.DataFrame(rows)


def errors_run(tolerance: str, seed: int = SEED, until_s: float = 15) -> ErrorsRun:
    """Topic ``payments`` holds ``PAYMENTS`` (the middle one is not JSON); a FileStreamSink reads
    it with ``errors.tolerance=tolerance`` (and, for ``all``, a dead letter queue)."""
    lab = standalone_lab(seed)
    lab.kernel.cluster.create_topic("payments", 1, 3)
    producer = Producer(lab.kernel, {"acks": "all", "linger.ms": 0})
    for value in PAYMENTS:
        producer.send("payments", value=value.encode())
    out = workspace() / "payments.txt"
    config = {"connector.class": "FileStreamSink", "topics": "payments", "file": str(out),
              "errors.tolerance": tolerance}
    if tolerance == "all":
        config.update({"errors.deadletterqueue.topic.name": "payments-dlq",
                       "errors.deadletterqueue.topic.replication.factor": "1",
                       "errors.deadletterqueue.context.headers.enable": "true"})
    lab.rest.post("/connectors", json={"name": "payments-file", "config": config})
    lab.run_until(until_s)
    return ErrorsRun(lab, out)


def first_line(trace: str | None) -> str:
    """The last line of a Java-style trace: the exception and its message."""
    return (trace or "").strip().splitlines()[-1] if trace else ""


# --- the same requests over real HTTP ------------------------------------------------------------


def curl_commands(port: int = 8083) -> str:
    """The lesson's requests as ``curl`` commands for a terminal, each line short enough for a
    notebook's output (the POST's JSON body spans lines inside its single quotes, which a shell
    accepts as typed)."""
    base = f"http://localhost:{port}"
    config = json.dumps({"connector.class": "FileStreamSource", "file": "/tmp/orders.txt",
                         "topic": "orders"})
    body = f'{{"name": "orders-file",\n "config": {config}}}'
    return "\n".join([
        f"python -m sim connect serve --port {port}        # in one terminal; Ctrl-C stops it",
        "",
        f"curl -s {base}/",
        f"curl -s {base}/connector-plugins",
        "echo -e 'apple\\nbanana' > /tmp/orders.txt",
        f"curl -s -X POST -H 'Content-Type: application/json' {base}/connectors --data '",
        f"{body}'",
        f"curl -s {base}/connectors?expand=status",
        f"curl -s {base}/connectors/orders-file/offsets",
        f"curl -s -X PUT {base}/connectors/orders-file/pause",
        f"curl -s -X DELETE {base}/connectors/orders-file",
    ])


def http_requests(lab: Lab, paths: tuple[str, ...] = ("/", "/connectors",
                                                       "/connectors/orders-file/status")
                  ) -> pd.DataFrame:
    """Serve ``lab``'s worker over real HTTP on a free port, GET ``paths``, stop the server."""
    rows = []
    with serve(lab.herder, port=0) as server:
        for path in paths:
            with urllib.request.urlopen(server.url + path, timeout=10) as response:
                rows.append({"request": f"GET {path}", "status": response.status,
                             "body": response.read().decode()})
    return pd.DataFrame(rows)
