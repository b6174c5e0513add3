"""The partitioner playground and the key explorer.

The playground runs one seeded producer simulation (≈100,000 records by default) for the values
of its controls and shows records per partition coloured by leader broker, records per batch and
latency, under a line that names the Kafka version's behaviour and the key configs in force.

Structure, so that tests need no browser:

- :func:`simulate_playground` ``(values) -> PlaygroundResult``: run the simulation; an invalid
  combination (the VIP partitioner on 8 partitions, a slow broker that does not exist, …) gives a
  result with a ``message`` instead of raising;
- :func:`render` ``(result) -> Figure`` and :func:`stats_html` ``(result) -> str``: display;
- :func:`playground` ``(**defaults)``: the widgets wired to the two above.

The key explorer answers "which partition does my key go to?" step by step with
``sim.lessons.key_route``.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import ipywidgets as widgets
from matplotlib.figure import Figure

from sim import lessons
from sim.errors import ConfigError, KafkaLabError
from sim.widgets.panel import (
    GradingPlaceholder,
    RunPanel,
    grading_mode,
    message_html,
    row_html,
)
from sim.widgets.playground_figure import PlaygroundFigure

__all__ = [
    "DEFAULTS",
    "PlaygroundPanel",
    "PlaygroundResult",
    "key_explorer",
    "key_route_html",
    "playground",
    "render",
    "simulate_playground",
    "stats_html",
]

MAX_SIMULATED_S = 2.0
"""Simulate at most this many seconds of traffic, so a low rate stays as fast as a high one."""

MAX_BROKERS = 5
"""The brokers slider's top; the slow-broker menu offers each of these brokers."""

DEFAULTS: dict[str, Any] = {
    "partitioner": "built-in",
    "partitions": 12,
    "brokers": 3,
    "keys": "none",
    "zipf_s": 1.1,
    "batch.size": 16384,
    "linger.ms": 5,
    "rate_per_s": 100_000,
    "records": 100_000,
    "slow_broker": None,
    "slowdown": 10.0,
    "partitioner.adaptive.partitioning.enable": True,
    "partitioner.availability.timeout.ms": 0,
    "seed": 42,
}
"""The playground's values: Kafka's dotted names for producer configs, plain names for the rest."""

PRODUCER_KEYS = ("batch.size", "linger.ms", "partitioner.adaptive.partitioning.enable",
                 "partitioner.availability.timeout.ms")


# --- The plain functions behind the playground ----------------------------------------------


@dataclass
class PlaygroundResult:
    """One playground run: the values used, the header, and either a summary or a message."""

    values: dict[str, Any]
    header: str
    summary: lessons.RunSummary | None = None
    message: str | None = None
    records: int = 0
    stats: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.summary is not None


def _describe(values: Mapping[str, Any]) -> str:
    """A header from the values alone (used when the run could not be built)."""
    choice = lessons.PARTITIONERS.get(values.get("partitioner"))
    version = choice.kafka_version if choice else "?"
    custom = choice is not None and choice.partitioner_class is not None
    keys = [k for k in PRODUCER_KEYS if not (custom and k.startswith("partitioner."))]
    shown = " ".join(f"{k}={_shown(values.get(k))}" for k in keys)
    name = choice.label if choice else values.get("partitioner")
    return f"Kafka {version} client · partitioner={name} · {shown}"


def _shown(value: Any) -> str:
    """A config value as Kafka writes it: ``true``, not Python's ``True``."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def _slow_broker(value: Any) -> int | None:
    """The slow broker's id, or None: the menu says "none", callers may pass None or ""."""
    return None if value in (None, "none", "") else int(value)


def _kernel_args(values: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(values) - set(DEFAULTS))
    if unknown:
        raise ConfigError(f"Unknown playground setting(s) {', '.join(unknown)}; known: "
                          f"{', '.join(sorted(DEFAULTS))}.")
    v = {**DEFAULTS, **values}
    rate = float(v["rate_per_s"])
    if rate <= 0:
        raise ConfigError(f"rate_per_s must be positive but got {rate:g}.")
    records = int(min(int(v["records"]), math.ceil(rate * MAX_SIMULATED_S)))
    slow = _slow_broker(v["slow_broker"])
    return {
        "seed": int(v["seed"]), "brokers": int(v["brokers"]), "partitions": int(v["partitions"]),
        "records": records, "rate_per_s": rate, "keys": v["keys"], "zipf_s": float(v["zipf_s"]),
        "partitioner": v["partitioner"], "slow_broker": slow, "slowdown": float(v["slowdown"]),
        "config": {k: v[k] for k in PRODUCER_KEYS},
    }


