"""Rewrite the golden outputs: ``python -m sim run NAME`` for every built-in scenario.

``tests/test_scenarios.py`` compares each built-in scenario's command-line output with
``tests/golden/NAME.txt`` byte for byte. After an intended change to the simulator or to the
report, regenerate the files from the repository root and review the difference before
committing it:

    python tests/golden/regenerate.py          # every built-in scenario
    python tests/golden/regenerate.py keyed    # only the named ones
    git diff tests/golden/

Goldens of scenarios that no longer exist are deleted. The output is written exactly as the
command prints it (UTF-8, ``\\n`` line ends), by calling the command's ``main`` in-process.
"""

from __future__ import annotations

import contextlib
import io
import sys
from pathlib import Path

GOLDEN = Path(__file__).resolve().parent
ROOT = GOLDEN.parents[1]


def render(name: str) -> str:
    """What ``python -m sim run NAME`` prints."""
    from sim.__main__ import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["run", name])
    if code != 0:
        raise SystemExit(f"python -m sim run {name} exited with {code}")
    return out.getvalue()


def regenerate(names: list[str] | None = None) -> list[Path]:
    """Write the goldens of ``names`` (default: all built-ins); return the files written."""
    from sim import scenarios

    builtins = scenarios.builtin_names()
    if not names:
        names = builtins
        for stale in GOLDEN.glob("*.txt"):
            if stale.stem not in builtins:
                stale.unlink()
    written = []
    for name in names:
        path = GOLDEN / f"{name}.txt"
        path.write_bytes(render(name).encode("utf-8"))
        written.append(path)
    return written


if __name__ == "__main__":
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))  # also works without `pip install -e .`
    for path in regenerate(sys.argv[1:]):
        sys.stderr.write(f"wrote {path.relative_to(ROOT)}\n")
