"""``FileStreamSource`` / ``FileStreamSink``: Kafka's quickstart connectors, on real files.

The source makes one record per complete line (a line without its terminator waits), with
source partition ``{"filename": file}`` and source offset ``{"position": p}``, ``p`` counting
characters up to just after the line's terminator. On restart it skips ``position`` bytes, as
``FileStreamSourceTask`` does (the same for ASCII). It always makes ONE task, whatever
``tasks.max`` says. The sink appends each record's value as a line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TextIO

from sim.connect.api import SinkConnector, SinkTask, SourceConnector, SourceTask, Task
from sim.connect.config_def import NO_DEFAULT, ConfigDef, at_least, non_empty_string
from sim.connect.data import STRING_SCHEMA
from sim.connect.errors import ConnectError
from sim.connect.records import SinkRecord, SourceRecord

FILENAME_FIELD = "filename"
POSITION_FIELD = "position"


class FileStreamSourceConnector(SourceConnector):
    """Reads lines of ``file`` into ``topic``."""

    class_name = "org.apache.kafka.connect.file.FileStreamSourceConnector"

    def config_def(self) -> ConfigDef:
        return (ConfigDef()
                .define("file", "STRING", None, "HIGH",
                        "Source filename. If not specified, the standard input will be used")
                .define("topic", "STRING", NO_DEFAULT, "HIGH", "The topic to publish data to",
                        validator=non_empty_string)
                .define("batch.size", "INT", 2000, "LOW",
                        "The maximum number of records the source task can read from the file "
                        "each time it is polled", validator=at_least(1)))

    def start(self, props: dict[str, str]) -> None:
        self.props = dict(props)
        self.config = self.config_def().parse(props)

    def task_class(self) -> type[Task]:
        return FileStreamSourceTask

    def task_configs(self, max_tasks: int) -> list[dict[str, str]]:
        return [dict(self.props)]  # only one input stream makes sense

    def alter_offsets(self, config: dict[str, str],
                      offsets: list[tuple[dict[str, Any], dict[str, Any] | None]]) -> bool:
        """``FileStreamSourceConnector.alterOffsets``: a position is a Java long ≥ 0 under a
        partition naming its file (a task would otherwise skip a text or a negative count of
        characters); null offsets (resets) are always allowed."""
        if not config.get("file"):
            raise ConnectError("Offsets cannot be modified if the 'file' configuration is "
                               "unspecified. This is because stdin is used for input and "
                               "offsets are not tracked.")
        for partition, offset in offsets:
            if offset is None:
                continue
            if POSITION_FIELD not in offset:
                raise ConnectError(f"Offset objects should either be null or contain the key "
                                   f"'{POSITION_FIELD}'")
            position = offset[POSITION_FIELD]
            if isinstance(position, bool) or not isinstance(position, int) \
                    or not -2**63 <= position < 2**63:
                raise ConnectError(f"The value for the '{POSITION_FIELD}' key in the offset is "
                                   "expected to be a Long value")
            if position < 0:
                raise ConnectError(f"The value for the '{POSITION_FIELD}' key in the offset "
                                   "should be a non-negative value")
            if FILENAME_FIELD not in partition:
                raise ConnectError(f"Partition objects should contain the key "
                                   f"'{FILENAME_FIELD}'")
        return True


class FileStreamSourceTask(SourceTask):
    """Reads complete lines after the committed position."""

    def start(self, props: dict[str, str]) -> None:
        config = FileStreamSourceConnector().config_def().parse(props)
        if config["file"] is None:
            raise ConnectError("The lab's FileStreamSource needs a file (no standard input).")
        self.filename: str = config["file"]
        self.topic: str = config["topic"]
        self.batch_size: int = config["batch.size"]
        self.stream: TextIO | None = None
        self.position = 0
        self.buffer = ""

    def _open(self) -> bool:
        path = Path(self.filename)
        if not path.exists():
            return False  # Kafka waits for the file to be created
        stream = path.open("rb")
        offset = self.context.offset({FILENAME_FIELD: self.filename}) if self.context else None
        skip = int(offset[POSITION_FIELD]) if offset and POSITION_FIELD in offset else 0
        stream.seek(skip)
        self.position = skip
        self.stream = stream  # type: ignore[assignment]
        return True

    def poll(self) -> list[SourceRecord] | None:
        if self.stream is None and not self._open():
            return None
        assert self.stream is not None
        data = self.stream.read()
        if data:
            self.buffer += data.decode("utf-8", errors="replace")
        records: list[SourceRecord] = []
        while len(records) < self.batch_size:
            line, consumed = _next_line(self.buffer)
            if line is None:
                break
            self.buffer = self.buffer[consumed:]
            self.position += consumed
            records.append(SourceRecord(
                self.topic, None, None, None, STRING_SCHEMA, line, None, (),
                {FILENAME_FIELD: self.filename}, {POSITION_FIELD: self.position}))
        return records or None

    def stop(self) -> None:
        if self.stream is not None:
            self.stream.close()
            self.stream = None


def _next_line(buffer: str) -> tuple[str | None, int]:
    """The first complete line and the characters it used (``\\n``, ``\\r`` or ``\\r\\n``)."""
    for i, char in enumerate(buffer):
        if char == "\n":
            return buffer[:i], i + 1
        if char == "\r":
            if i + 1 == len(buffer):
                return None, 0  # maybe \r\n: wait for the next character
            return buffer[:i], i + (2 if buffer[i + 1] == "\n" else 1)
    return None, 0


class FileStreamSinkConnector(SinkConnector):
    """Appends the values of records from ``topics`` to ``file``."""

    class_name = "org.apache.kafka.connect.file.FileStreamSinkConnector"

    def config_def(self) -> ConfigDef:
        return ConfigDef().define("file", "STRING", None, "HIGH",
                                  "Destination filename. If not specified, the standard output "
                                  "will be used")

    def start(self, props: dict[str, str]) -> None:
        self.props = dict(props)
        self.config_def().parse(props)

    def task_class(self) -> type[Task]:
        return FileStreamSinkTask

    def task_configs(self, max_tasks: int) -> list[dict[str, str]]:
        return [dict(self.props) for _ in range(max_tasks)]


class FileStreamSinkTask(SinkTask):
    """Writes each value on its own line, flushed on ``flush``."""

    def start(self, props: dict[str, str]) -> None:
        file = props.get("file")
        if not file:
            raise ConnectError("The lab's FileStreamSink needs a file (no standard output).")
        # line-buffered: Kafka's PrintStream writes each line through to the file at once
        self.out: Any = Path(file).open("a", encoding="utf-8", buffering=1)  # noqa: SIM115

    def put(self, records: list[SinkRecord]) -> None:
        for record in records:
            self.out.write(f"{'null' if record.value is None else record.value}\n")

    def flush(self, current_offsets: dict[tuple[str, int], int]) -> None:
        self.out.flush()

    def stop(self) -> None:
        self.out.close()
