"""Checks for exercise 09 (lesson "architectures"): choose an architecture, plan kappa's
retention, predict lambda's drift.

09.a — ``{"architecture": name, "freshness median (s)": x, "storage (USD per GB of payments
per month)": y}``: the architecture meeting the stated requirements at the least storage cost,
and its two numbers, all compared with the comparison of exercise 09's run
(:func:`sim.lessons.architectures.exercise_run`), simulated at check time.

09.b — ``{"retention.ms": R, "local.retention.ms": L, "monthly_usd": C}`` for a tiered input
topic of a kappa job that must reprocess 30 days while its live job reads the last day from the
brokers: parsed by the lab's topic config, priced with
``sim.broker.storage_cost.retention_plan``; the cheapest plan meeting both needs passes, and
``monthly_usd`` must be that plan's cost.

09.c — ``{"hour 1": d1, "hour 2": d2}``: lambda's revenue minus the right answer for those
hours (all merchants, cents) at the end of exercise 09's run, compared with the simulated
serving layer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from sim import config
from sim.broker.storage_cost import topic_plan_cost
from sim.errors import ConfigError
from sim.grading.answers import describe as _describe
from sim.grading.answers import is_whole
from sim.grading.checklist import Checklist
from sim.grading.registry import question
from sim.lessons import architectures as la

EXERCISE = "09_architectures"
HIDDEN_WHILE_GRADED = True  # the notebook never imports this module; it computes the answers

# 09.a -------------------------------------------------------------------------------------------
MAX_FRESHNESS_S = 60
MAX_RESTATED_S = 300
CODE_PATHS = 1
FRESHNESS = "freshness median (s)"
STORAGE = "storage (USD per GB of payments per month)"

# 09.b -------------------------------------------------------------------------------------------
DAY_MS = 86_400_000
INGEST_BYTES_PER_DAY = 50e9
REPLICATION_FACTOR = 3
REPROCESS_DAYS = 30
LIVE_DAYS = 1

# 09.c -------------------------------------------------------------------------------------------
HOURS = ("hour 1", "hour 2")

_HINTS = {
    "meets": ("Read the comparison row by row: freshness median ≤ 60 s, history restated "
              "after ≤ 300 s, one code path."),
    "cheapest": "Of the architectures meeting all three, take the lowest storage column.",
    "numbers": "Copy the two numbers from that architecture's row of the comparison.",
    "replay": ("Kappa reprocesses by replaying the input from offset 0: retention.ms must keep "
               "every day you may have to reprocess."),
    "local": "Records younger than local.retention.ms stay on the brokers' disks.",
    "cost": ("Disk costs more than object storage and the brokers keep each local byte once per "
             "replica: keep locally only what the live job reads."),
    "price": "Price your plan with retention_plan(...)['total_usd'] (days, not milliseconds).",
    "speed": ("The speed layer still runs the old rule: for the hour it serves, lambda counts "
              "the vouchers the new rule leaves out."),
    "batch": ("The batch view answers hour 1 as of its last run (minute 125); late payments "
              "that arrived after it are missing until the next run. Vouchers count 0 now."),
}


def qualifying() -> list[str]:
    """The architectures of the exercise run meeting the 09.a requirements."""
    table = la.full_table(la.exercise_run())
    ok = table[(table[FRESHNESS] <= MAX_FRESHNESS_S)
               & (table["history restated after (s)"] <= MAX_RESTATED_S)
               & (table["code paths"] == CODE_PATHS)]
    return list(ok.index)


def cheapest() -> str:
    """The qualifying architecture with the least storage cost."""
    table = la.full_table(la.exercise_run())
    return str(table.loc[qualifying(), STORAGE].idxmin())


@question("09.a", points=5, answer="choice", title="Choose an architecture",
          hint=_HINTS["meets"])
def choose(answer: object, sheet: Checklist) -> None:
    """Grade the chosen architecture and the numbers that justify it."""
    table = la.full_table(la.exercise_run())
    with sheet.item(f'choice is a dict with "architecture" (one of {", ".join(table.index)}) '
                    f'and the numbers "{FRESHNESS}" and "{STORAGE}"', points=1) as item:
        ok = (isinstance(answer, Mapping) and answer.get("architecture") in table.index
              and all(isinstance(answer.get(k), int | float) and not isinstance(answer.get(k),
                                                                                bool)
                      for k in (FRESHNESS, STORAGE)))
        if not ok:
            item.fail(f"expected a dict like {{'architecture': 'kappa', '{FRESHNESS}': 20.0, "
                      f"'{STORAGE}': 0.05}}, got {_describe(answer)}")
    if not item.passed:
        return sheet.stop("the answer could not be read")
    assert isinstance(answer, Mapping)
    name = str(answer["architecture"])
    with sheet.item("it meets the three requirements in the simulated comparison",
                    points=2) as item:
        if name not in qualifying():
            item.fail(f"{name} misses at least one requirement", _HINTS["meets"])
    with sheet.item("no architecture meeting them stores for less", points=1) as item:
        if name != cheapest():
            item.fail(f"{name} is not the cheapest that qualifies", _HINTS["cheapest"])
    with sheet.item("the two numbers are that architecture's, as simulated", points=1) as item:
        row = table.loc[name]
        for key in (FRESHNESS, STORAGE):
            if not math.isclose(float(answer[key]), float(row[key]), rel_tol=0.01,
                                abs_tol=1e-4):
                item.fail(f"{key} = {answer[key]} is not {name}'s number", _HINTS["numbers"])
                break
    return None


# --- 09.b ----------------------------------------------------------------------------------------


def plan_cost(retention_ms: int, local_retention_ms: int) -> float:
    """The plan's monthly cost in dollars (-1 keeps forever: infinite)."""
    return topic_plan_cost(INGEST_BYTES_PER_DAY, retention_ms, local_retention_ms,
                           REPLICATION_FACTOR)


