"""``import sim`` loads only what a run needs: plotting and widgets load when first used."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def modules_after(code: str) -> set[str]:
    """The top-level modules a fresh interpreter has imported after running ``code``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    script = (f"{code}\nimport sys\n"
              "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))")
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=120, check=True)
    return set(proc.stdout.split())


def test_import_sim_loads_no_plotting_or_widgets() -> None:
    """``import sim`` and a scenario run import neither matplotlib nor ipywidgets."""
    loaded = modules_after("import sim\nfrom sim import scenarios\n"
                           "scenarios.load('keyed').build()")
    assert "sim" in loaded
    assert not loaded & {"matplotlib", "ipywidgets", "IPython"}


def test_plotting_still_loads_when_asked_for() -> None:
    """The figures module brings matplotlib in when a lesson imports it."""
    assert "matplotlib" in modules_after("import sim.viz")
