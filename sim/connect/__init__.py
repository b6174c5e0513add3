"""Kafka Connect in the lab: workers, connectors and the REST API (``org.apache.kafka.connect``).

One Kafka concept per module: ``api`` (the connector API), ``config_def``, ``data``,
``records``, ``converters``, ``transforms``, ``plugins`` (``plugin.path``), ``file``, ``jdbc``
and ``datagen`` (built-in connectors), ``offsets``, ``status``, ``tolerance`` (errors and the
DLQ), ``worker``, ``herder`` (standalone), ``distributed`` (a group of workers), ``assignor``
(who runs what), ``storage`` (the internal topics), ``rest`` (the ASGI app), ``server``
(uvicorn), and ``standalone`` (worker and connector ``.properties`` files).

Quick start::

    kernel = Kernel(seed=1)
    herder = connect.standalone(kernel, {"offset.storage.file.filename": "/tmp/offsets"},
                                {"name": "local-file-source", "connector.class": "FileStreamSource",
                                 "file": "test.txt", "topic": "connect-test"})
    kernel.run(until_ms=5_000)
    server = connect.serve(herder, port=0)   # REST over HTTP; server.stop() ends it
"""

from sim.connect.api import (
    Connector,
    SinkConnector,
    SinkTask,
    SourceConnector,
    SourceTask,
    Task,
)
from sim.connect.config_def import ConfigDef
from sim.connect.converters import JsonConverter, StringConverter
from sim.connect.data import Schema, struct_schema
from sim.connect.distributed import DistributedHerder
from sim.connect.herder import Herder, StandaloneHerder
from sim.connect.records import SinkRecord, SourceRecord
from sim.connect.rest import create_app
from sim.connect.server import ConnectServer, serve
from sim.connect.standalone import read_properties, standalone
from sim.connect.topics import topic_records
from sim.connect.worker import Worker

__all__ = [
    "ConfigDef",
    "ConnectServer",
    "Connector",
    "DistributedHerder",
    "Herder",
    "JsonConverter",
    "Schema",
    "SinkConnector",
    "SinkRecord",
    "SinkTask",
    "SourceConnector",
    "SourceRecord",
    "SourceTask",
    "StandaloneHerder",
    "StringConverter",
    "Task",
    "Worker",
    "create_app",
    "read_properties",
    "serve",
    "standalone",
    "struct_schema",
    "topic_records",
]