def simulate_playground(values: Mapping[str, Any]) -> PlaygroundResult:
    """Run the playground's simulation for ``values`` (missing ones from :data:`DEFAULTS`).

    Returns:
        A result with the run's summary, or — for an invalid combination — a ``message`` naming
        the problem and the fix. Never raises for a learner's choice of settings.
    """
    merged = {**DEFAULTS, **values}
    try:
        args = _kernel_args(values)
        kernel = lessons.producer_kernel(**args)
        kernel.run()
        summary = lessons.summarise(kernel)
    except KafkaLabError as exc:
        return PlaygroundResult(merged, _describe(merged), message=str(exc))
    return PlaygroundResult(merged, summary.header, summary=summary, records=args["records"],
                            stats=summary.stats)


def render(result: PlaygroundResult) -> Figure:
    """Per-partition bars, records-per-batch histogram and latency distribution, side by side
    (or the result's message). A panel keeps one :class:`PlaygroundFigure` and redraws it."""
    return PlaygroundFigure().draw(result)


def stats_html(result: PlaygroundResult) -> str:
    """Batch statistics and latency of a run as a one-row table (or the message)."""
    if result.summary is None:
        return message_html(result.message or "")
    st = result.stats
    row = {
        "batches": int(st["batches"]), "records / batch": round(st["records_per_batch"], 1),
        "requests": int(st["requests"]), "latency p50 (ms)": round(st["latency_p50_ms"], 2),
        "latency p99 (ms)": round(st["latency_p99_ms"], 2),
        "busiest partition / even share": round(st["max_over_even"], 2),
        "partitions used": int(st["partitions_used"]),
    }
    if "slow_share" in st:
        row["slow broker's share"] = f"{st['slow_share']:.1%} (even {st['slow_even_share']:.1%})"
    return row_html(row)


def key_route_html(route: Mapping[str, Any]) -> str:
    """The steps of ``lessons.key_route`` as a small HTML table."""
    rows = [
        ("key", repr(route["key"])),
        ("serialized bytes (UTF-8)", route["key_bytes"] or "(empty)"),
        ("murmur2 (signed, as Java prints it)", f"{route['murmur2']:,}"),
        ("toPositive = murmur2 & 0x7fffffff", f"{route['to_positive']:,}"),
        (f"% {route['partitions']} partitions", f"partition {route['partition']}"),
    ]
    body = "".join(f"<tr><td>{html.escape(a)}</td><td><code>{html.escape(b)}</code></td></tr>"
                   for a, b in rows)
    return f"<table>{body}</table>"


# --- The widgets --------------------------------------------------------------------------------


def _with(value: Any, options: list[Any]) -> list[Any]:
    """A slider's options, including a default that is not one of the usual steps."""
    return sorted({*options, value})


def _controls(v: Mapping[str, Any]) -> dict[str, widgets.ValueWidget]:
    style = {"description_width": "130px"}
    layout = widgets.Layout(width="360px")
    wide_layout = widgets.Layout(width="400px")  # for the two long partitioner.* names

    def kw(label: str) -> dict[str, Any]:
        return {"description": label, "style": style, "layout": layout,
                "continuous_update": False}

    slow = _slow_broker(v["slow_broker"])
    return {
        "partitioner": widgets.Dropdown(
            options=[(c.label, name) for name, c in lessons.PARTITIONERS.items()],
            value=v["partitioner"], description="partitioner.class", style=style,
            layout=widgets.Layout(width="430px")),  # room for the longest name
        "partitions": widgets.IntSlider(value=v["partitions"], min=1, max=24,
                                        **kw("partitions")),
        "keys": widgets.Dropdown(options=[("none (key-less)", "none"),
                                          ("uniform (1,000 keys)", "uniform"),
                                          ("Zipf (hot keys)", "zipf"),
                                          ("VIP customers (80% of traffic)", "vip")],
                                 value=v["keys"], description="keys", style=style,
                                 layout=layout),
        "zipf_s": widgets.FloatSlider(value=v["zipf_s"], min=0.0, max=2.0, step=0.1,
                                      **kw("Zipf skew s")),
        "batch.size": widgets.SelectionSlider(
            options=_with(v["batch.size"], [1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072]),
            value=v["batch.size"], **kw("batch.size (bytes)")),
        "linger.ms": widgets.IntSlider(value=v["linger.ms"], min=0, max=100,
                                       **kw("linger.ms")),
        "rate_per_s": widgets.SelectionSlider(
            options=_with(v["rate_per_s"],
                          [1000, 5000, 10_000, 20_000, 50_000, 100_000, 200_000, 500_000]),
            value=v["rate_per_s"], **kw("records per second")),
        "brokers": widgets.IntSlider(value=v["brokers"], min=1, max=MAX_BROKERS, **kw("brokers")),
        # "none" rather than None: a Dropdown whose value is None shows no selection at all
        "slow_broker": widgets.Dropdown(options=[("none", "none"),
                                                 *[(str(b), b) for b in range(MAX_BROKERS)]],
                                        value="none" if slow is None else slow,
                                        description="slow broker", style=style,
                                        layout=layout),
        "slowdown": widgets.FloatLogSlider(value=v["slowdown"], base=10, min=0, max=3,
                                           step=0.1, **kw("slowdown factor")),
        "partitioner.adaptive.partitioning.enable": widgets.Checkbox(
            value=v["partitioner.adaptive.partitioning.enable"],
            description="partitioner.adaptive.partitioning.enable", indent=False,
            layout=wide_layout),  # no indent: the whole name fits
        "partitioner.availability.timeout.ms": widgets.IntSlider(
            value=v["partitioner.availability.timeout.ms"], min=0, max=100,
            **{**kw("partitioner.availability.timeout.ms"), "layout": wide_layout,
               "style": {"description_width": "235px"}}),
    }


