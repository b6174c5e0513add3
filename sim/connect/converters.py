"""Converters between Connect data and the bytes in Kafka: ``StringConverter``, ``JsonConverter``.

``JsonConverter`` with ``schemas.enable=true`` (Kafka's default) writes the envelope
``{"schema":…,"payload":…}`` in Jackson's compact form, the schema's keys in
``JsonConverter.asJsonSchema``'s order (type, fields, optional, name, version); with ``false``
it writes the bare payload and reads plain JSON without a schema.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from sim.connect.config_def import ConfigDef, parse_type
from sim.connect.data import OPTIONAL_STRING_SCHEMA, Field, Schema, check_value
from sim.connect.errors import DataError

ENVELOPE_ERROR = ("JsonConverter with schemas.enable requires \"schema\" and \"payload\" fields "
                  "and may not contain additional fields. If you are trying to deserialize plain "
                  "JSON data, set schemas.enable=false in your converter configuration.")


class Converter:
    """``org.apache.kafka.connect.storage.Converter``."""

    class_name = ""

    def configure(self, configs: dict[str, Any], is_key: bool) -> None:
        """Configure from the ``key.converter.*`` / ``value.converter.*`` settings."""

    def from_connect_data(self, topic: str, schema: Schema | None, value: Any) -> bytes | None:
        raise NotImplementedError

    def to_connect_data(self, topic: str, data: bytes | None) -> tuple[Schema | None, Any]:
        raise NotImplementedError

    def config_def(self) -> ConfigDef:
        return ConfigDef()


class StringConverter(Converter):
    """``org.apache.kafka.connect.storage.StringConverter``: UTF-8, an optional string schema."""

    class_name = "org.apache.kafka.connect.storage.StringConverter"

    def from_connect_data(self, topic: str, schema: Schema | None, value: Any) -> bytes | None:
        return None if value is None else str(value).encode("utf-8")

    def to_connect_data(self, topic: str, data: bytes | None) -> tuple[Schema | None, Any]:
        return OPTIONAL_STRING_SCHEMA, None if data is None else data.decode("utf-8")


class JsonConverter(Converter):
    """``org.apache.kafka.connect.json.JsonConverter``."""

    class_name = "org.apache.kafka.connect.json.JsonConverter"

    def __init__(self) -> None:
        self.schemas_enable = True

    def config_def(self) -> ConfigDef:
        return ConfigDef().define("schemas.enable", "BOOLEAN", True, "HIGH",
                                  "Include schemas within each of the serialized values and keys.")

    def configure(self, configs: dict[str, Any], is_key: bool) -> None:
        self.schemas_enable = parse_type("schemas.enable", configs.get("schemas.enable", True),
                                         "BOOLEAN")

    def from_connect_data(self, topic: str, schema: Schema | None, value: Any) -> bytes | None:
        if schema is None and value is None:
            return None
        if schema is not None:
            check_value(schema, value)
        payload = _to_json(schema, value)
        out = {"schema": schema_to_json(schema), "payload": payload} if self.schemas_enable \
            else payload
        return json.dumps(out, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

    def to_connect_data(self, topic: str, data: bytes | None) -> tuple[Schema | None, Any]:
        if data is None:
            return None, None
        try:
            parsed = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DataError("Converting byte[] to Kafka Connect data failed due to "
                            f"serialization error: {exc}") from None
        if not self.schemas_enable:
            return None, parsed
        if not (isinstance(parsed, dict) and set(parsed) == {"schema", "payload"}):
            raise DataError(ENVELOPE_ERROR)
        schema = schema_from_json(parsed["schema"])
        return schema, _from_json(schema, parsed["payload"])


def schema_to_json(schema: Schema | None) -> dict[str, Any] | None:
    """``JsonConverter.asJsonSchema``."""
    if schema is None:
        return None
    out: dict[str, Any] = {"type": schema.type}
    if schema.type == "struct":
        out["fields"] = [{**schema_to_json(f.schema), "field": f.name}  # type: ignore[dict-item]
                         for f in schema.fields]
    out["optional"] = schema.optional
    if schema.name is not None:
        out["name"] = schema.name
    if schema.version is not None:
        out["version"] = schema.version
    return out


def schema_from_json(node: Any) -> Schema | None:
    """``JsonConverter.asConnectSchema``."""
    if node is None:
        return None
    if not isinstance(node, dict) or not isinstance(node.get("type"), str):
        raise DataError("Schema must contain 'type' field")
    fields: tuple[Field, ...] = ()
    if node["type"] == "struct":
        raw = node.get("fields")
        if not isinstance(raw, list):
            raise DataError("Struct schema's \"fields\" argument is not an array.")
        fields = tuple(Field(str(f.get("field")), schema_from_json(f))  # type: ignore[arg-type]
                       for f in raw)
    return Schema(node["type"], bool(node.get("optional", False)), node.get("name"),
                  node.get("version"), fields)


def _to_json(schema: Schema | None, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dict):
        if schema is not None and schema.type == "struct":
            return {f.name: _to_json(f.schema, value.get(f.name)) for f in schema.fields}
        return {str(k): _to_json(None, v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_json(None, v) for v in value]
    return value


def _from_json(schema: Schema | None, value: Any) -> Any:
    if value is None or schema is None:
        return value
    if schema.type == "bytes":
        return base64.b64decode(value)
    if schema.type == "struct":
        if not isinstance(value, dict):
            raise DataError("Struct payload must be a JSON object")
        return {f.name: _from_json(f.schema, value.get(f.name)) for f in schema.fields}
    check_value(schema, value)
    return value
