"""Standalone mode from files, like ``connect-standalone.sh worker.properties connector…``.

``read_properties`` reads Java ``.properties`` files as ``java.util.Properties.load`` does
(``parse_properties``); ``standalone`` builds a worker and a standalone herder and creates each
connector.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sim.connect.herder import StandaloneHerder
from sim.connect.worker import Worker
from sim.errors import ConfigError


def read_properties(path: str | Path) -> dict[str, str]:
    """The properties in a ``.properties`` file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"Cannot read {path}: {exc.strerror}.") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"Cannot read {path}: not a text file (byte "
                          f"{exc.object[exc.start]:#04x} at position {exc.start} is not "
                          "UTF-8).") from None
    return parse_properties(text)


_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}
_SEPARATORS = "=:"
_BLANKS = " \t\f"


def parse_properties(text: str) -> dict[str, str]:
    """``java.util.Properties.load``, as Connect's standalone worker reads its files
    (``Utils.loadProps``).

    A natural line ending in an odd number of backslashes continues on the next, whose leading
    blanks are dropped; ``#`` or ``!`` first starts a comment. The key ends at the first
    unescaped ``=``, ``:`` or blank; blanks around a separator are skipped; the rest of the
    line is the value (trailing blanks included). ``\\t``, ``\\n``, ``\\r``, ``\\f`` and
    ``\\uXXXX`` are escapes, a backslash before any other character keeps that character.
    Files are read as UTF-8 (Java reads an ``InputStream`` as ISO 8859-1: the same for ASCII).
    """
    props: dict[str, str] = {}
    lines = re.split(r"\r\n|\r|\n", text)  # Java's line ends only (not str.splitlines's)
    index = 0
    while index < len(lines):
        line = lines[index].lstrip(_BLANKS)
        index += 1
        if not line or line[0] in "#!":
            continue
        while _continues(line) and index < len(lines):
            line = line[:-1] + lines[index].lstrip(_BLANKS)
            index += 1
        if _continues(line):  # a backslash at the end of the file is dropped
            line = line[:-1]
        key, value = _split(line)
        props[_unescape(key)] = _unescape(value)
    return props


def _continues(line: str) -> bool:
    """An odd number of backslashes at the end: the line goes on (an even number are
    escaped backslashes)."""
    return (len(line) - len(line.rstrip("\\"))) % 2 == 1


def _split(line: str) -> tuple[str, str]:
    """The raw (still escaped) key and value of a logical line."""
    at = 0
    while at < len(line) and line[at] not in _SEPARATORS + _BLANKS:
        at += 2 if line[at] == "\\" else 1
    key, rest = line[:at], line[at:]
    rest = rest.lstrip(_BLANKS)
    if rest and rest[0] in _SEPARATORS:
        rest = rest[1:].lstrip(_BLANKS)
    return key, rest


def _unescape(text: str) -> str:
    """Resolve the escapes of a key or a value."""
    if "\\" not in text:
        return text
    out: list[str] = []
    at = 0
    while at < len(text):
        char = text[at]
        if char != "\\" or at + 1 == len(text):
            out.append(char)
            at += 1
            continue
        code = text[at + 1]
        if code == "u":
            digits = text[at + 2 : at + 6]
            if len(digits) != 4 or any(c not in "0123456789abcdefABCDEF" for c in digits):
                raise ConfigError(f"Malformed \\uxxxx encoding: \\u{digits}")
            out.append(chr(int(digits, 16)))
            at += 6
            continue
        out.append(_ESCAPES.get(code, code))
        at += 2
    return "".join(out)


def standalone(kernel: Any, worker_properties: str | Path | dict[str, Any],
               *connector_properties: str | Path | dict[str, Any]) -> StandaloneHerder:
    """A standalone herder running the given connectors (files or dicts)."""
    worker_props = (dict(worker_properties) if isinstance(worker_properties, dict)
                    else read_properties(worker_properties))
    herder = StandaloneHerder(Worker(kernel, worker_props))
    for source in connector_properties:
        props = dict(source) if isinstance(source, dict) else read_properties(source)
        if "name" not in props:
            raise ConfigError(f"Connector properties {source} have no name.")
        herder.put_connector_config(props["name"], props, allow_replace=False)
    return herder
