"""``ConfigDef``: config keys with types, defaults and validators; validation as Kafka reports it.

``validate(props)`` gives one ``ConfigValue`` per key (the parsed value, recommended values and
error messages), which the REST API turns into ``ConfigInfos`` (``config_infos``). Error texts
follow ``org.apache.kafka.common.config.ConfigDef``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sim.config import JAVA_BLANKS, JAVA_INTEGER_BITS, java_double, java_integer
from sim.errors import ConfigError

NO_DEFAULT = object()
"""``ConfigDef.NO_DEFAULT_VALUE``: the key is required."""

TYPES = ("BOOLEAN", "STRING", "INT", "SHORT", "LONG", "DOUBLE", "LIST", "CLASS", "PASSWORD")
Validator = Callable[[str, Any], None]


def one_of(*choices: str) -> Validator:
    """``ConfigDef.ValidString.in(...)``."""
    def check(name: str, value: Any) -> None:
        if value not in choices:
            raise ConfigError(f"Invalid value {value} for configuration {name}: String must be "
                              f"one of: {', '.join(choices)}")
    check.choices = choices  # type: ignore[attr-defined]
    return check


def at_least(low: int) -> Validator:
    """``ConfigDef.Range.atLeast(low)``."""
    def check(name: str, value: Any) -> None:
        if value is not None and value < low:
            raise ConfigError(f"Invalid value {value} for configuration {name}: Value must be "
                              f"at least {low}")
    return check


def non_empty_string(name: str, value: Any) -> None:
    """``ConfigDef.NonEmptyString``."""
    if value is not None and not str(value).strip():
        raise ConfigError(f"Invalid value {value} for configuration {name}: String may not be "
                          "empty")


def non_empty_string_without_control_chars(name: str, value: Any) -> None:
    """``ConfigDef.NonEmptyStringWithoutControlChars``: a connector's name has no ISO control
    character (U+0000–U+001F, U+007F–U+009F)."""
    non_empty_string(name, value)
    found = [str(ord(c)) for c in str(value or "") if ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F]
    if found:
        raise ConfigError(f"Invalid value {value} for configuration {name}: String may not "
                          "contain control sequences but had the following ASCII chars: "
                          f"{', '.join(found)}")


@dataclass
class ConfigKey:
    """One key: ``ConfigDef.ConfigKey``."""

    name: str
    type: str
    default: Any
    importance: str
    documentation: str
    group: str | None = None
    order: int = -1
    width: str = "NONE"
    display_name: str = ""
    validator: Validator | None = None
    dependents: list[str] = field(default_factory=list)

    @property
    def required(self) -> bool:
        return self.default is NO_DEFAULT


@dataclass
class ConfigValue:
    """The result of validating one key: ``org.apache.kafka.common.config.ConfigValue``."""

    name: str
    value: Any = None
    recommended_values: list[Any] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    visible: bool = True


def parse_type(name: str, value: Any, type_: str) -> Any:
    """A string (or Python) value as ``type_``, with ``ConfigDef.parseType``'s messages."""
    if value is None:
        return None
    if type_ == "BOOLEAN":
        if isinstance(value, bool):
            return value
        text = str(value).strip(JAVA_BLANKS).lower()
        if text in ("true", "false"):
            return text == "true"
        raise ConfigError(f"Invalid value {value} for configuration {name}: Expected value to "
                          "be either true or false")
    if type_ in ("INT", "SHORT", "LONG"):
        # Integer.parseInt / Short.parseShort / Long.parseLong: a sign and digits, in range
        bits = JAVA_INTEGER_BITS[type_]
        number = None if isinstance(value, bool) else java_integer(str(value).strip(JAVA_BLANKS))
        if number is None or not -2**(bits - 1) <= number < 2**(bits - 1):
            raise ConfigError(f"Invalid value {value} for configuration {name}: Not a number "
                              f"of type {type_}")
        return number
    if type_ == "DOUBLE":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)  # a Number's doubleValue()
        number = java_double(str(value).strip(JAVA_BLANKS))
        if number is None:
            raise ConfigError(f"Invalid value {value} for configuration {name}: Not a number "
                              "of type DOUBLE")
        return number
    if type_ == "LIST":
        if isinstance(value, list):
            return [str(v) for v in value]
        text = str(value).strip(JAVA_BLANKS)
        return [] if not text else [part.strip() for part in text.split(",")]
    if not isinstance(value, str):
        raise ConfigError(f"Invalid value {value} for configuration {name}: Expected value to "
                          "be a string, but it was a " + type(value).__name__)
    return value.strip(JAVA_BLANKS) if type_ in ("STRING", "CLASS") else value


