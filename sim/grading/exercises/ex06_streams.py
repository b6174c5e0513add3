"""Checks for exercise 06 (lesson "Kafka Streams, part 1"): a topology, a describe(), windows.

06.a — a ``StreamsApp`` (``sim.lessons.streams``) around the learner's ``build_topology(builder)``
for this spec: payments (key: customer, value: amount) arrive on ``payment``; those keyed
``"unknown"`` go to ``unknown-payment``; of the others, those of 100 or more are counted per
customer and every new count goes to ``large-payment-count``. The check pipes the notebook's
visible example and hidden inputs (:data:`HIDDEN_PAYMENTS`, with the edge cases: exactly 100, 99,
a large "unknown" payment, "Unknown" in another case) through the learner's topology with the
``TopologyTestDriver`` and compares each output topic, record by record, with what a reference
topology built here gives at check time. A topology that only reproduces the visible example
fails the hidden inputs.

06.b — a prediction of ``describe()`` for the topology the notebook shows, compared with the
text the lab's ``Topology.describe()`` gives at check time: sub-topologies, the nodes with
their names, the ``-->`` / ``<--`` links, then the exact text.

06.c — a prediction of the final count per window and of ``dropped-records`` for readings that
arrive out of order, in tumbling windows of 10 s with 2 s of grace; compared with
``sim.lessons.streams.window_run`` at check time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sim.grading.answers import describe as _describe
from sim.grading.answers import is_whole
from sim.grading.budget import untimed
from sim.grading.checklist import Checklist
from sim.grading.registry import question
from sim.lessons import streams as ls
from sim.streams import Branched, Materialized, StreamsBuilder, TimeWindows

EXERCISE = "06_streams"
HIDDEN_WHILE_GRADED = True  # the notebook never imports this module; its helpers know answers

# 06.a -------------------------------------------------------------------------------------------
INPUT_TOPIC = "payment"
UNKNOWN_TOPIC = "unknown-payment"
COUNT_TOPIC = "large-payment-count"
LARGE = 100
VISIBLE_PAYMENTS: list[tuple[str, int, int]] = list(ls.PAYMENTS)  # the notebook's example
HIDDEN_PAYMENTS: list[tuple[str, int, int]] = [
    ("dana", 100, 1_000),
    ("erik", 99, 1_500),
    ("unknown", 500, 2_000),
    ("dana", 340, 2_500),
    ("Unknown", 150, 3_000),   # not the key "unknown": counted
    ("erik", 101, 3_500),
    ("unknown", 99, 4_000),
    ("fay", 10, 4_500),
    ("dana", 100, 5_000),
    ("erik", 1_000, 5_500),
    ("fay", 250, 6_000),
    ("unknown", 100, 6_500),
    ("dana", 7, 7_000),
    ("erik", 100, 7_500),
]
"""Inputs the learner never sees; every key and amount edge of the spec appears."""

# 06.b -------------------------------------------------------------------------------------------


def describe_topology() -> Any:
    """The topology exercise 06.b shows (the notebook's cell builds the same)."""
    builder = StreamsBuilder()
    (builder.stream("payment")
     .filter(lambda key, value: key != "unknown")
     .map_values(lambda value: "large" if value >= LARGE else "small")
     .group_by(lambda key, size: size)
     .count(Materialized.as_("size-counts"))
     .to_stream()
     .to("payment-size-count"))
    return builder.build()


# 06.c -------------------------------------------------------------------------------------------
WINDOW_SIZE_MS = 10_000
WINDOW_GRACE_MS = 2_000
DOOR_READINGS: list[tuple[str, int]] = [
    ("door-1", 2_000), ("door-1", 7_000), ("door-1", 11_000), ("door-1", 9_000),
    ("door-1", 13_000), ("door-1", 8_000), ("door-1", 25_000), ("door-1", 19_000),
    ("door-1", 21_000), ("door-1", 12_000),
]
"""(key, timestamp ms) in arrival order: the readings the notebook lists for 06.c."""

_HINTS = {
    "wrap": ("Define build_topology(builder) and wrap it: payments_app = "
             "ls.StreamsApp(build_topology)."),
    "unknown": ('Send the records whose key is exactly "unknown" to unknown-payment, and only '
                "those: split() with a first branch for them, or filter() / filter_not()."),
    "count": ('Count only the other payments of 100 or more: filter on the value (>= 100), '
              "group_by_key(), count(), to_stream(), to(\"large-payment-count\"). A branch "
              "takes the first predicate that matches, so put \"unknown\" first."),
    "describe": ("Name the nodes as the builder numbers them, one counter for the whole "
                 "builder. group_by adds a repartition topic named after the store: its "
                 "filter, sink and source take their names from it, yet still use up three "
                 "numbers of the counter (compare WordCount in the lesson)."),
    "links": ("Each node lists its children (-->) and, except sources, its parents (<--); "
              "the repartition topic ends sub-topology 0 and starts sub-topology 1."),
    "exact": ("describe() prints 'Topologies:', each 'Sub-topology: N' indented by 3 spaces, "
              "nodes by 4, links by 6, and a blank line after each sub-topology."),
    "windows": ("A window [start, start + 10000) accepts a record while its end + grace "
                "(2,000 ms) is above the stream time (the largest timestamp seen so far, "
                "before this record)."),
    "window_format": ('Write {"counts": {window start in ms: count, ...}, "dropped": n}, e.g. '
                      '{"counts": {0: 2, 10000: 1}, "dropped": 0}.'),
}


# --- 06.a ----------------------------------------------------------------------------------------


def reference_build(builder: StreamsBuilder) -> None:
    """The spec of 06.a, built the lesson's way."""
    branches = (builder.stream(INPUT_TOPIC).split(named="payment-")
                .branch(lambda key, value: key == "unknown", Branched.as_("unknown"))
                .default_branch(Branched.as_("known")))
    branches["payment-unknown"].to(UNKNOWN_TOPIC)
    (branches["payment-known"].filter(lambda key, value: value >= LARGE)
     .group_by_key().count().to_stream().to(COUNT_TOPIC))


def expected_outputs(payments: list[tuple[str, int, int]]) -> list[tuple[Any, ...]]:
    """What the reference topology writes for ``payments``, computed now."""
    with untimed():  # the check's own run: the budget is for the learner's code
        return ls.StreamsApp(reference_build).run(payments, INPUT_TOPIC)


def _per_topic(rows: object, topic: str) -> list[tuple[Any, Any]] | str:
    """``(key, value)`` of ``topic``'s records in order, or a problem with the rows."""
    if not isinstance(rows, list):
        return f"run() returned {_describe(rows)}, not a list of records"
    out = []
    for row in rows:
        if not (isinstance(row, tuple | list) and len(row) == 5):
            return f"run() returned a record {_describe(row)}; expected 5 fields"
        if row[1] == topic:
            out.append((row[2], row[3]))
    return out


_TOPICS = re.compile(r"\(topics?: \[?([^)\]]*)\]?\)")


def _shape(text: object) -> tuple[str, set[str]]:
    """A problem with the topology ``describe_text()`` describes (or ``""``), and the topics its
    sinks write.

    The outputs alone could come from plain Python; the description must show a topology: a
    source reading ``payment``, every other node linked to a parent. A topic's points also need
    a sink writing it.
    """
    if not isinstance(text, str) or not text.strip().startswith("Topologies:"):
        return f"describe_text() returned {_describe(text)}, not a topology description", set()
    _subs, nodes = _parse(text)
    read: set[str] = set()
    written: set[str] = set()
    for lines in nodes.values():
        kind = lines[0].split(":", 1)[0]
        found = _TOPICS.search(lines[0])
        topics = {t.strip() for t in found.group(1).split(",")} if found else set()
        if kind == "Source":
            read |= topics
        elif not any(line.startswith("<--") for line in lines[1:]):
            return (f"the node {lines[0]!r} has no parent (<--): it is not part of a topology",
                    written)
        if kind == "Sink":
            written |= topics
    if INPUT_TOPIC not in read:
        return (f"the topology describe_text() describes has no source reading {INPUT_TOPIC}",
                written)
    return "", written


def _first_difference(mine: list[tuple[Any, Any]], theirs: list[tuple[Any, Any]]) -> str:
    for n, (a, b) in enumerate(zip(mine, theirs, strict=False)):
        if a != b:
            return f"record {n} is {a!r}, expected {b!r}"
    if len(mine) < len(theirs):
        return f"{len(mine)} records, expected {len(theirs)}: {theirs[len(mine)]!r} is missing"
    return f"{len(mine)} records, expected {len(theirs)}: {mine[len(theirs)]!r} is one too many"


@question(
    "06.a",
    points=6,
    answer="payments_app",
    title="Build a topology: unknown payments and large payments per customer",
    hint=_HINTS["count"],
)
def build_a_topology(answer: object, sheet: Checklist) -> None:
    """Grade the learner's topology by piping visible and hidden payments through it."""
    with sheet.item("payments_app is a StreamsApp whose topology runs on the example "
                    "payments", points=1) as item:
        runner = getattr(answer, "run", None)
        describer = getattr(answer, "describe_text", None)
        shape, written = "", set()
        if not (callable(runner) and callable(describer)):
            item.fail(f"expected ls.StreamsApp(build_topology), got {_describe(answer)}",
                      _HINTS["wrap"])
        else:
            shape, written = _shape(describer())  # type: ignore[misc]
        if item.passed and shape:
            item.fail(shape, _HINTS["wrap"])
        elif item.passed:
            visible = runner(VISIBLE_PAYMENTS, INPUT_TOPIC)  # type: ignore[misc]
            if isinstance(_per_topic(visible, UNKNOWN_TOPIC), str):
                item.fail(str(_per_topic(visible, UNKNOWN_TOPIC)), _HINTS["wrap"])
    if not item.passed:
        return sheet.stop("there is no topology to run")
    hidden = runner(HIDDEN_PAYMENTS, INPUT_TOPIC)
    results = {"the example": (visible, expected_outputs(VISIBLE_PAYMENTS)),
               "payments you have not seen": (hidden, expected_outputs(HIDDEN_PAYMENTS))}
    checks = (
        (UNKNOWN_TOPIC, 2, _HINTS["unknown"], 'exactly the payments keyed "unknown", in order'),
        (COUNT_TOPIC, 3, _HINTS["count"],
         'each customer\'s new count of payments of 100 or more (not "unknown"), in order'),
    )
    for topic, points, hint, what in checks:
        with sheet.item(f"{topic} gets {what}, for the example and for payments you have not "
                        "seen", points=points) as item:
            if topic not in written:
                item.fail(f"the topology describe_text() describes has no sink writing {topic}",
                          hint)
            for label, (mine, theirs) in results.items() if topic in written else ():
                got = _per_topic(mine, topic)
                want = [(key, value) for _n, name, key, value, _ts in theirs if name == topic]
                if isinstance(got, str):
                    item.fail(got, hint)
                    break
                if got != want:
                    item.fail(f"{topic}, {label}: {_first_difference(got, want)}", hint)
                    break
    return None


# --- 06.b ----------------------------------------------------------------------------------------

_NODE = re.compile(r"^(Source|Processor|Sink): (\S+)")


def _parse(text: str) -> tuple[list[str], dict[str, list[str]]]:
    """Sub-topology lines, and each node's header line with its link lines (all stripped)."""
    subs: list[str] = []
    nodes: dict[str, list[str]] = {}
    current: list[str] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("Sub-topology:"):
            subs.append(line)
            current = None
        elif (match := _NODE.match(line)) is not None:
            current = nodes.setdefault(match.group(2), [line])
        elif line.startswith(("-->", "<--")) and current is not None:
            current.append(line)
    return subs, nodes


def expected_description() -> str:
    """``describe()`` of the 06.b topology, computed now."""
    return str(describe_topology().describe())


@question(
    "06.b",
    points=5,
    answer="predicted_description",
    title="Predict describe()",
    hint=_HINTS["describe"],
)
def predict_description(answer: object, sheet: Checklist) -> None:
    """Grade a predicted describe() text against the lab's describe() at check time."""
    with sheet.item("predicted_description is the text of a topology description "
                    "(it starts with 'Topologies:')", points=1) as item:
        if not isinstance(answer, str):
            item.fail(f"expected a string (the printed description), got {_describe(answer)}",
                      _HINTS["exact"])
        elif not answer.strip().startswith("Topologies:"):
            item.fail("the text does not start with 'Topologies:'", _HINTS["exact"])
    if not item.passed or not isinstance(answer, str):
        return sheet.stop("there is no description to compare")
    expected = expected_description()
    my_subs, my_nodes = _parse(answer)
    their_subs, their_nodes = _parse(expected)
    with sheet.item(f"the same {len(their_subs)} sub-topologies and the same "
                    f"{len(their_nodes)} nodes, each with its kind and name", points=2) as item:
        if my_subs != their_subs:
            item.fail(f"you have {len(my_subs)} sub-topologies ({', '.join(my_subs) or 'none'})"
                      f"; there are {len(their_subs)}", _HINTS["describe"])
        else:
            mine = {v[0] for v in my_nodes.values()}
            theirs = {v[0] for v in their_nodes.values()}
            wrong = sorted(mine - theirs)
            missing = len(theirs - mine)
            if wrong or missing:
                shown = f"'{wrong[0]}' is not a node of this topology" if wrong else \
                    "a node is missing"
                item.fail(f"{shown} ({missing} of {len(theirs)} nodes not found)",
                          _HINTS["describe"])
    with sheet.item("every node has the right --> and <-- links", points=1) as item:
        for name, lines in their_nodes.items():
            if my_nodes.get(name, [])[1:] != lines[1:]:
                item.fail(f"the links of {name} are not right", _HINTS["links"])
                break
    with sheet.item("the text is exactly what describe() prints (trailing spaces aside)",
                    points=1) as item:
        def lines(text: str) -> list[str]:
            return [line.rstrip() for line in text.strip("\n").splitlines()]

        if lines(answer) != lines(expected):
            where = next((n for n, (a, b) in enumerate(zip(lines(answer), lines(expected),
                                                           strict=False)) if a != b),
                         min(len(lines(answer)), len(lines(expected))))
            item.fail(f"line {where + 1} differs from describe()'s (indentation, order or "
                      "blank lines)", _HINTS["exact"])
    return None


# --- 06.c ----------------------------------------------------------------------------------------


def window_truth() -> ls.WindowRun:
    """06.c's windows over its readings, counted now."""
    return ls.window_run(TimeWindows.of_size_and_grace(WINDOW_SIZE_MS, WINDOW_GRACE_MS),
                         DOOR_READINGS)


def _read_windows(answer: object) -> tuple[dict[int, int], int] | str:
    if not isinstance(answer, Mapping):
        return f"expected a dict with 'counts' and 'dropped', got {_describe(answer)}"
    if "counts" not in answer or "dropped" not in answer:
        return f"the dict needs the keys 'counts' and 'dropped' (it has {sorted(map(str, answer))})"
    counts, dropped = answer["counts"], answer["dropped"]
    if not isinstance(counts, Mapping) or not all(
            is_whole(k) and is_whole(v) for k, v in counts.items()):
        return f"'counts' must map window starts (ms) to counts, got {_describe(counts)}"
    if not is_whole(dropped):
        return f"'dropped' must be a whole number, got {_describe(dropped)}"
    return {int(k): int(v) for k, v in counts.items()}, int(dropped)


@question(
    "06.c",
    points=4,
    answer="window_prediction",
    title="Predict windowed counts with late records",
    hint=_HINTS["windows"],
)
def predict_windows(answer: object, sheet: Checklist) -> None:
    """Grade predicted final counts per window and dropped-records against a run now."""
    with sheet.item("window_prediction gives 'counts' (window start → count) and 'dropped'",
                    points=1) as item:
        read = _read_windows(answer)
        if isinstance(read, str):
            item.fail(read, _HINTS["window_format"])
    if not item.passed or isinstance(read, str):
        return sheet.stop("the prediction could not be read")
    counts, dropped = read
    truth = window_truth()
    expected = {int(s): int(c) for s, c in zip(truth.counts["start"], truth.counts["count"],
                                               strict=True)}
    with sheet.item("every window's final count", points=2) as item:
        for start in sorted(set(expected) | set(counts)):
            if counts.get(start) != expected.get(start):
                shown = "no window" if start not in counts else f"{counts[start]}"
                item.fail(f"the window starting at {start} ms: you have {shown}; that is not "
                          "its final count", _HINTS["windows"])
                break
    with sheet.item("dropped-records: how many times a record came too late for its window",
                    points=1) as item:
        if dropped != truth.dropped:
            item.fail(f"dropped-records is not {dropped}", _HINTS["windows"])
    return None
