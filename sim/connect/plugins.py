"""Plugins: the built-in classes plus the Python modules found on ``plugin.path`` at worker start.

Every ``*.py`` module in each ``plugin.path`` folder (comma-separated, read in sorted order) is
imported, and the connectors, converters and transformations it defines are registered under
``<module>.<Class>``. As in Kafka (``PluginUtils``), ``connector.class`` may be the full name,
the simple class name, or the simple name without ``Connector``, when that alias is unique.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any

from sim.connect.api import Connector, SinkConnector, SourceConnector
from sim.connect.converters import Converter, JsonConverter, StringConverter
from sim.connect.datagen import DatagenConnector
from sim.connect.errors import ConnectError, class_name
from sim.connect.file import FileStreamSinkConnector, FileStreamSourceConnector
from sim.connect.jdbc import JdbcSinkConnector, JdbcSourceConnector
from sim.connect.transforms import TRANSFORMS, Transformation
from sim.errors import ConfigError

BUILT_IN_CONNECTORS: tuple[type[Connector], ...] = (
    FileStreamSinkConnector, FileStreamSourceConnector, JdbcSinkConnector, JdbcSourceConnector,
    DatagenConnector)
VERSION = "4.0.0"


def simple_name(name: str) -> str:
    return name.rsplit(".", 1)[-1]


class Plugins:
    """The classes a worker can load, by full class name."""

    def __init__(self, plugin_path: list[str] | None = None) -> None:
        self.connectors: dict[str, type[Connector]] = {}
        self.converters: dict[str, type[Converter]] = {}
        self.transforms: dict[str, type[Transformation]] = dict(TRANSFORMS)
        for cls in BUILT_IN_CONNECTORS:
            self.connectors[class_name(cls)] = cls
        for cls in (JsonConverter, StringConverter):
            self.converters[class_name(cls)] = cls
        for folder in plugin_path or []:
            self._scan(Path(folder))

    def _scan(self, folder: Path) -> None:
        if not folder.is_dir():
            raise ConfigError(f"plugin.path: {folder} is not a folder.")
        tag = hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:8]
        for path in sorted(folder.glob("*.py")):
            module_name = f"_connect_plugins_{tag}.{path.stem}"
            spec = importlib.util.spec_from_file_location(module_name, path)
            if spec is None or spec.loader is None:
                continue
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            try:
                spec.loader.exec_module(module)
            except Exception as exc:
                raise ConfigError(f"plugin.path: could not load {path}: "
                                  f"{type(exc).__name__}: {exc}") from exc
            for _, cls in inspect.getmembers(module, inspect.isclass):
                if cls.__module__ != module_name:
                    continue
                name = getattr(cls, "class_name", "") or f"{path.stem}.{cls.__qualname__}"
                if issubclass(cls, (SourceConnector, SinkConnector)):
                    self.connectors[name] = cls
                elif issubclass(cls, Converter):
                    self.converters[name] = cls
                elif issubclass(cls, Transformation):
                    self.transforms[name] = cls

    def _resolve(self, name: str, table: dict[str, Any], what: str) -> str:
        if name in table:
            return name
        matches = sorted(full for full in table
                         if simple_name(full) == name
                         or simple_name(full).removesuffix("Connector") == name)
        if len(matches) == 1:
            return matches[0]
        if what == "Connector":
            raise ConnectError(
                f"Failed to find any class that implements Connector and which name matches "
                f"{name}, available connectors are: " + ", ".join(
                    f"PluginDesc{{klass=class {n}, name='{n}', version='{VERSION}', "
                    f"type={self.connector_type(n)}}}" for n in sorted(self.connectors)))
        raise ConnectError(f"Class {name} could not be found.")

    def connector_class(self, name: str) -> type[Connector]:
        return self.connectors[self._resolve(name, self.connectors, "Connector")]

    def connector_full_name(self, name: str) -> str:
        return self._resolve(name, self.connectors, "Connector")

    def new_connector(self, name: str) -> Connector:
        return self.connector_class(name)()

    def new_converter(self, name: str) -> Converter:
        return self.converters[self._resolve(name, self.converters, "Converter")]()

    def new_transformation(self, name: str) -> Transformation:
        return self.transforms[self._resolve(name, self.transforms, "Transformation")]()

    def connector_type(self, name: str) -> str:
        cls = self.connectors[name]
        return "sink" if issubclass(cls, SinkConnector) else "source"

    def version(self, name: str) -> str:
        """A built-in reports the worker's version; a plugin its own ``version()``."""
        cls = self.connectors[name]
        return VERSION if cls in BUILT_IN_CONNECTORS else str(cls().version())

    def plugin_infos(self, connectors_only: bool = True) -> list[dict[str, str]]:
        """``PluginInfo`` rows for ``GET /connector-plugins``."""
        rows = [{"class": n, "type": self.connector_type(n), "version": self.version(n)}
                for n in self.connectors]
        if not connectors_only:
            rows += [{"class": n, "type": "converter", "version": VERSION}
                     for n in self.converters]
            rows += [{"class": n, "type": "transformation", "version": VERSION}
                     for n in self.transforms]
        return sorted(rows, key=lambda r: (r["class"], r["type"]))
