"""Every number lesson 04 (storage) states, checked against the simulator.

Segments and offsets follow ``LogSegment.shouldRoll`` and ``UnifiedLog``; retention deletes whole
segments (``UnifiedLog.deleteRetentionMsBreachedSegments``); the cleaner keeps each key's latest
record and drops a tombstone after ``delete.retention.ms`` (``Cleaner``, KIP-534);
``offsets_for_times`` answers the earliest offset whose timestamp reaches the target
(``UnifiedLog.fetchOffsetByTimestamp``). Reference sheet §7.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest

from sim.broker.list_offsets import OffsetAndTimestamp
from sim.errors import ConfigError
from sim.lessons import storage as ls

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "04_storage.ipynb"
KEYS = list("ABACABD")
STAMPS = [100, 300, 200, 400, 250]


def markdown() -> str:
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


def test_notebook_is_committed_without_outputs() -> None:
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    assert all(not c.get("outputs") and c.get("execution_count") is None
               for c in cells if c["cell_type"] == "code")


def test_section_1_segments_offsets_hw_and_leo() -> None:
    """Four segments based at 0, 2, 4, 6; offset 6 alone in the active one; HW = LEO = 7."""
    _, log = ls.build_log(KEYS, per_segment=2)
    table = ls.segments_table(log)
    assert table["base_offset"].tolist() == [0, 2, 4, 6]
    assert table["active"].tolist() == [False, False, False, True]
    assert table["file"].tolist()[1] == "00000000000000000002.log"
    assert (log.log_start_offset, log.high_watermark, log.log_end_offset) == (0, 7, 7)
    assert "based at offsets 0, 2, 4 and 6" in markdown()


def test_section_1_end_offset_is_the_next_offset_as_the_text_says() -> None:
    """The table's end_offset is one past a segment's last record (2 for offsets 0 and 1), as
    the text says; the retention text's 'offsets 0–467' sits beside end_offset 468."""
    _, log = ls.build_log(KEYS, per_segment=2)
    table = ls.segments_table(log)
    assert table["end_offset"].tolist() == [2, 4, 6, 7]
    assert table["end_offset"].iloc[-1] == log.log_end_offset
    records = log.records()["offset"]
    assert records[records < 2].tolist() == [0, 1]
    assert ("A segment's `end_offset` in the table works the same way: the segment based at 0 "
            "ends at 2 and holds offsets 0 and 1") in flat()


def test_section_1_defaults_stated_are_kafkas() -> None:
    """segment.bytes 1 GiB, segment.ms and retention.ms 7 days, delete.retention.ms 1 day."""
    from sim import config
    text = markdown()
    defaults = config.TOPIC.defaults()
    assert defaults["segment.bytes"] == 1 << 30
    assert "(default 1 GiB)" in text
    assert defaults["segment.ms"] == 7 * 24 * 3_600_000
    assert "(default 7 days)" in text
    assert defaults["retention.ms"] == 7 * 24 * 3_600_000
    assert defaults["delete.retention.ms"] == 86_400_000
    assert "(default 1 day)" in text


@pytest.fixture(scope="module")
def retention():
    return ls.retention_run()


def test_section_2_first_deletion_at_25_s_takes_two_whole_segments(retention) -> None:
    kernel, _ = retention
    deletes = ls.retention_deletions(kernel)
    first = deletes[deletes["time_ms"] == deletes["time_ms"].min()]
    assert first["time_ms"].iloc[0] == 25_000
    assert list(zip(first["base_offset"], first["end_offset"], strict=True)) == [(0, 468),
                                                                                (468, 936)]
    assert "at 25,000 ms" in markdown()
    assert "offsets 0–467 and 468–935" in markdown()


def test_section_2_audit_counts_deleted_by_retention_not_skipped_or_lost(retention) -> None:
    _, report = retention
    assert report.counts["deleted-by-retention"] > 2000
    assert report.counts["skipped"] == 0
    assert report.lost == 0
    assert "more than 2,000" in markdown()


