"""Checks for exercise 05 (lesson "transactions"): read_committed, a loop without duplicates,
and the size of a transaction.

05.a — a function ``read_committed_offsets(script)`` predicting which offsets a read_committed
consumer returns from a partition written by ``script`` (the steps of
``sim.lessons.transactions.scripted_log``). It is compared with what a real read_committed
consumer reads from the simulated log, for the notebook's script and for hidden ones, so a
hard-coded answer fails.

05.b — ``loop_steps``, the order of the steps of a consume-transform-produce loop
(``sim.lessons.transactions.LOOP_STEPS``). The check crashes one of two members mid-run and
counts, as a read_committed reader of the output sees it, inputs missing or written twice; it
also checks that the offsets are committed inside the transaction, since a crash between a
transaction's commit and a separate offset commit would write the output again.

05.c — ``transaction_size``: records arrive at 1,000 a second and must be visible to
read_committed readers within 120 ms. The check runs ``latency_run`` with that size, and with a
size 20 % larger, which must break the bound (so the answer is close to the largest size that
keeps it: the fewest transactions).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from sim.grading.answers import describe as _describe
from sim.grading.answers import is_whole
from sim.grading.budget import untimed
from sim.grading.checklist import Checklist
from sim.grading.registry import question
from sim.lessons import transactions as lt

EXERCISE = "05_transactions"
HIDDEN_WHILE_GRADED = True  # the notebook never imports this module; it holds hidden scripts
GUARDED_WHILE_GRADED = ("sim.lessons.transactions:scripted_log",
                        "sim.lessons.transactions:offsets_read")
"""05.a asks for what these compute: while the grader calls read_committed_offsets they raise."""

# 05.a -------------------------------------------------------------------------------------------
VISIBLE_SCRIPT = (("A", "send", 2), ("B", "send", 3), ("B", "commit"), ("A", "send", 1),
                  ("A", "abort"), ("B", "send", 2), ("C", "send", 1), ("B", "commit"),
                  ("C", "commit"))
HIDDEN_SCRIPTS = (
    (("A", "send", 1), ("B", "send", 2), ("A", "commit"), ("C", "send", 2), ("B", "commit"),
     ("A", "send", 2), ("A", "abort"), ("C", "commit")),
    (("A", "send", 3), ("A", "abort"), ("B", "send", 1), ("A", "send", 2), ("A", "commit"),
     ("B", "send", 1)),
    (("A", "send", 2), ("B", "send", 2), ("C", "send", 1), ("C", "abort"), ("A", "commit"),
     ("C", "send", 2), ("C", "commit")),
    (("B", "send", 1), ("B", "commit"), ("A", "send", 4), ("B", "send", 2), ("B", "abort"),
     ("A", "commit"), ("B", "send", 1), ("B", "commit")),
)

# 05.b -------------------------------------------------------------------------------------------
VISIBLE_CRASH_MS = 7_040.0
HIDDEN_CRASH_MS = (7_080.0,)

# 05.c -------------------------------------------------------------------------------------------
RATE_PER_S = 1_000.0
LATENCY_BOUND_MS = 120.0
LATENCY_RECORDS = 600
LARGER = 1.2

_HINTS = {
    "read": ("Number the offsets as the script writes them: every send takes one offset per "
             "record, every commit or abort one offset for its marker. read_committed returns "
             "records of committed transactions only, never a marker, and stops at the LSO: "
             "the first offset of the oldest transaction still open."),
    "loop": ("Everything a poll causes must commit together: begin_transaction, send, "
             "process, then send_offsets_to_transaction and commit_transaction; no "
             "separate commit_sync."),
    "size": ("A record waits for its transaction to fill (size records at 1 ms each) and then "
             "for the commit. Too small, and the commits (about 28 ms each when they follow "
             "each other) cannot keep up with the arrivals; too large, and the first record "
             "waits too long. Try sizes with lt.latency_run(size, records=600) (it stops once a "
             "record has waited over 1 s)."),
}


def read_committed_truth(script: tuple[tuple[object, ...], ...]) -> list[int]:
    """What a read_committed consumer really reads from ``script``'s log (the simulator)."""
    with untimed():  # the check's own run: the budget is for the learner's code
        return lt.offsets_read(lt.scripted_log(script), "read_committed")


