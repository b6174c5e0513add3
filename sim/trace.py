"""The event trace: every component reports what it did, as typed events.

An event is (time_ms, component, kind, fields). Each ``EventKind`` declares its fields once.
Events of one kind are stored as columns: emitting appends the values to a small pending list,
and every ``CHUNK`` events the pending values become one typed NumPy array per column (integers,
floats, or codes into the trace's table of strings). ``Trace.frame(kind)`` and
``Trace.to_frame()`` concatenate each column's chunks once and build pandas DataFrames from the
arrays, with the same columns, dtypes and values as building them from one tuple per event would
give; ``head`` and ``tail`` build only the rows they return.

Vocabulary of the kinds the producer side emits:

- ``request.sent``: a producer sent one produce request (several batches) to a broker.
- ``log.append``: a broker appended one record batch to a partition's log.
- ``request.completed``: the producer received the response to a produce request.
- ``sticky.switch``: a sticky partitioner moved to another partition (KIP-480 / KIP-794).
- ``fault``: a scheduled or interactive fault was applied (a slow broker, for now).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class EventKind:
    """A kind of event and the names of the fields it carries."""

    name: str
    fields: tuple[str, ...]
    doc: str


REQUEST_SENT = EventKind(
    "request.sent", ("node", "batches", "records", "bytes"), "a produce request left the client"
)
LOG_APPEND = EventKind(
    "log.append",
    ("node", "topic", "partition", "offset", "records", "bytes", "producer"),
    "a leader appended a record batch; offset is the batch's base offset",
)
REQUEST_COMPLETED = EventKind(
    "request.completed", ("node", "batches", "records", "latency_ms"), "a produce response arrived"
)
STICKY_SWITCH = EventKind(
    "sticky.switch", ("topic", "partition", "previous"), "the sticky partition changed"
)
FAULT = EventKind("fault", ("node", "fault", "detail"), "a fault was applied")
PRODUCE_RETRY = EventKind(
    "produce.retry", ("topic", "partition", "error", "attempt"), "a failed batch will be retried"
)
PRODUCE_FAILED = EventKind(
    "produce.failed", ("topic", "partition", "error", "records"),
    "a batch failed for good: its records' futures raise",
)

KINDS: dict[str, EventKind] = {
    k.name: k
    for k in (REQUEST_SENT, LOG_APPEND, REQUEST_COMPLETED, STICKY_SWITCH, FAULT, PRODUCE_RETRY,
              PRODUCE_FAILED)
}

BASE_COLUMNS = ("seq", "time_ms", "component", "kind")

CHUNK = 4096
"""Events of one kind held as Python values before they become typed arrays."""

_INTS = frozenset({int})
_FLOATS = frozenset({float})
_STRINGS = frozenset({str, type(None)})
_EXACT_FLOAT_INT = 2**53
"""Integers up to this size survive the trip through float64 that pandas' concat makes."""


def register(kind: EventKind) -> EventKind:
    """Declare an event kind from another module (consumers, replication, …) and return it."""
    known = KINDS.get(kind.name)
    if known is not None and known != kind:
        raise ValueError(f"Event kind {kind.name!r} is already declared with other fields.")
    KINDS[kind.name] = kind
    return kind


class _Strings:
    """The trace's table of strings: each distinct string gets a code, in order of appearance."""

    def __init__(self) -> None:
        self.codes: dict[str | None, int] = {None: -1}
        self.values: list[str] = []
        self._array: tuple[int, Any] | None = None

    def encode(self, values: list[Any]) -> np.ndarray:
        """Codes of ``values`` (strings or None; None is -1). New strings are added in order of
        appearance, looking at each distinct value once; the codes are then looked up in C."""
        codes = self.codes
        for value in dict.fromkeys(values):
            if value not in codes:
                codes[value] = len(self.values)
                self.values.append(value)
        return np.fromiter(map(codes.__getitem__, values), np.int32, count=len(values))

    def code(self, value: str) -> int:
        """The code of one string, added to the table if new."""
        return int(self.encode([value])[0])

    def decode(self, codes: np.ndarray, missing: Any) -> Any:
        """The strings of ``codes`` as pandas infers them from Python strings; -1 is None and
        -2 is ``missing`` (pandas' filler for a column a frame lacks)."""
        dtype = _string_dtype()
        if isinstance(dtype, pd.StringDtype):
            if self._array is None or self._array[0] != len(self.values):
                self._array = (len(self.values), pd.array(self.values, dtype=dtype))
            return self._array[1].take(np.where(codes < 0, -1, codes), allow_fill=True)
        table = np.array([*self.values, missing, None], dtype=object)  # -2 → missing, -1 → None
        return table[codes]


