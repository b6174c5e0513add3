"""Scenarios: a whole run described as data (YAML), loaded, validated and replayed exactly.

A scenario names its cluster, topics, producers with their configs and workloads, faults, seed
and duration. The built-in ones live beside this file as ``*.yaml``; ``load("keyed")`` finds one
by name and ``load("my.yaml")`` reads a file. Every error names the file, the field and what is
allowed, and nothing runs until the whole file is valid.

Example::

    name: keyed
    description: Keyed records always land on the same partition.
    seed: 42
    cluster: {brokers: 3}
    topics: [{name: orders, partitions: 12}]   # or replica_assignment: [[0, 1, 2], ...]
    producers:
      - config: {linger.ms: 5}
        workload: {topic: orders, records: 100000, rate_per_s: 50000, keys: {uniform: 1000}}
    faults: [{at_ms: 500, slow_broker: {broker: 0, factor: 20}}]
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from sim import config as configs
from sim import faults
from sim.broker.cluster import validate_topic_name
from sim.consumer import scenario as consumer_scenario
from sim.errors import ConfigError, KafkaLabError, ScenarioError
from sim.kernel import Kernel
from sim.producer import Producer
from sim.streams import scenario as streams_scenario
from sim.workloads import (
    KeyList,
    NoKeys,
    UniformKeys,
    Workload,
    ZipfKeys,
    check_run_fits_in_memory,
    vip_customers,
)

TOP_LEVEL = {"name", "description", "seed", "duration_ms", "cluster", "topics", "producers",
             "faults", "lesson", "consumers", "group_coordinator", "streams", "architecture",
             "connect"}
CONNECT_FAULTS = ("connect_crash", "connect_restart")
"""Fault kinds of the ``connect:`` section (``sim.connect.scenario``)."""
KEY_KINDS = ("none", "uniform", "zipf", "list", "vip")
MAX_BROKERS = 1_000
MAX_PARTITIONS = 10_000
MAX_KEYS = 1_000_000
MAX_ZIPF_S = 50
MAX_DURATION_MS = 86_400_000
"""The lab's limits: a scenario beyond them would take minutes (or all the memory) to set up,
and a Zipf exponent beyond 50 overflows (every record would take the first key anyway)."""
MAX_INT = 2**31 - 1
"""Java's ``Integer.MAX_VALUE``: Kafka's largest record size."""
MAX_NESTING = 100
"""Mappings and lists inside one another in a scenario file; the deepest real ones nest a
handful. PyYAML's scanner does work that grows with the nesting for every character it reads,
so deeper text is refused where the loader reaches the 101st level, before it reads on."""
MAX_VALUES = 2 * MAX_KEYS
"""Values (scalars, lists, mappings) in a scenario once its YAML aliases are expanded: room
for ``MAX_KEYS`` listed keys. Aliases let a few hundred bytes stand for a billion values (a
"billion laughs"), which validating would take hours to walk."""


@dataclass
class Scenario:
    """A validated scenario, ready to build a kernel from."""

    name: str
    description: str
    seed: int
    source: str
    duration_ms: float | None = None
    cluster: dict[str, Any] = field(default_factory=dict)
    topics: list[dict[str, Any]] = field(default_factory=list)
    producers: list[dict[str, Any]] = field(default_factory=list)
    faults: list[dict[str, Any]] = field(default_factory=list)
    consumers: list[dict[str, Any]] = field(default_factory=list)
    group_coordinator: dict[str, Any] | None = None
    streams: list[dict[str, Any]] = field(default_factory=list)
    architecture: dict[str, Any] | None = None
    """An architecture scenario's section (:mod:`sim.scenarios.architecture`), else None."""
    connect: dict[str, Any] | None = None
    """A Kafka Connect pipeline (:mod:`sim.connect.scenario`), else None."""

    def build(self, seed: int | None = None) -> Kernel:
        """A fresh kernel with this scenario set up (not yet run).

        Raises:
            ScenarioError: naming the file, should setting it up still fail.
        """
        if self.architecture is not None:
            raise ScenarioError(f"{self.source}: an architecture scenario runs whole (python -m "
                                "sim run); it cannot be set up as a bare cluster.")
        try:
            return self._kernel(seed)
        except ScenarioError:
            raise
        except KafkaLabError as exc:
            raise ScenarioError(f"{self.source}: {exc}") from None

    def _kernel(self, seed: int | None) -> Kernel:
        return Kernel(seed=self.seed if seed is None else seed,
                      brokers=self.cluster.get("brokers", 3),
                      broker_configs=self.cluster.get("broker_configs"),
                      setup=self.setup)

    def setup(self, kernel: Kernel) -> None:
        """Create topics, producers and faults on ``kernel`` (called again on reset)."""
        for broker_id, overrides in (self.cluster.get("brokers_overrides") or {}).items():
            kernel.cluster.brokers[int(broker_id)].config.update(
                configs.BROKER.parse({**kernel.cluster.brokers[int(broker_id)].config,
                                      **overrides}))
        for topic in self.topics:
            kernel.cluster.create_topic(topic["name"], topic.get("partitions", 1),
                                        topic.get("replication_factor", 1),
                                        topic.get("configs"), topic.get("replica_assignment"))
        for spec in self.producers:
            producer = Producer(kernel, spec.get("config"))
            load = spec.get("workload")
            if load is not None:
                workload = Workload.generate(
                    kernel.spawn_rng(), load["topic"], load["records"], load["rate_per_s"],
                    keys=_key_spec(load.get("keys")), value_bytes=_value_bytes(load),
                    start_ms=load.get("start_ms", 0.0), arrivals=load.get("arrivals", "uniform"),
                    tombstone_share=float(load.get("tombstones", 0)))
                producer.add_workload(workload)
        consumer_scenario.setup(kernel, self.consumers, self.group_coordinator)
        streams_scenario.setup(kernel, self.streams)
        if self.connect is not None:
            from sim.connect import scenario as connect_scenario

            connect_scenario.setup(kernel, self.connect)
        for fault in self.faults:
            if _is_connect_fault(fault):
                from sim.connect import scenario as connect_scenario

                faults.schedule(kernel, fault.get("at_ms", 0.0),
                                connect_scenario.make_fault(fault))
                continue
            if consumer_scenario.is_consumer_fault(fault):
                faults.schedule(kernel, fault.get("at_ms", 0.0),
                                consumer_scenario.make_fault(fault))
                continue
            if streams_scenario.is_streams_fault(fault):
                faults.schedule(kernel, fault.get("at_ms", 0.0),
                                streams_scenario.make_fault(fault))
                continue
            faults.schedule(kernel, *faults.from_spec(fault, len(kernel.cluster.brokers)))

    def run(self, seed: int | None = None) -> Kernel:
        """Build and run to the end (or to ``duration_ms``)."""
        if self.architecture is not None:
            from sim.scenarios import architecture

            return architecture.run(self.architecture, self.seed if seed is None else seed,
                                    self.faults).kernel
        kernel = self.build(seed)
        kernel.run(self.duration_ms)
        return kernel


