"""Distributed mode: workers with the same ``group.id`` share connectors and tasks.

Each ``DistributedHerder`` is one worker process. The workers join a group on the broker's group
coordinator with Connect's own protocol (``sessioned``); the leader assigns connectors and tasks
with incremental cooperative rebalancing (KIP-415, ``IncrementalCooperativeAssignor``): a worker
that disappears leaves its work *unassigned* for up to ``scheduled.rebalance.max.delay.ms``
(300,000 ms) so that it can come back to it; when the delay runs out the work moves to the
others; with 0 it moves at the next rebalance. New work goes to the least loaded worker.

The internal topics must exist as Kafka requires (``config.storage.topic`` with exactly one
partition, all three with ``cleanup.policy=compact``; created so if missing). The workers share
no memory: configs, offsets and statuses are records in those topics (``sim.connect.storage``),
and each worker reads them back into its own view. Statuses are written by the worker that runs
a connector or task, so a crashed worker's tasks keep their last status (RUNNING, naming the
dead worker) until another worker takes them over.

``timeline()`` lists who ran which connector or task when: the failover story.
"""

from __future__ import annotations

import json
import traceback
import weakref
from collections.abc import Generator
from typing import Any

import pandas as pd
import simpy

from sim.connect.assignor import IncrementalCooperativeAssignor
from sim.connect.config_def import NO_DEFAULT, ConfigDef, at_least
from sim.connect.errors import ConnectError, ConnectRestError, NotFoundError
from sim.connect.herder import StandaloneHerder
from sim.connect.status import (
    FAILED,
    PAUSED,
    RESTARTING,
    RUNNING,
    STOPPED,
    UNASSIGNED,
    Status,
)
from sim.connect.storage import (
    READ_WRITE_TOTAL_TIMEOUT_MS,
    KafkaConfigBackingStore,
    KafkaOffsetBackingStore,
    KafkaStatusBackingStore,
)
from sim.connect.worker import Worker
from sim.consumer import group as gc
from sim.consumer.group import group_coordinator
from sim.errors import ConfigError, ProduceError

DISTRIBUTED_CONFIG = (
    ConfigDef()
    .define("group.id", "STRING", NO_DEFAULT, "HIGH", "The Connect cluster this worker joins.")
    .define("config.storage.topic", "STRING", NO_DEFAULT, "HIGH", "Connector configs.")
    .define("offset.storage.topic", "STRING", NO_DEFAULT, "HIGH", "Source offsets.")
    .define("status.storage.topic", "STRING", NO_DEFAULT, "HIGH", "Statuses.")
    .define("config.storage.replication.factor", "SHORT", 3, "LOW", "")
    .define("offset.storage.replication.factor", "SHORT", 3, "LOW", "")
    .define("status.storage.replication.factor", "SHORT", 3, "LOW", "")
    .define("offset.storage.partitions", "INT", 25, "LOW", "", validator=at_least(1))
    .define("status.storage.partitions", "INT", 5, "LOW", "", validator=at_least(1))
    .define("session.timeout.ms", "INT", 10000, "HIGH", "")
    .define("heartbeat.interval.ms", "INT", 3000, "HIGH", "")
    .define("rebalance.timeout.ms", "INT", 60000, "HIGH", "")
    .define("scheduled.rebalance.max.delay.ms", "INT", 300000, "LOW", "",
            validator=at_least(0)))
"""``DistributedConfig``'s keys and defaults (on top of the worker's)."""

NO_LEADER = ("Cannot complete request momentarily due to no known leader URL, likely because a "
             "rebalance was underway.")
PROTOCOL = "sessioned"


def _internal_topic(kernel: Any, prop: str, name: str, partitions: int, rf: int) -> None:
    """Create a compacted internal topic, or check an existing one as Kafka's TopicAdmin does."""
    topics = kernel.cluster.topics
    if name not in topics:
        kernel.cluster.create_topic(name, partitions, min(rf, len(kernel.cluster.brokers)),
                                    {"cleanup.policy": "compact"})
        return
    policy = topics[name].config.get("cleanup.policy", "delete")
    if policy != "compact":
        raise ConfigError(
            f"Topic '{name}' supplied via the '{prop}' property is required to have "
            f"'cleanup.policy=compact' to guarantee consistency and durability of connector "
            f"configurations, but found the topic currently has 'cleanup.policy={policy}'. "
            f"Change the '{prop}' property in the Connect worker configurations to use a topic "
            "with 'cleanup.policy=compact'.")
    if prop == "config.storage.topic" and len(topics[name].partitions) != 1:
        raise ConfigError(
            f"Topic '{name}' supplied via the 'config.storage.topic' property is required to "
            "have a single partition in order to guarantee consistency of connector "
            f"configurations, but found {len(topics[name].partitions)} partitions.")


