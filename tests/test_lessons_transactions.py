"""Lesson 05 (transactions): every number its markdown states, its figures and its helpers.

Each ``test_lesson_*`` test backs one "what to look for" paragraph of
``notebooks/05_transactions.ipynb`` and calls the same function the notebook calls; the
docstring quotes the claim.
"""

from __future__ import annotations

import functools

import pytest
from matplotlib.figure import Figure

from sim.kernel import Kernel
from sim.lessons import transactions as lt


@functools.cache
def example_log() -> Kernel:
    return lt.scripted_log(lt.EXAMPLE_SCRIPT, seed=3)


def offsets(text: str) -> list[int]:
    return [int(o) for o in text.split(", ")] if text else []


# --- 1. What a transaction writes ---------------------------------------------------------------


def test_lesson_markers_take_offsets_and_the_lso_stops_at_the_open_transaction():
    """"8 records take 11 offsets … markers take offsets 5 (A's COMMIT), 6 (B's ABORT) and 10
    (A's second COMMIT). B's records at 3–4 stay in the log … The high watermark is 11, but the
    LSO is 7, where C's open transaction starts. A's record at offset 9 is committed.\""""
    table = lt.log_table(example_log())
    data = table[table["kind"] == "data"]
    assert int((data["last_offset"] - data["first_offset"] + 1).sum()) == 8
    markers = table[table["kind"] != "data"]
    assert list(zip(markers["first_offset"], markers["writer"], markers["kind"],
                    strict=True)) == [(5, "A", "COMMIT"), (6, "B", "ABORT"), (10, "A", "COMMIT")]
    b = data[data["writer"] == "B"].iloc[0]
    assert (b["first_offset"], b["last_offset"], b["fate"]) == (3, 4, "aborted")
    c = data[data["writer"] == "C"].iloc[0]
    assert (c["first_offset"], c["fate"]) == (7, "open")
    assert data[data["first_offset"] == 9].iloc[0]["fate"] == "committed"
    assert lt.watermarks(example_log()) == {"log end offset": 11, "high watermark": 11,
                                            "last stable offset": 7}


def test_lesson_table_of_the_steps_matches_the_script():
    """The markdown's step table describes ``EXAMPLE_SCRIPT``: A sends 3, B sends 2, A commits,
    B aborts, C sends 2 and never ends, A sends 1 and commits."""
    assert lt.EXAMPLE_SCRIPT == (("A", "send", 3), ("B", "send", 2), ("A", "commit"),
                                 ("B", "abort"), ("C", "send", 2), ("A", "send", 1),
                                 ("A", "commit"))


def test_ending_every_transaction_moves_the_lso_to_the_high_watermark():
    """Not vacuous: once C commits, the LSO is the high watermark and read_committed reads
    A's and C's records but never B's."""
    kernel = lt.scripted_log((*lt.EXAMPLE_SCRIPT, ("C", "commit")))
    marks = lt.watermarks(kernel)
    assert marks["last stable offset"] == marks["high watermark"] == 12
    assert lt.offsets_read(kernel, "read_committed") == [0, 1, 2, 7, 8, 9]


def test_scripted_log_refuses_an_unknown_step():
    with pytest.raises(ValueError, match="unknown step"):
        lt.scripted_log([("A", "send", 1), ("A", "rollback")])


# --- 2. read_uncommitted and read_committed -----------------------------------------------------


def test_lesson_each_isolation_level_reads_what_the_lesson_says():
    """"read_uncommitted returns 8 records: offsets 0–4 and 7–9 … read_committed returns only 3
    records, offsets 0–2 … Neither level ever returns a marker (5, 6, 10).\""""
    table = lt.isolation_table(example_log())
    dirty = table.loc["read_uncommitted"]
    clean = table.loc["read_committed"]
    assert dirty["records read"] == 8
    assert offsets(dirty["offsets"]) == [0, 1, 2, 3, 4, 7, 8, 9]
    assert clean["records read"] == 3
    assert offsets(clean["offsets"]) == [0, 1, 2]
    for row in (dirty, clean):
        assert {5, 6, 10}.isdisjoint(offsets(row["offsets"]))


# --- 3. A crash in a consume-transform-produce loop ---------------------------------------------


def test_lesson_crash_duplicates_only_without_transactions():
    """"every one of the 4,000 inputs is in both outputs. The at-least-once output holds 50 of
    them twice … The transactional output holds 0 duplicates for a read_committed reader …
    a read_uncommitted reader sees 50 duplicates.\""""
    table = lt.crash_table()
    alo, eos = table.loc["out-alo"], table.loc["out-eos"]
    assert alo["inputs"] == eos["inputs"] == 4000
    assert alo["duplicates (read_committed)"] == 50
    assert alo["audit: output-duplicate"] == 50
    assert eos["duplicates (read_committed)"] == 0
    assert eos["audit: output-duplicate"] == 0
    assert eos["duplicates (read_uncommitted)"] == 50


# --- 4. Fencing a zombie ------------------------------------------------------------------------


def test_lesson_zombie_is_fenced_and_invisible():
    """"its next attempt, at about 32.1 s, is refused … eos-1 is fenced … The audit finds 1
    zombie-write … all 4,000 inputs are in out-eos exactly once.\""""
    summary = lt.zombie_summary()
    assert summary["eos-1 last result"] == "fenced"
    assert round(summary["at (ms)"] / 1000, 1) == 32.1
    assert "fences" in summary["error"]
    assert summary["zombie writes (audit)"] == 1
    assert summary["inputs in out-eos"] == 4000
    assert summary["most copies of one input"] == 1
    outcomes = lt.outcome_table(lt.scenario_run("zombie-fenced"), "eos-1")
    assert list(outcomes["result"])[-1] == "fenced"
    assert list(outcomes["time_ms"])[-2] < 7_000  # its transactions committed until 7 s


