"""Specification of lesson 02's section 6 (``sim.lessons.crash_sweep``): random fault schedules
per configuration, how often each loses acknowledged records, and why.

Each test backs a claim the markdown of ``notebooks/02_replication.ipynb`` makes, calling the
same functions with the same arguments as its cells.
"""

from __future__ import annotations

import pandas as pd
import pytest
from matplotlib.figure import Figure

from sim import lessons
from sim.audit import audit_kernel
from sim.fuzz import PROFILES, generate
from sim.lessons import crash_sweep
from sim.sweep import CAUSE_COLUMNS, CAUSES

ACKS1 = "acks=1"
MIN_ISR_1 = "acks=all, min.insync.replicas=1"
UNCLEAN = "acks=all, min.insync.replicas=2, unclean election"


@pytest.fixture(scope="module")
def runs() -> pd.DataFrame:
    """The lesson's sweep, as its cell runs it."""
    return crash_sweep.crash_sweep()


@pytest.fixture(scope="module")
def table(runs: pd.DataFrame) -> pd.DataFrame:
    return crash_sweep.loss_table(runs).set_index("config")


@pytest.fixture(scope="module")
def unclean_117():
    """Schedule 117 under the unclean election, as the lesson replays it."""
    return crash_sweep.replay(117, UNCLEAN)


def _schedule(index: int) -> dict:
    return generate(PROFILES[crash_sweep.PROFILE].scaled(crash_sweep.RECORDS), crash_sweep.SEED,
                    index)


# --- the module ----------------------------------------------------------------------------


def test_configs_differ_from_the_safe_one_in_one_setting_each():
    """The table in the lesson: each unsafe configuration changes one thing in the safe one
    (acks=1 also turns idempotence off, which Kafka requires)."""
    safe = crash_sweep.CONFIGS[crash_sweep.SAFE]
    assert safe == {"acks": "all", "enable.idempotence": True, "min.insync.replicas": 2,
                    "unclean.leader.election.enable": False}
    changed = {label: {k for k in safe if config[k] != safe[k]}
               for label, config in crash_sweep.CONFIGS.items()}
    assert changed == {ACKS1: {"acks", "enable.idempotence"}, MIN_ISR_1: {"min.insync.replicas"},
                       crash_sweep.SAFE: set(), UNCLEAN: {"unclean.leader.election.enable"}}


def test_every_cause_has_a_meaning():
    """The cause table explains every cause the sweep can report."""
    assert set(crash_sweep.CAUSE_TEXT) == set(CAUSES)


def test_one_schedule_gives_the_rows_the_sweep_gives(runs):
    """A single schedule run in this process matches the sweep's rows for it."""
    mine = crash_sweep.one_schedule(33)
    theirs = runs[runs["schedule"] == 33]
    assert list(mine["config"]) == list(crash_sweep.CONFIGS)
    for column in ("lost", "acknowledged", "cause", *CAUSE_COLUMNS):
        assert list(mine[column]) == list(theirs[column]), column


def test_loss_figure_is_a_bar_per_configuration_with_run_counts(runs):
    """One bar per configuration, labelled "k of n runs", wider than tall."""
    fig = crash_sweep.loss_figure(runs)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert len(ax.patches) == len(crash_sweep.CONFIGS)
    labels = [t.get_text() for t in ax.texts]
    assert "3 of 40 runs" in labels
    assert labels.count("0 of 40 runs") == 3
    width, height = fig.get_size_inches()
    assert width > height


# --- the lesson's claims -------------------------------------------------------------------


def test_every_configuration_ran_the_same_40_schedules(runs):
    """40 schedules per configuration, the same ones, 160 runs, none hung or raised."""
    assert crash_sweep.SCHEDULES == 40
    assert len(runs) == 160
    for _label, mine in runs.groupby("config", observed=True):
        assert sorted(mine["schedule"]) == list(range(40))
    assert not runs["hung"].any()
    assert not runs["raised"].any()
    assert (runs["sent"] == crash_sweep.RECORDS).all()


def test_only_acks1_loses_3_of_40_runs_66_records(table):
    """acks=1: 3 losing runs of 40, 66 records; the other three lose nothing."""
    assert table.loc[ACKS1, "runs_losing_data"] == 3
    assert table.loc[ACKS1, "runs"] == 40
    assert table.loc[ACKS1, "records_lost"] == 66
    for label in (MIN_ISR_1, crash_sweep.SAFE, UNCLEAN):
        assert table.loc[label, "runs_losing_data"] == 0
        assert table.loc[label, "records_lost"] == 0
    assert table.loc[ACKS1, "runs_losing_data"] > table.loc[crash_sweep.SAFE, "runs_losing_data"]


