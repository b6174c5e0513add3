"""Streams instance faults, in the shape of ``sim.consumer.faults``: a value with
``apply(kernel)``; schedule one with ``sim.faults.schedule(kernel, at_ms, fault)``.

Instances are named by their client id (``<application.id>-<process id>`` unless ``client.id``
is set; see ``KafkaStreams.client_id``).

- ``StreamsCrash(instance, lose_state=False)``: the instance's process dies — no commit, no
  checkpoint, no LeaveGroup; with ``lose_state`` its state directory is gone too (a lost disk or
  a fresh container). Its tasks move once the group notices (``session.timeout.ms``).
- ``StreamsRestart(instance)``: start the crashed (or closed) instance again on the same machine:
  it finds its state directory, and with it its process id and checkpoints, if they were kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sim.errors import ConfigError


def find_instance(kernel: Any, name: str) -> Any:
    """The newest ``KafkaStreams`` whose client id is ``name``, or a clear error listing them."""
    from sim.streams.kafka_streams import instances

    known = instances(kernel)
    for instance in reversed(known):
        if instance.client_id == name:
            return instance
    names = ", ".join(dict.fromkeys(i.client_id for i in known)) or "none"
    raise ConfigError(f"There is no Streams instance {name!r}; instances are: {names}.")


@dataclass(frozen=True)
class StreamsCrash:
    """Kill a Streams instance's process, keeping or losing its state directory."""

    instance: str
    lose_state: bool = False

    def apply(self, kernel: Any) -> None:
        find_instance(kernel, self.instance).crash(lose_state=self.lose_state)


@dataclass(frozen=True)
class StreamsRestart:
    """Start a crashed or closed Streams instance again (a new process, same state.dir)."""

    instance: str

    def apply(self, kernel: Any) -> None:
        find_instance(kernel, self.instance).restart()


StreamsFault = StreamsCrash | StreamsRestart