def builtin_names() -> list[str]:
    """Names of the scenarios shipped with the lab."""
    folder = resources.files(__package__)
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load(name_or_path: str | Path) -> Scenario:
    """Load a built-in scenario by name, or a scenario file by path.

    Raises:
        ScenarioError: naming the file, the field and what is allowed.
    """
    text_path = str(name_or_path)
    if not text_path.strip():
        raise ScenarioError("No scenario named: give a built-in name "
                            f"({', '.join(builtin_names())}) or a path to a .yaml file.")
    if text_path.endswith((".yaml", ".yml")) or Path(text_path).exists():
        return parse(_read(Path(text_path)), text_path)
    if text_path not in builtin_names():
        raise ScenarioError(f"Unknown scenario {text_path!r}. Built-in scenarios: "
                            f"{', '.join(builtin_names())}; or give a path to a .yaml file.")
    text = resources.files(__package__).joinpath(f"{text_path}.yaml").read_text("utf-8")
    return parse(text, f"{text_path}.yaml")


def _read(path: Path) -> str:
    """The text of a scenario file, or a ScenarioError saying why it cannot be one."""
    if not path.exists():
        raise ScenarioError(f"Scenario file {path} does not exist.")
    if path.is_dir():
        raise ScenarioError(f"{path} is a folder; give a scenario file (.yaml) or a built-in "
                            "name (python -m sim list).")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"{path}: not a text file (byte {exc.object[exc.start]:#04x} at "
                            f"position {exc.start} is not UTF-8); a scenario is a YAML text "
                            "file.") from None
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot be read ({exc.strerror}).") from None


