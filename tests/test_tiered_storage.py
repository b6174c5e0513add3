"""Specification of tiered storage (KIP-405): copying, local deletion, remote reads, ListOffsets,
the Parquet remote tier, its cost and its determinism.

Kafka sources: ``RemoteLogManager`` (``RLMCopyTask.candidateLogSegments``, ``copyLogSegment``,
``RLMExpirationTask``), ``LogConfig.validateTopicLogConfigValues``, ``ListOffsetsRequest``
(``EARLIEST_LOCAL_TIMESTAMP`` = -4, ``LATEST_TIERED_TIMESTAMP`` = -5), ``RemoteStorageMetrics``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim import config
from sim.broker import remote_log_manager as rlm
from sim.broker.remote_storage import COPY_SEGMENT_FINISHED
from sim.broker.storage_cost import LAB_PRICES, cluster_cost, monthly_cost, retention_plan
from sim.consumer import Consumer
from sim.errors import ConfigError
from sim.kernel import Kernel
from sim.payloads import payload
from sim.producer import Producer
from sim.records import TopicPartition, serialize
from sim.workloads import UniformKeys, Workload

MIB = 1 << 20
TIERED_BROKERS = {"remote.log.storage.system.enable": True,
                  "remote.log.manager.task.interval.ms": 1000,
                  "log.retention.check.interval.ms": 1000}


def tiered_kernel(seed: int = 1, records: int = 5000, topic_configs: dict | None = None,
                  broker_configs: dict | None = None, rf: int = 2) -> Kernel:
    """One tiered partition, 1 MiB segments, ~1 KB records: about one segment a 1,000 records."""
    def setup(kernel: Kernel) -> None:
        kernel.cluster.create_topic("events", 1, rf, {
            "remote.storage.enable": True, "segment.bytes": MIB, **(topic_configs or {})})
        producer = Producer(kernel, {"client.id": "writer"})
        producer.add_workload(Workload.generate(kernel.spawn_rng(), "events", records, 2000,
                                                keys=UniformKeys(20), value_bytes=1000))

    return Kernel(seed=seed, brokers=3, broker_configs={**TIERED_BROKERS, **(broker_configs or {})},
                  setup=setup)


def uploads(kernel: Kernel) -> pd.DataFrame:
    return kernel.trace.frame(rlm.TIER_UPLOAD)


# -- configs ---------------------------------------------------------------------------------


def test_tiered_storage_configs_have_kafkas_names_and_defaults() -> None:
    """TopicConfig / RemoteLogManagerConfig: off by default, local retention -2, 30 s tasks."""
    topic, broker = config.TOPIC.defaults(), config.BROKER.defaults()
    assert topic["remote.storage.enable"] is False
    assert topic["local.retention.ms"] == topic["local.retention.bytes"] == -2
    assert broker["remote.log.storage.system.enable"] is False
    assert broker["remote.log.manager.task.interval.ms"] == 30000


@pytest.mark.parametrize("policy", ["compact", "delete,compact", "compact,delete"])
def test_a_compacted_topic_cannot_be_tiered(policy: str) -> None:
    """LogConfig.validateNoRemoteStorageForCompactedTopic: Kafka's message, on one line."""
    with pytest.raises(ConfigError, match="Remote log storage is unsupported for the compacted "
                       "topics") as err:
        config.TOPIC.parse({"remote.storage.enable": True, "cleanup.policy": policy})
    assert "\n" not in str(err.value)
    config.TOPIC.parse({"remote.storage.enable": False, "cleanup.policy": policy})


@pytest.mark.parametrize(("given", "field"), [
    ({"retention.ms": 1000, "local.retention.ms": 2000}, "local.retention.ms"),
    ({"retention.ms": 1000, "local.retention.ms": -1}, "local.retention.ms"),
    ({"retention.bytes": 10, "local.retention.bytes": 11}, "local.retention.bytes"),
])
def test_local_retention_must_not_exceed_retention(given: dict, field: str) -> None:
    """LogConfig.validateRemoteStorageRetentionTime/Size: local ≤ total, and not -1 under a
    finite total; -2 (the default) always passes."""
    with pytest.raises(ConfigError, match=field):
        config.TOPIC.parse({"remote.storage.enable": True, **given})
    config.TOPIC.parse({"remote.storage.enable": True, "retention.ms": 1000})


