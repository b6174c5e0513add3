"""Property: a stateless topology's output equals applying its functions to the input, in order.

Each example builds a random chain of ``filter`` / ``filter_not`` / ``map`` / ``map_values`` /
``flat_map`` / ``flat_map_values`` / ``select_key`` / ``peek``, runs it through the test driver
and compares with the same functions applied to a Python list.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sim.streams import Materialized, StreamsBuilder, TopologyTestDriver

OPERATIONS = ["filter", "filter_not", "map", "map_values", "flat_map", "flat_map_values",
              "select_key", "peek"]


def apply(stream, op: str, n: int):
    """Add one operation with parameter ``n`` to a KStream."""
    if op == "filter":
        return stream.filter(lambda k, v: (k + v) % (n + 2) != 0)
    if op == "filter_not":
        return stream.filter_not(lambda k, v: v % (n + 2) == 0)
    if op == "map":
        return stream.map(lambda k, v: (v % 5, k * n - v))
    if op == "map_values":
        return stream.map_values(lambda v: v * 3 + n)
    if op == "flat_map":
        return stream.flat_map(lambda k, v: [(k + i, v - i) for i in range(n % 3)])
    if op == "flat_map_values":
        return stream.flat_map_values(lambda v: [v, -v][: 1 + n % 2])
    if op == "select_key":
        return stream.select_key(lambda k, v: (k ^ v) + n)
    return stream.peek(lambda k, v: None)


def reference(records: list[tuple[int, int, int]], op: str, n: int) -> list[tuple[int, int, int]]:
    """The same operation on a plain list of (key, value, timestamp)."""
    out = []
    for k, v, t in records:
        if op == "filter":
            if (k + v) % (n + 2) != 0:
                out.append((k, v, t))
        elif op == "filter_not":
            if v % (n + 2) != 0:
                out.append((k, v, t))
        elif op == "map":
            out.append((v % 5, k * n - v, t))
        elif op == "map_values":
            out.append((k, v * 3 + n, t))
        elif op == "flat_map":
            out.extend((k + i, v - i, t) for i in range(n % 3))
        elif op == "flat_map_values":
            out.extend((k, x, t) for x in [v, -v][: 1 + n % 2])
        elif op == "select_key":
            out.append(((k ^ v) + n, v, t))
        else:
            out.append((k, v, t))
    return out


@given(
    steps=st.lists(st.tuples(st.sampled_from(OPERATIONS), st.integers(0, 6)), max_size=6),
    records=st.lists(st.tuples(st.integers(-20, 20), st.integers(-50, 50),
                               st.integers(0, 10_000)), max_size=25),
)
def test_stateless_chain_matches_plain_python(steps: list[tuple[str, int]],
                                              records: list[tuple[int, int, int]]) -> None:
    """Same records, same order, same timestamps as applying the functions by hand."""
    builder = StreamsBuilder()
    stream = builder.stream("in")
    expected = list(records)
    for op, n in steps:
        stream = apply(stream, op, n)
        expected = reference(expected, op, n)
    stream.to("out")
    driver = TopologyTestDriver(builder.build())
    topic = driver.create_input_topic("in")
    for key, value, timestamp in records:
        topic.pipe_input(key, value, timestamp)
    got = [(r.key, r.value, r.timestamp)
           for r in driver.create_output_topic("out").read_records_to_list()]
    assert got == expected


@given(st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 9)), max_size=30))
def test_count_matches_a_counter(records: list[tuple[str, int]]) -> None:
    """group_by_key().count() emits, per record, how many records of its key came so far."""
    builder = StreamsBuilder()
    builder.stream("in").group_by_key().count().to_stream().to("out")
    driver = TopologyTestDriver(builder.build())
    driver.create_input_topic("in").pipe_key_value_list(records)
    seen: dict[str, int] = {}
    expected = []
    for key, _ in records:
        seen[key] = seen.get(key, 0) + 1
        expected.append((key, seen[key]))
    assert driver.create_output_topic("out").read_key_values_to_list() == expected


@given(times=st.lists(st.integers(0, 100), max_size=20),
       size=st.integers(1, 20), advance=st.integers(1, 20))
def test_hopping_counts_match_brute_force(times: list[int], size: int, advance: int) -> None:
    """With grace enough for every record, each window [s, s + size) (s a multiple of the
    advance) counts the records inside it, whatever the arrival order."""
    from sim.streams import TimeWindows

    advance = min(advance, size)
    builder = StreamsBuilder()
    (builder.stream("in").group_by_key()
     .windowed_by(TimeWindows.of_size_and_grace(size, 1000).advance_by(advance))
     .count(Materialized.as_("w")))
    driver = TopologyTestDriver(builder.build())
    topic = driver.create_input_topic("in")
    for t in times:
        topic.pipe_input("k", 1, t)
    got = {(w.window.start_ms, w.window.end_ms): n for w, n in driver.get_window_store("w").all()}
    expected: dict[tuple[int, int], int] = {}
    for t in times:
        for start in range(0, t + 1, advance):
            if start <= t < start + size:
                expected[(start, start + size)] = expected.get((start, start + size), 0) + 1
    assert got == expected


@given(times=st.lists(st.integers(0, 100), max_size=20), gap=st.integers(1, 10))
def test_sessions_match_brute_force(times: list[int], gap: int) -> None:
    """With enough grace, sessions are the runs of sorted timestamps no more than ``gap`` apart,
    whatever the arrival order, each with its record count."""
    from sim.streams import SessionWindows

    builder = StreamsBuilder()
    (builder.stream("in").group_by_key()
     .windowed_by(SessionWindows.of_inactivity_gap_and_grace(gap, 1000))
     .count(Materialized.as_("s")))
    driver = TopologyTestDriver(builder.build())
    topic = driver.create_input_topic("in")
    for t in times:
        topic.pipe_input("k", 1, t)
    got = {(w.window.start_ms, w.window.end_ms): n
           for w, n in driver.get_session_store("s").fetch("k")}
    expected: dict[tuple[int, int], int] = {}
    run: list[int] = []
    for t in sorted(times):
        if run and t - run[-1] > gap:
            expected[(run[0], run[-1])] = len(run)
            run = []
        run.append(t)
    if run:
        expected[(run[0], run[-1])] = len(run)
    assert got == expected