def check_seed(seed: Any, where: str) -> None:
    """A seed is an integer ≥ 0 (numpy's ``SeedSequence`` takes no negative entropy).

    Raises:
        ScenarioError: naming ``where`` the seed came from and its value.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ScenarioError(f"{where} must be an integer ≥ 0 but is {seed!r}.")


class _StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key written twice in one mapping (YAML forbids it;
    PyYAML would silently keep the last value) and nesting deeper than ``MAX_NESTING``."""

    def _check_nesting(self) -> None:
        """Refuse one more level of nesting past ``MAX_NESTING`` (block levels are the
        scanner's indents, flow levels its ``flow_level``)."""
        if len(self.indents) + self.flow_level >= MAX_NESTING:  # type: ignore[attr-defined]
            mark = self.get_mark()  # type: ignore[no-untyped-call]
            raise _TooDeepError(f"nested too deeply for a scenario: more than {MAX_NESTING} "
                                f"levels at line {mark.line + 1}, column {mark.column + 1}")

    def fetch_flow_collection_start(self, token_class: type) -> None:
        self._check_nesting()
        super().fetch_flow_collection_start(token_class)  # type: ignore[misc]

    def add_indent(self, column: int) -> bool:
        if self.indent < column:  # type: ignore[attr-defined]
            self._check_nesting()
        return bool(super().add_indent(column))  # type: ignore[misc]

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)  # type: ignore[no-untyped-call]
            try:
                repeated = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key; PyYAML reports it below
                continue
            if repeated:
                raise _DuplicateKeyError(f"key {key!r} is written twice in one mapping (the second "
                                    f"time on line {key_node.start_mark.line + 1}); keep one")
        return super().construct_mapping(node, deep)  # type: ignore[no-untyped-call]


class _DuplicateKeyError(Exception):
    """A mapping names the same key twice."""


class _TooDeepError(Exception):
    """The text nests deeper than ``MAX_NESTING``."""


def _load_yaml(text: str, source: str) -> Any:
    """Parse YAML ``text``; any failure is one ``ScenarioError`` line naming ``source``."""
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{source}: not valid YAML ({' '.join(str(exc).split())}).") from None
    except _DuplicateKeyError as exc:
        raise ScenarioError(f"{source}: {exc}.") from None
    except _TooDeepError as exc:
        raise ScenarioError(f"{source}: not valid YAML ({exc}).") from None
    except RecursionError:  # past the nesting check: the limit is the interpreter's
        raise ScenarioError(f"{source}: not valid YAML (nested too deeply for a scenario)."
                            ) from None
    _check_expanded_size(data, source)
    return data


def _check_expanded_size(data: Any, source: str) -> None:
    """Refuse YAML aliases that expand past ``MAX_VALUES`` values or into themselves.

    Counted once per distinct list or mapping (an alias shares the object its anchor made),
    so the count costs the size of the text, not of the expansion.
    """
    sizes: dict[int, int] = {}
    open_now: set[int] = set()

    def expanded(value: Any) -> int:
        if not isinstance(value, dict | list):
            return 1
        key = id(value)
        if key in sizes:
            return sizes[key]
        if key in open_now:
            raise ScenarioError(f"{source}: a YAML alias (*name) stands for a value that holds "
                                "it; a scenario cannot contain itself.")
        open_now.add(key)
        total = 1 + sum(expanded(v) for v in (value.values() if isinstance(value, dict)
                                              else value))
        open_now.discard(key)
        sizes[key] = total
        return total

    try:
        total = expanded(data)
    except RecursionError:  # aliases of aliases nest past what the text shows
        raise ScenarioError(f"{source}: not valid YAML (nested too deeply for a scenario)."
                            ) from None
    if total > MAX_VALUES:
        raise ScenarioError(f"{source}: its YAML aliases (*name) expand to {total:,} values; "
                            f"a scenario holds at most {MAX_VALUES:,}.")


def parse(text: str, source: str = "<scenario>") -> Scenario:
    """Validate scenario YAML ``text``; ``source`` names it in errors."""
    return _validate(_load_yaml(text, source), source)


