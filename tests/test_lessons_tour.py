"""Specification of what lesson 00 (the tour) says about its runs, calling the same functions
with the same arguments as ``notebooks/00_tour.ipynb``."""

from __future__ import annotations

import importlib
from functools import partial

import pandas as pd

from sim import lessons, widgets

stepper = importlib.import_module("sim.widgets.stepper")  # sim.widgets.stepper is also a function

SEED = 7
"""The tour's kernel seed (``Kernel(seed=7)``), which its stepper's runs reuse."""


small_run = partial(lessons.producer_kernel, seed=SEED, topic="orders", partitions=6,
                    records=300, rate_per_s=1_000, keys="uniform")
"""The stepper's factory, as the tour builds it."""


def test_tour_stepper_forward_20_back_1_is_the_run_stopped_after_19_steps():
    """"moved 20 steps forward, then one back; the trace is the same as if you had stopped
    after 19 steps. Its last event is #21, as the stepper would show it: a step writes no
    event, one, or several — a request carrying two partitions' batches is appended to both
    logs in one step"; the table below shows events #17 to #21."""
    state = widgets.new_state(small_run)
    widgets.step_forward(state, 20)
    widgets.step_back(state)
    reference = widgets.step_forward(widgets.new_state(small_run), 19)
    assert state.steps == 19
    pd.testing.assert_frame_equal(state.kernel.trace.to_frame(),
                                  reference.kernel.trace.to_frame())
    assert stepper.status_text(state).startswith("event #21 of ")
    recent = widgets.recent_events(state, 5)
    assert list(recent["seq"]) == [17, 18, 19, 20, 21]
    appends = recent[recent["kind"] == "log.append"]
    assert len(appends) == 2
    assert appends["time_ms"].nunique() == 1
    assert appends["partition"].nunique() == 2
