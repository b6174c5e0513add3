"""The delivery audit's column-at-a-time checks against a per-record reference.

``sim.audit`` finds lost records, their causes, unseen ranges and offset anomalies with sorts
and sorted searches over whole columns. The reference here follows the module docstring one
record at a time, in plain Python, as simply as it can be written; both must agree on random
histories (ties in time, several topics, partitions, replicas, producers, elections, zombie
acknowledgements, acks=0 records, retention deletions and cleanings) and on fuzzer runs that
lose records or whose records retention deleted.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from sim import audit, scenarios
from sim.fuzz.generator import PROFILES, generate, to_yaml

TOPICS = ("a", "b")


def _reference_cause(record: dict[str, Any], history: audit.LossHistory,
                     lists: dict[str, list[Any]]) -> tuple[int | None, int | None]:
    """(cause seq, left-behind seq) of one lost record, by scanning every removal and election
    (``lists``: the history's removals, elections and appends as plain rows)."""
    topic, partition, offset = record["topic"], record["partition"], record["offset"]
    final = history.leaders.get((topic, partition), -1)
    removals = [r for r in lists["removed"]
                if r["record_id"] == record["record_id"] and r["topic"] == topic
                and r["partition"] == partition and r["time_ms"] >= record["ack_ms"]
                and (offset < 0 or r["offset"] == offset)]
    on_final = [r["seq"] for r in removals if r["node"] == final]
    cause = max(on_final) if on_final else min((r["seq"] for r in removals), default=None)
    if on_final:
        return cause, None
    elections = [e for e in lists["elections"] if (e[3], e[4]) == (topic, partition)]
    # the broker that appended the producer's last batch by the acknowledgement (the later
    # one of two at the same time)
    appended = [(a["time_ms"], k, int(a["node"])) for k, a in enumerate(lists["appends"])
                if a["topic"] == topic and a["partition"] == partition
                and a["producer"] == record["record_id"] >> 40
                and a["time_ms"] <= record["ack_ms"]]
    acked_by = max(appended)[2] if appended else -1
    before = [e for e in elections if e[0] <= record["ack_ms"]]
    if before and acked_by >= 0 and before[-1][2] != acked_by:
        elected = before[-1][1]  # a zombie's write: the election that had replaced it
    else:
        later = [e for e in elections if e[0] > record["ack_ms"] and e[2] != acked_by]
        elected = later[0][1] if later else None
    if elected is None:
        return cause, None
    return (elected, None) if cause is None else (cause, elected)


def _effective_elections(history: audit.LossHistory) -> list[tuple]:
    """(time, seq, leader, topic, partition) of each election of a leader that took effect:
    of a partition's elections at one instant, only the last (by seq)."""
    every = sorted((float(e["time_ms"]), int(seq), int(e["leader"]), e["topic"],
                    int(e["partition"])) for seq, e in history.events.iterrows()
                   if e["kind"] == "leader.election")
    last = {(e[0], e[3], e[4]): e[1] for e in every}
    return [e for e in every if e[2] >= 0 and last[(e[0], e[3], e[4])] == e[1]]


def _reference_storage(record: dict[str, Any], removed: list[dict[str, Any]],
                       storage: audit.StorageHistory,
                       rows: dict[str, list[dict[str, Any]]]) -> tuple[str, int] | None:
    """(kind, seq) of the storage rule that removed an unread record from the final leader's
    replica, None when none did or when a truncation or lost disk had removed its
    acknowledged copy there first (at its offset, once acknowledged: an earlier copy of the
    same record id does not count). ``removed``: the loss history's removals, ``rows``: the
    storage history's deletions and cleanings, as plain rows."""
    topic, partition, offset = record["topic"], record["partition"], record["offset"]
    final = storage.leaders.get((topic, partition), -1)
    for r in removed:
        if (r["record_id"] == record["record_id"] and r["node"] == final
                and (r["topic"], r["partition"]) == (topic, partition)
                and r["time_ms"] >= record["ack_ms"] and (offset < 0 or r["offset"] == offset)):
            return None
    mine = [c for c in rows["cleaned"]
            if c["record_id"] == record["record_id"] and c["node"] == final
            and (c["topic"], c["partition"]) == (topic, partition)]
    if mine:
        return "compacted-away", mine[0]["seq"]
    deleted = [d["seq"] for d in rows["deletions"]
               if (d["topic"], d["partition"], d["node"]) == (topic, partition, final)
               and d["base_offset"] <= offset < d["end_offset"]]
    return ("deleted-by-retention", min(deleted)) if deleted else None


def _reference(acked: pd.DataFrame, seen: pd.DataFrame, stored: np.ndarray,
               history: audit.LossHistory,
               storage: audit.StorageHistory | None = None) -> dict[str, Any]:
    """Lost records (with cause seqs), unseen runs, offset anomalies and (with ``storage``)
    the records the storage rules removed, record by record."""
    read_ids = {int(i) for i in seen["record_id"] if i >= 0}
    highest: dict[tuple[str, int], int] = {}
    for read in seen.to_dict("records"):
        key = (read["topic"], read["partition"])
        highest[key] = max(highest.get(key, -1), read["offset"])
    stored_ids = set(stored.tolist())
    lists = {"removed": history.removed.to_dict("records"),
             "appends": history.appends.to_dict("records"),
             "elections": _effective_elections(history)}
    storage_rows = {} if storage is None else {
        "cleaned": storage.cleaned.to_dict("records"),
        "deletions": storage.deletions.to_dict("records")}
    lost, unseen, removed_by_storage = [], [], []
    for record in acked.to_dict("records"):
        if record["record_id"] in read_ids:
            continue
        rule = None if storage is None else _reference_storage(record, lists["removed"],
                                                               storage, storage_rows)
        if rule is not None:
            removed_by_storage.append((*rule, record["topic"], record["partition"],
                                       record["offset"]))
            continue
        top = highest.get((record["topic"], record["partition"]), -1)
        if 0 <= record["offset"] <= top or record["record_id"] not in stored_ids:
            lost.append((record["topic"], record["partition"], record["offset"],
                         record["record_id"], top, *_reference_cause(record, history, lists)))
        else:
            unseen.append(record)
    runs: list[list[Any]] = []
    for r in sorted(unseen, key=lambda r: (r["topic"], r["partition"], r["offset"])):
        if (runs and runs[-1][:2] == [r["topic"], r["partition"]] and r["offset"] >= 0
                and runs[-1][3] + 1 == r["offset"]):
            runs[-1][3] = r["offset"]
            runs[-1][4] += 1
        else:
            runs.append([r["topic"], r["partition"], r["offset"], r["offset"], 1, r["writer"]])
    rows = [(r["topic"], r["partition"], r["offset"], r["record_id"])
            for r in acked.to_dict("records") if r["offset"] >= 0]
    rows += [(r["topic"], r["partition"], r["offset"], r["record_id"])
             for r in seen.to_dict("records") if r["record_id"] >= 0]
    distinct = list(dict.fromkeys(rows))
    at: dict[tuple[str, int, int], list[int]] = {}
    where: dict[int, list[str]] = {}
    for t, p, o, i in distinct:
        at.setdefault((t, p, o), []).append(i)
        where.setdefault(i, []).append(f"{t}-{p}@{o}")
    return {"lost": lost, "unseen": [tuple(r) for r in runs],
            "inconsistent": sorted((t, p, o, sorted(ids)) for (t, p, o), ids in at.items()
                                   if len(ids) > 1),
            "duplicate": sorted((i, len(w), w) for i, w in where.items() if len(w) > 1),
            **({} if storage is None else {"storage": sorted(removed_by_storage)})}


def _found(report: audit.AuditReport) -> dict[str, Any]:
    """The same findings, from the audit's report."""
    def seq(event: dict[str, Any] | None) -> int | None:
        return None if event is None else event["seq"]

    return {"lost": [(r["topic"], r["partition"], r["offset"], r["record_id"],
                      r["max_read_offset"], seq(r["cause"]), seq(r["left_behind_by"]))
                     for r in report.lost_records],
            "unseen": [(r["topic"], r["partition"], r["first_offset"], r["last_offset"],
                        r["count"], r["writer"]) for r in report.anomalies["unseen"]],
            "inconsistent": [(r["topic"], r["partition"], r["offset"], r["record_ids"])
                             for r in report.anomalies["inconsistent-offsets"]],
            "duplicate": sorted((r["record_id"], r["count"], r["offsets"])
                                for r in report.anomalies["duplicate"])}


def _found_storage(report: audit.AuditReport) -> list[tuple[str, int, str, int, int]]:
    """The records the report says the storage rules removed, one (kind, seq, topic,
    partition, offset) each."""
    return sorted((kind, run["cause"]["seq"], run["topic"], run["partition"], offset)
                  for kind in audit.STORAGE_KINDS for run in report.anomalies[kind]
                  for offset in range(run["first_offset"], run["last_offset"] + 1))


def _random_history(seed: int) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray,
                                        audit.LossHistory]:
    """Writes, reads, stored ids and a loss history drawn at random, with times on a coarse
    grid so that acknowledgements, appends, removals and elections often tie."""
    rng = np.random.default_rng(seed)
    writes, reads, removed, events, appends = [], [], [], [], []
    seq = 0
    leaders: dict[tuple[str, int], int] = {}
    for topic in TOPICS:
        for partition in range(2):
            leaders[(topic, partition)] = int(rng.integers(0, 3))
            n = int(rng.integers(0, 40))
            for offset in range(n):
                producer = int(rng.integers(1, 3))
                record_id = producer << 40 | (len(writes) + 1)
                offset_known = offset if rng.random() > 0.05 else -1  # an acks=0 record
                writes.append({"writer": f"p{producer}", "record_id": record_id,
                               "topic": topic, "partition": partition,
                               "offset": offset_known,
                               "ack_ms": float(rng.integers(0, 20))})
                if rng.random() < 0.6:
                    reads.append({"topic": topic, "partition": partition, "offset": offset,
                                  "record_id": record_id if rng.random() > 0.05 else 99})
            for _ in range(int(rng.integers(0, 6))):
                seq += int(rng.integers(1, 4))
                node, time_ms = int(rng.integers(0, 3)), float(rng.integers(0, 20))
                kind = rng.choice(["log.truncate", "log.lost", "leader.election"])
                events.append({"seq": seq, "time_ms": time_ms, "kind": kind,
                               "component": f"broker-{node}", "topic": topic,
                               "partition": partition, "node": node, "offset": 0,
                               "records": 1,
                               "leader": node if kind == "leader.election" else np.nan,
                               "election": "clean", "leader_epoch": 1})
                if kind == "leader.election":
                    continue
                mine = [w for w in writes if (w["topic"], w["partition"]) == (topic, partition)]
                removed.extend({"seq": seq, "time_ms": time_ms, "node": node, "topic": topic,
                                "partition": partition, "offset": max(w["offset"], 0),
                                "record_id": w["record_id"]}
                               for w in mine if rng.random() < 0.5)
            appends.extend({"time_ms": float(rng.integers(0, 20)),
                            "node": int(rng.integers(0, 3)), "topic": topic,
                            "partition": partition, "producer": int(rng.integers(1, 3))}
                           for _ in range(int(rng.integers(0, 8))))
    frame = pd.DataFrame(writes, columns=["writer", "record_id", "topic", "partition",
                                          "offset", "ack_ms"])
    seen = pd.DataFrame(reads, columns=["topic", "partition", "offset", "record_id"])
    kept = frame["record_id"].to_numpy()[rng.random(len(frame)) < 0.9]
    history = audit.LossHistory(
        pd.DataFrame(removed, columns=["seq", "time_ms", "node", "topic", "partition",
                                       "offset", "record_id"]),
        pd.DataFrame(events, columns=["seq", "time_ms", "kind", "component", "topic",
                                      "partition", "node", "offset", "records", "leader",
                                      "election", "leader_epoch"]).set_index("seq"),
        pd.DataFrame(appends, columns=["time_ms", "node", "topic", "partition", "producer"]),
        leaders)
    return frame, seen, kept, history


