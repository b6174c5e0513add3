"""Specification of the config tables: Kafka 4.0's defaults, validation and error messages.

Defaults are pinned to Kafka's own definitions (``ProducerConfig`` and ``TopicConfig`` with
``LogConfig``, Kafka 4.0; the team's reference sheet, sections 2.5, 3.2, 3.3 and 7.1). Parsing
follows Kafka's ``ConfigDef.parseType``: strings are accepted where Kafka parses them ("10" for
an INT, "true" for a BOOLEAN), other types are not.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim import config
from sim.broker.transaction_coordinator import TRANSACTION_COORDINATOR
from sim.config import BROKER, KAFKA_VERSION, PRODUCER, TOPIC, ConfigDef
from sim.consumer.config import CONSUMER, GROUP_COORDINATOR
from sim.errors import ConfigError
from sim.streams.config import STREAMS

# --- Defaults ------------------------------------------------------------------------------------

# org.apache.kafka.clients.producer.ProducerConfig (4.0); linger.ms 0 → 5 is KIP-1030.
PRODUCER_DEFAULTS = [
    ("batch.size", 16384),
    ("linger.ms", 5),
    ("acks", "all"),
    ("enable.idempotence", True),
    ("max.in.flight.requests.per.connection", 5),
    ("retries", 2147483647),
    ("delivery.timeout.ms", 120000),
    ("request.timeout.ms", 30000),
    ("retry.backoff.ms", 100),
    ("max.request.size", 1048576),
    ("buffer.memory", 33554432),
    ("compression.type", "none"),
    ("partitioner.class", None),
    ("partitioner.adaptive.partitioning.enable", True),
    ("partitioner.availability.timeout.ms", 0),
    ("partitioner.ignore.keys", False),
]

# org.apache.kafka.common.config.TopicConfig with the defaults of LogConfig / ServerLogConfigs.
TOPIC_DEFAULTS = [
    ("min.insync.replicas", 1),
    ("unclean.leader.election.enable", False),
    ("segment.bytes", 1073741824),
    ("retention.ms", 604800000),
    ("retention.bytes", -1),
    ("cleanup.policy", "delete"),
]


def test_models_kafka_4_0() -> None:
    """The tables describe Apache Kafka 4.0."""
    assert KAFKA_VERSION == "4.0"


@pytest.mark.parametrize(("name", "default"), PRODUCER_DEFAULTS)
def test_producer_defaults_are_kafka_4_0(name: str, default: Any) -> None:
    """Each producer config defaults to Kafka 4.0's value, with Kafka's type."""
    value = PRODUCER.defaults()[name]
    assert value == default
    assert type(value) is type(default)


@pytest.mark.parametrize(("name", "default"), TOPIC_DEFAULTS)
def test_topic_defaults_are_kafka_4_0(name: str, default: Any) -> None:
    """Each topic config defaults to Kafka 4.0's value, with Kafka's type."""
    value = TOPIC.defaults()[name]
    assert value == default
    assert type(value) is type(default)


def test_parse_without_values_gives_the_defaults() -> None:
    """Parsing nothing (None or {}) yields exactly the defaults."""
    assert PRODUCER.parse(None) == PRODUCER.defaults()
    assert TOPIC.parse({}) == TOPIC.defaults()


def test_parse_overlays_values_on_the_defaults() -> None:
    """A given value replaces its default and leaves every other default alone."""
    parsed = PRODUCER.parse({"linger.ms": 20})
    assert parsed["linger.ms"] == 20
    assert {k: v for k, v in parsed.items() if k != "linger.ms"} == {
        k: v for k, v in PRODUCER.defaults().items() if k != "linger.ms"
    }


def test_parsed_configs_do_not_share_state() -> None:
    """Changing one parsed config dict never changes the defaults or another parse."""
    first = PRODUCER.parse(None)
    first["batch.size"] = 1
    assert PRODUCER.defaults()["batch.size"] == 16384
    assert PRODUCER.parse(None)["batch.size"] == 16384


@pytest.mark.parametrize("table", [PRODUCER, TOPIC, BROKER], ids=lambda t: t.kind)
def test_every_default_passes_its_own_validation(table: ConfigDef) -> None:
    """Each row's default is a value its own type and validator accept, unchanged."""
    for key in table:
        assert key.parse(key.default, table.kind) == key.default, key.name


