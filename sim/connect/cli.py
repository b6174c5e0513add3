"""``python -m sim connect serve | standalone``: the Connect REST API from a shell, or a run."""

from __future__ import annotations

import argparse
import json
import math
import sys
import threading
from pathlib import Path
from typing import Any

from sim import scenarios
from sim.connect.server import serve
from sim.connect.standalone import read_properties, standalone
from sim.errors import ConfigError
from sim.kernel import Kernel

SAMPLE_WORKER = {
    "bootstrap.servers": "localhost:9092",
    "key.converter": "org.apache.kafka.connect.json.JsonConverter",
    "value.converter": "org.apache.kafka.connect.json.JsonConverter",
    "key.converter.schemas.enable": "true",
    "value.converter.schemas.enable": "true",
    "offset.flush.interval.ms": "10000",
}
"""``config/connect-standalone.properties`` without its offset file (offsets stay in memory)."""


def kernel_for(scenario: str | None) -> Kernel:
    """The scenario's cluster (its topics and clients too), or three brokers."""
    if scenario is None:
        return Kernel(seed=0, brokers=3)
    return scenarios.load(scenario).build()


def run_command(args: argparse.Namespace) -> int:
    if args.action == "standalone":
        return _standalone(args.worker, args.connectors, args.until_ms, args.scenario)
    return _serve(args)


def _standalone(worker: Path, connectors: list[Path], until_ms: float,
                scenario: str | None) -> int:
    if not 0 <= until_ms <= scenarios.MAX_DURATION_MS:  # NaN too; beyond it: hours of wall time
        raise ConfigError(f"--until-ms {until_ms:g}: give a simulated time in ms ≥ 0 and at "
                          f"most {scenarios.MAX_DURATION_MS:,} (a day, as a scenario's "
                          "duration_ms).")
    kernel = kernel_for(scenario)
    herder = standalone(kernel, worker, *connectors)
    kernel.run(until_ms=until_ms)
    statuses = {name: herder.connector_status(name) for name in herder.connectors()}
    sys.stdout.write(json.dumps(statuses, indent=2) + "\n")
    return 0


def _serve(args: argparse.Namespace) -> int:
    if not math.isfinite(args.speed) or args.speed <= 0:
        raise ConfigError(f"--speed {args.speed:g}: simulated ms per wall-clock ms, above 0.")
    kernel = kernel_for(args.scenario)
    worker: Any = read_properties(args.worker) if args.worker else dict(SAMPLE_WORKER)
    herder = standalone(kernel, worker, *args.connectors)
    server = serve(herder, port=args.port, speed=args.speed)
    sys.stdout.write(f"Kafka Connect REST API on {server.url} (simulated time "
                     f"x{args.speed:g}); Ctrl-C stops it.\n")
    sys.stdout.flush()
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0
