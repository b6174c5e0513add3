"""The architectures fuzz profile: lesson 09's architectures under random broker faults and
processing outages end with the answers of the same run without them
(``sim.fuzz.architecture_check``), every difference tied to its cause."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sim import scenarios
from sim import trace as events
from sim.architectures.kappa import KappaArchitecture
from sim.fuzz import PROFILES, architecture_check, campaign, generate, to_yaml
from sim.fuzz.checker import check_scenario
from sim.scenarios import architecture

ROOT = Path(__file__).resolve().parents[1]
PROFILE = PROFILES["architectures"]
SEED = 2026
RUNS = 8
UNSENT = (1, 0)
"""(seed, index) of a schedule where a 400 s split keeps the services' producer from the
leaders longer than ``delivery.timeout.ms``: it gives up on some payments."""


@pytest.fixture(scope="module")
def result():
    return campaign(PROFILE, RUNS, SEED)


def _schedules(count: int, seed: int = SEED) -> list[dict]:
    return [generate(PROFILE, seed, index) for index in range(count)]


def test_the_profile_draws_every_architecture_and_outages_over_the_rule_change():
    """The first schedules run all four architectures, lambda with and without the new rule
    in its speed layer, and processing outages, one of them over the rule change."""
    sections = [s["architecture"] for s in _schedules(RUNS)]
    assert {s["variant"] for s in sections} == {"batch", "lambda", "kappa", "lake"}
    updated = [s for s in _schedules(40) if s["architecture"]["variant"] == "lambda"]
    assert {s["architecture"]["update_speed_layer"] for s in updated} == {True, False}
    change = sections[0]["workload"]["change_ms"]
    outages = [s["outage"] for s in sections if "outage" in s]
    assert outages
    assert any(o["start_ms"] <= change < o["end_ms"] for s in _schedules(40)
               if (o := s["architecture"].get("outage")))


def _clients_cut(schedules: list[dict]) -> set[str]:
    """The clients (named nodes other than the controller) the schedules' network faults cut."""
    return {node for s in schedules for fault in s["faults"]
            for spec in fault.values() if isinstance(spec, dict)
            for side in ("a", "b") if isinstance(spec.get(side), list)
            for node in spec[side] if isinstance(node, str) and node != "controller"}


def test_producer_faults_cut_the_runs_own_producer(monkeypatch):
    """The schedules cut the services' producer by the client id the run gives it
    (``sim.architectures.run.PRODUCER_CLIENT_ID``), whatever that id is."""
    from sim.architectures import run

    assert _clients_cut(_schedules(RUNS)) == {run.PRODUCER_CLIENT_ID}
    monkeypatch.setattr(run, "PRODUCER_CLIENT_ID", "checkout-services")
    assert _clients_cut(_schedules(RUNS)) == {"checkout-services"}


@pytest.mark.slow
def test_architectures_under_broker_faults_end_with_their_fault_free_answers(result):
    """No schedule fails: no answer ends other than without the faults, no loss, no hang."""
    assert result.runs == RUNS
    assert not result.findings, [f.verdict.line() for f in result.findings]


@pytest.mark.slow
def test_a_payment_the_producer_gave_up_on_is_missing_with_its_cause():
    """The split schedule: the services' producer fails some payments after
    delivery.timeout.ms, so lambda's answers end below the fault-free run's in the cells of
    those payments, and only there: tolerated as architecture-unsent. Without the tie the
    same difference is architecture-wrong."""
    scenario = generate(PROFILE, *UNSENT)
    verdict = check_scenario(scenario, PROFILE)
    assert not verdict.failed, verdict.line()
    assert [v.kind for v in verdict.tolerated] == ["architecture-unsent"]
    result = architecture.run(scenario["architecture"], scenario["seed"], scenario["faults"],
                              summary=False)
    assert architecture_check.unsent_cells(result)


OVERCOUNT = ROOT / "tests" / "data" / "fuzz" / (
    "architectures--architecture-overcount-at-least-once-task-recreated.yaml")
"""The recorded schedule whose new speed layer lost its commits while its coordinator was cut
off: both its tasks were created again, and one cell (bakery, hour 0, in partition 1) ended
high."""


def _overcount_schedule() -> dict:
    import yaml

    return yaml.safe_load(OVERCOUNT.read_text(encoding="utf-8"))


@pytest.mark.slow
def test_an_overcount_after_a_task_is_created_again_is_tied_to_at_least_once(monkeypatch):
    """The recorded overcount is tolerated as architecture-overcount naming the task that
    reads the cell's partition; with no task created again it is architecture-wrong."""
    scenario = _overcount_schedule()
    verdict = check_scenario(scenario, PROFILE)
    assert not verdict.failed, verdict.line()
    (tolerated,) = verdict.tolerated
    assert tolerated.kind == "architecture-overcount"
    assert "merchant bakery, hour 0" in tolerated.detail
    assert "task speed-layer-v2 0_1, reading partition 1" in tolerated.detail
    monkeypatch.setattr(architecture_check, "recreated_tasks", lambda _kernel: {})
    assert [v.kind for v in check_scenario(scenario, PROFILE).violations] == \
        ["architecture-wrong"]