def test_a_tiered_topic_needs_the_remote_log_storage_system() -> None:
    """LogConfig.validateRemoteStorageOnlyIfSystemEnabled."""
    kernel = Kernel(seed=0, brokers=1)
    with pytest.raises(ConfigError, match=r"remote\.log\.storage\.system\.enable=false"):
        kernel.cluster.create_topic("t", configs={"remote.storage.enable": True})
    assert "t" not in kernel.cluster.topics


# -- copying ---------------------------------------------------------------------------------


def test_only_closed_segments_wholly_below_the_high_watermark_are_copied() -> None:
    """candidateLogSegments: never the active segment, and a segment's records all < LSO."""
    kernel = tiered_kernel(records=3500).run(2500)
    part = kernel.cluster.partition("events", 0)
    log = part.log
    manager = kernel.cluster.remote_log_manager
    closed = log.closed_segments()
    assert len(closed) >= 3
    state = manager.states[("events", 0)]
    copied = {s.base_offset for s in state.segments()}
    assert copied == {s.base_offset for s in closed}
    assert log.active_segment.base_offset not in copied
    # hold the high watermark inside the second closed segment: nothing more is eligible
    kernel2 = tiered_kernel(records=3500)
    kernel2.run(1)
    part2 = kernel2.cluster.partition("events", 0)
    original = rlm.last_stable_offset
    try:
        rlm.last_stable_offset = lambda p: min(p.log.high_watermark,
                                               p.log.segments[1].end_offset - 1)
        kernel2.run(2500)
    finally:
        rlm.last_stable_offset = original
    tiered = kernel2.cluster.remote_log_manager.states[("events", 0)].segments()
    assert [s.base_offset for s in tiered] == [part2.log.segments[0].base_offset]


@pytest.mark.parametrize("topic_configs", [
    {"local.retention.bytes": 0},
    {"retention.ms": 100, "local.retention.ms": 100},  # the brokers' retention task runs too
])
def test_a_local_segment_is_deleted_only_after_its_upload(topic_configs: dict) -> None:
    """'a local log segment is eligible for deletion only after it gets uploaded' (ops.html):
    with a slow upload and a local retention already breached, the first segment stays on
    disk until its copy finished, then goes."""
    kernel = tiered_kernel(records=3000, topic_configs=topic_configs,
                           broker_configs={"lab.remote.copy.mb.per.s": 0.5,
                                           "log.retention.check.interval.ms": 200})
    kernel.run(2000)  # first copy started at the 1 s tick and takes about 2 s
    log = kernel.cluster.partition("events", 0).log
    assert uploads(kernel).empty
    assert log.log_start_offset == 0
    kernel.run(6000)
    done = uploads(kernel)
    deletes = kernel.trace.frame(rlm.TIER_DELETE)
    local = deletes[deletes["where"] == "local"]
    assert len(done)
    assert len(local)
    first = done.iloc[0]
    mine = local[local["base_offset"] == first["base_offset"]]
    assert len(mine) == 2  # on both replicas
    assert (mine["seq"] > first["seq"]).all()
    assert log.log_start_offset == first["end_offset"] + 1
    copied_ends = set(done["end_offset"])
    assert set(local["end_offset"]) <= copied_ends


# -- reads, ListOffsets -----------------------------------------------------------------------


def test_list_offsets_earliest_local_and_latest_tiered() -> None:
    """ListOffsetsRequest: -4 = local log start offset, -5 = highest offset in remote storage
    (-1 before any copy), -2 = log start offset with the remote tier included."""
    kernel = tiered_kernel(records=4000, topic_configs={"local.retention.bytes": 2 * MIB})
    kernel.run(900)
    cluster = kernel.cluster
    part = cluster.partition("events", 0)
    assert rlm.list_offsets(cluster, part, rlm.LATEST_TIERED_TIMESTAMP) == -1
    kernel.run(5000)
    state = cluster.remote_log_manager.states[("events", 0)]
    assert rlm.EARLIEST_LOCAL_TIMESTAMP == -4
    assert rlm.LATEST_TIERED_TIMESTAMP == -5
    local_start = rlm.list_offsets(cluster, part, -4)
    assert local_start == part.log.log_start_offset > 0
    assert rlm.list_offsets(cluster, part, -5) == state.segments()[-1].end_offset
    assert rlm.list_offsets(cluster, part, -2) == 0
    assert rlm.list_offsets(cluster, part, -1) == part.log.high_watermark
    with pytest.raises(ConfigError, match="-3"):
        rlm.list_offsets(cluster, part, -3)


