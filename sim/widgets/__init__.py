"""Widget panels the lessons reuse: the partitioner playground, the key explorer, the stepper.

Every panel is built by a factory (:func:`playground`, :func:`key_explorer`, :func:`stepper`)
whose callbacks are plain functions of (state, values) — :func:`simulate_playground`,
:func:`render`, :func:`step_forward`, :func:`step_back`, :func:`seek_time` — so that tests
exercise them without a browser.

While a notebook is graded (environment variable ``KAFKA_LAB_GRADING=1``) the factories build
nothing and return a :class:`GradingPlaceholder`, because widgets can hang a grader.
"""

from __future__ import annotations

from sim.widgets.playground import (
    DEFAULTS,
    GRADING_ENV_VAR,
    GradingPlaceholder,
    PlaygroundResult,
    grading_mode,
    key_explorer,
    key_route_html,
    playground,
    render,
    simulate_playground,
    stats_html,
)
from sim.widgets.stepper import (
    StepperState,
    new_state,
    recent_events,
    reset,
    seek_step,
    seek_time,
    step_back,
    step_forward,
    stepper,
)

__all__ = [
    "DEFAULTS",
    "GRADING_ENV_VAR",
    "GradingPlaceholder",
    "PlaygroundResult",
    "StepperState",
    "grading_mode",
    "key_explorer",
    "key_route_html",
    "new_state",
    "playground",
    "recent_events",
    "render",
    "reset",
    "seek_step",
    "seek_time",
    "simulate_playground",
    "stats_html",
    "step_back",
    "step_forward",
    "stepper",
]
