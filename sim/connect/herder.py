"""The herder: what the REST API asks of a Connect cluster (``o.a.k.connect.runtime.Herder``).

``Herder`` is the interface; ``StandaloneHerder`` keeps connector configs in memory and runs
everything on one ``Worker`` (a distributed herder would keep them in compacted internal topics
and share the work in a group). Every method returns plain JSON-ready data in the REST API's
shapes, or raises a ``ConnectRestError`` (404 / 409 / 400) with Kafka's message.
"""

from __future__ import annotations

import traceback
from abc import ABC, abstractmethod
from typing import Any

from sim.connect.config_def import key_info
from sim.connect.connector_config import invalid_config_error, validate_connector
from sim.connect.errors import AlreadyExistsError, BadRequestError, ConnectError, NotFoundError
from sim.connect.offsets import offset_key
from sim.connect.status import FAILED, PAUSED, RESTARTING, RUNNING, STOPPED, Status
from sim.connect.worker import Worker
from sim.consumer.group import group_coordinator
from sim.records import TopicPartition

TARGET_STATES = (RUNNING, PAUSED, STOPPED)
ALTERED = "The offsets for this connector have been altered successfully"
RESET = "The offsets for this connector have been reset successfully"
ZOMBIES = ("either because its tasks haven't stopped completely yet or the connector was resumed "
           "before the request to {action} its offsets could be successfully completed. If the "
           "connector is in a stopped state, this operation can be safely retried. If it doesn't "
           "eventually succeed, the Connect cluster may need to be restarted to get rid of the "
           "zombie sink tasks.")
"""The end of ``Worker``'s message when the group still has members (zombie sink tasks)."""
REST_REQUEST_TIMEOUT_MS = 90_000
"""``RestServer.DEFAULT_REST_REQUEST_TIMEOUT_MS``."""


class Herder(ABC):
    """The operations behind the REST API."""

    @abstractmethod
    def connectors(self) -> list[str]: ...

    @abstractmethod
    def connector_info(self, name: str) -> dict[str, Any]: ...

    @abstractmethod
    def connector_config(self, name: str) -> dict[str, str]: ...

    @abstractmethod
    def put_connector_config(self, name: str, config: dict[str, Any], allow_replace: bool,
                             initial_state: str | None = None) -> tuple[bool, dict[str, Any]]:
        """Create or replace; returns (created, ConnectorInfo)."""

    @abstractmethod
    def patch_connector_config(self, name: str, patch: dict[str, Any]) -> dict[str, Any]: ...

    @abstractmethod
    def delete_connector_config(self, name: str) -> None: ...

    @abstractmethod
    def connector_status(self, name: str) -> dict[str, Any]: ...

    @abstractmethod
    def task_status(self, name: str, task: int) -> dict[str, Any]: ...

    @abstractmethod
    def task_configs(self, name: str) -> list[dict[str, Any]]: ...

    @abstractmethod
    def restart_connector(self, name: str) -> None: ...

    @abstractmethod
    def restart_task(self, name: str, task: int) -> None: ...

    @abstractmethod
    def restart_connector_and_tasks(self, name: str, only_failed: bool,
                                    include_tasks: bool) -> dict[str, Any]: ...

    @abstractmethod
    def pause_connector(self, name: str) -> None: ...

    @abstractmethod
    def resume_connector(self, name: str) -> None: ...

    @abstractmethod
    def stop_connector(self, name: str) -> None: ...

    @abstractmethod
    def connector_offsets(self, name: str) -> dict[str, Any]: ...

    @abstractmethod
    def alter_connector_offsets(self, name: str, offsets: list[dict[str, Any]]) -> str: ...

    @abstractmethod
    def reset_connector_offsets(self, name: str) -> str: ...

    @abstractmethod
    def connector_active_topics(self, name: str) -> dict[str, Any]: ...

    @abstractmethod
    def reset_connector_active_topics(self, name: str) -> None: ...

    @abstractmethod
    def validate_connector_config(self, config: dict[str, Any]) -> dict[str, Any]: ...

    @abstractmethod
    def connector_plugins(self, connectors_only: bool) -> list[dict[str, str]]: ...

    @abstractmethod
    def connector_plugin_config(self, plugin: str) -> list[dict[str, Any]]: ...