def test_section_3_compaction_keeps_3_4_5_6() -> None:
    table = ls.compaction(KEYS)
    assert table.loc[table["kept"], "offset"].tolist() == [3, 4, 5, 6]
    assert "offsets 3, 4, 5 and 6 stay" in markdown()


def test_section_3_tombstone_stays_until_delete_retention_ms_has_passed() -> None:
    """KIP-534: the first cleaning sets the horizon; one at or after it drops the tombstone."""
    table = ls.compaction(KEYS, tombstones=[5], delete_retention_ms=1000, again_after_ms=1000)
    assert table.loc[table["kept"], "offset"].tolist() == [3, 4, 5, 6]
    assert table.loc[table["kept_later"], "offset"].tolist() == [3, 4, 6]
    assert "B" not in table.loc[table["kept_later"], "key"].tolist()
    early = ls.compaction(KEYS, tombstones=[5], delete_retention_ms=1000, again_after_ms=999)
    assert early.loc[early["kept_later"], "offset"].tolist() == [3, 4, 5, 6]
    text = markdown()
    assert "`delete.retention.ms=1000`, and the cleaner runs twice" in text
    assert "removes B's older record (offset 1) and keeps the\ntombstone" in text
    assert "offsets 3, 4 and 6 stay, and B is gone" in text


def test_compaction_refuses_keyless_records() -> None:
    with pytest.raises(ConfigError, match="only records with a key"):
        ls.compaction(["A", None])


def test_section_4_lookup_and_time_range() -> None:
    assert ls.lookup(STAMPS, 150) == OffsetAndTimestamp(1, 300)
    assert ls.offsets_between(STAMPS, 150, 260) == [2, 4]
    assert "returns offset 1 (timestamp 300)" in markdown()
    assert "offsets 2\nand 4" in markdown()


def test_hostile_input_gets_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="per_segment"):
        ls.build_log(KEYS, per_segment=0)
    with pytest.raises(ConfigError, match="one timestamp per key"):
        ls.build_log(KEYS, timestamps=[1, 2])


@pytest.fixture(scope="module")
def tiered():
    return ls.tiered_run()


def test_section_4_where_the_segments_live(tiered) -> None:
    """RLMCopyTask copies closed segments only; local deletion keeps local.retention.bytes."""
    table = ls.tiers_table(tiered)
    assert len(table) == 7
    only_remote = table[table["remote"] & ~table["local"]]
    assert only_remote["base_offset"].tolist() == [0, 8841, 17682, 26523]
    assert only_remote["end_offset"].max() == 35_364
    assert table[table["remote"] & table["local"]]["base_offset"].tolist() == [35_364, 44_205]
    assert table[~table["remote"]]["base_offset"].tolist() == [53_046]
    assert tiered.cluster.partition("clicks", 0).log.log_start_offset == 35_364
    text = markdown()
    assert "seven segments. The first four (offsets 0–35,363)" in text
    assert "local log start offset is 35,364" in text
    assert "(from\noffset 53,046)" in text


def test_section_4_parquet_folder_and_remote_reads(tiered) -> None:
    import pandas as pd

    folder = ls.remote_folder(tiered)
    assert str(folder).startswith(tempfile.gettempdir())
    assert not str(folder.resolve()).startswith(str(NOTEBOOK.parents[1]))
    assert len(list(folder.glob("*.parquet"))) == 6
    remote = pd.read_parquet(folder)
    assert remote["offset"].tolist() == list(range(53_046))
    reads = ls.remote_reads(tiered)
    latency = tiered.cluster.brokers[0].config["lab.remote.fetch.latency.ms"]
    assert latency == 50
    assert (reads["latency_ms"] >= latency).all()
    assert (reads["offset"] + reads["records"]).max() == 35_364
    text = markdown()
    assert "six Parquet objects" in text
    assert "holding 53,046 records" in text
    assert "the lab's 50 ms remote latency" in text
    assert "from offset 35,364 on" in text