# --- 05.a ----------------------------------------------------------------------------------------


def _prediction(fn: Callable[..., object], script: tuple) -> tuple[list[int] | None, str]:
    result = fn([tuple(step) for step in script])
    if isinstance(result, str) or not hasattr(result, "__iter__"):
        return None, f"read_committed_offsets must return a list of offsets, got " \
                     f"{_describe(result)}"
    out = list(result)
    if not all(is_whole(o) for o in out):
        return None, f"every offset must be a whole number, got {out[:8]!r}"
    return [int(o) for o in out], ""


@question(
    "05.a",
    points=5,
    answer="read_committed_offsets",
    title="Predict what read_committed reads",
    hint=_HINTS["read"],
)
def predict_read_committed(answer: object, sheet: Checklist) -> None:
    """Compare the learner's predictions with a read_committed consumer on simulated logs."""
    with sheet.item("read_committed_offsets(script) returns a list of whole offsets for the "
                    "notebook's script", points=1) as item:
        if not callable(answer):
            item.fail(f"expected a function read_committed_offsets(script), got "
                      f"{_describe(answer)}")
            mine = None
        else:
            mine, problem = _prediction(answer, VISIBLE_SCRIPT)
            if mine is None:
                item.fail(problem)
    if not item.passed or mine is None:
        return sheet.stop("there is no prediction to compare")
    with sheet.item("the notebook's script: exactly the offsets a read_committed consumer "
                    "returns", points=2) as item:
        truth = read_committed_truth(VISIBLE_SCRIPT)
        if mine != truth:
            item.fail(f"you predicted {mine}; a read_committed consumer returns "
                      f"{len(truth)} record(s), not these", _HINTS["read"])
    with sheet.item(f"{len(HIDDEN_SCRIPTS)} more scripts (not shown): the same, every time",
                    points=2) as item:
        for number, script in enumerate(HIDDEN_SCRIPTS, start=1):
            mine, problem = _prediction(answer, script)
            truth = read_committed_truth(script)
            if mine != truth:
                item.fail(f"hidden script {number}: {problem or 'your offsets differ from '}"
                          f"{'' if problem else 'what the consumer reads'}", _HINTS["read"])
                break
    return None


# --- 05.b ----------------------------------------------------------------------------------------


def _offsets_in_transaction(steps: list[str]) -> str:
    """A problem if the loop does not commit its input offsets inside its transaction."""
    if "begin_transaction" not in steps or "commit_transaction" not in steps:
        return "the loop has no transaction: begin_transaction … commit_transaction"
    if "commit_sync" in steps:
        return ("commit_sync() commits the offsets outside the transaction: a crash between "
                "the two commits writes the output again")
    if "send_offsets_to_transaction" not in steps:
        return "the input offsets are never committed: use send_offsets_to_transaction"
    begin, end = steps.index("begin_transaction"), len(steps) - 1 - steps[::-1].index(
        "commit_transaction")
    inside = steps[begin + 1:end]
    for step in ("send", "process", "send_offsets_to_transaction"):
        if step not in inside:
            return f"{step} must happen inside the transaction, between begin and commit"
    if steps.count("begin_transaction") != 1 or steps.count("commit_transaction") != 1:
        return "one poll's records go into one transaction: begin once, commit once"
    return ""


