"""Fingerprints of every built-in scenario's trace frames, to pin the trace's DataFrames.

A fingerprint records a frame's columns, dtypes and a SHA-256 of each column's values (their
``repr`` as Python objects, so ``1``, ``1.0``, ``True``, ``'1'`` and missing values all differ).
``python tests/trace_fingerprints.py`` rewrites ``tests/data/trace/fingerprints.json``: only do it
after a change to a scenario or to what the model emits, never to make the trace tests pass.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
FINGERPRINTS = ROOT / "tests" / "data" / "trace" / "fingerprints.json"
UNSTABLE = ("streams-restore-", "kappa-reprocessing")
"""Scenarios whose ``streams.state`` events depend on what ran before in the same interpreter
(stream thread names and the number of state changes), so their frames cannot be pinned."""


def pinned_names() -> list[str]:
    """The built-in scenarios whose trace frames are pinned."""
    from sim import scenarios

    return [n for n in scenarios.builtin_names() if not n.startswith(UNSTABLE)]


def fingerprint(frame: pd.DataFrame) -> dict[str, Any]:
    """Columns, dtypes, index and a hash of every column's values, as Python objects."""
    return {
        "rows": len(frame),
        "index": _digest(list(frame.index)),
        "columns": [str(c) for c in frame.columns],
        "dtypes": [str(t) for t in frame.dtypes],
        "values": {str(c): _digest([(type(v).__name__, v) for v in frame[c].tolist()])
                   for c in frame.columns},
    }


def _digest(values: list[Any]) -> str:
    return hashlib.sha256(repr(values).encode()).hexdigest()


def scenario_fingerprints(name: str) -> dict[str, Any]:
    """The whole-trace frame, each kind's frame, head and tail of one built-in scenario's run."""
    from sim import scenarios
    from sim.trace import KINDS

    trace = scenarios.load(name).run().trace
    out = {"to_frame": fingerprint(trace.to_frame()), "tail": fingerprint(trace.tail(7)),
           "kinds": {}}
    if hasattr(trace, "head"):
        out["head"] = fingerprint(trace.head(7))
    for kind_name in sorted(KINDS):
        if trace.count(KINDS[kind_name]):
            out["kinds"][kind_name] = fingerprint(trace.frame(KINDS[kind_name]))
    return out


def main() -> None:
    data = {name: scenario_fingerprints(name) for name in pinned_names()}
    FINGERPRINTS.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    sys.stderr.write(f"wrote {FINGERPRINTS.relative_to(ROOT)} ({len(data)} scenarios)\n")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
