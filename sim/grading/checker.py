"""The checker: grade one submission from the data its notebook hands over, in its own process.

Run by the batch grader as ``checker NOTEBOOK [options]``, one process per submission; it prints
one JSON document. It reads the notebook itself (never trusting the submission to say which
exercise it is), starts the notebook in the grading jail (:mod:`sim.grading.sandbox`,
:mod:`sim.grading.runner`) and receives the answers in the restricted form of
:mod:`sim.grading.wire`. Then it runs each question's check here, on that data. Where a check
calls learner code (a partitioner's ``partition``, an ``on_records`` callback) the call is a
message to the jail and only its answer, as data, comes back; learner code never runs in this
process and cannot reach any object of it.

A question scores 0, with a reason, when a cell tagged with it failed or timed out in the jail.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from sim.grading import run_check
from sim.grading.budget import BudgetExceeded
from sim.grading.registry import Question, exercise_questions
from sim.grading.results import CheckResult
from sim.grading.runner import CellRun, parse_notebook, recognise_exercise
from sim.grading.sandbox import Jail, Limits, become_subreaper, read_line, start
from sim.grading.wire import (
    REMOTE_METHODS,
    LearnerError,
    LearnerNotImplementedError,
    WireError,
    decode,
    dumps,
    encode,
    loads,
    signature_from,
)

__all__ = ["MAX_NOTEBOOK_BYTES", "grade_notebook", "main"]

MAX_NOTEBOOK_BYTES = 16 << 20
MAX_MESSAGE_BYTES = 32 << 20  # everything the jail may write, in total
MAX_LINE_BYTES = 1 << 20  # one message; an honest one is a few kB, and parsing one costs
# some twenty times its size in memory here
_PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])


class _Gone(Exception):  # noqa: N818 - the jail stopped answering; not the learner's error
    """The submission's process ended, went silent past its deadline, or broke the protocol."""