def _random_storage(seed: int, writes: pd.DataFrame,
                    history: audit.LossHistory) -> audit.StorageHistory:
    """Segment deletions and cleanings drawn at random over the same writes and replicas (a
    second generator, so the histories above stay as they are)."""
    rng = np.random.default_rng([seed, 1])
    deletions, cleaned = [], []
    for (topic, partition) in history.leaders:
        for _ in range(int(rng.integers(0, 4))):
            base = int(rng.integers(0, 40))
            deletions.append({"seq": 1000 + len(deletions), "time_ms": float(rng.integers(0, 20)),
                              "node": int(rng.integers(0, 3)), "topic": topic,
                              "partition": partition, "base_offset": base,
                              "end_offset": base + int(rng.integers(1, 15)),
                              "reason": "retention.ms"})
    for w in writes.to_dict("records"):
        if rng.random() < 0.1:
            cleaned.append({"seq": 2000 + len(cleaned), "node": int(rng.integers(0, 3)),
                            "topic": w["topic"], "partition": w["partition"],
                            "offset": max(w["offset"], 0), "record_id": w["record_id"],
                            "time_ms": float(rng.integers(0, 20))})
    return audit.StorageHistory(
        pd.DataFrame(deletions, columns=["seq", "time_ms", "node", "topic", "partition",
                                         "base_offset", "end_offset", "reason"]),
        pd.DataFrame(cleaned, columns=["seq", "node", "topic", "partition", "offset",
                                       "record_id", "time_ms"]),
        history.leaders)