_STRING_DTYPE: list[Any] = []


def _string_dtype() -> Any:
    """The dtype pandas infers for a column of Python strings (``str`` in pandas 3, else object)."""
    if not _STRING_DTYPE:
        _STRING_DTYPE.append(pd.DataFrame([("a",)]).dtypes.iloc[0])
    return _STRING_DTYPE[0]


class _Column:
    """One column of one event kind: typed chunks while every value fits a type, else a list.

    ``mode`` is ``"int"`` (Python ints → int64), ``"float"`` (Python floats → float64), ``"str"``
    (strings, possibly None → codes) or ``"object"`` (anything else: the values themselves, and
    pandas infers the dtype at frame time exactly as from tuples).
    """

    __slots__ = ("chunks", "mode", "objects")

    def __init__(self) -> None:
        self.mode: str | None = None
        self.chunks: list[np.ndarray] = []
        self.objects: list[Any] = []

    def add(self, values: list[Any], strings: _Strings) -> None:
        """Append one chunk of Python values."""
        if self.mode == "object":
            self.objects.extend(values)
            return
        types = set(map(type, values))
        mode, array = "object", None
        try:
            if types <= _INTS:
                mode, array = "int", np.array(values, dtype=np.int64)
            elif types <= _FLOATS:
                mode, array = "float", np.array(values, dtype=np.float64)
            elif types <= _STRINGS and str in types:
                mode, array = "str", strings.encode(values)
        except OverflowError:  # an int beyond int64: pandas keeps such values as objects
            mode = "object"
        if self.mode is None or (mode == self.mode and array is not None):
            self.mode = mode
            if array is None:
                self.objects.extend(values)
            else:
                self.chunks.append(array)
            return
        self.objects = [*self.python_values(strings), *values]
        self.chunks, self.mode = [], "object"

    def array(self) -> np.ndarray:
        """The typed values as one array (chunks concatenated once, then kept)."""
        if len(self.chunks) > 1:
            self.chunks = [np.concatenate(self.chunks)]
        return self.chunks[0]

    def python_values(self, strings: _Strings) -> list[Any]:
        """Every value as a Python object."""
        if self.mode == "object" or not self.chunks:
            return list(self.objects)
        if self.mode == "str":
            table = [*strings.values, None]
            return [table[c] for c in self.array().tolist()]
        return self.array().tolist()

    def series_values(self, strings: _Strings) -> Any:
        """The column as pandas would infer it from a list of one tuple per event."""
        if self.mode == "int" or self.mode == "float":
            return self.array()
        if self.mode == "str":
            return strings.decode(self.array(), None)
        return pd.DataFrame(list(zip(self.objects, strict=True))).iloc[:, 0]


class _KindColumns:
    """The events of one kind: ``seq``, ``time_ms``, ``component`` then the kind's fields.

    ``pending`` holds the values of the events not yet in typed chunks, one after another
    (``width`` values an event); ``flush`` turns them into a chunk per column once ``limit``
    values are waiting (``CHUNK`` events).
    """

    __slots__ = ("arity", "columns", "flushed", "kind", "limit", "pending", "width")

    def __init__(self, kind: EventKind) -> None:
        self.kind = kind
        self.arity = len(kind.fields)
        self.width = 3 + self.arity
        self.limit = CHUNK * self.width
        self.pending: list[Any] = []
        self.columns = [_Column() for _ in range(self.width)]
        self.flushed = 0  # events already in the typed chunks

    @property
    def count(self) -> int:
        """Events of this kind so far (not counted at each emit: derived when asked)."""
        return self.flushed + len(self.pending) // self.width

    def flush(self, strings: _Strings) -> None:
        """Turn the pending values into one typed chunk per column."""
        pending, width = self.pending, self.width
        if not pending:
            return
        for i, column in enumerate(self.columns):
            column.add(pending[i::width], strings)
        self.flushed += len(pending) // width
        self.pending = []


