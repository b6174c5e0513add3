"""Specification of what the fuzz checker and sweeps skip or defer to stay quick: nothing
they judge.

A fuzz schedule is checked thousands of times per campaign or sweep, so the checker skips
work whose result no check reads (the audit's unavailability windows, the LSO sampler in a
run without a transactional loop) and a sweep's worker collects garbage between runs. These
tests pin that none of it changes a finding or a row.
"""

from __future__ import annotations

import functools

from sim import scenarios
from sim.audit import audit_kernel
from sim.fuzz import PROFILES, generate
from sim.fuzz.checker import Guard
from sim.fuzz.transactions_check import watch
from sim.kernel import Kernel


@functools.cache
def _faulted_run() -> Kernel:
    """A safe schedule whose faults make the producer retry (so it has windows to find)."""
    kernel = scenarios.from_dict(generate(PROFILES["safe"], 0, 0)).build()
    Guard().run(kernel, 120_000)
    return kernel


def test_audit_without_unavailability_finds_the_same_else():
    """``unavailability=False`` empties the windows and changes nothing else in the report."""
    kernel = _faulted_run()
    full = audit_kernel(kernel).to_json()
    quick = audit_kernel(kernel, unavailability=False).to_json()
    assert full["unavailability"]  # the run had windows to leave out
    assert quick["unavailability"] == []
    assert quick["unavailable_ms"] == 0
    for key in ("unavailability", "unavailable_ms"):
        del full[key], quick[key]
    assert quick == full


def test_lso_sampler_starts_only_with_topics_to_watch():
    """No topics: nothing is scheduled (the run's events are the same without the checker);
    topics: one sampler process wakes every SAMPLE_MS."""
    kernel = scenarios.load("safe-replication").build()
    queued = len(kernel.env._queue)
    assert watch(kernel, []) == []
    assert len(kernel.env._queue) == queued
    watch(kernel, ["payments"] if "payments" in kernel.cluster.topics
          else [next(iter(kernel.cluster.topics))])
    assert len(kernel.env._queue) == queued + 1


def test_sweep_batch_hook_runs_after_each_run_and_changes_no_row():
    """``run_batch``'s ``after_run`` (where a loky worker collects garbage) is called once
    after each run, and the rows are those of a batch without it."""
    from sim.sweep import prepare, run_batch

    plan, runs, _ = prepare(None, schedules=2, records=300)
    calls: list[int] = []
    hooked, _ = run_batch(plan, runs, after_run=lambda: calls.append(len(calls)))
    plain, _ = run_batch(plan, runs)
    assert calls == [0, 1]
    assert hooked == plain


def test_a_judged_run_builds_each_producers_results_once(monkeypatch):
    """The audit and the logs' consistency check read one ``results()`` frame per producer
    (building it is a fifth of the judging), and the verdict is the same as when each builds
    its own."""
    from sim.fuzz import check_scenario
    from sim.producer import Producer

    scenario = generate(PROFILES["safe"].scaled(300), 0, 0)
    plain = check_scenario(scenario)
    built: list[Producer] = []
    original = Producer.results

    def counted(self: Producer) -> object:
        built.append(self)
        return original(self)

    monkeypatch.setattr(Producer, "results", counted)
    once = check_scenario(scenario)
    assert len(built) == len(set(map(id, built))) == 1
    assert (once.violations, once.tolerated, once.losses, once.steps) == (
        plain.violations, plain.tolerated, plain.losses, plain.steps)
    assert once.audit.to_json() == plain.audit.to_json()


def test_consistency_check_given_the_results_finds_what_it_finds_alone():
    """``consistency.check(kernel, results)`` with the frames already built finds the same
    lost records (an unclean election's) as building them itself."""
    from sim import consistency

    kernel = scenarios.load("unclean-election").run()
    alone = consistency.check(kernel)
    given = consistency.check(kernel, {c: c.results() for c in kernel.clients
                                       if hasattr(c, "results")})
    assert [f.kind for f in alone].count("lost") >= 1
    assert given == alone


def test_a_verdict_with_a_partition_offline_at_the_end_has_its_unavailability_windows():
    """Every broker crashes for good at 5 s: each partition ends offline, and the verdict's
    audit shows an open window for it (the producer's failed attempts after the crash, to the
    end of the run), as ``python -m sim run --json`` does; a run with none offline keeps the
    windows empty (no check judges them)."""
    from sim.fuzz import check_scenario

    scenario = generate(PROFILES["safe"].scaled(300), 0, 0)
    scenario["faults"] = [{"at_ms": 5000, "crash_broker": {"broker": b, "lose_disk": False}}
                          for b in range(3)]
    verdict = check_scenario(scenario)
    assert "offline" in verdict.kinds
    windows = verdict.audit.unavailable
    assert {(w["topic"], w["partition"]) for w in windows if w["open"]} == {
        ("payments", p) for p in range(3)}
    assert all(w["start_ms"] >= 5000 for w in windows)
    kernel = scenarios.from_dict(scenario).build()
    Guard().run(kernel, scenario["duration_ms"])
    assert verdict.audit.to_json() == audit_kernel(kernel).to_json()
    healthy = generate(PROFILES["safe"].scaled(300), 0, 0)
    assert check_scenario(healthy).audit.unavailable == []