@pytest.mark.parametrize("table", [PRODUCER, TOPIC, BROKER], ids=lambda t: t.kind)
def test_every_row_is_documented_and_grouped(table: ConfigDef) -> None:
    """Each row has a doc (used in errors) and a group (used by widgets and docs tables)."""
    for key in table:
        assert key.doc.strip(), key.name
        assert key.group.strip(), key.name


def test_config_names_are_unique_per_table() -> None:
    """No table defines the same config name twice."""
    for table in (PRODUCER, TOPIC, BROKER):
        names = [key.name for key in table]
        assert len(names) == len(set(names)), table.kind


# --- Unknown names -------------------------------------------------------------------------------


def test_unknown_name_suggests_the_close_match() -> None:
    """A misspelt name is rejected, named, and the intended config suggested."""
    with pytest.raises(ConfigError) as info:
        PRODUCER.parse({"linger.msx": 5})
    message = str(info.value)
    assert "'linger.msx'" in message
    assert "Did you mean linger.ms" in message
    assert "producer" in message


def test_unknown_topic_config_names_the_topic_table() -> None:
    """A misspelt topic config suggests the topic config, not a producer one."""
    with pytest.raises(ConfigError) as info:
        TOPIC.parse({"retention.msec": 1000})
    assert "Unknown topic config 'retention.msec'" in str(info.value)
    assert "Did you mean retention.ms" in str(info.value)


def test_unknown_name_with_no_close_match_lists_the_known_names() -> None:
    """With nothing close, the error lists every known name instead of guessing."""
    with pytest.raises(ConfigError) as info:
        TOPIC.parse({"zzz": 1})
    message = str(info.value)
    assert "Did you mean" not in message
    assert all(key.name in message for key in TOPIC)


def test_config_error_is_a_value_error() -> None:
    """Callers that catch ValueError also catch config errors (as Kafka's ConfigException)."""
    with pytest.raises(ValueError, match=r"linger\.ms"):
        PRODUCER.parse({"linger.ms": -1})


# --- Bad values ----------------------------------------------------------------------------------

# (table, name, bad value, phrase of what is allowed)
BAD_VALUES = [
    (PRODUCER, "linger.ms", -5, "at least 0"),
    (PRODUCER, "acks", "2", "'all', '-1', '0', '1'"),
    (PRODUCER, "acks", True, "expected str"),
    (PRODUCER, "batch.size", "abc", "expected int"),
    (PRODUCER, "batch.size", True, "expected int"),
    (PRODUCER, "batch.size", -1, "at least 0"),
    (PRODUCER, "batch.size", 10.5, "expected int"),
    (PRODUCER, "linger.ms", False, "expected int"),
    # ProducerConfig: linger.ms is Type.LONG, so a fraction of a millisecond is refused
    (PRODUCER, "linger.ms", 0.5, "expected int"),
    (PRODUCER, "linger.ms", "2.5", "expected int"),
    (PRODUCER, "enable.idempotence", "yes", "expected bool"),
    (PRODUCER, "enable.idempotence", 1, "expected bool"),
    (PRODUCER, "max.in.flight.requests.per.connection", 0, "at least 1"),
    (PRODUCER, "compression.type", "brotli", "'gzip'"),
    (PRODUCER, "partitioner.availability.timeout.ms", -1, "at least 0"),
    (PRODUCER, "linger.ms", None, "expected int"),
    (PRODUCER, "lab.clock.skew.ms", 10**30, "between -1000000000000 and 1000000000000"),
    (TOPIC, "min.insync.replicas", 0, "at least 1"),
    (TOPIC, "retention.ms", -2, "at least -1"),
    (TOPIC, "cleanup.policy", "archive", "'delete', 'compact'"),
    (TOPIC, "unclean.leader.election.enable", "maybe", "expected bool"),
]


@pytest.mark.parametrize(("table", "name", "value", "allowed"), BAD_VALUES,
                         ids=[f"{n}={v!r}" for _, n, v, _ in BAD_VALUES])
def test_bad_value_names_config_value_and_what_is_allowed(
    table: ConfigDef, name: str, value: Any, allowed: str
) -> None:
    """A bad value raises ConfigError naming the config, the value and what is allowed."""
    with pytest.raises(ConfigError) as info:
        table.parse({name: value})
    message = str(info.value)
    assert f"configuration {name}" in message
    assert f"Invalid value {value!r}" in message
    assert allowed in message
    assert f"{table.kind} config" in message