class Link:
    """The checker's end of the pipe: requests to the jail, proxies for what lives there."""

    def __init__(self, jail: Jail, deadline: float, limit_s: float) -> None:
        self.jail = jail
        self.deadline = deadline
        self.limit_s = limit_s
        self.counter = 0
        self.remote: list[Any] = []
        self.broken: str | None = None

    def receive(self) -> dict[str, Any]:
        line = read_line(self.jail, self.deadline, MAX_MESSAGE_BYTES)
        if line is None:
            if time.monotonic() >= self.deadline:
                raise _Gone(f"the notebook did not finish within {self.limit_s:g} s (whole run)")
            if self.jail.received > MAX_MESSAGE_BYTES:
                raise _Gone(f"the notebook wrote more than {MAX_MESSAGE_BYTES >> 20} MB to the "
                            "grader")
            raise _Gone("the notebook's process ended before grading was over")
        if len(line) > MAX_LINE_BYTES:
            raise _Gone(f"the notebook sent the grader a message of more than "
                        f"{MAX_LINE_BYTES >> 20} MB")
        try:
            message = loads(line)
        except WireError as exc:
            raise _Gone(f"the notebook sent the grader something unreadable: {exc}") from None
        if not isinstance(message, dict):
            raise _Gone("the notebook sent the grader something unreadable")
        return message

    def request(self, op: str, number: int, args: list[Any], method: str | None = None) -> Any:
        """Call learner code in the jail; its result comes back as data (or a proxy)."""
        if self.broken:
            raise LearnerError(self.broken)
        self.counter += 1
        n = self.counter
        if not self.jail.send(dumps({"n": n, "op": op, "id": number, "method": method,
                                     "args": self.encode(args)})):
            raise _Gone("the notebook's process ended before grading was over")
        try:
            message = self._answer_to(n)
        except BudgetExceeded:
            # this process's own budget ran out while the jail was still inside the call:
            # later calls would wait behind it
            self.broken = "an earlier call into your code did not return in time"
            raise
        if "ok" in message:
            try:
                return self.decode(message["ok"])
            except WireError as exc:
                raise LearnerError(f"returned something the grader cannot read: {exc}") from None
        kind, text = message.get("raise"), str(message.get("text", ""))[:500]
        if kind == "stub":
            raise LearnerNotImplementedError(text)
        if kind == "budget":  # the jail stopped the call itself and is ready for the next one
            seconds = message.get("seconds")
            raise BudgetExceeded(seconds if isinstance(seconds, float | int) else 0.0)
        kinds = message.get("kinds")
        raise LearnerError(text or "raised an error", tuple(
            str(k)[:200] for k in kinds[:20]) if isinstance(kinds, list) else ())

    def _answer_to(self, n: int) -> dict[str, Any]:
        """Wait for the jail's answer to request ``n``, serving its calls back meanwhile."""
        while True:
            message = self.receive()
            if "back" in message:
                self._call_back(message["back"])
            elif message.get("n") == n:
                return message
            # anything else is the late answer of a call that ran out of time

    def _call_back(self, data: Any) -> None:
        """Learner code calls a checker object (a consumer method): run it, answer as data."""
        try:
            if not isinstance(data, dict) or not isinstance(data.get("id"), int):
                raise WireError("a call back names no object")
            target = self.remote[data["id"]]
            method = data.get("method")
            if method not in REMOTE_METHODS:
                raise WireError(f"no method {str(method)[:40]!r}")
            args = decode(data.get("args", []), _no_handles)  # data only: no learner objects
            result = getattr(target, str(method))(*args)
            reply: dict[str, Any] = {"ok": self.encode(result)}
        except Exception as exc:  # told to the learner code as an error
            reply = {"raise": f"{type(exc).__name__}: {exc}"[:500]}
        self.jail.send(dumps(reply))

    def encode(self, value: Any) -> Any:
        return encode(value, self._export)

    def _export(self, value: Any) -> dict[str, Any]:
        if isinstance(value, _Proxy):
            raise WireError("learner objects cannot be passed back")
        if not all(callable(getattr(value, m, None)) for m in ("process", "commit_sync")):
            raise WireError(f"a {type(value).__name__} cannot be handed to learner code")
        self.remote.append(value)
        return {"$": "remote", "id": len(self.remote) - 1,
                "name": str(getattr(value, "client_id", "consumer"))}

    def decode(self, data: Any) -> Any:
        return decode(data, self._proxy)

    def _proxy(self, data: dict[str, Any]) -> Any:
        number = data.get("id")
        if not isinstance(number, int) or isinstance(number, bool):
            raise WireError("a handle without an id")
        kind = data["$"]
        if kind == "class":
            return _learner_class(self, number, data)
        if kind == "function":
            return _learner_function(self, number, data)
        if kind == "object":
            of = data.get("class")
            if not isinstance(of, int) or isinstance(of, bool):
                raise WireError("an object handle without its class")
            cls = _learner_class(self, of, {**data, "name": data.get("type")})
            return cls._from_handle(number)
        raise WireError(f"unexpected {kind} handle")


def _no_handles(data: dict[str, Any]) -> Any:
    raise WireError(f"a {data.get('$')} cannot be handed to a checker object")


class _Proxy:
    """Marks checker-side stand-ins for learner code."""


def _name(data: dict[str, Any], key: str, default: str) -> str:
    value = data.get(key)
    if isinstance(value, str) and value.isidentifier() and len(value) <= 80:
        return value
    return default


def _method_names(data: dict[str, Any]) -> list[str]:
    methods = data.get("methods")
    if not isinstance(methods, list):
        return []
    return [m for m in methods[:100] if isinstance(m, str) and m.isidentifier()
            and not m.startswith("_")]


def _learner_class(link: Link, number: int, data: dict[str, Any]) -> type:
    """A stand-in class: creating it creates the learner's object in the jail."""
    methods = _method_names(data)

    def make_method(method: str) -> Any:
        def call(self: Any, *args: Any) -> Any:
            return link.request("method", self._handle, list(args), method)

        call.__name__ = method
        return call

    def __init__(self: Any, *args: Any) -> None:  # noqa: N807
        made = link.request("call", number, list(args))
        if not isinstance(made, _Proxy):
            raise LearnerError("creating an instance returned no object")
        self._handle = made._handle

    def _from_handle(cls: type, handle: int) -> Any:
        instance = object.__new__(cls)
        instance._handle = handle
        return instance

    namespace: dict[str, Any] = {m: make_method(m) for m in methods}
    namespace.update({"__init__": __init__, "_from_handle": classmethod(_from_handle),
                      "__module__": "__main__", "_handle": None})
    return type(_name(data, "name", "LearnerClass"), (_Proxy,), namespace)