def from_dict(data: Any, source: str = "<scenario>") -> Scenario:
    """Validate a scenario given as the data its YAML loads to (dicts, lists and scalars).

    The same as ``parse(yaml_text)`` for the dict that text loads to, without writing and
    reading the YAML: the fuzzer and sweeps check thousands of scenario dicts they made
    themselves. A copy is validated, so later changes to ``data`` do not reach the scenario.
    """
    return _validate(_plain_copy(data), source)


def _plain_copy(data: Any) -> Any:
    """A deep copy of YAML-shaped data (dicts and lists copied, scalars shared)."""
    if isinstance(data, dict):
        return {key: _plain_copy(value) for key, value in data.items()}
    if isinstance(data, list):
        return [_plain_copy(value) for value in data]
    return data


def _validate(data: Any, source: str) -> Scenario:
    """The checks of ``parse`` on loaded ``data``, which the scenario then keeps."""
    check = _Checker(source)
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: a scenario must be a mapping of fields such as name, "
                            "topics and producers.")
    check.known(data, TOP_LEVEL, "")
    name = check.typed(data, "name", str, "", required=True)
    if not name.strip() or "\n" in name:
        check.fail("name", f"must be a non-empty name on one line but is {name!r}")
    description = check.typed(data, "description", str, "", default="")
    check.typed(data, "lesson", str, "", default=None)
    seed = check.typed(data, "seed", int, "", default=0)
    if seed < 0:
        check.fail("seed", f"must be an integer ≥ 0 but is {seed}")
    if "architecture" in data:
        from sim.scenarios import architecture

        spec = architecture.check(check, data)
        return Scenario(name, description, seed, source,
                        faults=architecture.check_faults(check, data, spec), architecture=spec)
    duration = check.typed(data, "duration_ms", (int, float), "", default=None)
    if duration is not None and not 0 <= duration <= MAX_DURATION_MS:
        check.fail("duration_ms", f"must be a time in ms ≥ 0 and at most {MAX_DURATION_MS:,} (a "
                   f"simulated day; brokers keep clocks ticking while idle) or left out (run "
                   f"until nothing is left to do) but is {duration}")
    cluster = check.typed(data, "cluster", dict, "", default={})
    check.known(cluster, {"brokers", "broker_configs", "brokers_overrides"}, "cluster")
    brokers = check.typed(cluster, "brokers", int, "cluster", default=3)
    if not 1 <= brokers <= MAX_BROKERS:
        check.fail("cluster.brokers", f"must be at least 1 (and at most {MAX_BROKERS:,}, the "
                   f"lab's limit) but is {brokers}")
    check.config(configs.BROKER, cluster.get("broker_configs"), "cluster.broker_configs")
    overrides_by_id = check.typed(cluster, "brokers_overrides", dict, "cluster", default={})
    for broker_id, overrides in overrides_by_id.items():
        if isinstance(broker_id, bool) or not isinstance(broker_id, int) \
                or not 0 <= broker_id < brokers:
            check.fail(f"cluster.brokers_overrides.{broker_id}",
                       f"must be a broker id between 0 and {brokers - 1}")
        if overrides is None:
            check.fail(f"cluster.brokers_overrides.{broker_id}",
                       "must be a mapping of config names to values")
        check.config(configs.BROKER, overrides, f"cluster.brokers_overrides.{broker_id}")
    topics = check.typed(data, "topics", list, "", required=True)
    topic_names = set()
    total_partitions = 0
    for i, topic in enumerate(topics):
        where = f"topics[{i}]"
        if not isinstance(topic, dict):
            check.fail(where, "must be a mapping with name and partitions")
        check.known(topic, {"name", "partitions", "replication_factor", "configs",
                            "replica_assignment"}, where)
        topic_name = check.typed(topic, "name", str, where, required=True)
        try:
            validate_topic_name(topic_name)
        except ConfigError as exc:
            check.fail(f"{where}.name", f"is invalid: {exc}")
        if topic_name in topic_names:
            check.fail(f"{where}.name", f"is {topic_name!r}, which an earlier topic already "
                       "uses; every topic needs its own name")
        topic_names.add(topic_name)
        assignment = topic.get("replica_assignment")
        if assignment is not None:
            both = [f for f in ("partitions", "replication_factor") if f in topic]
            if both:  # Kafka's CreateTopics refuses the same (INVALID_REQUEST)
                check.fail(f"{where}.{both[0]}", "cannot be given with replica_assignment, "
                           "which already says how many partitions and replicas there are")
            if not (
                isinstance(assignment, list) and assignment
                and all(isinstance(r, list) and r and len(r) == len(assignment[0])
                        and all(isinstance(b, int) and not isinstance(b, bool)
                                and 0 <= b < brokers for b in r)
                        and len(set(r)) == len(r)
                        for r in assignment)):
                check.fail(f"{where}.replica_assignment", f"must list, per partition, the same "
                           f"number of distinct broker ids from 0 to {brokers - 1}, e.g. "
                           "[[0, 1, 2]]")
            partitions = len(assignment)
        else:
            partitions = check.typed(topic, "partitions", int, where, default=1)
            if partitions < 1:
                check.fail(f"{where}.partitions", f"must be at least 1 but is {partitions}")
            rf = check.typed(topic, "replication_factor", int, where, default=1)
            if not 1 <= rf <= brokers:
                check.fail(f"{where}.replication_factor", f"must be between 1 and the number "
                           f"of brokers ({brokers}) but is {rf}")
        total_partitions += partitions
        if total_partitions > MAX_PARTITIONS:
            check.fail(f"{where}.partitions", f"brings the scenario to {total_partitions:,} "
                       f"partitions; the lab simulates at most {MAX_PARTITIONS:,}")
        check.config(configs.TOPIC, topic.get("configs"), f"{where}.configs")
    producers = check.typed(data, "producers", list, "", default=[])
    for i, spec in enumerate(producers):
        where = f"producers[{i}]"
        if not isinstance(spec, dict):
            check.fail(where, "must be a mapping with config and workload")
        check.known(spec, {"config", "workload"}, where)
        check.config(configs.PRODUCER, spec.get("config"), f"{where}.config")
        if "workload" in spec:
            _check_workload(check, spec["workload"], f"{where}.workload", topic_names)
    counts = {f"producers[{i}].workload.records": spec["workload"]["records"]
              for i, spec in enumerate(producers) if "workload" in spec}
    try:
        check_run_fits_in_memory(sum(counts.values()))
    except ConfigError as exc:
        fields = " + ".join(counts)
        check.fail(fields, f"{'add up to' if len(counts) > 1 else 'is'} "
                   f"{sum(counts.values()):,} records: {exc}")
    for i, spec in enumerate(producers):
        load = spec.get("workload")
        if load and load.get("start_ms", 0) + load["records"] / load["rate_per_s"] * 1000 \
                > MAX_DURATION_MS:
            check.fail(f"producers[{i}].workload.rate_per_s", f"is {load['rate_per_s']}: "
                       f"{load['records']:,} records would take longer than the "
                       f"{MAX_DURATION_MS:,} ms (a simulated day) the lab runs at most; raise "
                       "the rate or send fewer records")
    consumers = consumer_scenario.check(check, data, topic_names)
    streams = streams_scenario.check(check, data, topic_names)
    connect = None
    if "connect" in data:
        from sim.connect import scenario as connect_scenario

        connect = connect_scenario.check(check, data, topic_names)
    fault_list = check.typed(data, "faults", list, "", default=[])
    clients = _client_ids(producers)
    for spec in consumers:
        if spec["name"] in clients:
            check.fail("consumers", f"name two clients {spec['name']!r}; faults name clients "
                       "by client.id, so each needs its own (set name: on the consumer)")
        clients.append(spec["name"])
        if spec["output_topic"]:  # a consume-transform-produce member's own producer
            clients.append(f"{spec['name']}-producer")
    clients += streams_scenario.client_ids(streams)
    if connect is not None:
        clients += connect_scenario.client_ids(connect)
    for i, fault in enumerate(fault_list):
        where = f"faults[{i}]"
        if _is_connect_fault(fault):
            if connect is None:
                check.fail(where, "is a Connect fault, but the scenario has no connect section")
            check.fault_header(fault, CONNECT_FAULTS, where)  # workers: once all are read
        elif consumer_scenario.is_consumer_fault(fault):
            consumer_scenario.check_fault(check, fault, where, consumers)
        elif streams_scenario.is_streams_fault(fault):
            streams_scenario.check_fault(check, fault, where, streams)
        else:
            try:
                faults.from_spec(fault, brokers)
            except faults.FaultSpecError as exc:
                check.fail(f"{where}.{exc.field}" if exc.field else where, exc.problem)
            _check_nodes(check, fault, where, brokers, clients)
        at_ms = fault.get("at_ms", 0)
        if duration is not None and at_ms > duration:
            check.fail(f"{where}.at_ms", f"is {at_ms}, after the run ends (duration_ms "
                       f"{duration}): the fault would never happen")
    _check_broker_lifecycle(check, fault_list)
    consumer_scenario.check_fault_order(check, fault_list, consumers)
    if connect is not None:
        connect_scenario.check_faults(check, fault_list, connect)
    if not producers and connect is None:
        check.fail("producers", "needs at least one producer, e.g. [{workload: {topic: "
                   f"{sorted(topic_names)[0] if topic_names else 'orders'}, records: 1000, "
                   "rate_per_s: 1000}}]")
    return Scenario(name, description, seed, source, duration, cluster, topics,
                    producers, fault_list, consumers, data.get("group_coordinator"), streams,
                    connect=connect)