# --- 5. A hanging transaction -------------------------------------------------------------------


def test_lesson_hanging_transaction_holds_the_reader_back_until_the_timeout():
    """"nothing changes for reader until about 18 s … the reader's lag grows to over 9,000
    records … drops to zero only after the coordinator aborts eos-1's transaction, at 40.0 s …
    The longest wait … is about 22 s, while the median stays under 100 ms.\""""
    from sim.consumer import metrics

    kernel = lt.scenario_run("hanging-transaction")
    summary = lt.hanging_summary(kernel)
    assert summary["abort at (s)"] == 40.0
    assert summary["largest reader lag (records)"] > 9_000
    assert round(summary["longest wait (ms)"] / 1000) == 22
    assert summary["median wait (ms)"] < 100
    lag = metrics.group_lag(kernel, "reader", every_ms=250.0).set_index("time_ms")["lag"]
    assert lag.loc[10_000:17_500].max() < 100  # before eos-2 takes over eos-1's input
    assert lag.loc[20_000] > 1_000
    assert lag.loc[40_500:].max() == 0  # caught up at once after the abort


def test_lesson_the_timeout_ran_out_before_the_check_that_aborted_it():
    """"its 30 s timeout ran out at about 37 s and the next check came at 40 s": the
    transaction open at the 7 s crash started within 0.1 s of it, and the abort came within
    one 10 s check interval after start + 30 s."""
    kernel = lt.scenario_run("hanging-transaction")
    trace = kernel.trace.to_frame()
    ongoing = trace[(trace["kind"] == "txn.state") & (trace["transactional_id"] == "eos-1")
                    & (trace["state"] == "Ongoing")]
    started = float(ongoing["time_ms"].iloc[-1])
    assert abs(started - 7_000) < 100
    aborted = lt.abort_time_ms(kernel, "eos-1", 7_000)
    assert started + 30_000 < aborted <= started + 30_000 + 10_000


def test_lesson_a_late_batch_after_its_abort_is_refused_since_kip_890():
    """"a produce request … appended **after** the abort marker, opening a transaction … that
    no marker would ever close. Since KIP-890 a leader asks the transaction coordinator …
    and refuses the batch (`INVALID_TXN_STATE`) … The lab's brokers do the same.\""""
    from sim.broker import transaction_coordinator as tc
    from tests.test_transactions import cluster, in_transaction, late_batch

    kernel = cluster()
    producer = in_transaction(kernel, 3)
    producer.flush()
    producer.abort_transaction()
    kernel.run(kernel.now_ms + 50)
    [answer] = late_batch(kernel, producer, 0, sequence=3)
    assert answer.error == tc.INVALID_TXN_STATE
    log = kernel.cluster.partition("out", 0).log
    assert log.last_stable_offset == log.high_watermark


# --- 6. What a transaction costs ----------------------------------------------------------------


@functools.cache
def cost() -> object:
    return lt.cost_table((1, 10, 100, 1000))


def test_lesson_cost_ratio_rises_with_transaction_size():
    """"the transactional throughput is 0.08 of the plain one for transactions of 1 record, 0.25
    for 10, 0.31 for 100 and 0.39 for 1,000.\""""
    assert list(cost()["ratio"]) == [0.08, 0.25, 0.31, 0.39]


def test_lesson_one_transaction_takes_about_28_ms_whatever_its_size():
    """"One transaction takes about 28 ms whatever its size (27.2 to 28.5 ms; a flush takes 2.2
    to 9.4 ms), so each record in a transaction of 1 costs 27 ms.\""""
    per_transaction = cost()["ms per transaction"]
    assert (per_transaction.min(), per_transaction.max()) == (27.2, 28.5)
    assert round(cost().loc[1, "ms per transaction"]) == 27
    per_flush = cost()["ms per flush"]
    assert (per_flush.min(), per_flush.max()) == (2.2, 9.4)


def test_size_explorer_is_one_row_of_the_cost_table():
    row = lt.size_explorer(10)
    assert row.loc[10].to_dict() == cost().loc[10].to_dict()


# --- figures ------------------------------------------------------------------------------------


def test_figures_are_figures_of_a_readable_size():
    """Each figure is a matplotlib Figure no wider than 12 inches and no taller than 4."""
    figures = [lt.log_figure(lt.log_table(example_log()), lt.watermarks(example_log())),
               lt.hanging_figure(), lt.cost_figure(cost())]
    for fig in figures:
        assert isinstance(fig, Figure)
        width, height = fig.get_size_inches()
        assert width <= 12
        assert height <= 4


def test_lesson_configs_it_names_have_kafkas_defaults():
    """The lesson quotes ``transaction.timeout.ms`` (default 60 s, ``ProducerConfig``) and
    ``transaction.abort.timed.out.transaction.cleanup.interval.ms`` (10 s,
    ``TransactionStateManagerConfig``); the 20 ms retry is ``TransactionManager``'s
    ``ADD_PARTITIONS_RETRY_BACKOFF_MS``."""
    from sim import config
    from sim.broker.transaction_coordinator import TRANSACTION_COORDINATOR
    from sim.producer.transactional import ADD_PARTITIONS_RETRY_BACKOFF_MS

    assert config.PRODUCER.defaults()["transaction.timeout.ms"] == 60_000
    assert TRANSACTION_COORDINATOR.defaults()[
        "transaction.abort.timed.out.transaction.cleanup.interval.ms"] == 10_000
    assert ADD_PARTITIONS_RETRY_BACKOFF_MS == 20
