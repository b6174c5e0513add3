"""Converters' exact bytes and the single message transforms.

Sources: org.apache.kafka.connect.json.JsonConverter (asJsonSchema's key order, the envelope
check's message), StringConverter, and org.apache.kafka.connect.transforms.InsertField,
ReplaceField, HoistField and TimestampRouter (config names, defaults, Requirements' messages).
"""

from __future__ import annotations

import pytest

from sim.connect.converters import JsonConverter, StringConverter
from sim.connect.data import (
    OPTIONAL_STRING_SCHEMA,
    STRING_SCHEMA,
    Schema,
    struct_schema,
)
from sim.connect.errors import DataError
from sim.connect.records import SinkRecord, SourceRecord
from sim.connect.transforms import TRANSFORMS
from sim.errors import ConfigError

USER = struct_schema("user", [("id", Schema("int32")), ("name", OPTIONAL_STRING_SCHEMA)])


def json_converter(schemas: bool = True) -> JsonConverter:
    converter = JsonConverter()
    converter.configure({"schemas.enable": "true" if schemas else "false"}, is_key=False)
    return converter


def transform(name: str, **config: str):
    t = TRANSFORMS[f"org.apache.kafka.connect.transforms.{name}"]()
    t.configure(config)
    return t


def test_json_converter_writes_the_quickstart_envelope():
    assert json_converter().from_connect_data("t", STRING_SCHEMA, "foo") == (
        b'{"schema":{"type":"string","optional":false},"payload":"foo"}')
    assert json_converter(False).from_connect_data("t", STRING_SCHEMA, "foo") == b'"foo"'


def test_json_converter_struct_schema_keys_in_kafkas_order():
    """asJsonSchema: type, fields (each with "field" last), optional, name."""
    data = json_converter().from_connect_data("t", USER, {"id": 7, "name": None})
    assert data == (b'{"schema":{"type":"struct","fields":[{"type":"int32","optional":false,'
                    b'"field":"id"},{"type":"string","optional":true,"field":"name"}],'
                    b'"optional":false,"name":"user"},"payload":{"id":7,"name":null}}')
    schema, value = json_converter().to_connect_data("t", data)
    assert (schema, value) == (USER, {"id": 7, "name": None})


def test_json_converter_rejects_a_bare_payload_with_schemas_enabled():
    with pytest.raises(DataError, match='requires "schema" and "payload" fields'):
        json_converter().to_connect_data("t", b'{"id": 1}')
    assert json_converter(False).to_connect_data("t", b'{"id": 1}') == (None, {"id": 1})
    with pytest.raises(DataError, match="Converting byte"):
        json_converter(False).to_connect_data("t", b"not json")


def test_json_converter_checks_values_against_the_schema():
    with pytest.raises(DataError, match="null used for required field"):
        json_converter().from_connect_data("t", USER, {"id": None, "name": "x"})
    with pytest.raises(DataError, match="INT32"):
        json_converter().from_connect_data("t", USER, {"id": "seven", "name": "x"})


def test_a_null_value_is_a_tombstone_both_ways():
    assert json_converter().from_connect_data("t", None, None) is None
    assert json_converter().to_connect_data("t", None) == (None, None)
    assert StringConverter().to_connect_data("t", None) == (OPTIONAL_STRING_SCHEMA, None)


def test_string_converter_is_utf8():
    assert StringConverter().from_connect_data("t", STRING_SCHEMA, "é") == "é".encode()
    assert StringConverter().to_connect_data("t", b"\xc3\xa9") == (OPTIONAL_STRING_SCHEMA, "é")


def sink_record(value, schema=USER, timestamp=1_700_000_000_000):
    return SinkRecord("orders", 2, None, None, schema, value, timestamp, (), 41)


def test_insert_field_with_a_schema_adds_optional_fields_unless_bang():
    """InsertField$Value: topic/partition/offset/timestamp/static; ``!`` makes a field required."""
    t = transform("InsertField$Value", **{"topic.field": "t!", "offset.field": "o",
                                          "timestamp.field": "ts", "static.field": "src",
                                          "static.value": "lab"})
    out = t.apply(sink_record({"id": 1, "name": "a"}))
    assert out.value == {"id": 1, "name": "a", "t": "orders", "o": 41,
                         "ts": 1_700_000_000_000, "src": "lab"}
    fields = {f.name: f.schema for f in out.value_schema.fields}
    assert fields["t"] == STRING_SCHEMA
    assert fields["o"] == Schema("int64", optional=True)
    assert fields["ts"].name == "org.apache.kafka.connect.data.Timestamp"
    assert json_converter().from_connect_data("orders", out.value_schema, out.value)


def test_insert_field_schemaless_and_its_requirements():
    t = transform("InsertField$Value", **{"partition.field": "p"})
    assert t.apply(sink_record({"a": 1}, schema=None)).value == {"a": 1, "p": 2}
    with pytest.raises(DataError, match=r"Only Struct objects supported for \[field insertion\], "
                                        "found: java.lang.String"):
        t.apply(sink_record("text", schema=STRING_SCHEMA))
    with pytest.raises(DataError, match="Only Map objects supported in absence of schema"):
        t.apply(sink_record("text", schema=None))
    assert t.apply(sink_record(None)).value is None  # tombstones pass
    offset = transform("InsertField$Value", **{"offset.field": "o"})
    source = SourceRecord("t", None, None, None, None, {"a": 1})
    with pytest.raises(DataError, match="Only SinkRecord supported"):
        offset.apply(source)


def test_replace_field_exclude_include_renames():
    """ReplaceField: exclude wins over include; renames is old:new."""
    schema = struct_schema("r", [("a", STRING_SCHEMA), ("b", STRING_SCHEMA),
                                 ("c", STRING_SCHEMA)])
    t = transform("ReplaceField$Value", include="a,b", exclude="b", renames="a:alpha")
    out = t.apply(sink_record({"a": "1", "b": "2", "c": "3"}, schema=schema))
    assert out.value == {"alpha": "1"}
    assert [f.name for f in out.value_schema.fields] == ["alpha"]
    assert t.apply(sink_record({"a": 1, "c": 3}, schema=None)).value == {"alpha": 1}
    with pytest.raises(ConfigError, match="Invalid rename mapping: a"):
        transform("ReplaceField$Value", renames="a")


def test_hoist_field_wraps_a_value():
    """HoistField$Value(field=line) turns "foo" into a struct {line: "foo"}."""
    out = transform("HoistField$Value", field="line").apply(sink_record("foo", STRING_SCHEMA))
    assert out.value == {"line": "foo"}
    assert out.value_schema.fields[0].name == "line"


def test_timestamp_router_defaults_and_formats():
    """TimestampRouter: topic.format ${topic}-${timestamp}, timestamp.format yyyyMMdd (UTC)."""
    record = sink_record({"id": 1, "name": None}, timestamp=1_704_164_645_123)  # 2024-01-02
    assert transform("TimestampRouter").apply(record).topic == "orders-20240102"
    custom = transform("TimestampRouter", **{"topic.format": "${timestamp}_${topic}",
                                             "timestamp.format": "yyyy-MM-dd'T'HH.mm.ss.SSS"})
    assert custom.apply(record).topic == "2024-01-02T03.04.05.123_orders"
    with pytest.raises(DataError, match="Timestamp missing on record"):
        transform("TimestampRouter").apply(sink_record({"id": 1}, timestamp=None))