def _is_connect_fault(fault: Any) -> bool:
    """True for a fault entry of a Connect kind (checked without importing ``sim.connect``)."""
    return isinstance(fault, dict) and any(kind in fault for kind in CONNECT_FAULTS)


def _check_broker_lifecycle(check: _Checker, fault_list: list[dict[str, Any]]) -> None:
    """Crashes and restarts alternate per broker: restarting a running broker or crashing a
    crashed one would do nothing, which is a mistake in the schedule rather than a fault."""
    crashed: set[int] = set()
    order = sorted(range(len(fault_list)), key=lambda i: fault_list[i].get("at_ms", 0))
    for i in order:
        fault = fault_list[i]
        for kind, wanted, verb in (("crash_broker", False, "crashes"),
                                   ("restart_broker", True, "restarts")):
            if kind not in fault:
                continue
            broker = fault[kind]["broker"]
            if (broker in crashed) != wanted:
                state = "already crashed" if broker in crashed else "running"
                check.fail(f"faults[{i}].{kind}", f"{verb} broker {broker} at "
                           f"{fault.get('at_ms', 0)} ms, but it is {state} then")
            if wanted:
                crashed.discard(broker)
            else:
                crashed.add(broker)


def _client_ids(producers: list[dict[str, Any]]) -> list[str]:
    """The ``client.id`` each producer will have (``Producer`` numbers a repeated one)."""
    ids: list[str] = []
    for i, spec in enumerate(producers):
        name = str((spec.get("config") or {}).get("client.id", "producer"))
        ids.append(f"{name}-{i}" if name in ids else name)
    return ids