def test_a_read_below_the_local_log_start_comes_from_the_remote_tier_with_its_latency() -> None:
    """A fetch in [log start, local log start) is served by the remote tier (RemoteLogReader):
    the records arrive after the remote latency, equal to the produced ones."""
    latency = 80.0
    kernel = tiered_kernel(records=4000, topic_configs={"local.retention.bytes": 2 * MIB},
                           broker_configs={"lab.remote.fetch.latency.ms": latency})
    kernel.run(6000)
    part = kernel.cluster.partition("events", 0)
    assert part.log.log_start_offset > 0
    consumer = Consumer(kernel, {"client.id": "reader"})
    tp = TopicPartition("events", 0)
    consumer.assign([tp])
    consumer.seek_to_beginning()
    assert consumer.position(tp) == 0
    before = kernel.now_ms
    records = consumer.poll(timeout_ms=1000)
    waited = kernel.now_ms - before
    assert len(records)
    assert records[0].offset == 0
    reads = kernel.trace.frame(rlm.REMOTE_READ)
    assert len(reads) == 1
    assert reads.iloc[0]["offset"] == 0
    assert reads.iloc[0]["latency_ms"] >= latency
    assert waited >= reads.iloc[0]["latency_ms"]
    poll_check = consumer.config["lab.poll.check.ms"]
    assert waited <= reads.iloc[0]["latency_ms"] + poll_check  # no idle wait on top
    ids = np.array([r.record_id for r in records])
    first = kernel.clients[0]
    assert [payload(kernel, i)[0] for i in ids[:5]] == [
        first.keys[first.buffer.key_id[i]] for i in ids[:5]]
    # reading at or above the local log start needs no remote read
    consumer.seek(tp, part.log.log_start_offset)
    consumer.poll(timeout_ms=100)
    assert len(kernel.trace.frame(rlm.REMOTE_READ)) == 1


# -- the Parquet folder --------------------------------------------------------------------------


def test_the_parquet_objects_hold_the_logs_records() -> None:
    """One object per copied segment, named by base offset; its rows equal the log's records,
    with keys as the serialized bytes; the index lists each segment's metadata."""
    kernel = tiered_kernel(records=3000).run(4000)
    manager = kernel.cluster.remote_log_manager
    log = kernel.cluster.partition("events", 0).log
    state = manager.states[("events", 0)]
    folder = manager.root / "events-0"
    names = sorted(p.name for p in folder.iterdir())
    segments = state.segments()
    assert names == sorted(f"{s.base_offset:020d}.parquet" for s in segments)
    for segment in segments:
        frame = pd.read_parquet(folder / f"{segment.base_offset:020d}.parquet")
        local = log.records(segment.base_offset, segment.end_offset + 1)
        for column in ("offset", "timestamp_ms", "key_hash", "value_size", "record_id"):
            assert (frame[column].to_numpy() == local[column].to_numpy()).all(), column
        keys = [serialize(payload(kernel, int(i))[0]) for i in local["record_id"]]
        assert list(frame["key"]) == keys
        assert segment.max_timestamp_ms == int(local["timestamp_ms"].max())
    index = pd.read_parquet(manager.root / "_index" / "events-0.parquet")
    assert list(index["base_offset"]) == [s.base_offset for s in segments]
    assert set(index["state"]) == {COPY_SEGMENT_FINISHED}
    whole = pd.read_parquet(folder)  # the folder as one dataset: every copied record
    assert whole["offset"].tolist() == list(range(segments[-1].end_offset + 1))


def test_same_seed_same_remote_files(tmp_path: Path) -> None:
    """Deterministic names and contents: two runs with one seed write identical bytes."""
    contents = []
    for run in ("a", "b"):
        kernel = tiered_kernel(seed=5, records=3000,
                               broker_configs={"lab.remote.storage.dir": str(tmp_path / run)})
        kernel.run(4000)
        root = tmp_path / run
        contents.append({str(p.relative_to(root)): p.read_bytes()
                         for p in sorted(root.rglob("*.parquet"))})
    assert len(contents[0]) == 3  # two segments and the index
    assert contents[0] == contents[1]


# -- leadership moves during a copy -------------------------------------------------------------


