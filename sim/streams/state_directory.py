"""An instance's state directory and the ``.checkpoint`` files in it.

Mirrors ``StateDirectory`` and ``OffsetCheckpoint``. Layout, as Kafka Streams lays it out::

    <state.dir>/<application.id>/
        kafka-streams-process-metadata     the instance's process id, kept across restarts
        0_0/.checkpoint                    changelog offsets the task's stores hold
        0_0/rocksdb/<store>/               one RocksDB database per persistent store

- **Lock.** One instance at a time may use ``<state.dir>/<application.id>``: a second one fails
  with Kafka's text (``StateDirectory.initializeProcessId``). The simulated instances share one
  Python process, so the lock is kept per kernel, not with an operating-system file lock.
- **Checkpoint** (``OffsetCheckpoint``): UTF-8 text, line 1 the version ``0``, line 2 the number of
  entries, then ``<topic> <partition> <offset>`` per changelog partition, where offset is the
  last changelog offset the stores hold; restoring starts right after it. Written to a temporary
  file and renamed, so a crash never leaves half a file.
- ``state.dir`` defaults to a temporary folder per kernel, with one sub-folder per instance
  (each simulated instance is its own machine); paths under it are deterministic.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from sim.errors import StreamsError
from sim.records import TopicPartition

CHECKPOINT_FILE_NAME = ".checkpoint"
"""``StateManagerUtil.CHECKPOINT_FILE_NAME``."""
CHECKPOINT_VERSION = 0
"""``OffsetCheckpoint.VERSION``."""
OFFSET_UNKNOWN = -4
"""``OffsetCheckpoint.OFFSET_UNKNOWN``: a store whose changelog offset is not known."""
PROCESS_FILE_NAME = "kafka-streams-process-metadata"
"""``StateDirectory.PROCESS_FILE_NAME``."""

T = TypeVar("T")


def kernel_state(kernel: Any, name: str, factory: Callable[[], T]) -> T:
    """Streams bookkeeping that lives as long as ``kernel`` (what the simulated machines and the
    group share): kept on the kernel object, so that it goes away with it."""
    key = f"_streams_{name}"
    if key not in vars(kernel):
        setattr(kernel, key, factory())
    return getattr(kernel, key)


def default_state_dir(kernel: Any) -> Path:
    """A fresh sub-folder ``instance-<n>`` of the kernel's temporary folder (removed with the
    kernel): the ``state.dir`` of the kernel's n-th instance that does not set one."""
    root = kernel_state(kernel, "tmp", lambda: tempfile.TemporaryDirectory(
        prefix="kafka-streams-"))
    count = kernel_state(kernel, "instances_without_state_dir", lambda: [0])
    count[0] += 1
    return Path(root.name) / f"instance-{count[0]}"


def _locks(kernel: Any) -> set[Path]:
    return kernel_state(kernel, "locked_dirs", set)


def write_checkpoint(path: Path, offsets: dict[TopicPartition, int]) -> None:
    """Write ``offsets`` as Kafka's ``OffsetCheckpoint.write`` does (temporary file, rename)."""
    lines = [str(CHECKPOINT_VERSION), str(len(offsets))]
    lines += [f"{tp.topic} {tp.partition} {offset}"
              for tp, offset in sorted(offsets.items(), key=lambda i: (i[0].topic,
                                                                       i[0].partition))]
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text("\n".join(lines) + "\n", encoding="utf-8")
    temporary.replace(path)


def read_checkpoint(path: Path) -> dict[TopicPartition, int]:
    """The offsets of a ``.checkpoint`` file ({} when there is none).

    Raises:
        StreamsError: the file is not in Kafka's format.
    """
    if not path.exists():
        return {}
    lines = path.read_text(encoding="utf-8").splitlines()
    try:
        if int(lines[0]) != CHECKPOINT_VERSION:
            raise StreamsError(f"Unknown offset checkpoint version: {lines[0]} in {path}.")
        count = int(lines[1])
        offsets = {}
        for line in lines[2:2 + count]:
            topic, partition, offset = line.split()
            offsets[TopicPartition(topic, int(partition))] = int(offset)
    except (IndexError, ValueError) as error:
        raise StreamsError(f"Malformed checkpoint file {path}: {error}.") from None
    if len(offsets) != count:
        raise StreamsError(f"Expected {count} entries but found only {len(offsets)} in {path}.")
    return offsets


class StateDirectory:
    """The state directory of one instance: ``<state_dir>/<application_id>`` (``StateDirectory``).

    Raises:
        StreamsError: another running instance holds the directory.
    """

    def __init__(self, kernel: Any, state_dir: Path, application_id: str) -> None:
        self.kernel = kernel
        self.app_dir = state_dir / application_id
        locks = _locks(kernel)
        if self.app_dir in locks:
            raise StreamsError(
                "Unable to initialize state, this can happen if multiple instances of Kafka "
                "Streams are running in the same state directory (current state directory is "
                f"[{self.app_dir}])")
        self.app_dir.mkdir(parents=True, exist_ok=True)
        locks.add(self.app_dir)
        self.locked = True

    def process_id(self, new_id: str) -> str:
        """The process id kept in the directory, or ``new_id`` (written there for next time)."""
        path = self.app_dir / PROCESS_FILE_NAME
        if path.exists():
            return str(json.loads(path.read_text(encoding="utf-8"))["processId"])
        path.write_text(json.dumps({"version": 0, "processId": new_id}) + "\n", encoding="utf-8")
        return new_id

    def task_dir(self, task_id: Any) -> Path:
        return self.app_dir / str(task_id)

    def rocksdb_dir(self, task_id: Any) -> Path:
        return self.task_dir(task_id) / "rocksdb"

    def checkpoint_path(self, task_id: Any) -> Path:
        return self.task_dir(task_id) / CHECKPOINT_FILE_NAME

    def task_dirs(self) -> list[str]:
        """The task directories present, sorted (``0_0``, ``0_1``, …)."""
        if not self.app_dir.exists():
            return []
        return sorted(p.name for p in self.app_dir.iterdir() if p.is_dir())

    def unlock(self) -> None:
        """Release the directory (the instance stopped or its process died)."""
        if self.locked:
            _locks(self.kernel).discard(self.app_dir)
            self.locked = False

    def wipe(self) -> None:
        """Delete everything in the directory (a crash that loses the disk)."""
        shutil.rmtree(self.app_dir, ignore_errors=True)
