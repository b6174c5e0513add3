"""Single message transforms: InsertField, ReplaceField, HoistField and TimestampRouter.

Each is configured from ``transforms.<alias>.*`` with Kafka's config names and applied in the
order ``transforms`` lists them. ``$Key`` / ``$Value`` variants work on the key or the value,
with a schema (struct) or without (a map), as in ``org.apache.kafka.connect.transforms``.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from sim.connect.config_def import NO_DEFAULT, ConfigDef
from sim.connect.data import (
    INT32_SCHEMA,
    INT64_SCHEMA,
    OPTIONAL_INT32_SCHEMA,
    OPTIONAL_INT64_SCHEMA,
    OPTIONAL_STRING_SCHEMA,
    OPTIONAL_TIMESTAMP_SCHEMA,
    STRING_SCHEMA,
    TIMESTAMP_SCHEMA,
    Field,
    Schema,
)
from sim.connect.errors import DataError
from sim.connect.records import ConnectRecord, SinkRecord

PACKAGE = "org.apache.kafka.connect.transforms"


class Transformation:
    """``org.apache.kafka.connect.transforms.Transformation``."""

    class_name = ""

    def config_def(self) -> ConfigDef:
        return ConfigDef()

    def configure(self, props: dict[str, Any]) -> None:
        self.config = self.config_def().parse(props)

    def apply(self, record: ConnectRecord) -> ConnectRecord | None:
        raise NotImplementedError


class _KeyOrValue(Transformation):
    """Reads and writes the key (``$Key``) or the value (``$Value``)."""

    is_key = False

    def operating(self, record: ConnectRecord) -> tuple[Schema | None, Any]:
        return ((record.key_schema, record.key) if self.is_key
                else (record.value_schema, record.value))

    def updated(self, record: ConnectRecord, schema: Schema | None, value: Any) -> ConnectRecord:
        if self.is_key:
            return record.new_record(key_schema=schema, key=value)
        return record.new_record(value_schema=schema, value=value)


def _require_struct_or_map(schema: Schema | None, value: Any, purpose: str) -> None:
    """``Requirements.requireStruct`` / ``requireMap``."""
    if schema is None:
        if not isinstance(value, dict):
            raise DataError(f"Only Map objects supported in absence of schema for [{purpose}], "
                            f"found: {_java_type(value)}")
    elif schema.type != "struct" or not isinstance(value, dict):
        raise DataError(f"Only Struct objects supported for [{purpose}], found: "
                        f"{_java_type(value)}")


def _java_type(value: Any) -> str:
    names = {str: "java.lang.String", int: "java.lang.Long", float: "java.lang.Double",
             bool: "java.lang.Boolean", bytes: "[B", list: "java.util.ArrayList"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _field_spec(spec: str | None) -> tuple[str, bool] | None:
    """``InsertField``'s ``name!`` (required) / ``name?`` or ``name`` (optional)."""
    if not spec:
        return None
    if spec.endswith("!"):
        return spec[:-1], False
    return spec.removesuffix("?"), True