def _learner_function(link: Link, number: int, data: dict[str, Any]) -> Any:
    """A stand-in function: calling it calls the learner's function in the jail."""

    def call(*args: Any) -> Any:
        return link.request("call", number, list(args))

    call.__name__ = call.__qualname__ = _name(data, "name", "function")
    module = data.get("module")
    call.__module__ = module[:200] if isinstance(module, str) else "__main__"
    signature = signature_from(data.get("params"))
    if signature is not None:
        call.__signature__ = signature  # type: ignore[attr-defined]
    else:
        call.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [inspect.Parameter("args", inspect.Parameter.VAR_POSITIONAL)])
    return call


# --- grading -------------------------------------------------------------------------------------


def _zero(q: Question, reason: str) -> CheckResult:
    return CheckResult(q.id, 0, q.points, "error", failed=[reason], reason=reason, title=q.title,
                       hint="Fix the cell named above, restart the kernel and run the whole "
                            "notebook.")


def _unreadable(q: Question, why: str) -> CheckResult:
    reason = f"{q.answer} cannot be handed to the grader: {why}"
    return CheckResult(q.id, 0, q.points, "failed", failed=[reason], reason=reason,
                       title=q.title, hint="Answer with numbers, strings, lists, dicts or the "
                                           "class or function the question asks for.")


def _cells(data: Any) -> list[CellRun]:
    runs = []
    for item in data if isinstance(data, list) else []:
        try:
            runs.append(CellRun(int(item["number"]),
                                tuple(str(t)[:10] for t in item["questions"][:10]),
                                str(item["status"])[:20], str(item.get("message", ""))[:500]))
        except (KeyError, TypeError, ValueError):
            continue
    return runs


def grade_question(q: Question, link: Link, answers: dict[str, Any], cells: list[CellRun],
                   budget_s: float | None) -> CheckResult:
    """Grade one question from the answer the notebook handed over."""
    failed = next((c for c in cells if q.id in c.questions and c.status in ("error", "timeout")),
                  None)
    if failed is not None:
        return _zero(q, f"{failed.label} (question {q.id}) {failed.message}")
    if q.answer not in answers:
        broken = next((c for c in cells if c.status in ("error", "timeout")), None)
        why = f"; {broken.label} {broken.message}" if broken else ""
        return CheckResult(q.id, 0, q.points, "not yet solved",
                           reason=f"{q.answer} is not defined after running the notebook{why}",
                           title=q.title,
                           hint=f"Keep the cell that defines {q.answer} and run the notebook "
                                "top to bottom.")
    raw = answers[q.answer]
    if isinstance(raw, dict) and raw.get("$") == "unsupported":
        return _unreadable(q, str(raw.get("why", ""))[:200])
    try:
        answer = link.decode(raw)
    except WireError as exc:
        return _unreadable(q, str(exc))
    return run_check(q, answer, budget_s)


def check_budget(cell_timeout_s: float) -> float:
    """Seconds each question's check may take: its calls into learner code are messages, and
    each call has ``cell_timeout_s`` on its own in the jail."""
    return max(30.0, 3 * cell_timeout_s)