def test_safe_config_loses_no_acknowledged_record(runs):
    """acks=all, min.insync.replicas=2 loses 0 acknowledged records in all 40 runs."""
    safe = runs[runs["config"] == crash_sweep.SAFE]
    assert safe["lost"].sum() == 0
    assert (safe["acknowledged"] > 0).all()


def test_every_acks1_loss_is_truncated(runs, table):
    """The cause of every record acks=1 lost is 'truncated' (a clean election, then a
    truncation), and the cause table says so."""
    acks1 = runs[runs["config"] == ACKS1]
    assert acks1["lost_truncated"].sum() == acks1["lost"].sum() == 66
    assert table.loc[ACKS1, "main_cause"] == "truncated"
    causes = crash_sweep.cause_table(runs)
    assert causes[["config", "cause", "runs", "records_lost"]].to_dict("records") == [
        {"config": ACKS1, "cause": "truncated", "runs": 3, "records_lost": 66}]


def test_acks1_losses_need_a_network_fault(runs):
    """Every losing schedule has a network partition; in two of them the leader's side holds
    the producer but not the controller; 37 of 40 schedules lose nothing anywhere."""
    losing = sorted(set(runs.loc[runs["loses_data"], "schedule"]))
    assert len(losing) == 3
    assert 40 - len(losing) == 37
    producer_side = 0
    for index in losing:
        cuts = [f["network_partition"] for f in _schedule(index)["faults"]
                if "network_partition" in f]
        assert cuts, index
        if any("app" in side and "controller" not in side and len(side) == 2
               for cut in cuts for side in (cut["a"], cut["b"])):
            producer_side += 1
    assert producer_side == 2


def test_no_schedule_loses_a_disk():
    """min.insync.replicas=1 survives these schedules because none of them loses a disk."""
    for index in range(crash_sweep.SCHEDULES):
        crashes = [f["crash_broker"] for f in _schedule(index)["faults"] if "crash_broker" in f]
        assert not any(c["lose_disk"] for c in crashes), index


def test_schedule_117_loses_under_the_unclean_election_only(unclean_117):
    """Schedule 117: 36 records, offsets 1–36 of payments-1, lost to the unclean election of
    broker 1; under the default (no unclean election) nothing is lost."""
    report = lessons.loss_report(unclean_117)
    assert report["records"].sum() == 36
    [row] = report.to_dict("records")
    assert (row["partition"], row["first_offset"], row["last_offset"]) == (1, 1, 36)
    lost = audit_kernel(unclean_117).lost_records
    behind = {str((r.get("left_behind_by") or {}).get("detail", "")) for r in lost}
    assert any(text.startswith("unclean") for text in behind)
    safe = crash_sweep.replay(117, crash_sweep.SAFE)
    assert audit_kernel(safe).lost == 0


def test_schedule_117_story(unclean_117):
    """The story of payments-1: ISR [2, 0] at 7.5 s, the split at 11.6 s, brokers 0 and 2
    fenced at 20.6 s and broker 1 elected uncleanly; broker 0 truncates when the split heals at
    42.1 s, broker 2 only when the first cut, [2] | [1], heals at 55.3 s (cuts of one link add
    up: the split's heal leaves the link cut by the first fault)."""
    story = lessons.replication_events(unclean_117, ("fault", "isr.change", "leader.election",
                                                     "log.truncate"))
    rows = list(zip(story["time_ms"], story["what"], strict=True))
    assert (945.0, "fault: network_partition ([2] | [1])") in rows
    assert any(t == 7500.0 and w.startswith("payments-1: ISR [2, 0]") for t, w in rows)
    assert (11618.0, "fault: network_partition ([0, 2, 'app'] | [1, 'controller'])") in rows
    assert any(t == 20618.0 and w.startswith("payments-1: unclean election of broker 1")
               for t, w in rows)
    truncations = [(t, w) for t, w in rows if w.startswith("payments-1:") and "truncated" in w]
    assert truncations == [
        (42086.0, "payments-1: broker 0 truncated its log to offset 1, dropping 36 records"),
        (55307.0, "payments-1: broker 2 truncated its log to offset 1, dropping 37 records")]
    assert (55307.0, "fault: heal_network ([2] | [1])") in rows