def test_section_4_cost_table() -> None:
    table = ls.cost_table(50, retention_days=7, replication_factor=3, local_days=[None, 7, 2, 1])
    assert table["total_usd"].tolist() == [84.0, 92.06, 32.06, 20.06]
    # the untiered topic keeps every day on the brokers: the whole retention, not NaN
    assert table["tiered"].tolist() == [False, True, True, True]
    assert table["local_retention_days"].tolist() == [7.0, 7.0, 2.0, 1.0]
    assert not table.isna().any().any()
    text = " ".join(markdown().split())
    assert ("The first row is the topic without tiered storage (`local_days` None): `tiered` is "
            "False and `local_retention_days` is all 7 days") in text
    for amount in ("84.00 USD", "92.06 USD", "20.06 USD"):
        assert amount in text
    # every amount to the cent, as the text gives it: the disk column read 84.0
    html = table._repr_html_()
    assert "<td>84.00</td>" in html
    assert "<td>84.0</td>" not in html
    assert "<td>12.00</td>" in html
    # no dollar sign in the lesson's text: JupyterLab took "\$92.06 … \$20.06" for a formula
    # and set the words between them in math italics, escaped or not
    assert "$" not in text


def test_section_2_retention_preview_deletes_whole_segments() -> None:
    """UnifiedLog.deleteRetentionMsBreachedSegments: a segment goes when now minus its largest
    timestamp exceeds retention.ms; deleting every segment rolls an empty one first."""
    log = ls.retention_preview(7000)
    assert log.log_start_offset == 4
    assert [s.base_offset for s in log.segments] == [4, 6, 8]
    assert ls.retention_preview(7001).log_start_offset == 4
    assert ls.retention_preview(6999).log_start_offset == 6
    emptied = ls.retention_preview(2500)
    assert [s.base_offset for s in emptied.segments] == [10]
    assert emptied.log_end_offset == 10
    text = markdown()
    assert "with `retention.ms=7000` the log starts at offset 4" in text
    assert "newest record (5,000 ms)" in text
    assert "Slide down to 2,500: even the active segment goes" in text
    assert "new empty one at offset\n10" in text
    with pytest.raises(ConfigError, match="at least 0"):
        ls.retention_preview(-1)


def flat() -> str:
    """The lesson's markdown with every run of white space as one space."""
    return " ".join(markdown().split())


def test_section_3_dirty_ratio_runs() -> None:
    """LogCleanerManager.grabFilthiestCompactedLog: a log is cleaned only when its dirty ratio
    is above min.cleanable.dirty.ratio (0.5 by default; log.cleaner.backoff.ms 15 s)."""
    from sim import config

    broker, topic = config.BROKER.defaults(), config.TOPIC.defaults()
    assert broker["log.cleaner.backoff.ms"] == 15_000
    assert topic["min.cleanable.dirty.ratio"] == 0.5
    table = ls.dirty_ratio_table().set_index("min.cleanable.dirty.ratio")
    assert table.loc[0.5, "cleanings"] == 12
    assert table.loc[0.9, "cleanings"] == 2
    assert table.loc[0.5, "lowest_ratio_cleaned"] > 0.5
    assert table.loc[0.9, "lowest_ratio_cleaned"] > 0.9
    assert table.loc[0.5, "log_bytes_at_end"] == 60_860
    assert table.loc[0.9, "log_bytes_at_end"] == 514_449
    done = ls.cleanings(ls.dirty_ratio_run(0.9))
    assert done["time_ms"].tolist() == [1000, 8000]
    assert done["dirty_ratio"].tolist()[0] == 1.0
    text = flat()
    for claim in ("`log.cleaner.backoff.ms` (default 15 s; 1 s here)",
                  "`min.cleanable.dirty.ratio` (default 0.5)",
                  "500 keys are updated at 200 records/s for 30 s",
                  "with 0.5 the leader's cleaner runs 12 times; with 0.9 only twice — at 1,000 ms",
                  "its dirty ratio is 1.0) and at 8,000 ms",
                  "the log holds 60,860 bytes with 0.5 but 514,449 with 0.9"):
        assert claim in text