@pytest.mark.slow
def test_an_overcount_is_excused_only_by_a_task_of_the_cells_partition(monkeypatch):
    """The tie is per cell: the overcount cell's payments are in partition 1, and with only
    partition 0's task created again (a task of the run was, so a tie per run would excuse
    it) the same overcount is architecture-wrong."""
    scenario = _overcount_schedule()
    result = architecture.run(scenario["architecture"], scenario["seed"], scenario["faults"],
                              summary=False)
    assert architecture_check.cell_partitions(result)[("bakery", 0)] == {1}
    real = architecture_check.recreated_tasks
    # the old speed layer's task 0_0 is revived too: its changelog sends expired while the
    # controller was cut (a corrupted task, TaskManager.closeDirtyAndRevive)
    assert real(result.kernel) == {0: ["speed-layer 0_0", "speed-layer-v2 0_0"],
                                   1: ["speed-layer-v2 0_1"]}
    monkeypatch.setattr(architecture_check, "recreated_tasks",
                        lambda kernel: {p: t for p, t in real(kernel).items() if p != 1})
    verdict = check_scenario(scenario, PROFILE)
    assert [v.kind for v in verdict.violations] == ["architecture-wrong"]
    assert "merchant bakery, hour 0" in verdict.violations[0].detail


@pytest.mark.slow
def test_the_check_is_not_blind(monkeypatch):
    """The same schedule with the tie removed fails; and a kappa whose jobs never come back
    after an outage ends with stale answers, which the check calls architecture-wrong."""
    scenario = generate(PROFILE, *UNSENT)
    monkeypatch.setattr(architecture_check, "unsent_cells", lambda _result: set())
    assert [v.kind for v in check_scenario(scenario, PROFILE).violations] == \
        ["architecture-wrong"]
    monkeypatch.undo()
    kappa = next(s for s in _schedules(40) if s["architecture"]["variant"] == "kappa"
                 and s["architecture"].get("outage"))
    assert not check_scenario(kappa, PROFILE).failed

    def never_back(self, now_ms):
        self.down = False

    monkeypatch.setattr(KappaArchitecture, "recover", never_back)
    verdict = check_scenario(kappa, PROFILE)
    assert "architecture-wrong" in [v.kind for v in verdict.violations]


def test_the_twin_leaves_out_the_outage_and_the_faults():
    """The fault-free twin of a section with an outage is the section's run without it."""
    scenario = next(s for s in _schedules(40) if s["architecture"]["variant"] == "lake"
                    and s["architecture"].get("outage"))
    section = scenario["architecture"]
    calm = {k: v for k, v in section.items() if k != "outage"}
    want = architecture.run(calm, scenario["seed"], [], summary=False).answers[-1, 0]
    np.testing.assert_array_equal(architecture_check.twin_answers(section, scenario["seed"]),
                                  want)


@pytest.mark.slow
def test_a_crashed_stream_threads_producer_lets_the_clock_move_on():
    """The minimised schedule 39 of seed 12101 (two controller cuts): kappa's job crashes with
    batches in flight past their delivery.timeout.ms, and the dead producer was woken at that
    instant again and again, a zero-time livelock. A dead process expires nothing
    (``Sender.getExpiredInflightBatches`` runs in the sender thread): the batches fail when
    their requests time out, and the run reaches the end of its hour."""
    path = ROOT / "tests" / "data" / "scenarios" / "architectures-crashed-producer-livelock.yaml"
    kernel = scenarios.load(path).run()
    assert kernel.now_ms >= 3_600_000
    failed = kernel.trace.frame(events.KINDS["produce.failed"])
    after = failed[(failed["component"] == "revenue-v2-StreamThread-1-producer")
                   & (failed["time_ms"] > 2_190_008)]  # past its batches' delivery timeout
    assert set(after["error"]) == {"REQUEST_TIMEOUT"}


@pytest.mark.slow
def test_an_architecture_schedule_prints_the_same_bytes_under_two_hash_seeds(tmp_path):
    """`python -m sim run FILE.yaml` of an architecture schedule with faults: identical output
    under hash seeds 0 and 1."""
    scenario = next(s for s in _schedules(40) if s["architecture"]["variant"] == "kappa"
                    and len(s["faults"]) >= 4)
    path = tmp_path / "arch.yaml"
    path.write_text(to_yaml(scenario), encoding="utf-8")
    outputs = []
    for hash_seed in ("0", "1"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(ROOT)}
        run = subprocess.run([sys.executable, "-m", "sim", "run", str(path)], env=env,
                             cwd=ROOT, capture_output=True, check=True, timeout=300)
        outputs.append(run.stdout)
    assert outputs[0].startswith(b"Scenario: fuzz-architectures-")
    assert outputs[0] == outputs[1]