@pytest.mark.parametrize("seed", range(60))
def test_random_histories_match_the_per_record_reference(seed):
    """Lost records with their causes, unseen runs, duplicates and inconsistent offsets are
    what the one-record-at-a-time reference finds, on histories full of ties."""
    writes, seen, stored, history = _random_history(seed)
    report = audit.audit(writes, seen.assign(consumer="c", incarnation=0, poll=0, poll_seq=0,
                                             time_ms=0.0, group="g"),
                         stored=stored, history=history)
    assert _found(report) == _reference(writes, seen, stored, history)


def test_the_random_histories_reach_every_branch():
    """The histories above are not trivial: across them, lost records have a removal alone, a
    removal and the election that left them behind, an election alone, and no cause; and the
    elections named are both earlier ones (a zombie's write) and later ones."""
    kinds, elections = set(), set()
    for seed in range(60):
        writes, seen, stored, history = _random_history(seed)
        acked_at = dict(zip(writes["record_id"], writes["ack_ms"], strict=True))
        for row in _reference(writes, seen, stored, history)["lost"]:
            kinds.add(("cause" if row[5] is not None else "none",
                       "behind" if row[6] is not None else "alone"))
            for seq in row[5:]:
                if seq is not None and history.events.loc[seq, "kind"] == "leader.election":
                    earlier = history.events.loc[seq, "time_ms"] <= acked_at[row[3]]
                    elections.add("earlier" if earlier else "later")
    assert kinds == {("cause", "alone"), ("cause", "behind"), ("none", "alone")}
    assert elections == {"earlier", "later"}