def test_section_3_log_view_of_the_0_9_run() -> None:
    """The slider's views: the cleaner point stays at 1,598 from 8 s and the dirty ratio climbs
    0.61, 0.77 … 0.89 without passing 0.9."""
    views = {v.time_ms: v.replicas.iloc[0] for v in ls.dirty_ratio_views(0.9)}
    assert all(row["cleaner_point"] == 1598 for t, row in views.items() if t >= 8000)
    assert [round(views[t]["dirty_ratio"], 2) for t in (12000, 16000, 28000)] == [0.61, 0.77, 0.89]
    assert max(row["dirty_ratio"] for t, row in views.items() if t > 8000) < 0.9
    text = flat()
    assert "from 8 s on the cleaner point stays at offset 1,598" in text
    assert "0.61 at 12 s, 0.77 at 16 s, 0.89 at 28 s — and never passes 0.9" in text


def test_section_4_log_view_of_the_tiered_run(tiered) -> None:
    """Three brokers with the same three local segments from 35,364; six remote from 0."""
    from sim.widgets.log_view import REMOTE_LANE, log_view

    view = log_view(tiered.cluster, "clicks", 0, tiered.now_ms)
    segments = view.segments
    local = segments[segments["lane"] != REMOTE_LANE]
    remote = segments[segments["lane"] == REMOTE_LANE]
    per_broker = local.groupby("lane")["base_offset"].apply(list)
    assert len(per_broker) == 3
    assert {tuple(v) for v in per_broker} == {(35_364, 44_205, 53_046)}
    assert len(remote) == 6
    assert remote["base_offset"].min() == 0
    assert view.log_start_offset == 0
    assert set(view.replicas["log_start_offset"]) == {35_364}
    text = flat()
    assert "the three brokers hold the same three local segments from offset 35,364" in text
    assert "the remote tier six segments from offset 0" in text
    assert "log start offset is 0 (in the remote tier); each broker's own log starts at 35,364" \
        in text


def test_tables_show_times_as_whole_milliseconds(retention, tiered) -> None:
    """The deletions, the cleanings and the remote reads showed 25000.0, 1000.0 and 23004.0 ms,
    the read latencies to five decimals (54.73430)."""
    kernel, _ = retention
    assert ls.retention_deletions(kernel)["time_ms"].dtype.kind == "i"
    table = ls.dirty_ratio_table()
    for column in ("first_at_ms", "last_at_ms"):
        assert table[column].dtype.kind == "i"
    reads = ls.remote_reads(tiered)
    assert reads["time_ms"].dtype.kind == "i"
    assert (reads["latency_ms"] == reads["latency_ms"].round(1)).all()


def test_section_3_dirty_ratio_table_shows_both_cleanings_the_text_names() -> None:
    """The text says the 0.9 run cleans at 1,000 ms and at 8,000 ms: the table shows both."""
    table = ls.dirty_ratio_table().set_index("min.cleanable.dirty.ratio")
    assert (table.loc[0.9, "first_at_ms"], table.loc[0.9, "last_at_ms"]) == (1000, 8000)
    assert table.loc[0.5, "last_at_ms"] == 30_000
    done = ls.cleanings(ls.dirty_ratio_run(0.9))
    assert table.loc[0.9, "last_at_ms"] == done["time_ms"].iloc[-1]
    assert "and at 8,000 ms" in flat()


def test_section_4_parquet_objects_are_listed_one_a_line() -> None:
    """The folder's objects, printed as one list, broke a name over two lines."""
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    [cell] = [c for c in cells if c.get("id") == "c20"]
    assert 'sep="\\n"' in "".join(cell["source"])


def test_section_2_audit_counts_are_shown_by_name(retention) -> None:
    """The cell showed a bare tuple (2256, 0, 0); the counts now carry the audit's names."""
    _, report = retention
    counts = ls.retention_counts(report)
    assert list(counts) == ["deleted-by-retention", "skipped", "lost"]
    assert counts["deleted-by-retention"] == report.counts["deleted-by-retention"] > 2000
    assert counts["skipped"] == counts["lost"] == 0
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    [cell] = [c for c in cells if c.get("id") == "c10"]
    assert "".join(cell["source"]) == "ls.retention_counts(report)"