def test_non_integer_string_for_an_int_config_is_rejected() -> None:
    """'10.5' is not an INT, as Integer.parseInt says in Kafka's ConfigDef.parseType."""
    with pytest.raises(ConfigError, match=r"batch\.size"):
        PRODUCER.parse({"batch.size": "10.5"})


# --- String forms (ConfigDef.parseType: trim, then parse) ----------------------------------------

STRING_FORMS = [
    ("linger.ms", "10", 10),
    ("batch.size", "32768", 32768),
    ("batch.size", " 100 ", 100),  # Kafka trims before parsing
    ("retries", "0", 0),
    ("enable.idempotence", "true", True),
    ("enable.idempotence", "FALSE", False),  # Kafka: equalsIgnoreCase
    ("partitioner.ignore.keys", "True", True),
    ("acks", "-1", "-1"),
    ("acks", "0", "0"),
]


@pytest.mark.parametrize(("name", "text", "expected"), STRING_FORMS)
def test_string_forms_are_parsed_as_kafka_does(name: str, text: str, expected: Any) -> None:
    """A string is accepted where Kafka parses one, and becomes the config's type."""
    value = PRODUCER.parse({name: text})[name]
    assert value == expected
    assert type(value) is type(expected)


def test_integral_float_is_accepted_for_an_int_config() -> None:
    """YAML may give 100.0 for an int config; it becomes the int 100."""
    value = PRODUCER.parse({"batch.size": 100.0})["batch.size"]
    assert value == 100
    assert type(value) is int


@given(st.integers(min_value=0, max_value=2**31 - 1))
def test_an_int_and_its_decimal_string_parse_alike(n: int) -> None:
    """For any allowed size, the number and its decimal text give the same int."""
    assert PRODUCER.parse({"batch.size": str(n)}) == PRODUCER.parse({"batch.size": n})


@given(st.integers(min_value=2**53, max_value=2**63 - 1))
def test_a_long_as_text_is_read_exactly(n: int) -> None:
    """Long.parseLong reads every digit of a LONG config (LogConfig's retention.ms); going
    through a float rounded past 2**53 (text 9007199254740993 became 9007199254740992)."""
    assert TOPIC.parse({"retention.ms": str(n)})["retention.ms"] == n


@pytest.mark.parametrize(("table", "name"), [(PRODUCER, "buffer.memory"), (PRODUCER, "linger.ms"),
                                             (TOPIC, "retention.ms")])
@pytest.mark.parametrize("value", [2**63, 10**30, "99999999999999999999"])
def test_a_number_wider_than_a_java_long_is_refused(table: ConfigDef, name: str,
                                                    value: Any) -> None:
    """No Kafka config holds more than a LONG (ConfigDef's parseType refuses the rest); these
    were accepted and run with."""
    with pytest.raises(ConfigError, match=rf"configuration {name}: not a number of type LONG"):
        table.parse({name: value})


# --- Integer and double text as Java reads it (ConfigDef.parseType) ------------------------------

# Text Integer.parseInt and Long.parseLong refuse: Python's int() or float() read the first four
# (as 1000, 1, 1000 and 10.5 before), and Java's digits are those of the 16-bit chars it reads.
NOT_JAVA_INTEGERS = ["1e3", "1.0", "1_000", "10.5", "0x10", "", "1 000", "\U0001D7CF"]


@pytest.mark.parametrize(("table", "name"), [(PRODUCER, "batch.size"), (TOPIC, "retention.ms")])
@pytest.mark.parametrize("text", NOT_JAVA_INTEGERS)
def test_text_java_does_not_read_as_an_integer_is_refused(table: ConfigDef, name: str,
                                                          text: str) -> None:
    """ConfigDef.parseType reads an INT config's text with Integer.parseInt (batch.size,
    ProducerConfig) and a LONG's with Long.parseLong (retention.ms, LogConfig): a sign and
    decimal digits, no exponent, fraction, underscore or radix prefix. One error line."""
    with pytest.raises(ConfigError) as info:
        table.parse({name: text})
    message = str(info.value)
    assert message.startswith(f"Invalid value {text!r} for configuration {name}: expected int")
    assert "\n" not in message


@pytest.mark.parametrize(("text", "expected"), [
    (" 100 ", 100), ("\t100\x00", 100), ("\x1f+100\r\n", 100), ("-0", 0),
    ("\u0661\u0660\u0660", 100),  # Arabic-Indic digits: Character.digit reads them
])
def test_text_java_reads_as_an_integer_is_accepted(text: str, expected: int) -> None:
    """String.trim drops every character up to the space at both ends (NUL and the other
    controls too, not only what Python's strip does), then Integer.parseInt reads a sign and
    digits of any script Character.digit knows."""
    value = PRODUCER.parse({"batch.size": text})["batch.size"]
    assert (value, type(value)) == (expected, int)