def test_a_copy_abandoned_by_a_leader_change_is_copied_once_by_the_new_leader() -> None:
    """The old leader loses leadership mid-upload: its copy is abandoned (no object), the new
    leader copies the same segment to the same object, and no offset is missing or doubled."""
    kernel = tiered_kernel(records=3000, rf=3, broker_configs={"lab.remote.copy.mb.per.s": 0.5})
    kernel.run(1500)  # an upload is under way from the first leader
    part = kernel.cluster.partition("events", 0)
    first_leader = part.leader
    kernel.controller.crash_broker(first_leader)
    kernel.run(20000)  # the controller moves leadership once the broker session times out
    done = uploads(kernel)
    abandoned = done[done["outcome"].str.startswith("abandoned")]
    copied = done[done["outcome"] == "copied"]
    assert len(abandoned) >= 1
    assert (abandoned["node"] == first_leader).all()
    assert (copied["node"] != first_leader).all()
    state = kernel.cluster.remote_log_manager.states[("events", 0)]
    segments = state.segments()
    offsets = np.concatenate([np.arange(s.base_offset, s.end_offset + 1) for s in segments])
    assert (offsets == np.arange(len(offsets))).all()  # contiguous from 0, none twice
    assert copied["base_offset"].is_unique
    stored = kernel.cluster.remote_log_manager.rsm.read_partition("events", 0)
    assert (stored["offset"].to_numpy() == offsets).all()


# -- metrics and cost ----------------------------------------------------------------------------


def test_remote_copy_lag_and_fetch_metrics() -> None:
    """RemoteCopyLagBytes: closed local segments not yet copied; fetch bytes count reads."""
    kernel = tiered_kernel(records=3000, broker_configs={"lab.remote.copy.mb.per.s": 0.5})
    kernel.run(1500)
    row = kernel.cluster.remote_log_manager.metrics().iloc[0]
    log = kernel.cluster.partition("events", 0).log
    assert row["RemoteCopyLagBytes"] == sum(s.size_bytes for s in log.closed_segments()) > 0
    assert row["RemoteFetchBytes"] == 0
    kernel.run(15000)
    row = kernel.cluster.remote_log_manager.metrics().iloc[0]
    assert row["RemoteCopyLagBytes"] == 0
    assert row["RemoteLogSizeBytes"] == row["RemoteCopyBytes"] > 0


def test_cost_model_turns_sizes_into_money() -> None:
    """1 TB on 3 replicas of disk vs 1 TB in object storage, at the lab's assumed prices."""
    tb = 1e12
    disk = monthly_cost(tb, 3)
    assert disk["total_usd"] == pytest.approx(3 * 1000 * LAB_PRICES.disk_per_gb_month)
    remote = monthly_cost(0, 3, remote_bytes=tb)
    assert remote["total_usd"] == pytest.approx(1000 * LAB_PRICES.object_per_gb_month)
    local_only = retention_plan(100e9, 30, 3)
    tiered = retention_plan(100e9, 30, 3, local_retention_days=1)
    assert tiered["total_usd"] < local_only["total_usd"]
    with pytest.raises(ValueError, match="local_retention_days"):
        retention_plan(100e9, 30, 3, local_retention_days=31)
    kernel = tiered_kernel(records=3000).run(4000)
    cost = cluster_cost(kernel.cluster).iloc[0]
    assert cost["remote_bytes"] > 0
    assert cost["object_storage_usd"] > 0


# -- the built-in scenario ----------------------------------------------------------------------


def test_tiered_read_scenario_serves_old_offsets_from_the_remote_tier() -> None:
    """tiered-read: the replay starts below the local log start offset; those offsets come
    from the remote tier, each read after at least the remote latency, the rest from disk, and
    every acknowledged record is read once."""
    from sim import scenarios
    from sim.audit import audit_kernel

    kernel = scenarios.load("tiered-read").run()
    part = kernel.cluster.partition("clicks", 0)
    reads = kernel.trace.frame(rlm.REMOTE_READ)
    latency = kernel.cluster.brokers[0].config["lab.remote.fetch.latency.ms"]
    assert part.log.log_start_offset > 0
    assert reads["offset"].min() == 0
    assert (reads["offset"] + reads["records"]).max() == part.log.log_start_offset
    assert (reads["latency_ms"] >= latency).all()
    report = audit_kernel(kernel)
    assert report.valid
    assert report.read == report.acknowledged == 60000
    assert report.counts["duplicate"] == 0