def to_string(value: Any, type_: str) -> str | None:
    """``ConfigDef.convertToString``: how a parsed value is shown."""
    if value is None:
        return None
    if type_ == "LIST":
        return ",".join(value)
    if type_ == "BOOLEAN":
        return "true" if value else "false"
    if type_ == "PASSWORD":
        return "[hidden]"
    return str(value)


class ConfigDef:
    """An ordered set of ``ConfigKey``s (``org.apache.kafka.common.config.ConfigDef``)."""

    def __init__(self) -> None:
        self.keys: dict[str, ConfigKey] = {}

    def define(self, name: str, type_: str, default: Any, importance: str, documentation: str,
               validator: Validator | None = None, group: str | None = None,
               display_name: str = "", width: str = "NONE") -> ConfigDef:
        if type_ not in TYPES:
            raise ConfigError(f"ConfigDef: unknown type {type_!r} for {name!r}.")
        order = sum(k.group == group for k in self.keys.values()) + 1 if group else -1
        if default is not NO_DEFAULT and default is not None:
            default = parse_type(name, default, type_)
        self.keys[name] = ConfigKey(name, type_, default, importance, documentation, group,
                                    order, width, display_name or name, validator)
        return self

    def merge(self, other: ConfigDef) -> ConfigDef:
        """A new ConfigDef with ``self``'s keys, then ``other``'s."""
        merged = ConfigDef()
        merged.keys = {**self.keys, **other.keys}
        return merged

    def parse(self, props: dict[str, Any]) -> dict[str, Any]:
        """Parsed values of every key; the first error raises ``ConfigError``."""
        values = self.validate(props)
        for value in values.values():
            if value.errors:
                raise ConfigError(value.errors[0])
        return {name: value.value for name, value in values.items()}

    def validate(self, props: dict[str, Any]) -> dict[str, ConfigValue]:
        """One ``ConfigValue`` per key, in definition order (``ConfigDef.validate``)."""
        out: dict[str, ConfigValue] = {}
        for name, key in self.keys.items():
            result = ConfigValue(name)
            if name in props:
                raw = props[name]
            elif key.required:
                result.errors.append(f"Missing required configuration \"{name}\" which has no "
                                     "default value.")
                out[name] = result
                continue
            else:
                raw = key.default
            try:
                result.value = parse_type(name, raw, key.type)
                if key.validator is not None and (result.value is not None or name in props):
                    key.validator(name, result.value)
            except ConfigError as exc:
                result.errors.append(str(exc))
            choices = getattr(key.validator, "choices", None)
            if choices:
                result.recommended_values = list(choices)
            out[name] = result
        return out


def config_infos(name: str, definition: ConfigDef, values: dict[str, ConfigValue]
                 ) -> dict[str, Any]:
    """The ``ConfigInfos`` body of the validate endpoint (``AbstractHerder.generateResult``)."""
    groups: list[str] = []
    configs = []
    errors = 0
    for key_name, key in definition.keys.items():
        if key.group and key.group not in groups:
            groups.append(key.group)
        value = values.get(key_name, ConfigValue(key_name))
        errors += len(value.errors)
        default = None if key.required else to_string(key.default, key.type)
        configs.append({
            "definition": {
                "name": key.name, "type": key.type, "required": key.required,
                "default_value": default, "importance": key.importance,
                "documentation": key.documentation, "group": key.group, "width": key.width,
                "display_name": key.display_name, "dependents": list(key.dependents),
                "order": key.order},
            "value": {
                "name": key_name, "value": to_string(value.value, key.type),
                "recommended_values": [str(v) for v in value.recommended_values],
                "errors": list(value.errors), "visible": value.visible}})
    return {"name": name, "error_count": errors, "groups": groups, "configs": configs}


def key_info(key: ConfigKey) -> dict[str, Any]:
    """A ``ConfigKeyInfo`` for ``GET /connector-plugins/{plugin}/config``."""
    return {"name": key.name, "type": key.type, "required": key.required,
            "default_value": None if key.required else to_string(key.default, key.type),
            "importance": key.importance, "documentation": key.documentation,
            "group": key.group, "width": key.width, "display_name": key.display_name,
            "dependents": list(key.dependents), "order": key.order}