@pytest.mark.slow
@pytest.mark.parametrize(("profile", "index"), [("disk-loss", 5), ("unsafe", 21)])
def test_fuzz_runs_that_lose_records_match_the_per_record_reference(profile, index):
    """Real runs of the fuzzer that lose acknowledged records (a lost disk, an unsafe
    configuration): every lost record, its cause and the election that left it behind are what
    the reference finds from the same run's history."""
    kernel = scenarios.parse(to_yaml(generate(PROFILES[profile], 3, index)), "f.yaml").run()
    report = audit.audit_kernel(kernel)
    assert report.lost > 0
    writes = audit.writes_of(kernel)
    acked = writes[np.isfinite(writes["ack_ms"].to_numpy(dtype=float))]
    from sim.consumer.history import READ_COLUMNS
    from sim.consumer.metrics import consumers

    reads = audit._concat([c.reads() for c in consumers(kernel)], READ_COLUMNS)
    seen = pd.concat([reads[["topic", "partition", "offset", "record_id"]],
                      audit.final_reads_of(kernel)], ignore_index=True)
    expected = _reference(acked, seen, audit.stored_ids_of(kernel),
                          audit.loss_history_of(kernel))
    assert _found(report)["lost"] == expected["lost"]
    assert all(r[5] is not None for r in expected["lost"])  # every loss has its cause


@pytest.mark.parametrize("seed", range(60))
def test_random_storage_removals_match_the_per_record_reference(seed):
    """With retention deletions and cleanings too: the records the audit credits to a storage
    rule (and the lost and unseen ones left) are what the reference finds; a truncation of an
    earlier copy of a record id, before its acknowledgement, does not withhold the credit."""
    writes, seen, stored, history = _random_history(seed)
    storage = _random_storage(seed, writes, history)
    report = audit.audit(writes, seen.assign(consumer="c", incarnation=0, poll=0, poll_seq=0,
                                             time_ms=0.0, group="g"),
                         stored=stored, history=history, storage=storage)
    expected = _reference(writes, seen, stored, history, storage)
    assert {**_found(report), "storage": _found_storage(report)} == expected


def test_the_random_storage_removals_reach_every_branch():
    """Across those histories some records are compacted away, some deleted by retention
    although the final leader truncated an earlier copy of their record id, and some kept out
    of the storage kinds because it truncated their acknowledged copy."""
    seen_kinds = set()
    for seed in range(60):
        writes, _, _, history = _random_history(seed)
        storage = _random_storage(seed, writes, history)
        lists = history.removed.to_dict("records")
        rows = {"cleaned": storage.cleaned.to_dict("records"),
                "deletions": storage.deletions.to_dict("records")}
        for record in writes.to_dict("records"):
            rule = _reference_storage(record, lists, storage, rows)
            final = history.leaders[(record["topic"], record["partition"])]
            on_final = [r for r in lists
                        if r["record_id"] == record["record_id"] and r["node"] == final]
            if rule is not None:
                seen_kinds.add(rule[0])
                if on_final:
                    seen_kinds.add("credited after an earlier copy's truncation")
            elif on_final and (_reference_storage(
                    {**record, "ack_ms": np.inf}, lists, storage, rows) is not None):
                seen_kinds.add("withheld: acknowledged copy truncated")
    assert seen_kinds == {"compacted-away", "deleted-by-retention",
                          "credited after an earlier copy's truncation",
                          "withheld: acknowledged copy truncated"}
