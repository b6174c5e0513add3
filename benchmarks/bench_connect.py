"""Kafka Connect benchmark: REST requests per second over HTTP, and records per second through a
file → topic → SQLite pipeline, each as a ratio to a baseline measured in the same run.

Run with ``python benchmarks/bench_connect.py``.

- REST: GET /connectors/{name}/status over real HTTP (uvicorn, one keep-alive connection),
  against a bare Starlette endpoint served the same way (medians of interleaved rounds): the
  ratio is what the Connect routes, the lock and the herder cost on top of the HTTP stack.
- Pipeline: FileStreamSource → topic (3 brokers) → JDBC sink (upsert) into a real SQLite file,
  simulated until every line is in the table, against the same lines written straight into
  SQLite with ``executemany``: the ratio is what simulating Kafka in between costs.

Machines differ several-fold, so only the ratios, measured here in one process, are the verdict.
"""

from __future__ import annotations

import socket
import sqlite3
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from sim.connect import StandaloneHerder, Worker, serve
from sim.kernel import Kernel

JSON = "org.apache.kafka.connect.json.JsonConverter"
WORKER = {"key.converter": JSON, "value.converter": JSON, "offset.flush.interval.ms": "1000"}
REQUESTS = 1_000
ROUNDS = 3
LINES = 20_000


def requests_per_second(url: str) -> float:
    with httpx.Client() as http:
        for _ in range(50):  # warm up
            http.get(url)
        start = time.perf_counter()
        for _ in range(REQUESTS):
            assert http.get(url).status_code == 200
        return REQUESTS / (time.perf_counter() - start)


def bare_server() -> tuple[uvicorn.Server, threading.Thread, int]:
    async def status(_request: object) -> JSONResponse:
        return JSONResponse({"name": "x", "connector": {"state": "RUNNING"}, "tasks": []})

    app = Starlette(routes=[Route("/status", status)])
    sock = socket.socket()
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as ConnectServer does
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    return server, thread, sock.getsockname()[1]


def bench_rest() -> tuple[float, float]:
    folder = Path(tempfile.mkdtemp())
    (folder / "in.txt").write_text("x\n")
    herder = StandaloneHerder(Worker(Kernel(seed=1), WORKER))
    herder.put_connector_config("src", {"connector.class": "FileStreamSource", "topic": "t",
                                        "file": str(folder / "in.txt")}, allow_replace=False)
    server = serve(herder, port=0, speed=1)
    bare, thread, port = bare_server()
    ours, baseline = [], []
    try:
        for _ in range(ROUNDS):  # interleaved, so that a busy moment hits both alike
            ours.append(requests_per_second(f"{server.url}/connectors/src/status"))
            baseline.append(requests_per_second(f"http://127.0.0.1:{port}/status"))
    finally:
        server.stop()
        bare.should_exit = True
        thread.join()
    return statistics.median(ours), statistics.median(baseline)


def bench_pipeline() -> tuple[float, float]:
    folder = Path(tempfile.mkdtemp())
    lines = [f"line {i}" for i in range(LINES)]
    (folder / "in.txt").write_text("".join(f"{line}\n" for line in lines))
    kernel = Kernel(seed=1)
    kernel.cluster.create_topic("lines", 3, 3)
    herder = StandaloneHerder(Worker(kernel, WORKER))
    start = time.perf_counter()
    herder.put_connector_config("src", {
        "connector.class": "FileStreamSource", "topic": "lines", "file": str(folder / "in.txt"),
        "transforms": "hoist",
        "transforms.hoist.type": "org.apache.kafka.connect.transforms.HoistField$Value",
        "transforms.hoist.field": "line"}, allow_replace=False)
    herder.put_connector_config("db", {
        "connector.class": "JdbcSinkConnector", "topics": "lines", "tasks.max": "3",
        "connection.url": f"jdbc:sqlite:{folder / 'out.db'}", "auto.create": "true",
        "insert.mode": "upsert", "pk.mode": "kafka"}, allow_replace=False)
    db = sqlite3.connect(folder / "out.db")

    def done(_kernel: Kernel) -> bool:
        try:
            return db.execute("SELECT COUNT(*) FROM lines").fetchone()[0] >= LINES
        except sqlite3.OperationalError:
            return False

    while not done(kernel):
        kernel.run(until_ms=kernel.now_ms + 1_000)
    ours = LINES / (time.perf_counter() - start)
    start = time.perf_counter()
    with sqlite3.connect(folder / "direct.db") as direct:
        direct.execute("CREATE TABLE lines (line TEXT)")
        with (folder / "in.txt").open() as f:
            direct.executemany("INSERT INTO lines VALUES (?)", ((line.rstrip("\n"),) for line in f))
    baseline = LINES / (time.perf_counter() - start)
    return ours, baseline


def main() -> None:
    ours, baseline = bench_rest()
    print(f"REST over HTTP: {ours:,.0f} requests/s for status, {baseline:,.0f} for a bare "
          f"Starlette endpoint; ratio {ours / baseline:.2f}")
    ours, baseline = bench_pipeline()
    print(f"file → topic → SQLite: {ours:,.0f} records/s simulated, {baseline:,.0f} straight into "
          f"SQLite; ratio {ours / baseline:.4f}")


if __name__ == "__main__":
    main()
