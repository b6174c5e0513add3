"""``ConnectorConfig``: the settings every connector has, and the validation the herder runs.

Common keys (``name``, ``connector.class``, ``tasks.max``, converters, ``transforms``), error
handling (``errors.*``) and, for sinks, ``topics`` / ``topics.regex`` and the dead letter
queue. ``validate_connector`` merges these with the connector's own ``config_def()`` and each
transformation's (``transforms.<alias>.*``), as ``AbstractHerder.validateConnectorConfig`` does.
"""

from __future__ import annotations

from typing import Any

from sim.connect.config_def import (
    NO_DEFAULT,
    ConfigDef,
    ConfigValue,
    at_least,
    config_infos,
    non_empty_string_without_control_chars,
    one_of,
)
from sim.connect.errors import BadRequestError, ConnectError
from sim.connect.plugins import Plugins


def connector_config_def(sink: bool) -> ConfigDef:
    """``ConnectorConfig.configDef()`` (+ ``SinkConnectorConfig`` for sinks)."""
    d = (ConfigDef()
         .define("name", "STRING", NO_DEFAULT, "HIGH", "Globally unique name to use for this "
                 "connector.", validator=non_empty_string_without_control_chars,
                 group="Common", display_name="Connector name")
         .define("connector.class", "STRING", NO_DEFAULT, "HIGH", "Name or alias of the class "
                 "for this connector.", group="Common", display_name="Connector class")
         .define("tasks.max", "INT", 1, "HIGH", "Maximum number of tasks to use for this "
                 "connector.", validator=at_least(1), group="Common", display_name="Tasks max")
         .define("tasks.max.enforce", "BOOLEAN", True, "LOW", "(Deprecated) Whether to enforce "
                 "that the tasks.max property is respected by the connector.", group="Common")
         .define("key.converter", "CLASS", None, "LOW", "Converter class used to convert "
                 "between Kafka Connect format and the serialized form that is written to "
                 "Kafka.", group="Common", display_name="Key converter class")
         .define("value.converter", "CLASS", None, "LOW", "Converter class used to convert "
                 "between Kafka Connect format and the serialized form that is written to "
                 "Kafka.", group="Common", display_name="Value converter class")
         .define("transforms", "LIST", "", "LOW", "Aliases for the transformations to be "
                 "applied to records.", group="Transforms", display_name="Transforms")
         .define("errors.retry.timeout", "LONG", 0, "MEDIUM", "The maximum duration in "
                 "milliseconds that a failed operation will be reattempted. The default is 0, "
                 "which means no retries will be attempted. Use -1 for infinite retries.",
                 group="Error Handling", display_name="Retry Timeout for Errors")
         .define("errors.retry.delay.max.ms", "LONG", 60000, "MEDIUM", "The maximum duration "
                 "in milliseconds between consecutive retry attempts.", group="Error Handling",
                 display_name="Maximum Delay Between Retries for Errors")
         .define("errors.tolerance", "STRING", "none", "MEDIUM", "Behavior for tolerating "
                 "errors during connector operation. 'none' is the default value and signals "
                 "that any error will result in an immediate connector task failure; 'all' "
                 "changes the behavior to skip over problematic records.",
                 validator=one_of("none", "all"), group="Error Handling",
                 display_name="Error Tolerance")
         .define("errors.log.enable", "BOOLEAN", False, "MEDIUM", "If true, write each error "
                 "and the details of the failed operation and problematic record to the Connect "
                 "application log.", group="Error Handling", display_name="Log Errors")
         .define("errors.log.include.messages", "BOOLEAN", False, "MEDIUM", "Whether to "
                 "include in the log the Connect record that resulted in a failure.",
                 group="Error Handling", display_name="Log Error Details"))
    if sink:
        (d.define("topics", "LIST", "", "HIGH", "List of topics to consume, separated by "
                  "commas", group="Common", display_name="Topics")
         .define("topics.regex", "STRING", "", "HIGH", "Regular expression giving topics to "
                 "consume.", group="Common", display_name="Topics regex")
         .define("errors.deadletterqueue.topic.name", "STRING", "", "MEDIUM", "The name of "
                 "the topic to be used as the dead letter queue (DLQ) for messages that result "
                 "in an error when processed by this sink connector, or its transformations or "
                 "converters. The topic name is blank by default, which means that no messages "
                 "are to be recorded in the DLQ.", group="Error Handling",
                 display_name="Dead Letter Queue Topic Name")
         .define("errors.deadletterqueue.topic.replication.factor", "SHORT", 3, "MEDIUM",
                 "Replication factor used to create the dead letter queue topic when it "
                 "doesn't already exist.", group="Error Handling",
                 display_name="Dead Letter Queue Topic Replication Factor")
         .define("errors.deadletterqueue.context.headers.enable", "BOOLEAN", False, "MEDIUM",
                 "If true, add headers containing error context to the messages written to the "
                 "dead letter queue.", group="Error Handling",
                 display_name="Enable Error Context Headers"))
    return d