def _check_nodes(check: _Checker, fault: dict[str, Any], where: str, brokers: int,
                 clients: list[str]) -> None:
    """Network faults name nodes that exist: broker ids, ``controller`` or a client's id; a
    link joins two different nodes, and a partition's sides do not share one."""
    kind = next(k for k in fault if k != "at_ms")
    if kind not in ("network_partition", "heal_network", "link_loss"):
        return
    args = fault[kind]
    for side in ("a", "b"):
        nodes = args.get(side)
        if kind == "link_loss" and isinstance(nodes, list):
            check.fail(f"{where}.{kind}.{side}", f"must be one node (a broker id, controller or "
                       f"a client's id) but is the list {nodes!r}")
        for node in nodes if isinstance(nodes, list) else [nodes]:
            if isinstance(node, int) and not isinstance(node, bool) and 0 <= node < brokers:
                continue
            if node == "controller" or (isinstance(node, str) and node in clients):
                continue
            check.fail(f"{where}.{kind}.{side}", f"names {node!r}, which is no node of this "
                       f"scenario; nodes are broker ids 0 to {brokers - 1}, controller, and "
                       f"the clients {', '.join(clients)}")
    a, b = args["a"], args["b"]
    shared = [n for n in (a if isinstance(a, list) else [a])
              if n in (b if isinstance(b, list) else [b])]
    if shared:
        check.fail(f"{where}.{kind}.b", f"names {shared[0]!r}, which side a names too; a link "
                   "joins two different nodes")


