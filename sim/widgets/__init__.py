"""Widget panels the lessons reuse: the partitioner playground, the key explorer, the stepper,
the fault panel.

Every panel is built by a factory (:func:`playground`, :func:`key_explorer`, :func:`stepper`,
:func:`fault_panel`) whose callbacks are plain functions of (state, values) —
:func:`simulate_playground`, :func:`render`, :func:`step_forward`, :func:`step_back`,
:func:`seek_time`, :func:`seek_event`, :func:`fire`, :func:`run_forward` — so that tests
exercise them without a browser. Panels that re-run a simulation whenever a control changes
(the playground, the lag panel) are ``sim.widgets.panel.RunPanel`` subclasses; the playground
keeps one ``PlaygroundFigure`` and redraws only its data between runs.

While a notebook is graded (environment variable ``KAFKA_LAB_GRADING=1``) the factories build
nothing and return a :class:`GradingPlaceholder`, because widgets can hang a grader.
"""

from __future__ import annotations

from sim.widgets.fault_panel import (
    FAULT_ACTIONS,
    FaultPanelState,
    fault_figure,
    fault_for,
    fault_panel,
    fault_status,
    fire,
    live_cluster,
    new_fault_state,
    reset_faults,
    run_forward,
)
from sim.widgets.panel import GRADING_ENV_VAR, GradingPlaceholder, grading_mode
from sim.widgets.playground import (
    DEFAULTS,
    PlaygroundResult,
    key_explorer,
    key_route_html,
    playground,
    render,
    simulate_playground,
    stats_html,
)
from sim.widgets.stepper import (
    VIEWS,
    StepperState,
    StepperView,
    new_state,
    recent_events,
    recent_replication_events,
    replication_figure,
    reset,
    seek_event,
    seek_step,
    seek_time,
    step_back,
    step_events,
    step_forward,
    stepper,
)

__all__ = [
    "DEFAULTS",
    "FAULT_ACTIONS",
    "GRADING_ENV_VAR",
    "VIEWS",
    "FaultPanelState",
    "GradingPlaceholder",
    "PlaygroundResult",
    "StepperState",
    "StepperView",
    "fault_figure",
    "fault_for",
    "fault_panel",
    "fault_status",
    "fire",
    "grading_mode",
    "key_explorer",
    "key_route_html",
    "live_cluster",
    "new_fault_state",
    "new_state",
    "playground",
    "recent_events",
    "recent_replication_events",
    "render",
    "replication_figure",
    "reset",
    "reset_faults",
    "run_forward",
    "seek_event",
    "seek_step",
    "seek_time",
    "simulate_playground",
    "stats_html",
    "step_back",
    "step_events",
    "step_forward",
    "stepper",
]
