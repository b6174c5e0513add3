"""A data-generator source for lessons (after Confluent's ``DatagenConnector``).

``quickstart`` users / pageviews / orders makes one record at a time, the next after a random
wait of up to ``max.interval`` ms, ``iterations`` records in all. Randomness comes from the
kernel (the task's ``context.rng``), so a run is reproducible.
"""

from __future__ import annotations

from typing import Any

from sim.connect.api import SourceConnector, SourceTask, Task
from sim.connect.config_def import NO_DEFAULT, ConfigDef, at_least, one_of
from sim.connect.data import INT64_SCHEMA, STRING_SCHEMA, Schema, struct_schema
from sim.connect.records import SourceRecord

REGIONS = ("Region_1", "Region_2", "Region_3", "Region_4", "Region_5", "Region_6",
           "Region_7", "Region_8", "Region_9")
GENDERS = ("MALE", "FEMALE", "OTHER")


class DatagenConnector(SourceConnector):
    """Generates ``quickstart`` records into ``kafka.topic``."""

    class_name = "io.confluent.kafka.connect.datagen.DatagenConnector"

    def config_def(self) -> ConfigDef:
        return (ConfigDef()
                .define("kafka.topic", "STRING", NO_DEFAULT, "HIGH", "Topic to write to")
                .define("max.interval", "LONG", 500, "LOW",
                        "Max interval between messages (ms)", validator=at_least(0))
                .define("iterations", "INT", 1_000_000, "LOW", "Number of messages to send "
                        "from each task, or less than 1 for unlimited")
                .define("quickstart", "STRING", "users", "HIGH", "Name of quickstart to use",
                        validator=one_of("users", "pageviews", "orders")))

    def start(self, props: dict[str, str]) -> None:
        self.props = dict(props)
        self.config_def().parse(props)

    def task_class(self) -> type[Task]:
        return DatagenTask

    def task_configs(self, max_tasks: int) -> list[dict[str, str]]:
        return [{**self.props, "task.id": str(i)} for i in range(max_tasks)]


def _schema(quickstart: str) -> Schema:
    fields = {"users": [("registertime", INT64_SCHEMA), ("userid", STRING_SCHEMA),
                        ("regionid", STRING_SCHEMA), ("gender", STRING_SCHEMA)],
              "pageviews": [("viewtime", INT64_SCHEMA), ("userid", STRING_SCHEMA),
                            ("pageid", STRING_SCHEMA)],
              "orders": [("ordertime", INT64_SCHEMA), ("orderid", INT64_SCHEMA),
                         ("itemid", STRING_SCHEMA), ("orderunits", Schema("float64"))]}
    return struct_schema(f"ksql.{quickstart}", fields[quickstart])


class DatagenTask(SourceTask):
    """One record per poll, when its time has come."""

    def start(self, props: dict[str, str]) -> None:
        self.config = DatagenConnector().config_def().parse(props)
        self.task_id = int(props.get("task.id", "0"))
        self.partition = {"task.id": self.task_id}
        stored = self.context.offset(self.partition) or {}
        self.count = int(stored.get("current.iteration", 0))
        self.schema = _schema(self.config["quickstart"])
        self.next_ms = 0.0

    def _value(self, now: int) -> tuple[str, dict[str, Any]]:
        rng = self.context.rng
        user = f"User_{int(rng.integers(1, 10))}"
        kind = self.config["quickstart"]
        if kind == "users":
            return user, {"registertime": now, "userid": user,
                          "regionid": REGIONS[int(rng.integers(len(REGIONS)))],
                          "gender": GENDERS[int(rng.integers(len(GENDERS)))]}
        if kind == "pageviews":
            page = f"Page_{int(rng.integers(1, 100))}"
            return page, {"viewtime": now, "userid": user, "pageid": page}
        return str(self.count), {"ordertime": now, "orderid": self.count,
                                 "itemid": f"Item_{int(rng.integers(1, 1000))}",
                                 "orderunits": round(float(rng.uniform(0, 10)), 2)}

    def poll(self) -> list[SourceRecord] | None:
        limit = self.config["iterations"]
        if 0 < limit <= self.count:
            self.idle_ms = 60_000.0
            return None
        now = self.context.time_ms()
        if now < self.next_ms:
            self.idle_ms = self.next_ms - now
            return None
        key, value = self._value(int(now))
        self.count += 1
        self.next_ms = now + float(self.context.rng.uniform(0, self.config["max.interval"]))
        self.idle_ms = max(1.0, self.next_ms - now)
        return [SourceRecord(self.config["kafka.topic"], None, STRING_SCHEMA, key, self.schema,
                             value, int(now), (), self.partition,
                             {"task.id": self.task_id, "current.iteration": self.count})]