class InsertField(_KeyOrValue):
    """Insert the record's topic, partition, offset, timestamp or a static value as fields."""

    PURPOSE = "field insertion"

    def config_def(self) -> ConfigDef:
        doc = ("Field name for {}. Suffix with ! to make this a required field, or ? to keep it "
               "optional (the default).")
        d = ConfigDef()
        for name, what in (("topic.field", "Kafka topic"), ("partition.field", "Kafka partition"),
                           ("offset.field", "Kafka offset - only applicable to sink connectors"),
                           ("timestamp.field", "record timestamp"),
                           ("static.field", "static data field")):
            d.define(name, "STRING", None, "MEDIUM", doc.format(what))
        d.define("static.value", "STRING", None, "MEDIUM", "Static field value, if field name "
                 "configured.")
        d.define("replace.null.with.default", "BOOLEAN", True, "MEDIUM",
                 "Whether to replace fields that have a default value and that are null.")
        return d

    def configure(self, props: dict[str, Any]) -> None:
        super().configure(props)
        c = self.config
        self.fields = {name: _field_spec(c[f"{name}.field"])
                       for name in ("topic", "partition", "offset", "timestamp", "static")}
        if all(spec is None for spec in self.fields.values()):
            raise DataError("No field insertion configured")
        if self.fields["static"] is not None and c["static.value"] is None:
            raise DataError("No value specified for static field: "
                            f"{c['static.field']}")

    def _values(self, record: ConnectRecord) -> dict[str, Any]:
        values: dict[str, Any] = {}
        if self.fields["topic"]:
            values["topic"] = record.topic
        if self.fields["partition"]:
            values["partition"] = record.kafka_partition
        if self.fields["offset"]:
            if not isinstance(record, SinkRecord):
                raise DataError(f"Only SinkRecord supported for [{self.PURPOSE}], found: "
                                f"{type(record).__name__}")
            values["offset"] = record.kafka_offset
        if self.fields["timestamp"]:
            values["timestamp"] = record.timestamp
        if self.fields["static"]:
            values["static"] = self.config["static.value"]
        return values

    def apply(self, record: ConnectRecord) -> ConnectRecord:
        schema, value = self.operating(record)
        if value is None:
            return record  # a tombstone passes through (KAFKA-8523)
        _require_struct_or_map(schema, value, self.PURPOSE)
        values = self._values(record)
        out = dict(value)
        for kind, field_value in values.items():
            out[self.fields[kind][0]] = field_value  # type: ignore[index]
        if schema is None:
            return self.updated(record, None, out)
        kinds = {"topic": (STRING_SCHEMA, OPTIONAL_STRING_SCHEMA),
                 "partition": (INT32_SCHEMA, OPTIONAL_INT32_SCHEMA),
                 "offset": (INT64_SCHEMA, OPTIONAL_INT64_SCHEMA),
                 "timestamp": (TIMESTAMP_SCHEMA, OPTIONAL_TIMESTAMP_SCHEMA),
                 "static": (STRING_SCHEMA, OPTIONAL_STRING_SCHEMA)}
        fields = list(schema.fields)
        for kind in values:
            name, optional = self.fields[kind]  # type: ignore[misc]
            fields.append(Field(name, kinds[kind][1 if optional else 0]))
        new_schema = Schema("struct", schema.optional, schema.name, schema.version, tuple(fields))
        return self.updated(record, new_schema, out)


class ReplaceField(_KeyOrValue):
    """Keep (``include``), drop (``exclude``) and rename (``renames``, ``old:new``) fields."""

    PURPOSE = "field replacement"

    def config_def(self) -> ConfigDef:
        return (ConfigDef()
                .define("exclude", "LIST", "", "MEDIUM", "Fields to exclude. This takes "
                        "precedence over the fields to include.")
                .define("include", "LIST", "", "MEDIUM", "Fields to include. If specified, "
                        "only these fields will be used.")
                .define("renames", "LIST", "", "MEDIUM", "Field rename mappings.",
                        validator=_check_renames)
                .define("replace.null.with.default", "BOOLEAN", True, "MEDIUM",
                        "Whether to replace fields that have a default value and that are null."))

    def configure(self, props: dict[str, Any]) -> None:
        super().configure(props)
        self.exclude = set(self.config["exclude"])
        self.include = set(self.config["include"])
        self.renames = dict(item.split(":", 1) for item in self.config["renames"])

    def _keep(self, name: str) -> bool:
        return name not in self.exclude and (not self.include or name in self.include)

    def apply(self, record: ConnectRecord) -> ConnectRecord:
        schema, value = self.operating(record)
        if value is None:
            return record
        _require_struct_or_map(schema, value, self.PURPOSE)
        if schema is None:
            out = {self.renames.get(k, k): v for k, v in value.items() if self._keep(k)}
            return self.updated(record, None, out)
        fields = tuple(Field(self.renames.get(f.name, f.name), f.schema)
                       for f in schema.fields if self._keep(f.name))
        out = {self.renames.get(f.name, f.name): value.get(f.name)
               for f in schema.fields if self._keep(f.name)}
        new_schema = Schema("struct", schema.optional, schema.name, schema.version, fields)
        return self.updated(record, new_schema, out)


