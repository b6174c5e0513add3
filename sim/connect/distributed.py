"""Distributed mode: workers with the same ``group.id`` share connectors and tasks.

Each ``DistributedHerder`` is one worker process. The workers join a group on the broker's group
coordinator with Connect's own protocol (``sessioned``); the leader assigns connectors and tasks
with incremental cooperative rebalancing (KIP-415, ``IncrementalCooperativeAssignor``): a worker
that disappears leaves its work *unassigned* for up to ``scheduled.rebalance.max.delay.ms``
(300,000 ms) so that it can come back to it; when the delay runs out the work moves to the
others; with 0 it moves at the next rebalance. New work goes to the least loaded worker.

The internal topics must exist as Kafka requires (``config.storage.topic`` with exactly one
partition, all three with ``cleanup.policy=compact``; created so if missing). Connector configs,
target states and task configs are written to the config topic (keys ``connector-<name>``,
``target-state-<name>``, ``task-<name>-<n>``); the workers read them from a shared view of that
topic, and source offsets from a shared view of the offset topic.

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

from sim.connect.config_def import NO_DEFAULT, ConfigDef, at_least
from sim.connect.errors import ConnectRestError
from sim.connect.herder import StandaloneHerder
from sim.connect.offsets import OffsetBackingStore
from sim.connect.status import FAILED, RESTARTING, STOPPED, UNASSIGNED, Status
from sim.connect.worker import Worker
from sim.consumer import group as gc
from sim.consumer.group import group_coordinator
from sim.errors import ConfigError
from sim.producer import Producer

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


class ConnectCluster:
    """What the workers of one group share: the internal topics' contents and the history."""

    def __init__(self, kernel: Any, group_id: str, config: dict[str, Any]) -> None:
        self.kernel = kernel
        self.group_id = group_id
        self.config_topic = config["config.storage.topic"]
        self.configs: dict[str, dict[str, str]] = {}
        self.targets: dict[str, str] = {}
        self.tasks: dict[str, list[dict[str, str]]] = {}
        self.versions: dict[str, int] = {}
        self.offsets = OffsetBackingStore()
        self.herders: list[DistributedHerder] = []
        self.previous: dict[str, list[str]] = {}  # worker id → units, as last assigned
        self.lost_deadline: float | None = None
        self.history: list[dict[str, Any]] = []
        self.producer = Producer(kernel, {"client.id": f"connect-config-{group_id}",
                                          "acks": "all"})

    def write(self, key: str, value: Any) -> None:
        """Append to the config topic (the compacted log the workers read back)."""
        self.producer.send(self.config_topic, key=key,
                           value=None if value is None else json.dumps(value, sort_keys=True))

    def units(self) -> list[str]:
        """Every connector and task the group must run, in a fixed order."""
        out = []
        for name in sorted(self.configs):
            out.append(f"connector:{name}")
            out += [f"task:{name}:{i}" for i in range(len(self.tasks.get(name, [])))]
        return out

    def leader(self) -> DistributedHerder | None:
        group = group_coordinator(self.kernel).groups.get(self.group_id)
        if group is None or group.state != "Stable":
            return None
        return next((h for h in self.herders if h.member_id == group.leader_id and h.alive),
                    None)

    def request_rebalance(self) -> None:
        for herder in self.herders:
            if herder.alive:
                herder.rejoin()


_CLUSTERS: weakref.WeakKeyDictionary[Any, dict[str, ConnectCluster]] = (
    weakref.WeakKeyDictionary())


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