@question(
    "05.b",
    points=6,
    answer="loop_steps",
    title="A loop without duplicates",
    hint=_HINTS["loop"],
)
def fix_the_loop(answer: object, sheet: Checklist) -> None:
    """Run the learner's loop through crashes and count what read_committed sees."""
    steps: list[str] = []
    with sheet.item("loop_steps is a list of the loop's steps", points=1) as item:
        try:
            steps = lt.check_steps(answer)  # type: ignore[arg-type]
            if not all(isinstance(step, str) for step in steps):
                raise ValueError(f"every step must be a string, got {_describe(steps)}")
            # plain strings from here on: a str subclass cannot redefine == for the checks below
            steps = lt.check_steps([str.__str__(step) for step in steps])
        except ValueError as error:
            item.fail(str(error))
        else:
            if "send" not in steps or "process" not in steps:
                item.fail("the loop must send the output and process the records")
    if not item.passed:
        return sheet.stop("there is no loop to run")
    with sheet.item(f"member loop-1 crashes at {VISIBLE_CRASH_MS / 1000:g} s: a read_committed "
                    "reader of the output finds every input exactly once", points=2) as item:
        _crash_item(item, steps, VISIBLE_CRASH_MS)
    with sheet.item("the same for crashes at other moments (not shown)", points=1) as item:
        for at in HIDDEN_CRASH_MS:
            if not _crash_item(item, steps, at):
                break
    with sheet.item("the input offsets commit inside the transaction, with the output",
                    points=2) as item:
        problem = _offsets_in_transaction(steps)
        if problem:
            item.fail(problem, _HINTS["loop"])
    return None


def _crash_item(item: object, steps: list[str], at_ms: float) -> bool:
    with untimed():  # steps are data: the run calls no learner code, however long it takes
        kernel = lt.loop_crash_run(steps, at_ms)
        counts = lt.loop_duplicates(kernel)
        total = lt.output_copies(kernel, "out-loop", read_committed=False)
    inputs = lt.LOOP_RECORDS
    if counts["duplicates"]:
        item.fail(f"crash at {at_ms / 1000:g} s: {counts['duplicates']} inputs are in the "
                  "output twice", _HINTS["loop"])
        return False
    if counts["inputs read"] != inputs:
        item.fail(f"crash at {at_ms / 1000:g} s: only {counts['inputs read']} of {inputs} "
                  f"inputs reach read_committed readers ({len(total)} are in the log)",
                  _HINTS["loop"])
        return False
    return True


# --- 05.c ----------------------------------------------------------------------------------------


def latency_trial(size: int) -> dict[str, float]:
    """Exercise 05.c's run with a transaction size: the same simulation the check runs."""
    with untimed():  # the size is data: the run calls no learner code
        return lt.latency_run(size, RATE_PER_S, LATENCY_RECORDS)


@question(
    "05.c",
    points=4,
    answer="transaction_size",
    title="How big may a transaction be?",
    hint=_HINTS["size"],
)
def choose_size(answer: object, sheet: Checklist) -> None:
    """Run the learner's transaction size against the latency bound."""
    with sheet.item("transaction_size is a whole number of records, at least 1",
                    points=1) as item:
        if not is_whole(answer) or int(answer) < 1:  # type: ignore[call-overload]
            item.fail(f"expected a whole number ≥ 1, got {_describe(answer)}")
    if not item.passed:
        return sheet.stop("there is no size to try")
    size = int(answer)  # type: ignore[call-overload]
    with sheet.item(f"every record is visible to read_committed readers within "
                    f"{LATENCY_BOUND_MS:g} ms", points=2) as item:
        waited = latency_trial(size)["max wait (ms)"]
        if waited > LATENCY_BOUND_MS:
            item.fail(f"with {size} records per transaction a record waits up to "
                      f"{waited:,.0f} ms", _HINTS["size"])
    with sheet.item(f"no needless transactions: {LARGER:g} × that size would break the bound",
                    points=1) as item:
        larger = math.ceil(size * LARGER)
        waited = latency_trial(larger)["max wait (ms)"]
        if waited <= LATENCY_BOUND_MS:
            item.fail(f"transactions of {larger} records still keep every record within "
                      f"{LATENCY_BOUND_MS:g} ms (up to {waited:,.0f} ms): fewer, bigger "
                      "transactions cost less", _HINTS["size"])
    return None