@pytest.mark.parametrize(("text", "expected"), [("5e-1", 0.5), (".5", 0.5), ("0.5d", 0.5),
                                                ("\x005E-1F ", 0.5), ("1", 1)])
def test_text_java_reads_as_a_double_is_accepted(text: str, expected: float) -> None:
    """min.cleanable.dirty.ratio is a DOUBLE (LogConfig): Double.parseDouble takes an exponent
    and a d / f suffix."""
    assert TOPIC.parse({"min.cleanable.dirty.ratio": text})["min.cleanable.dirty.ratio"] \
        == expected


@pytest.mark.parametrize("text", ["0_5", "nan", "inf", "0x1p-1", "5e", ".", "0.5dd"])
def test_text_java_does_not_read_as_a_double_is_refused(text: str) -> None:
    """Double.parseDouble has no underscores, spells NaN and Infinity so, and needs digits; the
    lab does not read its hexadecimal form either (a float-capable lab key says so)."""
    with pytest.raises(ConfigError, match=r"configuration min\.cleanable\.dirty\.ratio: "
                                          r"expected int or float"):
        TOPIC.parse({"min.cleanable.dirty.ratio": text})


@pytest.mark.parametrize(("table", "name", "kind", "bits"), [
    (PRODUCER, "batch.size", "INT", 32),  # ProducerConfig
    (TOPIC, "segment.bytes", "INT", 32),  # LogConfig
    (GROUP_COORDINATOR, "offsets.topic.replication.factor", "SHORT", 16),  # GroupCoordinatorConfig
    (TOPIC, "retention.ms", "LONG", 64),  # LogConfig
])
def test_an_integer_config_holds_what_its_java_type_holds(table: ConfigDef, name: str,
                                                          kind: str, bits: int) -> None:
    """An INT config given 3000000000 is refused (Integer.parseInt: "Not a number of type
    INT"), as number or text; a SHORT holds at most 32767, a LONG 2**63 - 1."""
    high = 2**(bits - 1) - 1
    assert table.parse({name: high})[name] == table.parse({name: str(high)})[name] == high
    for value in (high + 1, str(high + 1)):
        with pytest.raises(ConfigError, match=rf"configuration {name}: not a number of type "
                                              rf"{kind} \(-{high + 1} to {high}\)"):
            table.parse({name: value})


# ConfigDef.Type of every integer config Kafka 4.0 defines as INT or SHORT; the others are LONG.
KAFKA_NARROW_INTEGERS = {
    # ProducerConfig
    "batch.size": "INT", "max.in.flight.requests.per.connection": "INT", "retries": "INT",
    "delivery.timeout.ms": "INT", "request.timeout.ms": "INT", "max.request.size": "INT",
    "transaction.timeout.ms": "INT",
    # LogConfig, ReplicationConfigs
    "min.insync.replicas": "INT", "segment.bytes": "INT",
    "leader.imbalance.per.broker.percentage": "INT",
    # ConsumerConfig
    "session.timeout.ms": "INT", "heartbeat.interval.ms": "INT", "max.poll.interval.ms": "INT",
    "max.poll.records": "INT", "auto.commit.interval.ms": "INT",
    # GroupCoordinatorConfig
    "group.initial.rebalance.delay.ms": "INT", "group.min.session.timeout.ms": "INT",
    "group.max.session.timeout.ms": "INT", "offsets.topic.num.partitions": "INT",
    "offsets.topic.replication.factor": "SHORT", "offsets.retention.minutes": "INT",
    # StreamsConfig
    "num.stream.threads": "INT", "num.standby.replicas": "INT", "max.warmup.replicas": "INT",
    "replication.factor": "INT", "buffered.records.per.partition": "INT",
    # TransactionLogConfig, TransactionStateManagerConfig
    "transaction.state.log.num.partitions": "INT",
    "transaction.state.log.replication.factor": "SHORT", "transaction.state.log.min.isr": "INT",
    "transaction.max.timeout.ms": "INT",
    "transaction.abort.timed.out.transaction.cleanup.interval.ms": "INT",
}