class StandaloneHerder(Herder):
    """One worker, configs in memory (``StandaloneHerder``)."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.kernel = worker.kernel
        self.configs: dict[str, dict[str, str]] = {}
        self.targets: dict[str, str] = {}
        self.tasks: dict[str, list[dict[str, str]]] = {}

    # -- reading --------------------------------------------------------------------------------

    def _check(self, name: str) -> None:
        if name not in self.configs:
            raise NotFoundError(f"Connector {name} not found")

    def connectors(self) -> list[str]:
        return sorted(self.configs)

    def connector_type(self, name: str) -> str:
        plugins = self.worker.plugins
        try:
            return plugins.connector_type(
                plugins.connector_full_name(self.configs[name]["connector.class"]))
        except ConnectError:
            return "unknown"

    def connector_info(self, name: str) -> dict[str, Any]:
        self._check(name)
        return {"name": name, "config": dict(self.configs[name]),
                "tasks": [{"connector": name, "task": i} for i in range(len(self.tasks[name]))],
                "type": self.connector_type(name)}

    def connector_config(self, name: str) -> dict[str, str]:
        self._check(name)
        return dict(self.configs[name])

    def connector_status(self, name: str) -> dict[str, Any]:
        self._check(name)
        connector = self.worker.connectors.get(name)
        status = connector.status if connector else Status(STOPPED, self.worker.worker_id)
        if self.targets[name] == STOPPED and status.state != FAILED:
            status = Status(STOPPED, self.worker.worker_id)
        tasks = [self.worker.tasks[(name, t)].status.as_json(t)
                 for t in self.worker.task_ids(name)]
        return {"name": name, "connector": status.as_json(), "tasks": tasks,
                "type": self.connector_type(name)}

    def task_status(self, name: str, task: int) -> dict[str, Any]:
        worker_task = self.worker.tasks.get((name, task))
        if worker_task is None:
            raise NotFoundError(f"No status found for task {name}-{task}")
        return worker_task.status.as_json(task)

    def task_configs(self, name: str) -> list[dict[str, Any]]:
        self._check(name)
        return [{"id": {"connector": name, "task": i}, "config": dict(c)}
                for i, c in enumerate(self.tasks[name])]

    # -- creating, changing, deleting ---------------------------------------------------------

    def validate_connector_config(self, config: dict[str, Any]) -> dict[str, Any]:
        return validate_connector(config, self.worker.plugins)

    def _validated(self, name: str, config: dict[str, Any], allow_replace: bool
                   ) -> dict[str, str]:
        """The config as stored, once it is valid and may be written (400 / 409 otherwise)."""
        if "name" not in config:
            config = {**config, "name": name}  # as checkAndPutConnectorConfigName does
        elif config["name"] != name:
            raise BadRequestError(f"Connector name configuration ({config['name']}) doesn't "
                                  f"match connector name in the URL ({name})")
        infos = self.validate_connector_config(config)
        if infos["error_count"]:
            raise invalid_config_error(infos)
        if name in self.configs and not allow_replace:
            raise AlreadyExistsError(f"Connector {name} already exists")
        return {k: _text(v) for k, v in config.items() if v is not None}

    def put_connector_config(self, name: str, config: dict[str, Any], allow_replace: bool,
                             initial_state: str | None = None) -> tuple[bool, dict[str, Any]]:
        props = self._validated(name, config, allow_replace)
        exists = name in self.configs
        if exists:
            self._stop_all(name)
        else:
            self.targets[name] = initial_state or RUNNING
        self.configs[name] = props
        self.tasks[name] = []
        self._start(name)
        return not exists, self.connector_info(name)

    def patch_connector_config(self, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        self._check(name)
        merged = dict(self.configs[name])
        for key, value in patch.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        return self.put_connector_config(name, merged, allow_replace=True)[1]

    def delete_connector_config(self, name: str) -> None:
        self._check(name)
        self._stop_all(name)
        del self.configs[name], self.targets[name], self.tasks[name]
        self.worker.active_topics.pop(name, None)

    def _start(self, name: str) -> None:
        """Start the connector and, unless it is STOPPED, its tasks."""
        target = self.targets[name]
        props = self.configs[name]
        if not self.worker.start_connector(name, props, target) or target == STOPPED:
            self.tasks[name] = []
            return
        self._start_tasks(name)

    def _start_tasks(self, name: str) -> None:
        props = self.configs[name]
        connector = self.worker.connectors[name]
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
            self.tasks[name] = []
            return
        self.tasks[name] = [{k: _text(v) for k, v in c.items()} for c in configs]
        for i, task_config in enumerate(self.tasks[name]):
            self.worker.start_task(name, i, task_config, props, self.targets[name])

    def _stop_tasks(self, name: str) -> None:
        for task_id in self.worker.task_ids(name):
            self.worker.stop_task(name, task_id)

    def _stop_all(self, name: str) -> None:
        self._stop_tasks(name)
        self.worker.stop_connector(name)

    # -- state changes ----------------------------------------------------------------------

    def restart_connector(self, name: str) -> None:
        self._check(name)
        if self.targets[name] == STOPPED:
            return
        self.worker.stop_connector(name)
        self.worker.start_connector(name, self.configs[name], self.targets[name])

    def restart_task(self, name: str, task: int) -> None:
        self._check(name)
        if not 0 <= task < len(self.tasks[name]):
            raise NotFoundError(f"Task {name}-{task} not found")
        self.worker.stop_task(name, task)
        self.worker.start_task(name, task, self.tasks[name][task], self.configs[name],
                               self.targets[name])

    def restart_connector_and_tasks(self, name: str, only_failed: bool,
                                    include_tasks: bool) -> dict[str, Any]:
        """KIP-745: the returned status shows what is restarted as RESTARTING."""
        if name not in self.configs:
            raise NotFoundError(f"Unknown connector: {name}")
        status = self.connector_status(name)
        restart_connector = (not only_failed or status["connector"]["state"] == FAILED) and (
            self.targets[name] != STOPPED)
        restart_tasks = [t["id"] for t in status["tasks"] if include_tasks
                         and (not only_failed or t["state"] == FAILED)]
        if restart_connector:
            status["connector"] = {"state": RESTARTING,
                                   "worker_id": status["connector"]["worker_id"]}
            self.worker.stop_connector(name)
            self.worker.start_connector(name, self.configs[name], self.targets[name])
        for i, task in enumerate(status["tasks"]):
            if task["id"] in restart_tasks:
                status["tasks"][i] = {"id": task["id"], "state": RESTARTING,
                                      "worker_id": task["worker_id"]}
                self.worker.stop_task(name, task["id"])
                self.worker.start_task(name, task["id"], self.tasks[name][task["id"]],
                                       self.configs[name], self.targets[name])
        return status

    def pause_connector(self, name: str) -> None:
        self._check(name)
        self._transition(name, PAUSED)

    def resume_connector(self, name: str) -> None:
        self._check(name)
        self._transition(name, RUNNING)

    def _transition(self, name: str, target: str) -> None:
        previous = self.targets[name]
        self.targets[name] = target
        if previous == STOPPED:
            self._stop_all(name)
            self._start(name)
            return
        connector = self.worker.connectors.get(name)
        if connector is not None and connector.status.state in (RUNNING, PAUSED):
            connector.status = Status(target, self.worker.worker_id)
        for task_id in self.worker.task_ids(name):
            self.worker.tasks[(name, task_id)].transition(target)

    def stop_connector(self, name: str) -> None:
        """KIP-875: tasks shut down and their configs emptied; the connector shows STOPPED."""
        self._check(name)
        self.targets[name] = STOPPED
        self._stop_tasks(name)
        self.tasks[name] = []

    # -- offsets (KIP-875) ------------------------------------------------------------------

    def _is_sink(self, name: str) -> bool:
        return self.connector_type(name) == "sink"

    def _group(self, name: str) -> Any:
        return group_coordinator(self.kernel).groups.get(f"connect-{name}")

    def connector_offsets(self, name: str) -> dict[str, Any]:
        self._check(name)
        if not self._is_sink(name):
            return {"offsets": self.worker.offset_store.connector_offsets(name)}
        group = self._group(name)
        stored = group.offsets if group is not None else {}
        rows = sorted((tp.topic, tp.partition, meta.offset) for tp, meta in stored.items())
        return {"offsets": [{"partition": {"kafka_topic": t, "kafka_partition": p},
                             "offset": {"kafka_offset": o}} for t, p, o in rows]}

    def _check_stopped(self, name: str) -> None:
        self._check(name)
        if self.targets[name] != STOPPED:
            raise BadRequestError(
                "Connectors must be in the STOPPED state before their offsets can be modified. "
                "This can be done for the specified connector by issuing a 'PUT' request to the "
                f"'/connectors/{name}/stop' endpoint")

    def alter_connector_offsets(self, name: str, offsets: list[dict[str, Any]]) -> str:
        self._check_stopped(name)
        if not offsets:
            raise BadRequestError("Partitions / offsets need to be provided for an alter offsets "
                                  "request")
        for entry in offsets:
            if not isinstance(entry, dict) or not isinstance(entry.get("partition"), dict) \
                    or not (entry.get("offset") is None or isinstance(entry["offset"], dict)):
                raise BadRequestError("Each offset must be an object with a \"partition\" object "
                                      "and an \"offset\" object or null.")
        if self._is_sink(name):
            self._alter_sink_offsets(name, offsets)
        else:
            self._alter_source_offsets(name, offsets)
        return ALTERED

    def _alter_source_offsets(self, name: str, offsets: list[dict[str, Any]]) -> None:
        """``Worker.modifySourceConnectorOffsets``: the connector's ``alterOffsets`` checks
        them (its ConnectError is a 500, as ConnectExceptionMapper makes it), then they are
        written to the offset store."""
        plugins = self.worker.plugins
        config = self.configs[name]
        connector = plugins.connectors[plugins.connector_full_name(config["connector.class"])]()
        connector.alter_offsets(dict(config), [(e["partition"], e.get("offset"))
                                               for e in offsets])
        self.worker.offset_store.set({offset_key(name, e["partition"]): e.get("offset")
                                      for e in offsets})

    def _alter_sink_offsets(self, name: str, offsets: list[dict[str, Any]]) -> None:
        """``SinkUtils.parseSinkConnectorOffsets``: kafka_topic, kafka_partition, kafka_offset."""
        commits: dict[TopicPartition, int] = {}
        resets: list[TopicPartition] = []
        for entry in offsets:
            partition, offset = entry["partition"], entry.get("offset")
            topic, number = partition.get("kafka_topic"), partition.get("kafka_partition")
            if not isinstance(topic, str) or not topic:
                raise BadRequestError("Kafka topic names must be valid strings and may not be "
                                      "null")
            if isinstance(number, bool) or not isinstance(number, int) or number < 0:
                raise BadRequestError("Kafka partitions must be valid numbers and may not be "
                                      "null")
            tp = TopicPartition(topic, number)
            if offset is None:
                resets.append(tp)
                continue
            value = offset.get("kafka_offset")
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise BadRequestError("Kafka offsets must be valid numbers and may not be null")
            commits[tp] = value
        self._admin_commit(name, commits, resets)

    def _admin(self, request: Any) -> Any:
        """Wait for an admin request's answer (``DEFAULT_REST_REQUEST_TIMEOUT_MS``, 90 s)."""
        self.kernel.run_until(lambda _k: request.triggered,
                              max_ms=self.kernel.now_ms + REST_REQUEST_TIMEOUT_MS)
        return request.value if request.triggered else "REQUEST_TIMED_OUT"

    def _admin_commit(self, name: str, offsets: dict[TopicPartition, int],
                      resets: list[TopicPartition]) -> None:
        """``Worker.alterSinkConnectorOffsets``: ``Admin.alterConsumerGroupOffsets`` for the new
        offsets, ``Admin.deleteConsumerGroupOffsets`` (OffsetDelete) for the null ones."""
        coordinator = group_coordinator(self.kernel)
        group_id = f"connect-{name}"
        errors = []
        if offsets:
            coordinator.group(group_id)
            errors.append(self._admin(coordinator.commit_offsets(group_id, "", None, -1,
                                                                 offsets)))
        if resets:
            error, partitions = self._admin(coordinator.delete_offsets(group_id, resets)) \
                if group_id in coordinator.groups else ("", {})
            errors += [error, *partitions.values()]
        errors = [e for e in errors if e and e != "GROUP_ID_NOT_FOUND"]
        if any(e in ("UNKNOWN_MEMBER_ID", "GROUP_SUBSCRIBED_TO_TOPIC") for e in errors):
            raise ConnectError(f"Failed to alter consumer group offsets for connector {name} "
                               + ZOMBIES.format(action="alter"))
        if errors:
            raise ConnectError(f"Failed to alter consumer group offsets for connector {name}: "
                               f"{errors[0]}")

    def reset_connector_offsets(self, name: str) -> str:
        self._check_stopped(name)
        if self._is_sink(name):
            self._admin_delete_group(name)
        else:
            self.worker.offset_store.set({
                offset_key(name, e["partition"]): None
                for e in self.worker.offset_store.connector_offsets(name)})
        return RESET

    def _admin_delete_group(self, name: str) -> None:
        """``Worker.resetSinkConnectorOffsets``: ``Admin.deleteConsumerGroups`` on the
        connector's group; a group that is already gone is fine (the reset is idempotent)."""
        error = self._admin(group_coordinator(self.kernel).delete_group(f"connect-{name}"))
        if error == "NON_EMPTY_GROUP":
            raise ConnectError(f"Failed to reset consumer group offsets for connector {name} "
                               + ZOMBIES.format(action="reset"))
        if error and error != "GROUP_ID_NOT_FOUND":
            raise ConnectError("Failed to reset consumer group offsets for sink connector "
                               f"{name}: {error}")

    # -- topics and plugins -----------------------------------------------------------------

    def connector_active_topics(self, name: str) -> dict[str, Any]:
        self._check(name)
        return {name: {"topics": sorted(self.worker.active_topics.get(name, []))}}

    def reset_connector_active_topics(self, name: str) -> None:
        self._check(name)
        self.worker.active_topics[name] = []

    def connector_plugins(self, connectors_only: bool) -> list[dict[str, str]]:
        return self.worker.plugins.plugin_infos(connectors_only)

    def connector_plugin_config(self, plugin: str) -> list[dict[str, Any]]:
        plugins = self.worker.plugins
        try:
            full = plugins.connector_full_name(plugin)
        except ConnectError:
            raise NotFoundError(f"Unknown plugin {plugin}.") from None
        return [key_info(k) for k in plugins.connectors[full]().config_def().keys.values()]


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