def _check_workload(check: _Checker, load: Any, where: str, topics: set[str]) -> None:
    if not isinstance(load, dict):
        check.fail(where, "must be a mapping with topic, records and rate_per_s")
    check.known(load, {"topic", "records", "rate_per_s", "keys", "value_bytes", "start_ms",
                       "arrivals", "tombstones"}, where)
    share = check.typed(load, "tombstones", (int, float), where, default=0)
    if not 0 <= share <= 1:
        check.fail(f"{where}.tombstones", f"must be a share of records from 0 to 1 but is "
                   f"{share}")
    topic = check.typed(load, "topic", str, where, required=True)
    if topic not in topics:
        check.fail(f"{where}.topic", f"names topic {topic!r}, which the scenario does not "
                   f"create (topics: {', '.join(sorted(topics))})")
    records = check.typed(load, "records", int, where, required=True)
    if records < 0:
        check.fail(f"{where}.records", f"must be ≥ 0 but is {records}")
    rate = check.typed(load, "rate_per_s", (int, float), where, required=True)
    if rate <= 0:
        check.fail(f"{where}.rate_per_s", f"must be > 0 records a second but is {rate}")
    start = check.typed(load, "start_ms", (int, float), where, default=0)
    if start < 0:
        check.fail(f"{where}.start_ms", f"must be a time in ms ≥ 0 but is {start}")

    arrivals = load.get("arrivals", "uniform")
    if arrivals not in ("uniform", "poisson"):
        check.fail(f"{where}.arrivals", f"must be uniform or poisson but is {arrivals!r}")
    keys = load.get("keys")
    if keys is not None and keys != "none":
        if isinstance(keys, dict):
            check.known(keys, {"uniform", "zipf", "list", "vip"}, f"{where}.keys")
        if not isinstance(keys, dict) or len(keys) != 1 or next(iter(keys)) not in KEY_KINDS:
            check.fail(f"{where}.keys", "must be none or one of {uniform: K}, {zipf: "
                       "{count: K, s: S}}, {list: {keys: [...], weights: [...]}}, "
                       "{vip: {vip: V, ordinary: O, vip_share: F}}")
        _check_keys(check, keys, f"{where}.keys")
        try:
            _key_spec(keys)
        except ConfigError as exc:
            check.fail(f"{where}.keys", f"is not a valid key distribution: {exc}")
    value = load.get("value_bytes", 100)
    valid_pair = (isinstance(value, list) and len(value) == 2
                  and all(_is_size(v) for v in value) and value[0] <= value[1])
    if not (valid_pair or _is_size(value)):
        check.fail(f"{where}.value_bytes", f"must be a size in bytes from 0 to {MAX_INT:,} (Kafka "
                   f"sizes records with 32-bit ints) or [low, high] but is {value!r}")


