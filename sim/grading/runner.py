"""The submission's side of batch grading: run the notebook, hand over its answers as data.

Started by the checker (:mod:`sim.grading.checker`) inside the grading jail
(:mod:`sim.grading.sandbox`) as ``runner NOTEBOOK --answers NAME,NAME,...``. It never grades:

1. Parse the notebook as plain JSON (no Jupyter kernel is started).
2. Run its code cells in order in one namespace, each within a time budget. IPython magics
   (``%``/``!`` lines, ``%%`` cells) are skipped; ``check()`` answers "graded by the batch" and
   checks nothing; widgets are never built (``KAFKA_LAB_GRADING=1``).
3. Switch off the lab helpers the exercise names (``--guard module:function,...``): from now
   on they raise, so learner code the checker calls cannot ask the simulator for an answer.
4. Write one message: how each cell ran, and each named answer in the restricted form of
   :mod:`sim.grading.wire` (data as data; classes and functions as handles).
5. Serve the checker's calls on those handles (make an instance, call a method or function),
   each within a time budget, until the checker closes the pipe.

Everything this process says is untrusted: the checker decides every point from what it sees.
The notebook's own prints go to ``/dev/null``.

The notebook-reading helpers (:func:`parse_notebook`, :func:`recognise_exercise`) are shared
with the checker.
"""

from __future__ import annotations

import argparse
import builtins
import contextlib
import json
import linecache
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO

from sim.grading import GRADING_ENV_VAR
from sim.grading.budget import BudgetExceeded, time_budget
from sim.grading.checklist import describe_exception

__all__ = [
    "CellRun",
    "main",
    "parse_notebook",
    "recognise_exercise",
    "run_cells",
]

DEFAULT_CELL_TIMEOUT_S = 10.0
MAX_REQUEST_BYTES = 64 << 20


@dataclass(frozen=True)
class CellRun:
    """How one code cell ran: ``status`` is ok, error, timeout or skipped (a ``%%`` magic)."""

    number: int  # 1-based position among all cells, as a learner counts them
    questions: tuple[str, ...]
    status: str
    message: str = ""

    @property
    def label(self) -> str:
        return f"cell {self.number}"


# --- reading a notebook (also used by the checker) -----------------------------------------------


def parse_notebook(raw: bytes, name: str) -> tuple[dict[str, Any] | None, str | None]:
    """A notebook from its bytes; returns ``(notebook, None)`` or ``(None, reason)``.

    Never raises for any input: deep nesting, huge numbers and wrong types are reasons.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None, f"not a valid notebook: {name} is not UTF-8 text"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, (f"not a valid notebook: {name} is not valid JSON "
                      f"({exc.msg} at line {exc.lineno}, column {exc.colno})")
    except (ValueError, RecursionError, MemoryError) as exc:
        return None, f"not a valid notebook: {name} cannot be read ({type(exc).__name__})"
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        return None, f"not a Jupyter notebook: {name} has no list of cells"
    version = data.get("nbformat", 4)
    if not isinstance(version, int) or isinstance(version, bool):
        return None, f"not a Jupyter notebook: {name} has an nbformat that is not a number"
    if version < 4:
        return None, f"{name} uses an old notebook format; open and save it in Jupyter first"
    return data, None


def _meta(node: Any) -> dict[str, Any]:
    meta = node.get("metadata", {}) if isinstance(node, dict) else {}
    lab = meta.get("kafka_lab", {}) if isinstance(meta, dict) else {}
    return lab if isinstance(lab, dict) else {}


def cell_questions(cell: Any) -> tuple[str, ...]:
    """The question ids a cell is tagged with (``metadata.kafka_lab.question``)."""
    tag = _meta(cell).get("question")
    if isinstance(tag, str):
        return (tag,)
    if isinstance(tag, list):
        return tuple(t for t in tag if isinstance(t, str))
    return ()


def recognise_exercise(nb: dict[str, Any], path: Path) -> tuple[str | None, str | None]:
    """The exercise a notebook answers: metadata first, then its question tags, then its name."""
    from sim.grading.registry import exercise_names, questions

    known = exercise_names()
    named = _meta(nb).get("exercise")
    if isinstance(named, str) and named in known:
        return named, None
    registered = questions()
    tagged = {registered[q].exercise for cell in nb["cells"] for q in cell_questions(cell)
              if q in registered}
    if len(tagged) == 1:
        return tagged.pop(), None
    if path.stem in known:
        return path.stem, None
    return None, ("cannot tell which exercise this notebook answers: its metadata has no known "
                  "kafka_lab.exercise (start from the notebook in exercises/)")


def cell_source(cell: dict[str, Any]) -> str | None:
    """The cell's Python source with magic lines blanked; ``None`` for a ``%%`` cell magic."""
    raw = cell.get("source", "")
    if isinstance(raw, list):
        text = "".join(part for part in raw if isinstance(part, str))
    else:
        text = raw if isinstance(raw, str) else ""
    lines = text.splitlines()
    if lines and lines[0].lstrip().startswith("%%"):
        return None
    out = []
    for line in lines:
        stripped = line.lstrip()
        if stripped.startswith(("%", "!")):
            line = line[: len(line) - len(stripped)] + "pass  # IPython magic skipped"
        out.append(line)
    return "\n".join(out) + "\n"


