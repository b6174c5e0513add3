"""Helpers for the Connect tests: a kernel with a standalone herder and an in-process client."""

from __future__ import annotations

import warnings
from typing import Any

with warnings.catch_warnings():  # newer Starlette suggests httpx2; httpx is what we pin
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from sim.connect import StandaloneHerder, Worker, create_app
from sim.kernel import Kernel

JSON = "org.apache.kafka.connect.json.JsonConverter"
STRING = "org.apache.kafka.connect.storage.StringConverter"
WORKER = {"key.converter": JSON, "value.converter": JSON, "offset.flush.interval.ms": "10000"}


def herder(seed: int = 1, brokers: int = 3, **worker: Any) -> StandaloneHerder:
    """A standalone herder on a fresh kernel; ``worker`` adds or overrides worker properties."""
    props = {**WORKER, **{k.replace("_", "."): str(v) for k, v in worker.items()}}
    return StandaloneHerder(Worker(Kernel(seed=seed, brokers=brokers), props))


def client(h: StandaloneHerder) -> TestClient:
    """The REST API in process (deterministic: time moves only when a test runs the kernel)."""
    return TestClient(create_app(h))


def run(h: StandaloneHerder, ms: float) -> None:
    """Run the simulation ``ms`` further."""
    h.kernel.run(until_ms=h.kernel.now_ms + ms)


def file_source(name: str, path: Any, topic: str = "connect-test", **extra: Any) -> dict[str, Any]:
    return {"name": name, "config": {"connector.class": "FileStreamSource", "file": str(path),
                                     "topic": topic, **extra}}


def file_sink(name: str, path: Any, topics: str = "connect-test", **extra: Any) -> dict[str, Any]:
    return {"name": name, "config": {"connector.class": "FileStreamSink", "file": str(path),
                                     "topics": topics, **extra}}