def _is_size(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_INT


KEY_FIELDS: dict[str, dict[str, tuple[type, ...]]] = {
    "zipf": {"count": (int,), "s": (int, float)},
    "list": {"keys": (list,), "weights": (list,)},
    "vip": {"vip": (int,), "ordinary": (int,), "vip_share": (int, float)},
}
"""The fields of each parametrised key distribution and their types."""


def _check_keys(check: _Checker, keys: dict[str, Any], where: str) -> None:
    """Every field of a key distribution is known and of its type, and counts stay within
    ``MAX_KEYS`` (each key is made up front)."""
    kind, params = next(iter(keys.items()))
    where = f"{where}.{kind}"
    if kind == "uniform":
        count = check.typed(keys, "uniform", int, where.rsplit(".", 1)[0], required=True)
        counts = {where: count}
    else:
        params = {} if params is None and kind == "vip" else params
        if not isinstance(params, dict):
            check.fail(where, f"must be a mapping with {', '.join(KEY_FIELDS[kind])}")
        check.known(params, set(KEY_FIELDS[kind]), where)
        for name, kinds in KEY_FIELDS[kind].items():
            check.typed(params, name, kinds, where, required=name in ("count", "keys"))
        counts = {f"{where}.{n}": params[n] for n in ("count", "vip", "ordinary") if n in params}
        if kind == "list":
            for i, key in enumerate(params["keys"]):
                if not isinstance(key, str):
                    check.fail(f"{where}.keys[{i}]", f"must be a string key but is {key!r}")
            weights = params.get("weights") or []
            for i in range(len(weights)):
                check.typed(dict(enumerate(weights)), i, (int, float), f"{where}.weights")
            counts = {f"{where}.keys": len(params["keys"])}
    if kind == "zipf" and not 0 <= params.get("s", 1.1) <= MAX_ZIPF_S:
        check.fail(f"{where}.s", f"must be between 0 and {MAX_ZIPF_S} but is {params['s']}")
    for name, count in counts.items():
        if count > MAX_KEYS:
            check.fail(name, f"is {count:,} keys; the lab makes every key up front and allows "
                       f"at most {MAX_KEYS:,}")


def _key_spec(keys: Any) -> Any:
    if keys is None or keys == "none":
        return NoKeys()
    kind, params = next(iter(keys.items()))
    if kind == "uniform":
        return UniformKeys(params)
    if kind == "zipf":
        return ZipfKeys(params["count"], float(params.get("s", 1.1)))
    if kind == "list":
        return KeyList(list(params["keys"]), params.get("weights"))
    if kind == "vip":
        return vip_customers(**(params or {}))
    return NoKeys()


def _value_bytes(load: dict[str, Any]) -> int | tuple[int, int]:
    value = load.get("value_bytes", 100)
    return tuple(value) if isinstance(value, list) else int(value)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class _Checker:
    """Small helpers that raise ``ScenarioError`` naming the file and the field."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, problem: str) -> None:
        problem = " ".join(problem.split()).rstrip(".")
        raise ScenarioError(f"{self.source}: field {where or '(top level)'} {problem}.")

    def known(self, data: dict[str, Any], allowed: set[str], where: str) -> None:
        for name in data:
            if name not in allowed:
                self.fail(f"{where + '.' if where else ''}{name}",
                          f"is not a scenario field here; allowed: {', '.join(sorted(allowed))}")

    def typed(self, data: dict[str, Any], name: str, kind: Any, where: str,
              required: bool = False, default: Any = None) -> Any:
        path = f"{where + '.' if where else ''}{name}"
        if name not in data:
            if required:
                self.fail(path, "is required")
            return default
        value = data[name]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            expected = " or ".join(k.__name__ for k in kinds)
            hint = ""
            if float in kinds and isinstance(value, str) and _is_number(value):
                hint = " (YAML reads 1e3 as text; write 1.0e+3 or 1000)"
            self.fail(path, f"must be {expected} but is {value!r}{hint}")
        if isinstance(value, float) and not math.isfinite(value):
            self.fail(path, f"must be a finite number but is {value}")
        return value

    def fault_header(self, fault: dict[str, Any], kinds: Iterable[str], where: str
                     ) -> tuple[str, float, dict[str, Any]]:
        """Check the header of a client fault such as ``{at_ms: 500, crash: {consumer: a}}``
        whose kind is one of ``kinds`` (a consumer's, a Streams instance's or a Connect
        worker's): exactly one such kind, no other field, ``at_ms`` a time ≥ 0 (0 when left
        out), the kind's body a mapping. Returns the kind, ``at_ms`` and the body, whose
        fields the caller checks."""
        present = [kind for kind in kinds if kind in fault]
        if len(present) != 1:
            self.fail(where, f"needs exactly one fault kind besides at_ms, but has "
                      f"{', '.join(present) or 'none'}")
        kind = present[0]
        self.known(fault, {"at_ms", kind}, where)
        at_ms = self.typed(fault, "at_ms", (int, float), where, default=0)
        if at_ms < 0:
            self.fail(f"{where}.at_ms", f"must be a time in ms ≥ 0 but is {at_ms}")
        return kind, at_ms, self.typed(fault, kind, dict, where, required=True)

    def config(self, table: configs.ConfigDef, values: Any, where: str) -> None:
        if values is None:
            return
        if not isinstance(values, dict):
            self.fail(where, "must be a mapping of config names to values")
        try:
            table.parse(values)
        except ConfigError as exc:
            self.fail(where, f"is invalid: {exc}")