class DistributedHerder(StandaloneHerder):
    """One worker of a Connect cluster; its REST API answers for the whole cluster."""

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
        clusters = _CLUSTERS.setdefault(kernel, {})
        self.cluster = clusters.setdefault(c["group.id"],
                                           ConnectCluster(kernel, c["group.id"], c))
        self.cluster.herders.append(self)
        self.configs, self.targets, self.tasks = (self.cluster.configs, self.cluster.targets,
                                                  self.cluster.tasks)
        worker.offset_store = self.cluster.offsets
        self.running_versions: dict[str, int] = {}
        self.assignment: list[str] = []
        self.member_id = ""
        self.generation = -1
        self.alive = True
        self.wake: simpy.Event = kernel.env.event()
        self.rejoin_needed = True
        self.process = kernel.env.process(self._member())

    # -- group membership -------------------------------------------------------------------

    def rejoin(self) -> None:
        self.rejoin_needed = True
        if not self.wake.triggered:
            self.wake.succeed()

    def _member(self) -> Generator[Any, Any, None]:
        env, c = self.kernel.env, self.dconfig
        coordinator = group_coordinator(self.kernel)
        group_id = c["group.id"]
        while self.alive:
            if self.rejoin_needed:
                self.rejoin_needed = False
                join = coordinator.join_group(group_id, self.member_id, None,
                                              self.worker.worker_id, c["session.timeout.ms"],
                                              c["rebalance.timeout.ms"],
                                              ((PROTOCOL, self.worker.worker_id),))
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
                    assignments = self._assign(dict(response.members))
                sync = yield coordinator.sync_group(group_id, self.member_id, self.generation,
                                                    assignments)
                if not self.alive:
                    return
                if sync.error:
                    self.rejoin_needed = True
                    continue
                self._apply([str(u) for u in sync.assignment])
            if self.wake.triggered:
                self.wake = env.event()
            yield env.any_of([env.timeout(c["heartbeat.interval.ms"]), self.wake])
            if not self.alive:
                return
            if not self.rejoin_needed:
                error = coordinator.heartbeat(group_id, self.member_id, self.generation)
                if error == gc.UNKNOWN_MEMBER_ID:
                    self.member_id = ""
                if error:
                    self.rejoin_needed = True

    def _assign(self, members: dict[str, Any]) -> dict[str, list[str]]:
        """The leader's incremental cooperative assignment (KIP-415), by worker id."""
        cluster, now = self.cluster, self.kernel.now_ms
        delay = self.dconfig["scheduled.rebalance.max.delay.ms"]
        workers = sorted(set(members.values()))
        units = cluster.units()
        previous = {w: [u for u in us if u in units] for w, us in cluster.previous.items()}
        kept = {w: list(previous.get(w, [])) for w in workers}
        owned = {u for us in kept.values() for u in us}
        lost = [u for w, us in previous.items() if w not in workers for u in us
                if u not in owned]
        new = [u for u in units if u not in owned and u not in lost]
        if lost and delay > 0:
            if cluster.lost_deadline is None:
                cluster.lost_deadline = now + delay
                timer = self.kernel.env.timeout(delay)
                timer.callbacks.append(lambda _e: cluster.request_rebalance())
            if now < cluster.lost_deadline:  # keep them for their worker, unassigned
                lost_kept = {w: us for w, us in previous.items() if w not in workers}
                self._spread(kept, new, workers)
                cluster.previous = {**lost_kept, **kept}
                return self._by_member(members, kept)
        cluster.lost_deadline = None
        self._spread(kept, lost + new, workers)
        cluster.previous = kept
        return self._by_member(members, kept)

    @staticmethod
    def _spread(kept: dict[str, list[str]], units: list[str], workers: list[str]) -> None:
        for unit in units:
            target = min(workers, key=lambda w: (len(kept[w]), w))
            kept[target].append(unit)

    @staticmethod
    def _by_member(members: dict[str, Any], kept: dict[str, list[str]]) -> dict[str, list[str]]:
        return {member: list(kept.get(worker, [])) for member, worker in members.items()}

    def _apply(self, assignment: list[str]) -> None:
        """Run what is assigned, stop what is not (revoked)."""
        self.assignment = assignment
        worker = self.worker
        for (name, task_id) in list(worker.tasks):
            unit = f"task:{name}:{task_id}"
            if unit not in assignment or self.running_versions.get(unit) != \
                    self.cluster.versions.get(name):
                worker.stop_task(name, task_id)
                self._record(unit, "stopped")
        for name in list(worker.connectors):
            unit = f"connector:{name}"
            if unit not in assignment or self.running_versions.get(unit) != \
                    self.cluster.versions.get(name):
                worker.stop_connector(name)
                self._record(unit, "stopped")
        for unit in assignment:
            kind, name, *rest = unit.split(":")
            if name not in self.cluster.configs:
                continue
            target, props = self.cluster.targets[name], self.cluster.configs[name]
            self.running_versions[unit] = self.cluster.versions[name]
            if kind == "connector" and name not in worker.connectors:
                self._record(unit, "started")
                if worker.start_connector(name, props, target) and target != STOPPED:
                    self._update_task_configs(name)
            elif kind == "task" and (name, int(rest[0])) not in worker.tasks:
                task_id = int(rest[0])
                if task_id < len(self.cluster.tasks[name]):
                    self._record(unit, "started")
                    worker.start_task(name, task_id, self.cluster.tasks[name][task_id], props,
                                      target)

    def _update_task_configs(self, name: str) -> None:
        """The connector's worker writes new task configs; a rebalance hands them out."""
        connector = self.worker.connectors[name]
        props = self.cluster.configs[name]
        try:
            configs = connector.connector.task_configs(int(props.get("tasks.max", "1")))
        except Exception:
            connector.status = Status(FAILED, self.worker.worker_id, traceback.format_exc())
            return
        configs = [{k: str(v) for k, v in c.items()} for c in configs]
        if configs != self.cluster.tasks.get(name):
            self.cluster.tasks[name] = configs
            for i, config in enumerate(configs):
                self.cluster.write(f"task-{name}-{i}", config)
            self.cluster.request_rebalance()

    def _record(self, unit: str, event: str) -> None:
        self.cluster.history.append({"time_ms": self.kernel.now_ms, "worker": self.worker.worker_id,
                                     "unit": unit.split(":", 1)[1].replace(":", "-"),
                                     "event": event})

    def crash(self) -> None:
        """The worker process dies: no LeaveGroup; the group notices after the session."""
        self.alive = False
        for unit in self.assignment:
            self._record(unit, "lost")
        self.worker.crash()
        self.assignment = []
        if not self.wake.triggered:
            self.wake.succeed()

    # -- the herder API, for the whole cluster --------------------------------------------------

    def _require_leader(self) -> None:
        if self.cluster.leader() is None:
            raise ConnectRestError(NO_LEADER, 409)

    def _owner(self, unit: str) -> DistributedHerder | None:
        return next((h for h in self.cluster.herders if h.alive and unit in h.assignment), None)

    def _unassigned(self, unit: str) -> Status:
        """UNASSIGNED, with the worker that last had it (as its last status record says)."""
        last = next((w for w, units in self.cluster.previous.items() if unit in units), "")
        return Status(UNASSIGNED, last)

    def connector_status(self, name: str) -> dict[str, Any]:
        self._check(name)
        owner = self._owner(f"connector:{name}")
        connector = owner.worker.connectors.get(name) if owner else None
        status = connector.status if connector else self._unassigned(f"connector:{name}")
        if self.targets[name] == STOPPED and connector and status.state != FAILED:
            status = Status(STOPPED, status.worker_id)
        tasks = []
        for i in range(len(self.tasks[name])):
            task_owner = self._owner(f"task:{name}:{i}")
            task = task_owner.worker.tasks.get((name, i)) if task_owner else None
            tasks.append((task.status if task else self._unassigned(f"task:{name}:{i}")
                          ).as_json(i))
        return {"name": name, "connector": status.as_json(), "tasks": tasks,
                "type": self.connector_type(name)}

    def task_status(self, name: str, task: int) -> dict[str, Any]:
        self._check(name)
        if not 0 <= task < len(self.tasks[name]):
            return super().task_status(name, task)
        return self.connector_status(name)["tasks"][task]

    def put_connector_config(self, name: str, config: dict[str, Any], allow_replace: bool,
                             initial_state: str | None = None) -> tuple[bool, dict[str, Any]]:
        self._require_leader()
        return super().put_connector_config(name, config, allow_replace, initial_state)

    def delete_connector_config(self, name: str) -> None:
        self._require_leader()
        super().delete_connector_config(name)
        self.cluster.write(f"connector-{name}", None)
        self.cluster.versions.pop(name, None)
        self.cluster.request_rebalance()

    def _start(self, name: str) -> None:
        self.cluster.versions[name] = self.cluster.versions.get(name, 0) + 1
        self.cluster.write(f"connector-{name}", self.configs[name])
        self.cluster.write(f"target-state-{name}", {"state": self.targets[name]})
        self.cluster.request_rebalance()

    def _stop_all(self, name: str) -> None:
        """Owners restart with the new version at the next rebalance."""

    def _stop_tasks(self, name: str) -> None:
        for herder in self.cluster.herders:
            for task_id in herder.worker.task_ids(name):
                herder.worker.stop_task(name, task_id)

    def _transition(self, name: str, target: str) -> None:
        self._require_leader()
        previous = self.targets[name]
        self.targets[name] = target
        self.cluster.write(f"target-state-{name}", {"state": target})
        if previous == STOPPED:
            self._start(name)
            return
        for herder in self.cluster.herders:
            connector = herder.worker.connectors.get(name)
            if connector is not None and connector.status.state not in (FAILED, STOPPED):
                connector.status = Status(target, herder.worker.worker_id)
            for task_id in herder.worker.task_ids(name):
                herder.worker.tasks[(name, task_id)].transition(target)

    def stop_connector(self, name: str) -> None:
        self._require_leader()
        super().stop_connector(name)
        self.cluster.write(f"target-state-{name}", {"state": STOPPED})
        self.cluster.request_rebalance()

    def restart_connector(self, name: str) -> None:
        self._check(name)
        owner = self._owner(f"connector:{name}")
        if owner is not None and self.targets[name] != STOPPED:
            owner.worker.stop_connector(name)
            owner.worker.start_connector(name, self.configs[name], self.targets[name])

    def restart_task(self, name: str, task: int) -> None:
        self._check(name)
        owner = self._owner(f"task:{name}:{task}")
        if owner is None:
            return super().restart_task(name, task)  # 404 for a task that does not exist
        owner.worker.stop_task(name, task)
        owner.worker.start_task(name, task, self.tasks[name][task], self.configs[name],
                                self.targets[name])
        return None

    def restart_connector_and_tasks(self, name: str, only_failed: bool,
                                    include_tasks: bool) -> dict[str, Any]:
        if name not in self.configs:
            return super().restart_connector_and_tasks(name, only_failed, include_tasks)
        status = self.connector_status(name)
        if (not only_failed or status["connector"]["state"] == FAILED) and (
                self.targets[name] != STOPPED):
            status["connector"] = {"state": RESTARTING,
                                   "worker_id": status["connector"]["worker_id"]}
            self.restart_connector(name)
        for i, task in enumerate(status["tasks"]):
            if include_tasks and (not only_failed or task["state"] == FAILED):
                status["tasks"][i] = {"id": i, "state": RESTARTING,
                                      "worker_id": task["worker_id"]}
                self.restart_task(name, i)
        return status

    def connector_active_topics(self, name: str) -> dict[str, Any]:
        """The topics the connector's tasks used, on any worker (KIP-558)."""
        self._check(name)
        topics = {t for h in self.cluster.herders for t in h.worker.active_topics.get(name, [])}
        return {name: {"topics": sorted(topics)}}

    def reset_connector_active_topics(self, name: str) -> None:
        self._check(name)
        for herder in self.cluster.herders:
            herder.worker.active_topics[name] = []

    def timeline(self) -> pd.DataFrame:
        """Who started, stopped or lost which connector or task when."""
        return pd.DataFrame(self.cluster.history, columns=["time_ms", "worker", "unit", "event"])

    def __repr__(self) -> str:
        return (f"DistributedHerder({self.worker.worker_id}, group={self.cluster.group_id!r}, "
                f"{'alive' if self.alive else 'dead'}, assignment={self.assignment})")