def test_integer_configs_have_kafkas_types() -> None:
    """Each integer config's range is its Kafka type's; lab-only keys are held to a LONG."""
    found = {}
    for table in (PRODUCER, TOPIC, BROKER, CONSUMER, GROUP_COORDINATOR, STREAMS,
                  TRANSACTION_COORDINATOR):
        for key in table:
            if int in (key.type if isinstance(key.type, tuple) else (key.type,)):
                expected = "LONG" if key.name.startswith("lab.") else \
                    KAFKA_NARROW_INTEGERS.get(key.name, "LONG")
                assert key.kafka_type == expected, (table.kind, key.name)
                found[key.name] = key.kafka_type
    assert set(KAFKA_NARROW_INTEGERS) <= set(found)


@given(st.integers(max_value=-1))
def test_negative_linger_is_always_rejected(n: int) -> None:
    """No negative linger.ms is accepted, as a number or as text."""
    for value in (n, str(n)):
        with pytest.raises(ConfigError, match=r"linger\.ms"):
            PRODUCER.parse({"linger.ms": value})


def test_nullable_config_accepts_none() -> None:
    """partitioner.class may be None: the built-in partitioner."""
    assert PRODUCER.parse({"partitioner.class": None})["partitioner.class"] is None


def test_validators_describe_what_is_allowed() -> None:
    """The validator helpers return None for allowed values and a phrase otherwise."""
    assert config.at_least(0)(0) is None
    assert config.at_least(0)(-1) == "must be at least 0"
    assert config.between(1, 3)(3) is None
    assert config.between(1, 3)(4) == "must be between 1 and 3"
    assert config.one_of("a", "b")("b") is None
    assert config.one_of("a", "b")("c") == "must be one of 'a', 'b'"


# --- Rules Kafka checks (issue 12, defect 6) -----------------------------------------------------

@pytest.mark.parametrize(("given", "expected"), [(1, "1"), (0, "0"), (-1, "-1")])
def test_integer_acks_is_kafkas_value(given: int, expected: str) -> None:
    """`acks: 1` in YAML or Producer(...) means Kafka's "1" (ProducerConfig acks)."""
    assert PRODUCER.parse({"acks": given})["acks"] == expected


def test_integer_acks_outside_kafkas_values_is_rejected() -> None:
    """acks=2 is no Kafka value, as a number or as text."""
    with pytest.raises(ConfigError, match=r"configuration acks"):
        PRODUCER.parse({"acks": 2})


def test_delivery_timeout_below_linger_plus_request_timeout_is_an_error() -> None:
    """KafkaProducer.configureDeliveryTimeout: an explicit smaller value is a ConfigException."""
    with pytest.raises(ConfigError, match=r"delivery\.timeout\.ms.*linger\.ms \+ request\.timeout"):
        PRODUCER.parse({"delivery.timeout.ms": 10000})
    assert PRODUCER.parse({"delivery.timeout.ms": 10000, "request.timeout.ms": 9995,
                           "linger.ms": 5})["delivery.timeout.ms"] == 10000


def test_default_delivery_timeout_is_raised_to_linger_plus_request_timeout() -> None:
    """When only request.timeout.ms was set, Kafka raises delivery.timeout.ms to the sum."""
    parsed = PRODUCER.parse({"request.timeout.ms": 200000, "linger.ms": 10})
    assert parsed["delivery.timeout.ms"] == 200010


def test_segment_bytes_is_at_least_one_mebibyte() -> None:
    """Kafka 4.0 raised segment.bytes' minimum to 1 MiB (KIP-1030)."""
    assert TOPIC.parse({"segment.bytes": 1048576})["segment.bytes"] == 1048576
    with pytest.raises(ConfigError, match=r"segment\.bytes.*at least 1048576"):
        TOPIC.parse({"segment.bytes": 1048575})


@pytest.mark.parametrize(("table", "name", "text", "expected"), [
    (PRODUCER, "acks", " all ", "all"),  # ProducerConfig: a STRING with a ValidString
    (PRODUCER, "acks", "\t1\n", "1"),
    (PRODUCER, "client.id", "\x00billing ", "billing"),
    (TOPIC, "cleanup.policy", " compact ", "compact"),
    (TOPIC, "message.timestamp.type", "LogAppendTime\r\n", "LogAppendTime"),
])
def test_string_config_text_is_trimmed_as_kafka_trims_it(table: ConfigDef, name: str,
                                                        text: str, expected: str) -> None:
    """ConfigDef.parseType trims every text value (String.trim) before it reads or validates
    it, STRING configs included: " all " is acks all, not an invalid value."""
    assert table.parse({name: text})[name] == expected