def test_remote_segments_expire_under_retention_ms_and_move_the_log_start() -> None:
    """RLMExpirationTask: a remote segment whose largest timestamp is older than retention.ms
    is deleted (object and metadata); the log start offset moves past it, and local segments
    below it go too."""
    kernel = tiered_kernel(records=4000, topic_configs={"retention.ms": 3000,
                                                        "local.retention.ms": 1000})
    kernel.run(2800)
    cluster = kernel.cluster
    part = cluster.partition("events", 0)
    manager = cluster.remote_log_manager
    state = manager.states[("events", 0)]
    first = state.segments()[0]
    assert rlm.log_start_offset(cluster, part) == 0
    kernel.run(first.max_timestamp_ms + 3000 + 1001)
    assert first.base_offset not in {s.base_offset for s in state.segments()}
    assert not (manager.root / first.object_name).exists()
    start = rlm.log_start_offset(cluster, part)
    assert start == state.remote_log_start_offset == first.end_offset + 1
    assert part.log.log_start_offset >= start
    deletes = kernel.trace.frame(rlm.TIER_DELETE)
    assert first.base_offset in set(deletes[deletes["where"] == "remote"]["base_offset"])
    index = pd.read_parquet(manager.root / "_index" / "events-0.parquet")
    assert first.base_offset not in set(index["base_offset"])


def test_a_reused_remote_folder_starts_empty(tmp_path: Path) -> None:
    """Objects of an earlier run in a lab.remote.storage.dir folder do not mix with this run's."""
    stale = tmp_path / "events-0" / f"{99999:020d}.parquet"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old")
    stale_index = tmp_path / "_index" / "events-0.parquet"
    stale_index.parent.mkdir()
    stale_index.write_bytes(b"old")
    tiered_kernel(records=2000, broker_configs={"lab.remote.storage.dir": str(tmp_path)})
    assert not stale.exists()
    assert not stale_index.exists()


def test_remote_files_do_not_depend_on_the_hash_seed(tmp_path: Path) -> None:
    """tiered-read in fresh interpreters under two PYTHONHASHSEEDs writes identical files."""
    import os
    import subprocess
    import sys

    from sim import scenarios

    root = Path(__file__).resolve().parents[1]
    text = (root / "sim" / "scenarios" / "tiered-read.yaml").read_text(encoding="utf-8")
    assert scenarios.load("tiered-read").name == "tiered-read"
    folders = []
    for seed in ("0", "1"):
        folder = tmp_path / f"remote-{seed}"
        scenario = tmp_path / f"tiered-{seed}.yaml"
        scenario.write_text(text.replace(
            "remote.log.manager.task.interval.ms: 5000",
            f"remote.log.manager.task.interval.ms: 5000\n    lab.remote.storage.dir: {folder}"),
            encoding="utf-8")
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(root)}
        proc = subprocess.run([sys.executable, "-m", "sim", "run", str(scenario)], env=env,
                              capture_output=True, timeout=300, check=False)
        assert (proc.returncode, proc.stderr) == (0, b"")
        folders.append({str(p.relative_to(folder)): p.read_bytes()
                        for p in sorted(folder.rglob("*.parquet"))})
    assert len(folders[0]) > 2
    assert folders[0] == folders[1]


# -- the fault fuzzer ----------------------------------------------------------------------------


@pytest.mark.parametrize(("index", "what"), [(6, "abandoned"), (1, "remote reads")])
def test_tiered_fuzz_schedules_keep_the_remote_tier_consistent(index: int, what: str) -> None:
    """Fuzzer profile ``tiered``: schedule 6 of seed 3 moves leadership during an upload,
    schedule 1 has a consumer read records the leader no longer holds locally from the remote
    tier; neither loses, duplicates or leaves the remote tier inconsistent (gap, overlap, stray
    object, different records)."""
    from sim import scenarios
    from sim.fuzz import PROFILES, check_scenario, generate, to_yaml

    profile = PROFILES["tiered"]
    scenario = generate(profile, 3, index)
    verdict = check_scenario(scenario, profile)
    assert verdict.violations == []
    kernel = scenarios.parse(to_yaml(scenario)).run()
    outcomes = kernel.trace.frame(rlm.TIER_UPLOAD)["outcome"]
    if what == "abandoned":
        assert outcomes.str.startswith("abandoned").any()
    else:
        assert len(kernel.trace.frame(rlm.REMOTE_READ)) > 0
    assert kernel.cluster.remote_log_manager.consistency_problems() == []