def _read_plan(answer: object) -> tuple[int, int, float] | str:
    if not isinstance(answer, Mapping):
        return ('expected a dict like {"retention.ms": ..., "local.retention.ms": ..., '
                f'"monthly_usd": ...}}, got {_describe(answer)}')
    for name in ("retention.ms", "local.retention.ms"):
        if not is_whole(answer.get(name)):
            return f"{name} must be a whole number of milliseconds, got " \
                   f"{_describe(answer.get(name))}"
    cost = answer.get("monthly_usd")
    if not isinstance(cost, int | float) or isinstance(cost, bool):
        return f"monthly_usd must be a number of dollars, got {_describe(cost)}"
    try:
        parsed = config.TOPIC.parse({"remote.storage.enable": True,
                                     "retention.ms": int(answer["retention.ms"]),
                                     "local.retention.ms": int(answer["local.retention.ms"])})
    except ConfigError as exc:
        return str(exc).splitlines()[0]
    return parsed["retention.ms"], parsed["local.retention.ms"], float(cost)


@question("09.b", points=5, answer="reprocessing_plan",
          title="Retention for a kappa reprocessing", hint=_HINTS["replay"])
def reprocessing_plan(answer: object, sheet: Checklist) -> None:
    """Grade the plan with the topic config and the cost model."""
    with sheet.item("reprocessing_plan is a valid tiered topic config with its monthly cost",
                    points=1) as item:
        plan = _read_plan(answer)
        if isinstance(plan, str):
            item.fail(plan)
    if not item.passed or isinstance(plan, str):
        return sheet.stop("there is no plan to price")
    retention, local_setting, cost = plan
    local_ms = retention if local_setting == -2 else local_setting
    with sheet.item(f"the job can replay the last {REPROCESS_DAYS} days", points=1) as replay:
        if retention != -1 and retention < REPROCESS_DAYS * DAY_MS:
            replay.fail(f"retention.ms={retention} keeps {retention / DAY_MS:g} days",
                        _HINTS["replay"])
    with sheet.item(f"the last {LIVE_DAYS} day stays on the brokers' disks", points=1) as local:
        if local_ms != -1 and local_ms < LIVE_DAYS * DAY_MS:
            local.fail(f"local.retention.ms={local_ms} keeps {local_ms / DAY_MS:g} days "
                       "locally", _HINTS["local"])
    mine = plan_cost(retention, local_setting)
    with sheet.item("it meets both needs, and no plan meeting both costs less", points=1) as item:
        best = plan_cost(REPROCESS_DAYS * DAY_MS, LIVE_DAYS * DAY_MS)
        if not (replay.passed and local.passed):
            item.fail("the plan does not meet both needs yet", _HINTS["replay"])
        elif mine > best * 1.001:
            item.fail("a cheaper plan meets both needs", _HINTS["cost"])
    with sheet.item("monthly_usd is the cost model's price of your plan", points=1) as item:
        if math.isinf(mine) or not math.isclose(cost, mine, rel_tol=0.01):
            item.fail(f"monthly_usd={cost:g} is not your plan's price", _HINTS["price"])
    return None


# --- 09.c ----------------------------------------------------------------------------------------


def simulated_drift() -> dict[str, int]:
    """Lambda's revenue minus the right answer per hour at the end of the exercise run."""
    drift = la.lambda_drift(la.exercise_run()).set_index("hour")["difference"]
    return {f"hour {h}": int(drift[h]) for h in (1, 2)}


@question("09.c", points=5, answer="drift", title="Predict the lambda drift",
          hint=_HINTS["speed"])
def lambda_drift(answer: object, sheet: Checklist) -> None:
    """Grade the predicted differences against the simulated serving layer."""
    with sheet.item('drift is a dict with whole numbers of cents for "hour 1" and "hour 2"',
                    points=1) as item:
        ok = isinstance(answer, Mapping) and all(is_whole(answer.get(h)) for h in HOURS)
        if not ok:
            item.fail(f'expected {{"hour 1": -100, "hour 2": 250}}, got {_describe(answer)}')
    if not item.passed:
        return sheet.stop("the answer could not be read")
    assert isinstance(answer, Mapping)
    simulated = simulated_drift()
    with sheet.item("hour 2 (served by the speed layer) as simulated", points=2) as item:
        if int(answer["hour 2"]) != simulated["hour 2"]:
            item.fail(f"hour 2: {answer['hour 2']} is not the simulated difference",
                      _HINTS["speed"])
    with sheet.item("hour 1 (served by the batch view) as simulated", points=2) as item:
        if int(answer["hour 1"]) != simulated["hour 1"]:
            item.fail(f"hour 1: {answer['hour 1']} is not the simulated difference",
                      _HINTS["batch"])
    return None
