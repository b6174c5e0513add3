"""``BrokerRuntime``: what the broker side needs from whoever runs it.

The kernel builds the broker side (``Cluster``, ``ReplicaManager``, ``Controller``) and hands
itself over as this small protocol, so that nothing in ``sim.broker`` imports the kernel: the
broker side only needs simulated time, timers, the trace and the clients to tell about crashes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import simpy

    from sim.broker.cluster import Cluster
    from sim.broker.controller import Controller
    from sim.trace import Trace


class BrokerRuntime(Protocol):
    """Simulated time, timers and the trace, as ``sim.kernel.Kernel`` provides them."""

    env: simpy.Environment
    trace: Trace
    cluster: Cluster
    controller: Controller
    clients: list[Any]

    @property
    def now_ms(self) -> float:
        """Simulated time in milliseconds."""
        ...

    def background_timeout(self, delay_ms: float) -> simpy.Timeout:
        """A housekeeping timer that alone does not keep a run going."""
        ...

    def make_background(self, timer: simpy.Timeout) -> None:
        """Let a pending timer stop keeping a run going."""
        ...

    def make_foreground(self, timer: simpy.Timeout) -> None:
        """Undo ``make_background``: the pending timer keeps a run going again."""
        ...
