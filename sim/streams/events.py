"""Trace event kinds of a running Streams application (component = the stream thread's name).

- ``streams.process``: a task took one record from an input partition.
- ``streams.forward``: a node passed a record to a child (``detail`` names the child).
- ``streams.punctuate``: a punctuator ran (``detail``: ``STREAM_TIME@t`` or ``WALL_CLOCK_TIME@t``).
- ``streams.commit``: a task's progress was committed (``offsets``: ``topic-p:offset`` list).
- ``streams.task``: a task was created or closed on a thread.
- ``streams.state``: an instance changed state (``CREATED`` → ``REBALANCING`` → ``RUNNING`` …).
"""

from __future__ import annotations

from sim.trace import EventKind, register

STREAMS_PROCESS = register(EventKind(
    "streams.process", ("task", "topic", "partition", "offset", "timestamp"),
    "a task processed one input record"))
STREAMS_FORWARD = register(EventKind(
    "streams.forward", ("task", "node", "detail"), "a node forwarded a record to a child"))
STREAMS_PUNCTUATE = register(EventKind(
    "streams.punctuate", ("task", "node", "detail"), "a punctuator ran"))
STREAMS_COMMIT = register(EventKind(
    "streams.commit", ("task", "offsets"), "a task committed its input offsets"))
STREAMS_TASK = register(EventKind(
    "streams.task", ("task", "action"), "a task was created or closed on a thread"))
STREAMS_STATE = register(EventKind(
    "streams.state", ("old", "new"), "a KafkaStreams instance changed state"))