CONFLICT = "Cannot complete request because of a conflicting operation (e.g. worker rebalance)"
LOG_POLL_MS = 500
"""How often a worker reads its internal topics when nothing wakes it (``fetch.max.wait.ms``);
a record acknowledged in one of them wakes every reader at once, as a long poll returns."""
RECONFIGURE_BACKOFF_MS = 250
"""``RECONFIGURE_CONNECTOR_TASKS_BACKOFF_INITIAL_MS``: retry writing task configs after this."""

def _workers(kernel: Any) -> dict[str, DistributedHerder]:
    """The REST endpoints of the kernel's workers, by URL: where forwarded requests go. Kept on
    the kernel, so that they go away with it (a module-level table keyed weakly by the kernel
    would keep it alive: its herders refer to it)."""
    return vars(kernel).setdefault("_connect_workers", {})  # type: ignore[no-any-return]
_HISTORY: weakref.WeakKeyDictionary[Any, dict[str, list[dict[str, Any]]]] = (
    weakref.WeakKeyDictionary())
"""What each group's workers started, stopped and lost, when: for ``timeline()`` only."""


def _url(worker_id: str) -> str:
    return f"http://{worker_id}/"


class DistributedHerder(StandaloneHerder):
    """One worker of a Connect cluster (``DistributedHerder``).

    Its view of the cluster (connector configs, target states, task configs, statuses, source
    offsets) is what it read from the internal topics; the assignment comes from the group.
    REST reads answer from that view; writes that Kafka reserves for the leader (create, update,
    delete, stop, restarts, offset changes) are forwarded to the leader's URL, which each worker
    learns from its last assignment; with no known leader (a rebalance under way) they get a
    409. Pause and resume write the target state from any worker, as ``AbstractHerder`` does.
    """

    def __init__(self, kernel: Any, props: dict[str, Any]) -> None:
        worker = Worker(kernel, props)
        super().__init__(worker)
        self.dconfig = DISTRIBUTED_CONFIG.parse(
            {k: v for k, v in worker.props.items() if k in DISTRIBUTED_CONFIG.keys})
        c = self.dconfig
        _internal_topic(kernel, "config.storage.topic", c["config.storage.topic"], 1,
                        c["config.storage.replication.factor"])
        _internal_topic(kernel, "offset.storage.topic", c["offset.storage.topic"],
                        c["offset.storage.partitions"], c["offset.storage.replication.factor"])
        _internal_topic(kernel, "status.storage.topic", c["status.storage.topic"],
                        c["status.storage.partitions"], c["status.storage.replication.factor"])
        self.group_id = c["group.id"]
        self.url = _url(worker.worker_id)
        self.config_store = KafkaConfigBackingStore(kernel, c["config.storage.topic"],
                                                    f"{self.group_id}-configs",
                                                    self._config_updated)
        self.status_store = KafkaStatusBackingStore(kernel, c["status.storage.topic"],
                                                    f"{self.group_id}-statuses")
        self.offset_store = KafkaOffsetBackingStore(kernel, c["offset.storage.topic"],
                                                    f"{self.group_id}-offsets")
        worker.offset_store = self.offset_store
        worker.status_listener = self._status_changed
        worker.topic_listener = self._topic_used
        self.configs, self.targets, self.tasks = (self.config_store.configs,
                                                  self.config_store.targets,
                                                  self.config_store.tasks)
        self.running_versions: dict[str, int] = {}
        self.stopped_reported: set[str] = set()
        self.assignment: list[str] = []
        self.leader_url = ""
        self.member_id = ""
        self.generation = -1
        self.last_completed_generation = -1
        self.assignor = IncrementalCooperativeAssignor(c["scheduled.rebalance.max.delay.ms"])
        self._rejoin_at = 0.0
        self.alive = True
        self.wake: simpy.Event = kernel.env.event()
        self.rejoin_needed = True
        self._units_seen: list[str] = []
        _workers(kernel)[self.url] = self
        self.history = _HISTORY.setdefault(kernel, {}).setdefault(self.group_id, [])
        self.read_wake: simpy.Event = kernel.env.event()
        for store in (self.config_store, self.status_store, self.offset_store):
            store.log.on_data(self._data_arrived)
        self.read_all()  # a worker that starts learns the cluster's state from the topics
        self.process = kernel.env.process(self._member())
        self.reader = kernel.env.process(self._read_loop())

    # -- reading the internal topics ------------------------------------------------------------

    def read_all(self) -> None:
        """Read the config, status and offset topics to their ends, then act on what changed."""
        self.config_store.read_to_end()
        self.status_store.read_to_end()
        self.offset_store.log.read_to_end()
        if not self.alive:
            return
        units = self.units()
        if units != self._units_seen:
            self._units_seen = units
            if self.member_id:
                self.rejoin()  # connectors or tasks came or went: a rebalance hands them out
        self._apply()

    def _data_arrived(self) -> None:
        if self.alive and not self.read_wake.triggered:
            self.read_wake.succeed()

    def _read_loop(self) -> Generator[Any, Any, None]:
        env = self.kernel.env
        while self.alive:
            if self.read_wake.triggered:
                self.read_wake = env.event()
            yield env.any_of([env.timeout(LOG_POLL_MS), self.read_wake])
            if self.alive:
                self.read_all()

    def _config_updated(self, kind: str, name: str) -> None:
        """A change read from the config topic; pause / resume and restarts act at once."""
        if not self.alive:
            return
        if kind == "target":
            target = self.targets[name]
            if target in (RUNNING, PAUSED):
                self.worker_transition(name, target)
        elif kind == "restart":
            self._process_restart(name, self.config_store.restarts.pop(name))

    def worker_transition(self, name: str, target: str) -> None:
        """Pause or resume what this worker runs of the connector (``Worker.setTargetState``)."""
        connector = self.worker.connectors.get(name)
        if connector is not None and connector.status.state in (RUNNING, PAUSED):
            connector.status = Status(target, self.worker.worker_id)
        for task_id in self.worker.task_ids(name):
            self.worker.tasks[(name, task_id)].transition(target)

    def units(self) -> list[str]:
        """Every connector and task the group must run, in a fixed order."""
        out = []
        for name in sorted(self.configs):
            out.append(f"connector:{name}")
            out += [f"task:{name}:{i}" for i in range(len(self.tasks.get(name, [])))]
        return out

    def _status_changed(self, name: str, task: int | None, status: Status) -> None:
        if self.alive:
            self.status_store.put(name, task, status, self.generation)

    def _topic_used(self, connector: str, topic: str) -> None:
        """``WorkerTask.recordActiveTopic``: written once, unless the status topic lost it."""
        if self.alive and topic not in self.status_store.topics.get(connector, set()) and \
                (connector, topic) not in self.status_store.topics_written:
            self.status_store.put_topic(connector, topic)

    # -- group membership -------------------------------------------------------------------

    def rejoin(self) -> None:
        self.rejoin_needed = True
        if not self.wake.triggered:
            self.wake.succeed()

    def _metadata(self) -> str:
        """This member's JoinGroup metadata (``ExtendedWorkerState``): URL, config offset and
        what it runs now."""
        return json.dumps({"url": self.url, "worker_id": self.worker.worker_id,
                           "config_offset": self.config_store.offset,
                           "assignment": self.assignment})

    def _member(self) -> Generator[Any, Any, None]:
        env, c = self.kernel.env, self.dconfig
        coordinator = group_coordinator(self.kernel)
        while self.alive:
            if self.rejoin_needed:
                self.rejoin_needed = False
                self.leader_url = ""  # no known leader until the rebalance completes
                join = coordinator.join_group(self.group_id, self.member_id, None,
                                              self.worker.worker_id, c["session.timeout.ms"],
                                              c["rebalance.timeout.ms"],
                                              ((PROTOCOL, self._metadata()),))
                response = yield join
                if not self.alive:
                    return
                if response.error == gc.MEMBER_ID_REQUIRED:
                    self.member_id = response.member_id
                    self.rejoin_needed = True
                    continue
                if response.error:
                    self.member_id = "" if response.error == gc.UNKNOWN_MEMBER_ID else (
                        self.member_id)
                    self.rejoin_needed = True
                    yield env.timeout(100)
                    continue
                self.member_id, self.generation = response.member_id, response.generation
                assignments = None
                if response.leader_id == self.member_id:
                    assignments = self._assign(dict(response.members), response.generation)
                sync = yield coordinator.sync_group(self.group_id, self.member_id,
                                                    self.generation, assignments)
                if not self.alive:
                    return
                if sync.error:
                    self.rejoin_needed = True
                    continue
                self._assigned(json.loads(str(sync.assignment[0])))
            if self.wake.triggered:
                self.wake = env.event()
            yield env.any_of([env.timeout(c["heartbeat.interval.ms"]), self.wake])
            if not self.alive:
                return
            if not self.rejoin_needed:
                error = coordinator.heartbeat(self.group_id, self.member_id, self.generation)
                if error == gc.UNKNOWN_MEMBER_ID:
                    self.member_id = ""
                if error:
                    self.rejoin_needed = True

    def _assigned(self, assignment: dict[str, Any]) -> None:
        """The assignment from SyncGroup: read the config up to the leader's offset, then run
        what is ours."""
        self.last_completed_generation = self.generation
        self.leader_url = assignment["leader_url"]
        self.assignment = list(assignment["units"])
        if self.config_store.offset < assignment["config_offset"]:
            self.config_store.read_to_end()
        self._units_seen = self.units()
        self._apply()
        if assignment["revoked"]:
            self.rejoin()  # the revoked work is handed out in a follow-up rebalance
        elif assignment["delay_ms"] > 0:
            at = self.kernel.now_ms + assignment["delay_ms"]
            self._rejoin_at = at
            self.kernel.env.timeout(assignment["delay_ms"]).callbacks.append(
                lambda _e: self.rejoin() if self.alive and self._rejoin_at == at else None)

    def _assign(self, members: dict[str, Any], generation: int) -> dict[str, list[str]]:
        """The leader reads the config to its end, then assigns (``IncrementalCooperativeAssignor``)
        and adds its URL and config offset to each member's assignment."""
        self.read_all()
        plans = self.assignor.perform_task_assignment(
            members, self.units(), generation, self.last_completed_generation,
            self.kernel.now_ms)
        return {member: [json.dumps({"leader_url": self.url,
                                     "config_offset": self.config_store.offset, **plan})]
                for member, plan in plans.items()}

    # -- running what is assigned --------------------------------------------------------------

    def _version(self, unit: str) -> int:
        kind, name, *_ = unit.split(":")
        versions = self.config_store.versions.get(name, (-1, -1))
        return versions[0] if kind == "connector" else versions[1]

    def _apply(self) -> None:
        """Run exactly what is assigned, with the configs read: stop what was revoked, removed,
        stopped or reconfigured; start what is assigned and not running."""
        if not self.alive:
            return
        worker = self.worker
        for (name, task_id) in list(worker.tasks):
            unit = f"task:{name}:{task_id}"
            if unit not in self.assignment or self.targets.get(name) == STOPPED or \
                    self.running_versions.get(unit) != self._version(unit):
                self._stop_unit(unit)
        for name in list(worker.connectors):
            unit = f"connector:{name}"
            if unit not in self.assignment or self.targets.get(name) == STOPPED or \
                    self.running_versions.get(unit) != self._version(unit):
                self._stop_unit(unit)
        for unit in self.assignment:
            kind, name, *rest = unit.split(":")
            if name not in self.configs:
                continue
            target, props = self.targets[name], self.configs[name]
            if kind == "connector" and target == STOPPED:
                if name not in self.stopped_reported:
                    self.stopped_reported.add(name)
                    self._status_changed(name, None, Status(STOPPED, worker.worker_id))
            elif kind == "connector" and name not in worker.connectors:
                self.stopped_reported.discard(name)
                self.running_versions[unit] = self._version(unit)
                self._record(unit, "started")
                if worker.start_connector(name, props, target):
                    self._reconfigure(name)
            elif kind == "task" and target != STOPPED and \
                    (name, int(rest[0])) not in worker.tasks and \
                    int(rest[0]) < len(self.tasks[name]):
                self.running_versions[unit] = self._version(unit)
                self._record(unit, "started")
                worker.start_task(name, int(rest[0]), self.tasks[name][int(rest[0])], props,
                                  target)

    def _stop_unit(self, unit: str) -> None:
        """Stop a connector or task and say so in the status topic (``onShutdown``)."""
        kind, name, *rest = unit.split(":")
        if kind == "task":
            self.worker.stop_task(name, int(rest[0]))
            task: int | None = int(rest[0])
        else:
            self.worker.stop_connector(name)
            task = None
        self._record(unit, "stopped")
        if name in self.configs and not (task is None and self.targets.get(name) == STOPPED):
            self._status_changed(name, task, Status(UNASSIGNED, self.worker.worker_id))

    def _reconfigure(self, name: str) -> None:
        """The connector's worker computes its task configs; if they changed, the leader writes
        them (the request is forwarded to it), and the next rebalance hands them out."""
        connector = self.worker.connectors.get(name)
        if connector is None or not self.alive:
            return
        props = self.configs[name]
        max_tasks = int(props.get("tasks.max", "1"))
        try:
            configs = connector.connector.task_configs(max_tasks)
            enforce = props.get("tasks.max.enforce", "true").lower() != "false"
            if enforce and len(configs) > max_tasks:
                raise ConnectError(f"The connector {name} has generated {len(configs)} tasks, "
                                   f"which is greater than {max_tasks}, the maximum number of "
                                   "tasks it is configured to create. This behaviour should be "
                                   "considered a bug and is disallowed.")
        except Exception:
            connector.status = Status(FAILED, self.worker.worker_id, traceback.format_exc())
            return
        configs = [{k: str(v) for k, v in c.items()} for c in configs]
        if configs == self.tasks.get(name):
            return
        leader = _workers(self.kernel).get(self.leader_url)
        if leader is None or not leader.alive or not leader.is_leader():
            timer = self.kernel.env.timeout(RECONFIGURE_BACKOFF_MS)
            timer.callbacks.append(lambda _e: self._reconfigure(name))
            return
        future = leader.config_store.put_task_configs(name, configs)
        self.kernel.env.process(self._await_task_configs(name, leader, future))

    def _await_task_configs(self, name: str, leader: DistributedHerder,
                            future: Any) -> Generator[Any, Any, None]:
        """The forwarded request's answer: Kafka's leader answers once the task configs are
        written and read back (``KafkaConfigBackingStore.putTaskConfigs``), and the connector's
        worker retries a request that failed, because the leader died, or timed out
        (``reconfigureConnectorTasksWithExponentialBackoffRetries``). Without the retry, a
        leader crashing before its write was acknowledged left the connector with no tasks."""
        waited = 0
        while not future.done() and leader.alive and waited < READ_WRITE_TOTAL_TIMEOUT_MS:
            yield self.kernel.env.timeout(RECONFIGURE_BACKOFF_MS)
            waited += RECONFIGURE_BACKOFF_MS
        if future.done():
            try:
                future.get(self.kernel.now_ms)  # acknowledged: the answer is at hand
                return
            except ProduceError:
                pass
        if self.alive:
            self._reconfigure(name)

    def _record(self, unit: str, event: str) -> None:
        self.history.append({"time_ms": self.kernel.now_ms, "worker": self.worker.worker_id,
                             "unit": unit.split(":", 1)[1].replace(":", "-"), "event": event})

    def crash(self) -> None:
        """The worker process dies: no LeaveGroup, no last status; the group notices after the
        session timeout, and the statuses it wrote stay as they were."""
        self.alive = False
        for unit in self.assignment:
            self._record(unit, "lost")
        self.worker.crash()
        self.assignment = []
        for store in (self.config_store, self.status_store, self.offset_store):
            store.log.producer.crash()
        if not self.wake.triggered:
            self.wake.succeed()

    # -- where requests go ----------------------------------------------------------------------

    def is_leader(self) -> bool:
        return self.alive and bool(self.leader_url) and self.leader_url == self.url

    def _leader(self) -> DistributedHerder:
        """The worker that must handle a leader-only request: this one if it leads, else the
        one at the leader URL of the last assignment (``HerderRequestHandler`` forwards there).
        """
        if not self.leader_url:
            raise ConnectRestError(NO_LEADER, 409)
        if self.leader_url == self.url:
            return self
        leader = _workers(self.kernel).get(self.leader_url)
        if leader is None or not leader.alive:
            raise ConnectRestError("IO Error trying to forward REST request: Connection "
                                   f"refused ({self.leader_url})", 500)
        if not leader.is_leader():
            raise ConnectRestError(CONFLICT, 409)
        return leader

    def _owner(self, unit: str) -> DistributedHerder | None:
        """The worker the leader's last assignment gave ``unit`` to (leader only)."""
        for worker_id, units in self.assignor.leader_state.items():
            if unit in units:
                owner = _workers(self.kernel).get(_url(worker_id))
                return owner if owner is not None and owner.alive else None
        return None

    def _written(self, future: Any) -> None:
        """Wait until the write is acknowledged and read back (500 if it times out)."""
        if not self.config_store.log.write_and_read(future):
            raise ConnectRestError("Request timed out", 500)
        self.read_all()

    # -- the herder API ---------------------------------------------------------------------

    def put_connector_config(self, name: str, config: dict[str, Any], allow_replace: bool,
                             initial_state: str | None = None) -> tuple[bool, dict[str, Any]]:
        leader = self._leader()
        if leader is not self:
            return leader.put_connector_config(name, config, allow_replace, initial_state)
        props = self._validated(name, config, allow_replace)
        exists = name in self.configs
        self._written(self.config_store.put_connector_config(
            name, props, None if exists else (initial_state or RUNNING)))
        return not exists, self.connector_info(name)

    def patch_connector_config(self, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        leader = self._leader()
        if leader is not self:
            return leader.patch_connector_config(name, patch)
        return super().patch_connector_config(name, patch)

    def delete_connector_config(self, name: str) -> None:
        leader = self._leader()
        if leader is not self:
            leader.delete_connector_config(name)
            return
        self._check(name)
        tasks = len(self.tasks[name])
        future = self.config_store.remove_connector_config(name)
        self.status_store.remove(name, tasks)
        self._written(future)

    def pause_connector(self, name: str) -> None:
        self._check(name)
        self._written(self.config_store.put_target_state(name, PAUSED))

    def resume_connector(self, name: str) -> None:
        self._check(name)
        self._written(self.config_store.put_target_state(name, RUNNING))

    def stop_connector(self, name: str) -> None:
        """KIP-875 (leader only): empty task configs, then the STOPPED target state."""
        leader = self._leader()
        if leader is not self:
            leader.stop_connector(name)
            return
        self._check(name)
        self.config_store.put_task_configs(name, [])
        self._written(self.config_store.put_target_state(name, STOPPED))

    def connector_status(self, name: str) -> dict[str, Any]:
        """The latest statuses read from the status topic (``AbstractHerder.connectorStatus``)."""
        self._check(name)
        connector = self.status_store.connectors.get(name)
        if connector is None:
            raise NotFoundError(f"No status found for connector {name}")
        tasks = sorted((task, status) for (conn, task), (status, _) in
                       self.status_store.tasks.items()
                       if conn == name and task < len(self.tasks[name]))
        return {"name": name, "connector": connector[0].as_json(),
                "tasks": [status.as_json(task) for task, status in tasks],
                "type": self.connector_type(name)}

    def task_status(self, name: str, task: int) -> dict[str, Any]:
        found = self.status_store.tasks.get((name, task))
        if found is None:
            raise NotFoundError(f"No status found for task {name}-{task}")
        return found[0].as_json(task)

    def restart_connector(self, name: str) -> None:
        """Restarted by its worker: here if this worker runs it, else forwarded to the leader,
        which forwards to the worker it assigned the connector to."""
        self._check(name)
        if self.targets[name] == STOPPED:
            return
        unit = f"connector:{name}"
        if unit in self.assignment and name in self.worker.connectors:
            self.worker.stop_connector(name)
            if self.worker.start_connector(name, self.configs[name], self.targets[name]):
                self._reconfigure(name)
            return
        target = self._forward_target(unit)
        target.restart_connector(name)

    def restart_task(self, name: str, task: int) -> None:
        self._check(name)
        if not 0 <= task < len(self.tasks[name]):
            raise NotFoundError(f"Task {name}-{task} not found")
        unit = f"task:{name}:{task}"
        if unit in self.assignment and (name, task) in self.worker.tasks:
            self.worker.stop_task(name, task)
            self.worker.start_task(name, task, self.tasks[name][task], self.configs[name],
                                   self.targets[name])
            return
        self._forward_target(unit).restart_task(name, task)

    def _forward_target(self, unit: str) -> DistributedHerder:
        """Where a restart goes: the leader, or from the leader the unit's worker."""
        leader = self._leader()
        if leader is not self:
            return leader
        owner = self._owner(unit)
        if owner is None or owner is self:
            raise ConnectRestError(CONFLICT, 409)
        return owner

    def restart_connector_and_tasks(self, name: str, only_failed: bool,
                                    include_tasks: bool) -> dict[str, Any]:
        """KIP-745 (leader only): the plan from the latest statuses, and a restart request in
        the config topic that each worker carries out for what it runs."""
        leader = self._leader()
        if leader is not self:
            return leader.restart_connector_and_tasks(name, only_failed, include_tasks)
        if name not in self.configs:
            raise NotFoundError(f"Unknown connector: {name}")
        status = self.connector_status(name)
        if (not only_failed or status["connector"]["state"] == FAILED) and (
                self.targets[name] != STOPPED):
            status["connector"] = {"state": RESTARTING,
                                   "worker_id": status["connector"]["worker_id"]}
        for i, task in enumerate(status["tasks"]):
            if include_tasks and (not only_failed or task["state"] == FAILED):
                status["tasks"][i] = {"id": task["id"], "state": RESTARTING,
                                      "worker_id": task["worker_id"]}
        self._written(self.config_store.put_restart_request(name, only_failed, include_tasks))
        return status

    def _process_restart(self, name: str, request: dict[str, bool]) -> None:
        """Carry out a restart request for what this worker runs (``RestartPlan``)."""
        only_failed = request["only_failed"]
        worker = self.worker
        connector = worker.connectors.get(name)
        if connector is not None and self.targets.get(name) != STOPPED and (
                not only_failed or connector.status.state == FAILED):
            connector.status = Status(RESTARTING, worker.worker_id)
            worker.stop_connector(name)
            if worker.start_connector(name, self.configs[name], self.targets[name]):
                self._reconfigure(name)
        if not request["include_tasks"]:
            return
        for task_id in worker.task_ids(name):
            task = worker.tasks[(name, task_id)]
            if not only_failed or task.status.state == FAILED:
                task.status = Status(RESTARTING, worker.worker_id)
                worker.stop_task(name, task_id)
                worker.start_task(name, task_id, self.tasks[name][task_id], self.configs[name],
                                  self.targets[name])

    def alter_connector_offsets(self, name: str, offsets: list[dict[str, Any]]) -> str:
        leader = self._leader()
        if leader is not self:
            return leader.alter_connector_offsets(name, offsets)
        message = super().alter_connector_offsets(name, offsets)
        self.offset_store.sync()
        return message

    def reset_connector_offsets(self, name: str) -> str:
        leader = self._leader()
        if leader is not self:
            return leader.reset_connector_offsets(name)
        message = super().reset_connector_offsets(name)
        self.offset_store.sync()
        return message

    def connector_active_topics(self, name: str) -> dict[str, Any]:
        """The topics the connector's tasks used, as the status topic records them (KIP-558)."""
        self._check(name)
        return {name: {"topics": sorted(self.status_store.topics.get(name, set()))}}

    def reset_connector_active_topics(self, name: str) -> None:
        self._check(name)
        future = None
        for topic in sorted(self.status_store.topics.get(name, set())):
            future = self.status_store.remove_topic(name, topic)
        if future is not None and not self.status_store.log.write_and_read(future):
            raise ConnectRestError("Request timed out", 500)

    def timeline(self) -> pd.DataFrame:
        """Who started, stopped or lost which connector or task when."""
        return pd.DataFrame(self.history, columns=["time_ms", "worker", "unit", "event"])

    def __repr__(self) -> str:
        return (f"DistributedHerder({self.worker.worker_id}, group={self.group_id!r}, "
                f"{'alive' if self.alive else 'dead'}, assignment={self.assignment})")