class PlaygroundPanel(RunPanel):
    """The playground: controls on top, then the header, figure and statistics of the last run.

    ``controls`` maps each value name to its widget; ``result`` is the last run; ``figure`` is
    the kept :class:`PlaygroundFigure` that each run redraws.
    """

    def __init__(self, values: Mapping[str, Any]) -> None:
        merged = {**DEFAULTS, **values}
        fixed = {k: merged[k] for k in ("records", "seed")}
        self.figure = PlaygroundFigure()
        title = ("<b>Partitioner playground</b> — change a control; the run is re-simulated "
                 f"with seed {fixed['seed']}.")
        super().__init__(title, _controls(merged), fixed, left=6)
        self.refresh()

    def _show(self, result: PlaygroundResult, png: bytes) -> None:
        """Show a run; grey out the controls that do not apply to its values.

        The two ``partitioner.*`` configs tune only the built-in partitioner, and the
        availability timeout only its adaptive mode (Kafka's ``ProducerConfig`` docs).
        """
        super()._show(result, png)
        v = result.values
        choice = lessons.PARTITIONERS.get(v["partitioner"])
        built_in = choice is not None and choice.partitioner_class is None
        adaptive = built_in and v["partitioner.adaptive.partitioning.enable"]
        self.controls["zipf_s"].disabled = v["keys"] != "zipf"
        self.controls["slowdown"].disabled = _slow_broker(v["slow_broker"]) is None
        self.controls["partitioner.adaptive.partitioning.enable"].disabled = not built_in
        self.controls["partitioner.availability.timeout.ms"].disabled = not adaptive

    def simulate(self, values: Mapping[str, Any]) -> PlaygroundResult:
        return simulate_playground(values)

    def png(self, result: PlaygroundResult) -> bytes:
        return self.figure.png(result)

    def stats_html(self, result: PlaygroundResult) -> str:
        return stats_html(result)


def playground(**defaults: Any) -> PlaygroundPanel | GradingPlaceholder:
    """The partitioner playground, starting from :data:`DEFAULTS` overlaid with ``defaults``.

    Example: ``playground(partitioner="kip-480", slow_broker=0, slowdown=100)``.
    """
    if grading_mode():
        return GradingPlaceholder("partitioner playground")
    return PlaygroundPanel(defaults)


class KeyExplorerPanel(widgets.VBox):
    """A text box for a key and a partition-count slider; shows murmur2 → toPositive → % N."""

    def __init__(self, key: str, partitions: int) -> None:
        self.key = widgets.Text(value=key, description="key", continuous_update=True)
        self.partitions = widgets.IntSlider(value=partitions, min=1, max=64,
                                            description="partitions")
        self.output = widgets.HTML()
        super().__init__([widgets.HTML("<b>Which partition does my key go to?</b>"),
                          widgets.HBox([self.key, self.partitions]), self.output])
        self.key.observe(self._changed, names="value")
        self.partitions.observe(self._changed, names="value")
        self._changed({})

    def _changed(self, _change: Mapping[str, Any]) -> None:
        route = lessons.key_route(self.key.value, self.partitions.value)
        self.output.value = key_route_html(route)


def key_explorer(key: str = "alice", partitions: int = 6) -> KeyExplorerPanel | GradingPlaceholder:
    """A panel answering "which partition does my key go to?" for a typed key."""
    if grading_mode():
        return GradingPlaceholder("key explorer")
    return KeyExplorerPanel(key, partitions)
