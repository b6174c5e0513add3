"""Connect's data model: ``Schema`` (``org.apache.kafka.connect.data``) with struct values.

A struct value is a plain ``dict`` in field order; its schema says the field names and types.
Logical types (``Timestamp``) are an INT64 schema with a name and version, as in Kafka.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sim.connect.errors import DataError

PRIMITIVES = ("int8", "int16", "int32", "int64", "float32", "float64", "boolean", "string",
              "bytes")
TIMESTAMP_NAME = "org.apache.kafka.connect.data.Timestamp"


@dataclass(frozen=True)
class Field:
    """One field of a struct schema."""

    name: str
    schema: Schema


@dataclass(frozen=True)
class Schema:
    """A Connect schema: its type, whether it is optional, a name, and struct fields."""

    type: str
    optional: bool = False
    name: str | None = None
    version: int | None = None
    fields: tuple[Field, ...] = field(default_factory=tuple)

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)

    def as_optional(self) -> Schema:
        return Schema(self.type, True, self.name, self.version, self.fields)


STRING_SCHEMA = Schema("string")
OPTIONAL_STRING_SCHEMA = Schema("string", optional=True)
INT32_SCHEMA = Schema("int32")
INT64_SCHEMA = Schema("int64")
OPTIONAL_INT32_SCHEMA = Schema("int32", optional=True)
OPTIONAL_INT64_SCHEMA = Schema("int64", optional=True)
TIMESTAMP_SCHEMA = Schema("int64", name=TIMESTAMP_NAME, version=1)
OPTIONAL_TIMESTAMP_SCHEMA = Schema("int64", optional=True, name=TIMESTAMP_NAME, version=1)


def struct_schema(name: str | None, fields: list[tuple[str, Schema]],
                  optional: bool = False) -> Schema:
    """A STRUCT schema with ``fields`` in order."""
    return Schema("struct", optional, name, None, tuple(Field(n, s) for n, s in fields))


def check_value(schema: Schema, value: Any, where: str = "value") -> None:
    """Raise ``DataError`` if ``value`` does not fit ``schema`` (``ConnectSchema.validateValue``).
    """
    if value is None:
        if not schema.optional:
            raise DataError(f"Invalid value: null used for required field: \"{where}\", "
                            f"schema type: {schema.type.upper()}")
        return
    expected: dict[str, tuple[type, ...]] = {
        "int8": (int,), "int16": (int,), "int32": (int,), "int64": (int,),
        "float32": (float, int), "float64": (float, int), "boolean": (bool,),
        "string": (str,), "bytes": (bytes,), "struct": (dict,), "array": (list,),
        "map": (dict,)}
    ok = isinstance(value, expected.get(schema.type, (object,)))
    if ok and schema.type.startswith("int") and isinstance(value, bool):
        ok = False
    if not ok:
        raise DataError(f"Invalid Java object for schema with type {schema.type.upper()}: "
                        f"{type(value).__name__} for field: \"{where}\"")
    if schema.type == "struct":
        for f in schema.fields:
            check_value(f.schema, value.get(f.name), f.name)
