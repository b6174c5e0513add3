"""Standalone mode from files, like ``connect-standalone.sh worker.properties connector…``.

``read_properties`` reads Java ``.properties`` files (``key=value`` or ``key: value``, ``#``
and ``!`` comments, ``\\`` line continuations); ``standalone`` builds a worker and a standalone
herder and creates each connector.
"""

from __future__ import annotations

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
    props: dict[str, str] = {}
    pending = ""
    for raw in text.splitlines():
        line = pending + raw.lstrip()
        pending = ""
        if not line or line[0] in "#!":
            continue
        if line.endswith("\\") and not line.endswith("\\\\"):
            pending = line[:-1]
            continue
        cut = min((i for i in (line.find("="), line.find(":")) if i >= 0), default=-1)
        if cut < 0:
            key, value = line.strip(), ""
        else:
            key, value = line[:cut].strip(), line[cut + 1:].strip()
        props[key] = value
    return props


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