def transform_configs(props: dict[str, Any], plugins: Plugins
                      ) -> tuple[ConfigDef, dict[str, ConfigValue]]:
    """The ``transforms.<alias>.*`` keys and their validation (``EnrichedConnectorConfig``)."""
    definition = ConfigDef()
    values: dict[str, ConfigValue] = {}
    aliases = [a.strip() for a in str(props.get("transforms", "")).split(",") if a.strip()]
    if len(set(aliases)) != len(aliases):
        values["transforms"] = ConfigValue("transforms", props.get("transforms"),
                                           errors=["Duplicate alias provided."])
    for alias in aliases:
        prefix = f"transforms.{alias}."
        group = f"Transforms: {alias}"
        definition.define(prefix + "type", "CLASS", NO_DEFAULT, "HIGH", "Class for the "
                          f"'{alias}' transformation.", group=group)
        type_value = ConfigValue(prefix + "type", props.get(prefix + "type"))
        values[prefix + "type"] = type_value
        if prefix + "type" not in props:
            type_value.errors.append(f"Missing required configuration \"{prefix}type\" which "
                                     "has no default value.")
            continue
        try:
            transform = plugins.new_transformation(str(props[prefix + "type"]))
        except ConnectError:
            type_value.errors.append(f"Invalid value {props[prefix + 'type']} for configuration "
                                     f"{prefix}type: Class {props[prefix + 'type']} could not "
                                     "be found.")
            continue
        own = {k.removeprefix(prefix): v for k, v in props.items() if k.startswith(prefix)}
        for key, value in transform.config_def().validate(own).items():
            full = transform.config_def().keys[key]
            definition.define(prefix + key, full.type, full.default, full.importance,
                              full.documentation, group=group)
            value.name = prefix + key
            values[prefix + key] = value
        try:
            transform.configure(own)
        except Exception as exc:  # the transformation's own checks (ConfigException)
            type_value.errors.append(f"Invalid value {props[prefix + 'type']} for configuration "
                                     f"{prefix}type: {exc}")
    return definition, values


def validate_connector(props: dict[str, Any], plugins: Plugins) -> dict[str, Any]:
    """``ConfigInfos`` for ``props`` (``AbstractHerder.validateConnectorConfig``).

    Raises:
        BadRequestError: no connector.class, or a class no plugin provides.
    """
    if not isinstance(props, dict) or any(not isinstance(k, str) for k in props):
        raise BadRequestError("Connector config must be a JSON object of strings.")
    for key, value in props.items():
        if value is not None and not isinstance(value, str | int | float | bool):
            raise BadRequestError(f"Connector config value of {key} must be a string, but it "
                                  f"was a JSON {type(value).__name__}.")
    props = {k: _as_text(v) for k, v in props.items() if v is not None}
    if "connector.class" not in props:
        raise BadRequestError(f"Connector config {props} contains no connector type")
    try:
        full = plugins.connector_full_name(props["connector.class"])
    except ConnectError as exc:
        raise BadRequestError(str(exc)) from None
    sink = plugins.connector_type(full) == "sink"
    connector = plugins.connectors[full]()
    base = connector_config_def(sink)
    values = base.validate(props)
    _check_converter_classes(props, values, plugins)
    if sink:
        _check_sink_topics(props, values)
    transform_def, transform_values = transform_configs(props, plugins)
    if "transforms" in transform_values:
        values["transforms"].errors += transform_values.pop("transforms").errors
    own_def = connector.config_def()
    own_values = connector.validate(props)
    definition = base.merge(transform_def).merge(own_def)
    return config_infos(full, definition, {**values, **transform_values, **own_values})


def _check_converter_classes(props: dict[str, Any], values: dict[str, ConfigValue],
                             plugins: Plugins) -> None:
    """``key.converter`` / ``value.converter`` are CLASS keys: a class no plugin provides is
    an error at validation, as ConfigDef's parsing makes it (it used to pass, and every task
    then failed at start)."""
    for key in ("key.converter", "value.converter"):
        name = props.get(key, "").strip()
        if not name:
            continue
        try:
            plugins.new_converter(name)
        except ConnectError:
            values[key].errors.append(f"Invalid value {name} for configuration {key}: Class "
                                      f"{name} could not be found.")


def _check_sink_topics(props: dict[str, Any], values: dict[str, ConfigValue]) -> None:
    """``SinkConnectorConfig.validate``: exactly one of topics and topics.regex."""
    topics = [t.strip() for t in props.get("topics", "").split(",") if t.strip()]
    regex = props.get("topics.regex", "").strip()
    if topics and regex:
        message = ("topics and topics.regex are mutually exclusive options, but both are set.")
        values["topics"].errors.append(message)
        values["topics.regex"].errors.append(message)
    elif not topics and not regex:
        message = "Must configure one of topics or topics.regex"
        values["topics"].errors.append(message)
        values["topics.regex"].errors.append(message)
    dlq = props.get("errors.deadletterqueue.topic.name", "").strip()
    if dlq and dlq in topics:
        values["errors.deadletterqueue.topic.name"].errors.append(
            f"The DLQ topic '{dlq}' may not be included in the list of topics ('topics="
            f"{props['topics']}') to be consumed.")


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def error_messages(infos: dict[str, Any]) -> list[str]:
    return [e for c in infos["configs"] for e in c["value"]["errors"]]


def invalid_config_error(infos: dict[str, Any]) -> BadRequestError:
    """The 400 of a create or update with errors (``AbstractHerder.maybeAddConfigErrors``)."""
    errors = error_messages(infos)
    return BadRequestError(
        f"Connector configuration is invalid and contains the following {len(errors)} "
        "error(s):\n" + "".join(f"{e}\n" for e in errors)
        + "You can also find the above list of errors at the endpoint "
        "`/connector-plugins/{connectorType}/config/validate`")
