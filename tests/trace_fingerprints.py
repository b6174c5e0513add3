"""Fingerprints of every built-in scenario's trace frames, to pin the trace's DataFrames.

A fingerprint records a frame's columns, dtypes and a SHA-256 of each column's values (their
``repr`` as Python objects, so ``1``, ``1.0``, ``True``, ``'1'`` and missing values all differ).
``python tests/trace_fingerprints.py [NAME ...]`` rewrites ``tests/data/trace/fingerprints.json``
(only the named scenarios' entries when names are given): only do it after a change to a scenario
or to what the model emits, never to make the trace tests pass.
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


def pinned_names() -> list[str]:
    """The built-in scenarios whose trace frames are pinned: all of them."""
    from sim import scenarios

    return scenarios.builtin_names()


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

    return trace_fingerprints(scenarios.load(name).run().trace)


def trace_fingerprints(trace: Any) -> dict[str, Any]:
    """The whole-trace frame, each kind's frame, head and tail of a finished run's trace."""
    from sim.trace import KINDS

    out = {"to_frame": fingerprint(trace.to_frame()), "tail": fingerprint(trace.tail(7)),
           "kinds": {}}
    if hasattr(trace, "head"):
        out["head"] = fingerprint(trace.head(7))
    for kind_name in sorted(KINDS):
        if trace.count(KINDS[kind_name]):
            out["kinds"][kind_name] = fingerprint(trace.frame(KINDS[kind_name]))
    return out


def main(names: list[str]) -> None:
    """Rewrite the fingerprints of the scenarios ``names`` (all of them when none is given)."""
    data = json.loads(FINGERPRINTS.read_text()) if names else {}
    data.update({name: scenario_fingerprints(name) for name in names or pinned_names()})
    FINGERPRINTS.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    sys.stderr.write(f"wrote {FINGERPRINTS.relative_to(ROOT)} "
                     f"({len(names or data)} of {len(data)} scenarios)\n")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main(sys.argv[1:])