class Trace:
    """Collects events cheaply and turns them into DataFrames on demand."""

    def __init__(self) -> None:
        self._kinds: dict[str, _KindColumns] = {}  # in order of each kind's first event
        self._strings = _Strings()
        self._seq = 0
        self._frames: dict[str, tuple[int, pd.DataFrame]] = {}  # last frame of each kind
        self._last_plan: tuple[int, Any] = (-1, None)  # the whole frame's plan, per event count

    def __len__(self) -> int:
        return self._seq

    def emit(self, kind: EventKind, time_ms: float, component: str, *values: Any) -> None:
        """Record one event; ``values`` follow ``kind.fields`` in order.

        Every component calls this for everything it does, so it only appends the values to
        the kind's pending list (``_KindColumns``); the rest waits for a flush.
        """
        columns = self._kinds.get(kind.name)
        if columns is None or len(values) != columns.arity:
            columns = self._columns_for(kind, values)
        pending = columns.pending
        pending += (self._seq, time_ms, component, *values)
        self._seq += 1
        if len(pending) >= columns.limit:
            columns.flush(self._strings)

    def _columns_for(self, kind: EventKind, values: tuple[Any, ...]) -> _KindColumns:
        """The columns of ``kind`` (new at its first event), checking that ``values`` match
        its fields."""
        columns = self._kinds.get(kind.name)
        if columns is None:
            columns = self._kinds[kind.name] = _KindColumns(kind)
        if len(values) != columns.arity:
            raise ValueError(f"Event kind {kind.name!r} has fields {kind.fields} but "
                             f"{len(values)} values were given: {values!r}.")
        return columns

    def count(self, kind: EventKind) -> int:
        columns = self._kinds.get(kind.name)
        return 0 if columns is None else columns.count

    def frame(self, kind: EventKind) -> pd.DataFrame:
        """The events of one kind, one column per field, in emission order.

        Summaries ask for the same kind several times: the frame is built once per number of
        events and each caller gets its own copy.
        """
        columns = self._kinds.get(kind.name)
        count = 0 if columns is None else columns.count
        cached = self._frames.get(kind.name)
        if cached is None or cached[0] != count:
            cached = (count, self._kind_frame(kind))
            self._frames[kind.name] = cached
        return cached[1].copy()

    def _kind_frame(self, kind: EventKind) -> pd.DataFrame:
        names = [*BASE_COLUMNS, *kind.fields]
        columns = self._kinds.get(kind.name)
        if columns is None or columns.count == 0:
            return pd.DataFrame([], columns=names)
        columns.flush(self._strings)
        data = [c.series_values(self._strings) for c in columns.columns]
        kind_code = self._strings.code(kind.name)
        data.insert(3, self._strings.decode(np.full(columns.count, kind_code, np.int32), None))
        return pd.DataFrame(dict(zip(names, data, strict=True)), copy=False)

    def to_frame(self) -> pd.DataFrame:
        """All events in emission order; fields a kind lacks are left empty.

        The frame is what stacking every kind's frame in emission order gives: a field only some
        kinds have is missing (NaN) for the others, and integer fields stay integers (``Int64``).
        """
        return self._rows(0, self._seq)

    def tail(self, n: int = 10) -> pd.DataFrame:
        """The last ``n`` events (for a stepper's event table), as ``to_frame().tail(n)``."""
        rows = range(self._seq)[-n:] if n else range(0)
        return self._rows(rows.start, rows.stop)

    def head(self, n: int = 10) -> pd.DataFrame:
        """The first ``n`` events, as ``to_frame().head(n)``."""
        rows = range(self._seq)[:n]
        return self._rows(rows.start, rows.stop)

    def _rows(self, lo: int, hi: int) -> pd.DataFrame:
        """Rows ``lo`` to ``hi`` of the whole-trace frame, building only those rows."""
        if not self._kinds:
            return pd.DataFrame(columns=list(BASE_COLUMNS))
        for columns in self._kinds.values():
            columns.flush(self._strings)
        if self._last_plan[0] != self._seq:
            self._last_plan = (self._seq, self._plan())
        plan = self._last_plan[1]
        if plan is None:  # a value pandas must infer: stack the kinds' frames as pandas does
            return self._stacked().iloc[lo:hi]
        # each kind's events in [lo, hi) are a slice of its columns; ``order`` maps each row of
        # the frame to its place in the kinds' slices laid end to end
        size = hi - lo
        order = np.empty(size, np.int64)
        kind_of_row = np.empty(size, np.int8 if len(self._kinds) < 128 else np.int32)
        parts = []
        offset = 0
        for k, columns in enumerate(self._kinds.values()):
            seq = columns.columns[0].array()
            start, stop = (int(i) for i in np.searchsorted(seq, [lo, hi]))
            rows = seq[start:stop] - lo
            order[rows] = np.arange(offset, offset + stop - start)
            kind_of_row[rows] = k
            offset += stop - start
            parts.append((columns, start, stop))
        kind_codes = np.array([self._strings.code(name) for name in self._kinds], np.int32)
        data: dict[str, Any] = {}
        for name, (mode, owners) in plan.items():
            if name == "seq":  # every event is a row: seq is the row number
                data[name] = np.arange(lo, hi)
                continue
            if name == "kind":
                data[name] = self._strings.decode(kind_codes.take(kind_of_row), np.nan)
                continue
            pieces = []
            for columns, start, stop in parts:
                index = owners.get(columns.kind.name)
                if index is not None:
                    pieces.append(columns.columns[index].array()[start:stop])
                else:  # the kind lacks this field: missing
                    n = stop - start
                    pieces.append(np.full(n, -2, np.int32) if mode == "str" else
                                  np.zeros(n, np.int64) if mode == "Int64" else np.full(n, np.nan))
            values = np.concatenate(pieces).take(order)
            if mode == "str":
                data[name] = self._strings.decode(values, np.nan)
            elif mode == "Int64":
                lacks = np.array([kind not in owners for kind in self._kinds], bool)
                data[name] = pd.arrays.IntegerArray(values, lacks.take(kind_of_row))
            else:
                data[name] = values
        return pd.DataFrame(data, index=pd.RangeIndex(lo, hi), copy=False)

    def _plan(self) -> dict[str, tuple[str, dict[str, int]]] | None:
        """Each column of the whole frame, in order, with its dtype and the kinds holding it.

        Modes: ``int`` (int64 in every kind), ``Int64`` (int64 where present, missing in some
        kinds), ``float`` (float64, or int64 mixed with float64), ``str``. None when a column
        falls outside these (objects, booleans, strings mixed with numbers, huge integers).
        """
        owners: dict[str, dict[str, int]] = {}
        modes: dict[str, set[str]] = {}
        for columns in self._kinds.values():
            names = ["seq", "time_ms", "component", *columns.kind.fields]
            for index, (name, column) in enumerate(zip(names, columns.columns, strict=True)):
                owners.setdefault(name, {})[columns.kind.name] = index
                modes.setdefault(name, set()).add(column.mode or "object")
        order = [*BASE_COLUMNS]
        for columns in self._kinds.values():
            order += [f for f in columns.kind.fields if f not in order]
        plan: dict[str, tuple[str, dict[str, int]]] = {"kind": ("str", {})}
        for name in order:
            if name == "kind":
                continue
            kinds_with = owners[name]
            mode_set = modes[name]
            everywhere = len(kinds_with) == len(self._kinds)
            if mode_set == {"str"}:
                mode = "str"
            elif mode_set == {"int"} and everywhere:
                mode = "int"
            elif mode_set == {"int"}:
                mode = "Int64"
                for kind_name, index in kinds_with.items():
                    values = self._kinds[kind_name].columns[index].array()
                    if len(values) and (values.min() < -_EXACT_FLOAT_INT
                                        or values.max() > _EXACT_FLOAT_INT):
                        return None
            elif mode_set <= {"int", "float"}:
                mode = "float"
            else:
                return None
            plan[name] = (mode, kinds_with)
        return {name: plan[name] for name in order}

    def _stacked(self) -> pd.DataFrame:
        """The whole frame the general way: each kind's frame, stacked and put in seq order."""
        parts = [self.frame(columns.kind) for columns in self._kinds.values()]
        integer = {column for part in parts for column in part.columns
                   if pd.api.types.is_integer_dtype(part[column])}
        integer -= {column for part in parts for column in part.columns
                    if not pd.api.types.is_integer_dtype(part[column])}
        frame = pd.concat(parts, ignore_index=True).sort_values("seq", kind="stable")
        frame = frame.reset_index(drop=True)
        # a field only some kinds have is missing for the others: keep it integer, not float
        partial = {column for column in integer if any(column not in part for part in parts)}
        return frame.astype({column: "Int64" for column in partial})