# --- running it ----------------------------------------------------------------------------------


def _run_cell(number: int, source: str, namespace: dict[str, Any],
              budget_s: float | None) -> tuple[str, str]:
    filename = f"<cell {number}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    try:
        with time_budget(budget_s):
            code = compile(source, filename, "exec")
            exec(code, namespace)
    except SyntaxError as exc:
        return "error", f"has a syntax error: {exc.msg} (line {exc.lineno})"
    except BudgetExceeded as exc:
        return "timeout", f"{exc} (an endless loop?)"
    except SystemExit:
        return "error", "called exit(), which stops the notebook"
    except BaseException as exc:  # anything the learner's code raises
        return "error", f"raised {describe_exception(exc)}"
    return "ok", ""


def run_cells(nb: dict[str, Any], namespace: dict[str, Any],
              budget_s: float | None) -> list[CellRun]:
    """Run every code cell in order in ``namespace``; one failure never stops the rest."""
    runs = []
    for number, cell in enumerate(nb["cells"], start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        tags = cell_questions(cell)
        source = cell_source(cell)
        if source is None:
            runs.append(CellRun(number, tags, "skipped", "cell magic"))
            continue
        status, message = _run_cell(number, source, namespace, budget_s)
        runs.append(CellRun(number, tags, status, message[:500]))
    return runs


def _display(*objects: object, **kwargs: object) -> None:
    """Stands in for IPython's ``display`` while grading: shows nothing."""


# --- guarding the lab's answer helpers -----------------------------------------------------------


def _switched_off(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("this lab helper runs the simulator for what the question asks you to "
                       "predict, so it is switched off while the grader calls your code: "
                       "compute the answer yourself")


def helpers_to_guard(names: list[str]) -> list[Any]:
    """The functions ``module:function`` names, found before the notebook runs (so that a
    notebook rebinding the name leaves the lab's own function to be switched off)."""
    import importlib

    found = []
    for name in names:
        module_name, _, attribute = name.partition(":")
        fn = getattr(importlib.import_module(module_name), attribute)
        fn = getattr(fn, "__wrapped__", fn)
        if getattr(fn, "__closure__", None) or not hasattr(fn, "__code__"):
            raise ValueError(f"{name} is not a plain function; it cannot be switched off")
        found.append(fn)
    return found


def switch_off(functions: list[Any]) -> None:
    """Make each function raise when called, wherever it is referenced from: its code is
    replaced in place, so a name the notebook imported earlier
    (``from sim.lessons.transactions import scripted_log``) is switched off too."""
    for fn in functions:
        fn.__code__ = _switched_off.__code__.replace(co_name=fn.__name__,
                                                     co_qualname=fn.__qualname__)


# --- serving the checker -------------------------------------------------------------------------


class _Server:
    """The learner objects the checker may call, by handle id, and the pipe to the checker."""

    def __init__(self, requests: BinaryIO, replies: BinaryIO, budget_s: float | None) -> None:
        self.requests = requests
        self.replies = replies
        self.budget_s = budget_s
        self.objects: list[Any] = []

    def send(self, message: dict[str, Any]) -> None:
        from sim.grading.wire import dumps

        self.replies.write(dumps(message).encode() + b"\n")
        self.replies.flush()

    def receive(self) -> dict[str, Any] | None:
        from sim.grading.wire import WireError, loads

        line = self.requests.readline(MAX_REQUEST_BYTES)
        if not line:
            return None
        try:
            message = loads(line)
        except WireError:
            return None
        return message if isinstance(message, dict) else None

    def handle(self, value: Any) -> dict[str, Any]:
        """A handle for learner code (class, function, other object) the checker may call."""
        from sim.grading.wire import signature_of

        self.objects.append(value)
        number = len(self.objects) - 1
        if isinstance(value, type):
            return {"$": "class", "id": number, "name": str(value.__name__)[:80],
                    "methods": _methods(value)}
        if callable(value):
            return {"$": "function", "id": number,
                    "name": str(getattr(value, "__name__", "function"))[:80],
                    "module": str(getattr(value, "__module__", ""))[:200],
                    "params": signature_of(value)}
        kind = self.handle(type(value))
        return {"$": "object", "id": number, "class": kind["id"], "type": kind["name"],
                "methods": kind["methods"]}

    def rebuild(self, data: dict[str, Any]) -> Any:
        """A checker object handed to learner code: calls go back through the pipe."""
        from sim.grading.wire import WireError

        if data.get("$") != "remote" or not isinstance(data.get("id"), int):
            raise WireError("only remote objects come from the checker")
        return _Remote(self, data["id"], data.get("name", "consumer"))

    def encode(self, value: Any) -> Any:
        from sim.grading.wire import encode

        return encode(value, self.handle)

    def decode(self, data: Any) -> Any:
        from sim.grading.wire import decode

        return decode(data, self.rebuild)

    def serve(self) -> None:
        """Answer calls until the checker hangs up."""
        while (request := self.receive()) is not None:
            self.send({"n": request.get("n"), **self.answer(request)})

    def answer(self, request: dict[str, Any]) -> dict[str, Any]:
        from sim.consumer.client import LEARNER_CODE

        try:
            target = self.objects[int(request["id"])]
            args = self.decode(request.get("args", []))
            method = request.get("method")
            remotes = [a for a in args if isinstance(a, _Remote)]
            if remotes:
                LEARNER_CODE.append(remotes[0])  # process(records) goes to the checker's consumer
            try:
                with time_budget(self.budget_s):
                    if request.get("op") == "method":
                        if not isinstance(method, str) or method not in _methods(type(target)):
                            raise AttributeError(f"no method {str(method)[:40]!r}")
                        result = getattr(target, method)(*args)
                    else:
                        result = target(*args)
            finally:
                if remotes:
                    LEARNER_CODE.pop()
            return {"ok": self.encode(result)}
        except BudgetExceeded as exc:
            return {"raise": "budget", "seconds": exc.seconds}
        except NotImplementedError as exc:
            return {"raise": "stub", "text": describe_exception(exc)[:500]}
        except SystemExit:
            return {"raise": "error", "text": "called exit()"}
        except BaseException as exc:
            return {"raise": "error", "text": describe_exception(exc)[:500],
                    "kinds": [f"{k.__module__}.{k.__qualname__}"[:200]
                              for k in type(exc).__mro__[:20]]}


def _methods(cls: type) -> list[str]:
    names = [name[:80] for name in dir(cls)
             if not name.startswith("_") and callable(getattr(cls, name, None))]
    return names[:100]


class _Remote:
    """A checker object (a consumer) seen from learner code: every call is a message."""

    def __init__(self, server: _Server, number: int, name: object) -> None:
        self._server = server
        self._number = number
        self.client_id = str(name)[:80]

    def __getattr__(self, method: str) -> Any:
        from sim.grading.wire import REMOTE_METHODS

        if method not in REMOTE_METHODS:
            raise AttributeError(f"the consumer has no method {method!r} here")

        def call(*args: Any) -> Any:
            server = self._server
            server.send({"back": {"id": self._number, "method": method,
                                  "args": server.encode(list(args))}})
            reply = server.receive()
            if reply is None:
                raise RuntimeError("the grader stopped answering")
            if "raise" in reply:
                raise RuntimeError(str(reply["raise"])[:500])
            return server.decode(reply.get("ok"))

        return call


def _claim_pipes() -> tuple[BinaryIO, BinaryIO]:
    """Keep stdin/stdout for the checker; the learner's code gets /dev/null for fds 0, 1, 2."""
    sys.stdout.flush()
    sys.stderr.flush()
    requests = os.fdopen(os.dup(0), "rb")
    replies = os.fdopen(os.dup(1), "wb")
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    return requests, replies


def main(argv: list[str] | None = None) -> None:
    """``runner NOTEBOOK --answers A,B [--cell-timeout S] [--call-timeout S] [--guard M:F,...]``."""
    parser = argparse.ArgumentParser(prog="python -m sim.grading.runner")
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--answers", default="")
    parser.add_argument("--cell-timeout", type=float, default=DEFAULT_CELL_TIMEOUT_S)
    parser.add_argument("--call-timeout", type=float, default=DEFAULT_CELL_TIMEOUT_S)
    parser.add_argument("--guard", default="")
    args = parser.parse_args(argv)
    os.environ[GRADING_ENV_VAR] = "1"
    sys.dont_write_bytecode = True
    requests, replies = _claim_pipes()
    server = _Server(requests, replies, args.call_timeout)
    try:
        nb, problem = parse_notebook(args.notebook.read_bytes(), args.notebook.name)
        if nb is None:
            server.send({"ran": {"problem": problem}})
            os._exit(0)
        namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins,
                                     "display": _display}
        guarded = helpers_to_guard(list(filter(None, args.guard.split(","))))
        cells = run_cells(nb, namespace, args.cell_timeout)
        switch_off(guarded)
        answers = {}
        for name in filter(None, args.answers.split(",")):
            if name not in namespace:
                continue
            try:
                answers[name] = server.encode(namespace[name])
            except (ValueError, RecursionError) as exc:
                answers[name] = {"$": "unsupported", "why": str(exc)[:200]}
        server.send({"ran": {"cells": [asdict(c) for c in cells], "answers": answers}})
        server.serve()
    except BaseException as exc:
        with contextlib.suppress(BaseException):
            server.send({"ran": {"problem": f"the notebook could not be run: "
                                            f"{describe_exception(exc)[:300]}"}})
    os._exit(0)  # skip the learner's atexit handlers and threads


if __name__ == "__main__":
    main()