def grade_notebook(path: Path, *, timeout_s: float, cell_timeout_s: float,
                   spec: Limits | None = None, mode: str | None = None,
                   slot: int = 0, within: str | None = None) -> dict[str, Any]:
    """Grade one submitted notebook; returns the JSON-ready result document.

    Args:
        path: the submitted notebook (read here, never opened by the submission).
        timeout_s: wall-clock limit for the notebook's run in the jail.
        cell_timeout_s: limit per code cell, and per call into learner code.
        spec: the jail's resource limits.
        mode: the jail's mode (default: the best available).
        slot: which of the jails running at the same time this one is.
        within: the folder for the jail's scratch folder (the batch removes it afterwards).
    """
    document: dict[str, Any] = {"exercise": None, "problem": None, "results": [], "cells": []}
    deadline = time.monotonic() + timeout_s
    try:
        if path.is_symlink() or not path.is_file():
            document["problem"] = f"{path.name} is not a regular file"
            return document
        with open(path, "rb") as f:
            raw = f.read(MAX_NOTEBOOK_BYTES + 1)
    except OSError as exc:
        document["problem"] = f"could not read {path.name}: {exc.strerror}"
        return document
    if len(raw) > MAX_NOTEBOOK_BYTES:
        document["problem"] = (f"{path.name} is larger than {MAX_NOTEBOOK_BYTES >> 20} MB; "
                               "clear its outputs and submit it again")
        return document
    nb, problem = parse_notebook(raw, path.name)
    if nb is None:
        document["problem"] = problem
        return document
    exercise, problem = recognise_exercise(nb, path)
    document["exercise"] = exercise
    if exercise is None:
        document["problem"] = problem
        return document
    qs = exercise_questions(exercise)
    from sim.grading.registry import guarded_while_graded, hidden_while_graded

    jail = start(raw, ["--answers", ",".join(sorted({q.answer for q in qs})),
                       "--guard", ",".join(guarded_while_graded(exercise)),
                       "--cell-timeout", str(cell_timeout_s),
                       "--call-timeout", str(cell_timeout_s)],
                 spec=spec or Limits(cpu_s=int(timeout_s) + 5), package_parent=_PACKAGE_PARENT,
                 hide=hidden_while_graded(exercise), mode=mode, slot=slot, within=within)
    # the batch kills the jail's session itself if this process dies
    sys.stdout.write(json.dumps({"jail": jail.process.pid}) + "\n")
    sys.stdout.flush()
    link = Link(jail, deadline, timeout_s)
    checks_end = deadline + len(qs) * check_budget(cell_timeout_s)
    try:
        try:
            first = link.receive()
        except _Gone as exc:
            document["problem"] = str(exc)
            return document
        ran = first.get("ran") if isinstance(first.get("ran"), dict) else {}
        if isinstance(ran.get("problem"), str):
            document["problem"] = ran["problem"][:300]
            return document
        link.deadline = checks_end  # the jail answers calls while the checks run
        cells = _cells(ran.get("cells"))
        answers = ran.get("answers") if isinstance(ran.get("answers"), dict) else {}
        document["cells"] = [vars(c) | {"questions": list(c.questions)} for c in cells]
        results = []
        for q in qs:
            try:
                results.append(grade_question(q, link, answers, cells,
                                              check_budget(cell_timeout_s)))
            except _Gone as exc:
                results.append(_zero(q, f"grading stopped: {exc}"))
        document["results"] = [r.to_dict() for r in results]
        return document
    finally:
        jail.finish()


def main(argv: list[str] | None = None) -> None:
    """``checker NOTEBOOK --timeout S --cell-timeout S [--memory BYTES] [--mode M]``."""
    parser = argparse.ArgumentParser(prog="python -m sim.grading.checker")
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--cell-timeout", type=float, default=10.0)
    parser.add_argument("--memory", type=int, default=Limits.memory_bytes)
    parser.add_argument("--processes", type=int, default=Limits.processes)
    parser.add_argument("--mode", default=None)
    parser.add_argument("--slot", type=int, default=0)
    parser.add_argument("--scratch", default=None)
    args = parser.parse_args(argv)
    become_subreaper()
    spec = Limits(cpu_s=int(args.timeout) + 5, memory_bytes=args.memory,
                  processes=args.processes)
    try:
        document = grade_notebook(args.notebook, timeout_s=args.timeout,
                                  cell_timeout_s=args.cell_timeout, spec=spec, mode=args.mode,
                                  slot=args.slot, within=args.scratch)
    except Exception as exc:  # a failure here is this submission's zero
        document = {"exercise": None, "problem": f"grading failed: {type(exc).__name__}: "
                                                 f"{str(exc)[:200]}"}
    sys.stdout.write(json.dumps({"document": document}) + "\n")
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