def _check_renames(name: str, value: Any) -> None:
    for item in value or []:
        parts = item.split(":")
        if len(parts) != 2 or not all(parts):
            from sim.errors import ConfigError
            raise ConfigError(f"Invalid value {value} for configuration {name}: Invalid rename "
                              f"mapping: {item}")


class HoistField(_KeyOrValue):
    """Wrap the key or value in a struct (or a map, without a schema) with one ``field``."""

    def config_def(self) -> ConfigDef:
        return ConfigDef().define("field", "STRING", NO_DEFAULT, "MEDIUM", "Field name for the "
                                  "single field that will be created in the resulting Struct or "
                                  "Map.")

    def apply(self, record: ConnectRecord) -> ConnectRecord:
        schema, value = self.operating(record)
        name = self.config["field"]
        if schema is None:
            return self.updated(record, None, {name: value})
        return self.updated(record, Schema("struct", fields=(Field(name, schema),)),
                            {name: value})


_JAVA_DATE = {"yyyy": "%Y", "yy": "%y", "MM": "%m", "dd": "%d", "HH": "%H", "mm": "%M",
              "ss": "%S", "SSS": "%f"}


def java_date_format(pattern: str) -> str:
    """A ``SimpleDateFormat`` pattern (the common letters) as a ``strftime`` format."""
    out = []
    for token in re.findall(r"yyyy|yy|MM|dd|HH|mm|ss|SSS|'[^']*'|.", pattern):
        if token.startswith("'"):
            out.append(token.strip("'").replace("%", "%%"))
        else:
            out.append(_JAVA_DATE.get(token, token.replace("%", "%%")))
    return "".join(out)


class TimestampRouter(Transformation):
    """Route a record to ``topic.format`` with ``${topic}`` and ``${timestamp}`` (UTC)."""

    class_name = f"{PACKAGE}.TimestampRouter"

    def config_def(self) -> ConfigDef:
        return (ConfigDef()
                .define("topic.format", "STRING", "${topic}-${timestamp}", "HIGH",
                        "Format string which can contain ${topic} and ${timestamp} as a "
                        "placeholder for the topic and timestamp, respectively.")
                .define("timestamp.format", "STRING", "yyyyMMdd", "HIGH",
                        "Format string for the timestamp that is compatible with "
                        "java.text.SimpleDateFormat."))

    def apply(self, record: ConnectRecord) -> ConnectRecord:
        if record.timestamp is None:
            raise DataError(f"Timestamp missing on record: {record}")
        when = dt.datetime.fromtimestamp(record.timestamp / 1000, tz=dt.UTC)
        stamp = when.strftime(java_date_format(self.config["timestamp.format"]))
        if "%f" in java_date_format(self.config["timestamp.format"]):
            stamp = stamp.replace(when.strftime("%f"), f"{when.microsecond // 1000:03d}")
        topic = (self.config["topic.format"].replace("${topic}", record.topic)
                 .replace("${timestamp}", stamp))
        return record.new_record(topic=topic)


def _variant(base: type[_KeyOrValue], is_key: bool) -> type[_KeyOrValue]:
    suffix = "Key" if is_key else "Value"
    return type(f"{base.__name__}${suffix}", (base,),
                {"is_key": is_key, "class_name": f"{PACKAGE}.{base.__name__}${suffix}",
                 "__doc__": base.__doc__})


TRANSFORMS: dict[str, type[Transformation]] = {
    cls.class_name: cls for cls in (
        _variant(InsertField, True), _variant(InsertField, False),
        _variant(ReplaceField, True), _variant(ReplaceField, False),
        _variant(HoistField, True), _variant(HoistField, False), TimestampRouter)}
"""The built-in transformations by full class name."""