def test_the_remote_tier_check_finds_a_stray_object() -> None:
    """consistency_problems names an object the metadata does not list (a copy left behind)."""
    kernel = tiered_kernel(records=3000).run(4000)
    manager = kernel.cluster.remote_log_manager
    assert manager.consistency_problems() == []
    segment = manager.states[("events", 0)].segments()[-1]
    stray = manager.root / "events-0" / f"{segment.end_offset + 1:020d}.parquet"
    stray.write_bytes((manager.root / segment.object_name).read_bytes())
    problems = manager.consistency_problems()
    assert len(problems) == 1
    assert stray.name in problems[0]


def test_lookup_by_time_and_beginning_offsets_reach_into_the_remote_tier() -> None:
    """offsetsForTimes searches the remote tier first (RemoteLogManager.findOffsetByTimestamp):
    a time whose records left the brokers' disks still finds its offset, the one the whole log
    holds; beginningOffsets is the log start offset, remote included."""
    kernel = tiered_kernel(records=4000, topic_configs={"local.retention.bytes": 2 * MIB})
    kernel.run(6000)
    part = kernel.cluster.partition("events", 0)
    local_start = part.log.log_start_offset
    assert local_start > 0
    stored = kernel.cluster.remote_log_manager.rsm.read_partition("events", 0)
    stamps = np.concatenate([stored["timestamp_ms"].to_numpy(),
                             part.log.column("timestamp_ms", int(stored["offset"].max()) + 1,
                                             part.log.high_watermark)])
    consumer = Consumer(kernel, {"client.id": "finder"})
    tp = TopicPartition("events", 0)
    for target in (0, int(stamps[local_start // 2]) + 1, int(stamps[local_start + 10])):
        expected = int(np.flatnonzero(stamps >= target)[0])
        found = consumer.offsets_for_times({tp: target})[tp]
        assert found is not None
        assert (found.offset, found.timestamp) == (expected, int(stamps[expected]))
    assert consumer.beginning_offsets([tp]) == {tp: 0}


def test_a_tiered_topic_needs_a_kernel() -> None:
    """Copying takes simulated time: a bare Cluster refuses a tiered topic in one line."""
    from sim.broker.cluster import Cluster

    cluster = Cluster(1, broker_configs={"remote.log.storage.system.enable": True})
    with pytest.raises(ConfigError, match="needs simulated time"):
        cluster.create_topic("t", configs={"remote.storage.enable": True})
    assert "t" not in cluster.topics


def test_remote_reads_of_one_broker_share_its_throughput() -> None:
    """Two remote reads started together on one leader: the second waits for the first's bytes
    (lab.remote.fetch.mb.per.s is the broker's, not each read's)."""
    def setup(kernel: Kernel) -> None:
        kernel.cluster.create_topic("events", configs={
            "remote.storage.enable": True, "segment.bytes": MIB,
            "local.retention.bytes": MIB}, replica_assignment=[[0], [0]])
        producer = Producer(kernel, {"client.id": "writer"})
        producer.add_workload(Workload.generate(kernel.spawn_rng(), "events", 8000, 4000,
                                                keys=UniformKeys(20), value_bytes=1000))

    kernel = Kernel(seed=2, brokers=1, broker_configs=TIERED_BROKERS, setup=setup).run(6000)
    consumer = Consumer(kernel, {"client.id": "reader", "max.poll.records": 100})
    tps = [TopicPartition("events", 0), TopicPartition("events", 1)]
    consumer.assign(tps)
    consumer.seek_to_beginning()
    consumer.poll(timeout_ms=2000)
    reads = kernel.trace.frame(rlm.REMOTE_READ)
    first, second = reads.iloc[0], reads.iloc[1]
    assert first["time_ms"] == second["time_ms"]
    config = kernel.cluster.brokers[0].config
    rate = config["lab.remote.fetch.mb.per.s"] * 1e6 / 1000
    assert first["latency_ms"] == pytest.approx(config["lab.remote.fetch.latency.ms"]
                                                + first["bytes"] / rate)
    assert second["latency_ms"] == pytest.approx(first["latency_ms"] + second["bytes"] / rate)


def test_the_audit_ties_records_expired_from_the_remote_tier_to_retention() -> None:
    """Records nobody read before retention.ms expired them from the remote tier are
    deleted-by-retention (Kafka allows it), with the remote deletion as the cause, not lost."""
    from sim.audit import audit_kernel

    kernel = tiered_kernel(records=4000, topic_configs={"retention.ms": 3000,
                                                        "local.retention.ms": 1000})
    kernel.run(12000)
    state = kernel.cluster.remote_log_manager.states[("events", 0)]
    assert state.delete_requests > 0
    report = audit_kernel(kernel)
    assert report.valid
    assert report.counts["lost-write"] == 0
    assert report.counts["deleted-by-retention"] == state.remote_log_start_offset
    deletes = kernel.trace.frame(rlm.TIER_DELETE)
    remote_seqs = set(deletes[deletes["where"] == "remote"]["seq"])
    causes = {r["cause"]["seq"] for r in report.anomalies["deleted-by-retention"]}
    assert causes <= remote_seqs


def test_reset_by_duration_finds_its_offset_in_the_remote_tier() -> None:
    """auto.offset.reset=by_duration (KIP-1106) looks the time up like offsetsForTimes, so a
    time whose records are only in the remote tier starts the consumer there."""
    kernel = tiered_kernel(records=4000, topic_configs={"local.retention.bytes": 2 * MIB})
    kernel.run(6000)
    part = kernel.cluster.partition("events", 0)
    assert part.log.log_start_offset > 0
    consumer = Consumer(kernel, {"client.id": "late", "auto.offset.reset": "by_duration:PT5.9S"})
    tp = TopicPartition("events", 0)
    consumer.assign([tp])
    stored = kernel.cluster.remote_log_manager.rsm.read_partition("events", 0)
    target = kernel.now_ms - 5900
    expected = int(stored[stored["timestamp_ms"] >= target]["offset"].iloc[0])
    assert consumer.position(tp) == expected < part.log.log_start_offset


def test_after_an_unclean_election_the_remote_tier_follows_the_new_leaders_history() -> None:
    """isRemoteSegmentWithinLeaderEpochs: segments the old leader copied past where the new
    (unclean) leader's epoch 0 ends are not its history; they are deleted and copying resumes
    from the new leader's log, so the remote tier holds its records, not the lost ones."""
    def setup(kernel: Kernel) -> None:
        kernel.cluster.create_topic("events", configs={
            "remote.storage.enable": True, "segment.bytes": MIB, "min.insync.replicas": 1,
            "unclean.leader.election.enable": True}, replica_assignment=[[0, 1]])
        producer = Producer(kernel, {"client.id": "writer", "acks": "1",
                                     "enable.idempotence": False})
        producer.add_workload(Workload.generate(kernel.spawn_rng(), "events", 12000, 1000,
                                                keys=UniformKeys(20), value_bytes=1000))

    kernel = Kernel(seed=1, brokers=2, broker_configs={**TIERED_BROKERS,
                                                       "replica.lag.time.max.ms": 2000},
                    setup=setup)
    kernel.run(1000)
    kernel.cluster.network.cut(0, 1)  # broker 1 falls behind and leaves the ISR
    kernel.run(5000)
    part = kernel.cluster.partition("events", 0)
    behind = part.logs[1].log_end_offset
    copied_by_old = uploads(kernel)
    assert (copied_by_old["end_offset"] > behind).any()
    kernel.controller.crash_broker(0)
    kernel.cluster.network.heal(0, 1)
    kernel.run(30000)
    assert part.leader == 1
    manager = kernel.cluster.remote_log_manager
    deletes = kernel.trace.frame(rlm.TIER_DELETE)
    dropped = deletes[deletes["where"].str.contains("lineage")]
    assert len(dropped) > 0
    assert manager.consistency_problems() == []
    stored = manager.rsm.read_partition("events", 0)
    ids = part.log.column("record_id", int(stored["offset"].min()),
                          int(stored["offset"].max()) + 1)
    assert (stored["record_id"].to_numpy() == ids).all()


def test_values_given_to_send_reach_the_parquet_objects() -> None:
    """Keys and values a producer sent are in the objects as the bytes Kafka's serializers
    make (String → UTF-8, Integer → 4 bytes); a null key stays null."""
    def setup(kernel: Kernel) -> None:
        kernel.cluster.create_topic("events", configs={
            "remote.storage.enable": True, "lab.segment.bytes": 2000})

    kernel = Kernel(seed=0, brokers=1, broker_configs=TIERED_BROKERS, setup=setup)
    producer = Producer(kernel, {"client.id": "writer", "linger.ms": 0})
    sent = [(None if i % 7 == 0 else f"user-{i % 5}", i * 1000) for i in range(200)]
    for i, (key, value) in enumerate(sent):
        producer.send("events", key=key, value=value)
        if i % 10 == 9:
            kernel.run(kernel.now_ms + 10)  # a batch of ten, then the next
    kernel.run(3000)
    stored = kernel.cluster.remote_log_manager.rsm.read_partition("events", 0)
    assert len(stored) > 50
    for row in stored.itertuples():
        key, value = sent[row.offset]
        assert row.key == serialize(key)
        assert row.value == serialize(value)


def test_an_open_transaction_holds_copying_back() -> None:
    """candidateLogSegments copies only below the last stable offset: closed segments of a
    transaction still open stay local until its commit marker is written."""
    def setup(kernel: Kernel) -> None:
        kernel.cluster.create_topic("events", configs={
            "remote.storage.enable": True, "lab.segment.bytes": 2000})

    kernel = Kernel(seed=0, brokers=1, broker_configs=TIERED_BROKERS, setup=setup)
    producer = Producer(kernel, {"client.id": "writer", "linger.ms": 0,
                                 "transactional.id": "loader"})
    producer.init_transactions()
    producer.begin_transaction()
    for i in range(100):
        producer.send("events", key=f"k{i % 5}", value=i)
        if i % 10 == 9:
            kernel.run(kernel.now_ms + 10)
    kernel.run(kernel.now_ms + 3000)
    log = kernel.cluster.partition("events", 0).log
    state = kernel.cluster.remote_log_manager.states[("events", 0)]
    assert len(log.closed_segments()) >= 2
    assert log.last_stable_offset == 0 < log.high_watermark
    assert state.segments() == []
    producer.commit_transaction()
    kernel.run(kernel.now_ms + 3000)
    assert state.highest_copied_offset >= log.closed_segments()[-1].end_offset - 1


@pytest.mark.parametrize("isolation", ["read_committed", "read_uncommitted"])
def test_remote_reads_hide_markers_and_for_read_committed_aborted_records(isolation: str) -> None:
    """Read from the remote tier, a transactional log looks as it does locally: no consumer
    sees a marker; read_committed skips aborted transactions (the copied flags stand in for
    the segment's uploaded transaction index)."""
    def setup(kernel: Kernel) -> None:
        kernel.cluster.create_topic("events", configs={
            "remote.storage.enable": True, "lab.segment.bytes": 2000,
            "local.retention.bytes": 2000})

    kernel = Kernel(seed=0, brokers=1, broker_configs=TIERED_BROKERS, setup=setup)
    producer = Producer(kernel, {"client.id": "writer", "linger.ms": 0,
                                 "transactional.id": "loader"})
    producer.init_transactions()
    for round_ in range(6):
        producer.begin_transaction()
        for i in range(20):
            producer.send("events", key=f"k{i % 5}", value=round_ * 100 + i)
            if i % 10 == 9:
                kernel.run(kernel.now_ms + 10)
        if round_ % 2:
            producer.abort_transaction()
        else:
            producer.commit_transaction()
        kernel.run(kernel.now_ms + 50)
    kernel.run(kernel.now_ms + 3000)
    log = kernel.cluster.partition("events", 0).log
    assert log.log_start_offset > 40
    consumer = Consumer(kernel, {"client.id": "reader", "isolation.level": isolation})
    tp = TopicPartition("events", 0)
    consumer.assign([tp])
    consumer.seek(tp, 0)
    seen = []
    while consumer.position(tp) < log.log_start_offset:
        seen += [r.offset for r in consumer.poll(timeout_ms=500)]
    assert len(kernel.trace.frame(rlm.REMOTE_READ)) > 0
    flags = kernel.cluster.remote_log_manager.rsm.read_partition("events", 0)
    flags = flags[flags["offset"] < log.log_start_offset]
    markers = set(flags[flags["control"]]["offset"])
    aborted = set(flags[flags["aborted"]]["offset"])
    assert markers
    assert aborted
    assert not markers & set(seen)
    if isolation == "read_committed":
        assert not aborted & set(seen)
        assert set(seen) == set(flags["offset"]) - markers - aborted
    else:
        assert set(seen) == set(flags["offset"]) - markers
