"""Trace event kinds of a running Streams application (component = the stream thread's name).

- ``streams.process``: a task took one record from an input partition.
- ``streams.forward``: a node passed a record to a child (``detail`` names the child; ``key`` and
  ``value`` are the record's; ``flushed`` when it came out of the record cache, at a commit or an
  eviction, rather than from the record being processed).
- ``streams.send``: a task handed a record to its producer: a sink's output (``detail``: the sink
  node) or a store's changelog write (``detail``: ``changelog``), with its ``record_id`` (how
  the partition's log names it, once written: ``sim.payloads``).
- ``streams.punctuate``: a punctuator ran (``detail``: ``STREAM_TIME@t`` or ``WALL_CLOCK_TIME@t``).
- ``streams.commit``: a task's progress was committed (``offsets``: ``topic-p:offset`` list).
- ``streams.task``: a task was created or closed on a thread.
- ``streams.state``: an instance changed state (``CREATED`` → ``REBALANCING`` → ``RUNNING`` …).
- ``streams.restore``: a changelog partition's restoration started, restored a batch, ended, or
  was found corrupted (its start offset gone from the log) and restarts from scratch; standby
  tasks' updates are ``standby`` batches.
- ``streams.checkpoint``: a task wrote its ``.checkpoint`` file (``offsets``).
- ``streams.crash``: an instance's process died (``detail``: state directory kept or lost).
- ``streams.start_failed``: an instance could not be created (``detail``: Kafka's message, e.g.
  another instance holds the state directory's lock).
"""

from __future__ import annotations

from sim.trace import EventKind, register

STREAMS_PROCESS = register(EventKind(
    "streams.process", ("task", "topic", "partition", "offset", "timestamp"),
    "a task processed one input record"))
STREAMS_FORWARD = register(EventKind(
    "streams.forward", ("task", "node", "detail", "key", "value", "flushed"),
    "a node forwarded a record to a child"))
STREAMS_SEND = register(EventKind(
    "streams.send", ("task", "detail", "topic", "key", "value", "record_id", "flushed"),
    "a task sent a record to a sink topic or a changelog"))
STREAMS_PUNCTUATE = register(EventKind(
    "streams.punctuate", ("task", "node", "detail"), "a punctuator ran"))
STREAMS_COMMIT = register(EventKind(
    "streams.commit", ("task", "offsets"), "a task committed its input offsets"))
STREAMS_TASK = register(EventKind(
    "streams.task", ("task", "action"), "a task was created or closed on a thread"))
STREAMS_STATE = register(EventKind(
    "streams.state", ("old", "new"), "a KafkaStreams instance changed state"))
STREAMS_RESTORE = register(EventKind(
    "streams.restore", ("task", "store", "partition", "action", "start_offset", "end_offset",
                        "restored"),
    "a changelog partition was restored (start, batch, end, corrupted, standby)"))
STREAMS_CHECKPOINT = register(EventKind(
    "streams.checkpoint", ("task", "offsets"), "a task wrote its .checkpoint file"))
STREAMS_CRASH = register(EventKind(
    "streams.crash", ("detail",), "a Streams instance's process died"))
STREAMS_START_FAILED = register(EventKind(
    "streams.start_failed", ("detail",), "a Streams instance could not be created"))
