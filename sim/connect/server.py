"""The REST API over real HTTP: uvicorn on 127.0.0.1 in a background thread.

Simulated time follows wall-clock time times ``speed``: a clock thread runs the kernel forward
every ``tick_s`` seconds. The clock and the HTTP handlers share one lock, so the kernel is never
touched by both at once. ``serve(...)`` returns a ``ConnectServer`` with its ``port`` and
``url``; ``stop()`` shuts both threads down. While it serves, run the kernel from a notebook
only inside ``with server.lock:``.
"""

from __future__ import annotations

import socket
import threading
import time
import weakref
from typing import Any

import uvicorn

from sim.connect.herder import Herder
from sim.connect.rest import create_app
from sim.errors import ConfigError

_RUNNING: weakref.WeakKeyDictionary[Any, ConnectServer] = weakref.WeakKeyDictionary()
"""The server whose clock runs each kernel: one per kernel."""


class ConnectServer:
    """A running server: ``url``, ``port``, ``herder``; ``stop()`` to end it."""

    def __init__(self, herder: Herder, port: int = 8083, speed: float = 1.0,
                 tick_s: float = 0.05) -> None:
        if isinstance(speed, bool) or not isinstance(speed, int | float) or not speed > 0:
            raise ConfigError(f"speed={speed!r}: simulated ms per wall-clock ms, a number > 0.")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ConfigError(f"port={port!r}: a TCP port 0..65535 (0: any free port).")
        self.herder = herder
        self.kernel = herder.kernel  # type: ignore[attr-defined]
        running = _RUNNING.get(self.kernel)
        if running is not None and running._http.is_alive():
            raise ConfigError(f"{running.url} already runs this kernel's clock; serve another "
                              "worker of the same kernel in process with create_app(herder, "
                              "server.lock), or stop() the first server.")
        self.speed = float(speed)
        self.tick_s = tick_s
        self.lock = threading.RLock()
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # accepted connections inherit it: without, Nagle and delayed ACKs cost ~40 ms a request
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            self.socket.bind(("127.0.0.1", port))
        except OSError as exc:
            self.socket.close()
            raise ConfigError(f"Cannot listen on 127.0.0.1:{port}: {exc.strerror}.") from None
        self.port: int = self.socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(create_app(herder, self.lock), log_level="warning",
                                lifespan="off", access_log=False)
        self.server = uvicorn.Server(config)
        self._stopping = threading.Event()
        self._http = threading.Thread(target=self.server.run,
                                      kwargs={"sockets": [self.socket]}, daemon=True,
                                      name=f"connect-rest-{self.port}")
        self._clock = threading.Thread(target=self._follow_wall_clock, daemon=True,
                                       name=f"connect-clock-{self.port}")
        self.error: BaseException | None = None

    def start(self) -> ConnectServer:
        _RUNNING[self.kernel] = self
        self._http.start()
        self._clock.start()
        deadline = time.monotonic() + 10
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        if not self.server.started:
            self.stop()
            raise ConfigError(f"The REST server on port {self.port} did not start.")
        return self

    def _follow_wall_clock(self) -> None:
        start_wall = time.monotonic()
        start_sim = self.kernel.now_ms
        while not self._stopping.wait(self.tick_s):
            target = start_sim + (time.monotonic() - start_wall) * 1000 * self.speed
            with self.lock:
                try:
                    if target > self.kernel.now_ms:
                        self.kernel.run(until_ms=target)
                except BaseException as exc:  # keep serving; the error is shown by repr
                    self.error = exc
                    return

    def stop(self) -> None:
        """Stop the clock and the HTTP server, and free the port."""
        self._stopping.set()
        self.server.should_exit = True
        for thread in (self._http, self._clock):
            if thread.is_alive():
                thread.join(timeout=10)
        self.socket.close()

    def __repr__(self) -> str:
        state = "running" if self._http.is_alive() else "stopped"
        note = f", clock error: {self.error}" if self.error else ""
        return f"ConnectServer({self.url}, speed={self.speed:g}, {state}{note})"

    def __enter__(self) -> ConnectServer:
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.stop()


def serve(herder: Herder | None = None, port: int = 8083, speed: float = 1.0) -> ConnectServer:
    """Serve ``herder``'s REST API at ``http://127.0.0.1:<port>`` in the background.

    Without a herder: a standalone worker with ``connect-standalone.properties``' settings on
    a fresh three-broker cluster (``server.herder.kernel``). ``port=0`` picks a free port.
    """
    if herder is None:
        from sim.connect.cli import SAMPLE_WORKER
        from sim.connect.herder import StandaloneHerder
        from sim.connect.worker import Worker
        from sim.kernel import Kernel
        herder = StandaloneHerder(Worker(Kernel(seed=0, brokers=3), dict(SAMPLE_WORKER)))
    return ConnectServer(herder, port, speed).start()
