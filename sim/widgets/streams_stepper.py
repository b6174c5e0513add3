"""The Streams stepper: follow one record through a topology, or replay a store's restore.

Both views are built on :mod:`sim.widgets.stepper` (deterministic replay of a kernel factory)
and on the trace a running Streams application writes (``sim.streams.events``):

- **A record's journey** (:func:`record_journey`): the ``streams.process`` event of the record
  (which instance, thread and task read it), every ``streams.forward`` it caused (the node it
  reaches, with the record's key and value at that point), every ``streams.send`` (a sink's
  write, or a store's update written to its changelog) and, when a sink wrote to a repartition
  topic, the re-read of that record by the task of the next sub-topology, and so on. A node that
  receives the record and forwards nothing is where the record stops: a filter dropped it (or,
  with the record cache on, an aggregation keeps its update in the cache until the next commit).
- **A restore** (:func:`restore_steps`): the crash, the task created on its new owner, the
  restore of each changelog partition from the checkpoint (or from the start) batch by batch, the
  end of the restore and the task running again.

Each step is one trace row, so its ``seq`` is a stepper bookmark. :func:`journey_stepper` and
:func:`restore_stepper` build panels with "◀ previous step" / "next step ▶" buttons that replay
the run to the step, and a figure of where the record (or the restore) is. The figures are pure
functions of the step tables: :func:`journey_figure`, :func:`restore_figure`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

import ipywidgets as widgets
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from sim.errors import ConfigError
from sim.kernel import Kernel
from sim.payloads import RECORD_INDEX_BITS, payload, producer_of
from sim.streams import events
from sim.streams.changelog import CHANGELOG_SUFFIX
from sim.streams.drawing import draw_topology, short_name
from sim.streams.kafka_streams import KafkaStreams, instances
from sim.streams.topology import Topology
from sim.widgets.panel import GradingPlaceholder, grading_mode, number_text
from sim.widgets.stepper import (
    StepperPanel,
    StepperState,
    StepperView,
    seek_event,
)

__all__ = [
    "JOURNEY_COLUMNS",
    "RESTORE_COLUMNS",
    "JourneyPanel",
    "current_step",
    "journey_bookmarks",
    "journey_figure",
    "journey_stepper",
    "record_journey",
    "restore_figure",
    "restore_stepper",
    "restore_steps",
]

KernelFactory = Callable[[], Kernel]

JOURNEY_COLUMNS = ["seq", "time_ms", "instance", "thread", "task", "step", "node", "topic",
                   "partition", "offset", "key", "value", "what"]
"""The columns of :func:`record_journey`. ``step`` is ``read`` (a task took the record from a
topic), ``forward`` (a node passed it on to ``node``), ``dropped`` (``node`` received it and
forwarded nothing), ``cached`` (``node`` put its update in the record cache), ``write`` (the sink
``node`` sent it to ``topic``) or ``store`` (the store ``node`` changed; the change went to the
changelog ``topic``)."""

RESTORE_COLUMNS = ["seq", "time_ms", "instance", "thread", "task", "step", "store",
                   "partition", "start_offset", "end_offset", "restored", "what"]
"""The columns of :func:`restore_steps`. ``step`` is ``crash``, ``task created``,
``restore start``, ``restore batch``, ``restore end``, ``corrupted``, ``suspended``,
``running`` (the task processes again) or ``instance RUNNING``."""

_THREAD = re.compile(r"^(?P<instance>.*)-(?P<thread>StreamThread-\d+)$")


def _split_thread(component: str) -> tuple[str, str]:
    """``<client id>-StreamThread-1`` → (client id, ``StreamThread-1``)."""
    match = _THREAD.match(str(component))
    return (match["instance"], match["thread"]) if match else (str(component), "")


def _instance_of(kernel: Kernel, component: str) -> KafkaStreams | None:
    for instance in reversed(instances(kernel)):
        if any(thread.name == component for thread in instance.threads):
            return instance
    return None


def _landed(kernel: Kernel, record_id: int) -> tuple[int, int]:
    """(partition, offset) of a record a producer sent; offset -1 while not acknowledged."""
    producer = producer_of(kernel, record_id)
    index = int(record_id) & ((1 << RECORD_INDEX_BITS) - 1)
    return int(producer.buffer.partition[index]), int(producer.buffer.offset[index])


def _store_of(instance: KafkaStreams | None, changelog: str) -> str:
    """The store whose changelog topic is ``changelog``."""
    prefix = f"{instance.application_id}-" if instance is not None else ""
    name = changelog[len(prefix):] if changelog.startswith(prefix) else changelog
    return name[: -len(CHANGELOG_SUFFIX)] if name.endswith(CHANGELOG_SUFFIX) else name


def _show(value: Any) -> str:
    """A key or value as the step tables print it (``null`` for None, as Kafka does)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "null"
    return repr(value) if isinstance(value, str) else str(value)


def record_journey(kernel: Kernel, topic: str, partition: int, offset: int) -> pd.DataFrame:
    """Every step of one input record's way through the Streams applications on ``kernel``.

    Args:
        topic: the topic the record was written to (as the cluster names it).
        partition, offset: where it sits.

    Returns:
        One row per step, in trace order (:data:`JOURNEY_COLUMNS`); empty if no task has
        processed the record yet. A record a ``flat_map`` splits, or a sink writes to a
        repartition topic, is followed along every branch: rows of several records then
        interleave as the trace has them.
    """
    trace = kernel.trace
    processed = trace.frame(events.STREAMS_PROCESS)
    forwards = trace.frame(events.STREAMS_FORWARD)
    sends = trace.frame(events.STREAMS_SEND)
    forwards = forwards[~forwards.flushed.astype(bool)] if len(forwards) else forwards
    sends = sends[~sends.flushed.astype(bool)] if len(sends) else sends
    rows: list[dict[str, Any]] = []
    pending = [(topic, int(partition), int(offset))]
    seen: set[tuple[str, int, int]] = set()
    while pending:
        where = pending.pop(0)
        if where in seen:
            continue
        seen.add(where)
        hit = processed[(processed.topic == where[0]) & (processed.partition == where[1])
                        & (processed.offset == where[2])]
        if hit.empty:
            continue
        first = hit.iloc[0]
        rows.extend(_block(kernel, first, processed, forwards, sends, pending, where))
    frame = pd.DataFrame(rows, columns=JOURNEY_COLUMNS)
    return frame.sort_values("seq", kind="stable").reset_index(drop=True)


def _block(kernel: Kernel, first: Any, processed: pd.DataFrame, forwards: pd.DataFrame,
           sends: pd.DataFrame, pending: list[tuple[str, int, int]],
           where: tuple[str, int, int]) -> list[dict[str, Any]]:
    """The steps of one ``streams.process`` event: the read, then everything it caused at once
    on its thread (up to the thread's next record)."""
    component = first.component
    later = processed[(processed.component == component) & (processed.seq > first.seq)]
    end = later.seq.min() if not later.empty else math.inf
    instance = _instance_of(kernel, component)
    name, thread = _split_thread(component)
    base = {"time_ms": float(first.time_ms), "instance": name, "thread": thread,
            "task": first.task}
    topology: Topology | None = instance.topology if instance is not None else None
    source = ""
    if instance is not None and instance.metadata is not None and topology is not None:
        wanted = instance.metadata.topology_topic(where[0])
        source = next((n for n, f in topology.nodes.items()
                       if f.kind == "source" and wanted in f.topics), "")
    log = kernel.cluster.partition(where[0], where[1]).log
    key, value = payload(kernel, int(log.column("record_id", where[2], where[2] + 1)[0]))
    rows = [{**base, "seq": int(first.seq), "step": "read", "node": source, "topic": where[0],
             "partition": where[1], "offset": where[2], "key": key, "value": value,
             "what": f"reads {where[0]}-{where[1]}@{where[2]}"
                     + (f" into {short_name(source)}" if source else "")}]
    mine_f = forwards[(forwards.component == component) & (forwards.seq > first.seq)
                      & (forwards.seq < end)]
    mine_s = sends[(sends.component == component) & (sends.seq > first.seq)
                   & (sends.seq < end)]
    caused = sorted([("forward", r) for r in mine_f.itertuples(index=False)]
                    + [("send", r) for r in mine_s.itertuples(index=False)],
                    key=lambda item: item[1].seq)
    for i, (kind, event) in enumerate(caused):
        row = {**base, "seq": int(event.seq), "time_ms": float(event.time_ms),
               "key": event.key, "value": event.value, "topic": "", "partition": -1,
               "offset": -1}
        if kind == "forward":
            child = event.detail
            onward = _passes_on(caused[i + 1:], child)
            step, what = "forward", f"{short_name(event.node)} → {short_name(child)}"
            if not onward and topology is not None and topology.nodes[child].kind != "sink":
                cached = bool(topology.nodes[child].stores) and instance is not None \
                    and instance.config["statestore.cache.max.bytes"] > 0
                step = "cached" if cached else "dropped"
                what += (": its update waits in the record cache until the next commit"
                         if cached else ": it forwards nothing, the record stops here")
            rows.append({**row, "step": step, "node": child, "what": what})
            continue
        out_partition, out_offset = _landed(kernel, int(event.record_id))
        at = f"{event.topic}-{out_partition}@{out_offset}" if out_offset >= 0 else event.topic
        row.update(topic=event.topic, partition=out_partition, offset=out_offset)
        if event.detail == "changelog":
            store = _store_of(instance, event.topic)
            rows.append({**row, "step": "store", "node": store,
                         "what": f"store {store} updated, change logged to {at}"})
            continue
        rows.append({**row, "step": "write", "node": event.detail,
                     "what": f"{short_name(event.detail)} writes to {at}"})
        if out_offset >= 0:
            pending.append((event.topic, out_partition, out_offset))
    return rows


def _passes_on(after: list[tuple[str, Any]], node: str) -> bool:
    """Whether ``node``, just reached, forwards or writes the record: its own forwards and
    writes come right after (depth first), past its store's changelog writes."""
    for kind, event in after:
        if kind == "send" and event.detail == "changelog":
            continue
        return (kind == "forward" and event.node == node) or (kind == "send"
                                                              and event.detail == node)
    return False


def journey_bookmarks(steps: pd.DataFrame) -> dict[str, int]:
    """Label → trace ``seq`` for each step (``"3. task 0_0: FILTER-1 → SINK-2 · key …"``)."""
    return {f"{n + 1}. task {row.task}: {row.what} · key {_show(row.key)}, value "
            f"{_show(row.value)}": int(row.seq)
            for n, row in enumerate(steps.itertuples(index=False))}


def current_step(steps: pd.DataFrame, state: StepperState, chosen: int | None = None) -> int:
    """The step the stepper shows: ``chosen`` (a step index) if the replay has written it,
    else the last step already in the trace; -1 before the first."""
    written = steps.index[steps["seq"] < state.events] if len(steps) else []
    if chosen is not None and 0 <= chosen < len(steps) and chosen in written:
        return chosen
    return int(written[-1]) if len(written) else -1


# --- figures -------------------------------------------------------------------------------

_HERE, _PAST = "#d62728", "#e8a0a0"


def journey_figure(topology: Topology, steps: pd.DataFrame, index: int,
                   time_ms: float | None = None) -> Figure:
    """The topology with the record's current node outlined in red (nodes it passed in pink),
    and above it the step: which instance, thread and task, and the key and value there. The
    step is written above the drawing, next to the stepper's buttons: a topology with two
    sub-topologies is taller than a screen, and a caption under it scrolled out of sight."""
    probe = draw_topology(topology)
    width, height = probe.get_size_inches()  # at most 8 inches: long chains wrap
    caption_in = 1.15
    figure = Figure(figsize=(max(width, 7.5), height + caption_in))
    top = figure.add_axes((0.0, 0.0, 1.0, height / (height + caption_in)))
    draw_topology(topology, ax=top)
    patches = {p.get_gid(): p for p in top.patches if p.get_gid()}

    def gid(row: Any) -> str:
        return f"store:{row.node}" if row.step == "store" else str(row.node)

    for row in steps.iloc[:max(index, 0)].itertuples(index=False):
        if gid(row) in patches:
            patches[gid(row)].set_edgecolor(_PAST)
            patches[gid(row)].set_linewidth(2.2)
    lines: list[str]
    if 0 <= index < len(steps):
        row = steps.iloc[index]
        if gid(row) in patches:
            patches[gid(row)].set_edgecolor(_HERE)
            patches[gid(row)].set_linewidth(3.2)
        lines = [f"step {index + 1} of {len(steps)} · t = {number_text(float(row.time_ms))} ms · "
                 f"instance {_short_client(row.instance)} · {row.thread} · task {row.task}",
                 str(row.what), f"key {_show(row.key)} · value {_show(row.value)}"]
    else:
        lines = [f"{len(steps)} steps; the record has not been read yet"
                 + (f" (t = {number_text(float(time_ms))} ms)" if time_ms is not None
                    else ""), "", ""]
    caption = figure.add_axes((0.0, height / (height + caption_in), 1.0,
                               caption_in / (height + caption_in)))
    caption.axis("off")
    for n, line in enumerate(lines):
        caption.text(0.02, 0.8 - 0.3 * n, _clip(line, 110), fontsize=9, va="center",
                     ha="left", fontweight="bold" if n == 1 else "normal",
                     color=_HERE if n == 1 and index >= 0 else "#222222")
    return figure


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _short_client(client_id: str) -> str:
    """``app-<uuid>`` → ``app-1a2b…`` (a readable instance name)."""
    head, _, rest = str(client_id).rpartition("-")
    if re.fullmatch(r"[0-9a-f]{12}", rest):
        app = re.sub(r"-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}$", "", head)
        return f"{app}-{head[len(app) + 1:][:4]}…"
    return str(client_id)


# --- the restore ---------------------------------------------------------------------------


def restore_steps(kernel: Kernel, since_ms: float | None = None) -> pd.DataFrame:
    """The restore story from the trace, from ``since_ms`` on (default: the first crash, or the
    start): crashes, tasks created on their new owner, each active changelog restore (start,
    batches, end), tasks running again and instances back in RUNNING. Standby updates are left
    out. Columns: :data:`RESTORE_COLUMNS`."""
    trace = kernel.trace
    if since_ms is None:
        crashed = trace.frame(events.STREAMS_CRASH)
        since_ms = float(crashed.time_ms.min()) if len(crashed) else 0.0
    restores = trace.frame(events.STREAMS_RESTORE)
    restores = restores[(restores.action != "standby") & (restores.time_ms >= since_ms)]
    restoring = set(zip(restores.component, restores.task, strict=True))
    rows: list[dict[str, Any]] = []
    blank = {"store": "", "partition": -1, "start_offset": -1, "end_offset": -1, "restored": 0}
    crashes = trace.frame(events.STREAMS_CRASH)
    rows.extend({**blank, "seq": row.seq, "time_ms": row.time_ms, "instance": row.component,
                 "thread": "", "task": "", "step": "crash",
                 "what": f"instance {_short_client(row.component)} crashes, {row.detail}"}
                for row in crashes[crashes.time_ms >= since_ms].itertuples(index=False))
    tasks = trace.frame(events.STREAMS_TASK)
    tasks = tasks[tasks.time_ms >= since_ms]
    for row in tasks.itertuples(index=False):
        if (row.component, row.task) not in restoring:
            continue
        name, thread = _split_thread(row.component)
        if row.action == "created":
            step, what = "task created", f"task {row.task} created on {thread}: it must " \
                "restore its stores before it processes anything"
        elif row.action == "restored":
            step, what = "running", f"task {row.task} restored: it processes records again"
        elif str(row.action).startswith("corrupted"):
            step, what = "corrupted", f"task {row.task} {row.action}"
        else:
            continue
        rows.append({**blank, "seq": row.seq, "time_ms": row.time_ms, "instance": name,
                     "thread": thread, "task": row.task, "step": step, "what": what})
    for row in restores.itertuples(index=False):
        name, thread = _split_thread(row.component)
        start, end = int(row.start_offset), int(row.end_offset)
        store = f"{row.store}-{row.partition}"
        what = {
            "start": (f"restore {store} from offset {start:,}"
                      + (f" (the checkpoint says {start - 1:,})" if start > 0
                         else " (the start)") + f" up to {end:,}"),
            "batch": f"fetch offsets {start:,} to {end - 1:,}: {row.restored:,} restored",
            "end": f"{store} caught up at {end:,}: {row.restored:,} records restored",
            "corrupted": f"{store}: offset {start:,} is gone; wipe and restore from the start",
            "suspended": f"{store}: restore suspended (the task moved)",
        }.get(row.action, str(row.action))
        step = {"start": "restore start", "batch": "restore batch", "end": "restore end"}.get(
            row.action, str(row.action))
        rows.append({"seq": row.seq, "time_ms": row.time_ms, "instance": name, "thread": thread,
                     "task": row.task, "step": step, "store": row.store,
                     "partition": int(row.partition), "start_offset": start,
                     "end_offset": end, "restored": int(row.restored), "what": what})
    states = trace.frame(events.STREAMS_STATE)
    owners = {name for name, _ in (_split_thread(c) for c, _ in restoring)}
    states = states[(states.time_ms >= since_ms) & (states.new == "RUNNING")
                    & states.component.isin(owners)]
    rows.extend({**blank, "seq": row.seq, "time_ms": row.time_ms, "instance": row.component,
                 "thread": "", "task": "", "step": "instance RUNNING",
                 "what": f"instance {_short_client(row.component)} is RUNNING"}
                for row in states.itertuples(index=False))
    frame = pd.DataFrame(rows, columns=RESTORE_COLUMNS)
    return frame.sort_values("seq", kind="stable").reset_index(drop=True)


def restore_figure(steps: pd.DataFrame, index: int) -> Figure:
    """One bar per restored changelog partition, offsets on the x axis: what the local store
    already held (grey, up to the checkpoint), what has been restored so far (green) and what
    is left (white); under it the step."""
    seen = steps.iloc[: index + 1] if index >= 0 else steps.iloc[:0]
    starts = steps[steps.step == "restore start"]
    bars = list(dict.fromkeys(zip(starts.task, starts.store, starts.partition, strict=True)))
    height = 1.0 + 0.55 * max(len(bars), 1) + 0.7
    figure = Figure(figsize=(8.5, height))
    ax = figure.add_axes((0.25, 0.7 / height, 0.7, 0.55 * max(len(bars), 1) / height))
    right = max([int(starts.end_offset.max()) if len(starts) else 1, 1])
    for y, (task, store, partition) in enumerate(bars):
        mine = seen[(seen.task == task) & (seen.store == store) & (seen.partition == partition)]
        first = starts[(starts.task == task) & (starts.store == store)
                       & (starts.partition == partition)].iloc[0]
        start, end = int(first.start_offset), int(first.end_offset)
        ax.add_patch(Rectangle((0, y - 0.3), end, 0.6, facecolor="white", edgecolor="#555555"))
        if start > 0:
            ax.add_patch(Rectangle((0, y - 0.3), start, 0.6, facecolor="#cccccc",
                                   edgecolor="#555555"))
        if len(mine):
            done = int(mine.restored.iloc[-1]) if mine.step.iloc[-1] != "crash" else 0
            ax.add_patch(Rectangle((start, y - 0.3), done, 0.6, facecolor="#009e73",
                                   edgecolor="#555555"))
        ax.axvline(start, ymin=0, ymax=1, color="#999999", linewidth=0.6, linestyle=":")
    ax.set_xlim(0, right * 1.02)
    ax.set_ylim(len(bars) - 0.5 if bars else 0.5, -0.5)
    ax.set_yticks(range(len(bars)), [f"{_clip(s, 24)}-{p}\n(task {t})" for t, s, p in bars],
                  fontsize=8)
    ax.set_xlabel("changelog offset (grey: held locally per the checkpoint; green: restored)",
                  fontsize=8)
    ax.tick_params(axis="x", labelsize=8)
    if 0 <= index < len(steps):
        row = steps.iloc[index]
        head = (f"step {index + 1} of {len(steps)} · t = {number_text(float(row.time_ms))} ms · "
                + (f"instance {_short_client(row.instance)} · {row.thread} · task {row.task}"
                   if row.task else f"instance {_short_client(row.instance)}"))
        text = str(row.what)
    else:
        head, text = f"{len(steps)} steps; the crash has not happened yet", ""
    figure.text(0.02, 1 - 0.3 / height, _clip(head, 110), fontsize=9, va="center")
    figure.text(0.02, 1 - 0.65 / height, _clip(text, 110), fontsize=9, va="center",
                fontweight="bold", color=_HERE)
    return figure


# --- the panels ----------------------------------------------------------------------------


class JourneyPanel(StepperPanel):
    """A stepper over a table of steps (a record's journey or a restore): "◀ previous step" and
    "next step ▶" replay the run to the step's trace row; the figure shows that step and the
    table the steps up to it."""

    def __init__(self, factory: KernelFactory, title: str, steps: pd.DataFrame,
                 figure: Callable[[pd.DataFrame, int, StepperState], Figure],
                 header: str, until_ms: float | None, shown: list[str],
                 bookmarks: Mapping[str, int]) -> None:
        self.steps = steps
        self.chosen: int | None = None
        self.draw = figure
        self.shown = shown
        view = StepperView(lambda state: self.draw(self.steps, self.index(), state), "",
                           lambda state, n: self.table(n))
        self.next_button = widgets.Button(description="next step ▶",
                                          tooltip="replay to the next step")
        self.previous_button = widgets.Button(description="◀ previous step",
                                              tooltip="replay to the previous step")
        super().__init__(factory, title, 8, view, bookmarks, until_ms, header=header)
        self.children = (*self.children[:2],
                         widgets.HBox([self.previous_button, self.next_button]),
                         *self.children[2:])
        self.next_button.on_click(lambda _b: self.go_to(self.index() + 1))
        self.previous_button.on_click(lambda _b: self.go_to(self.index() - 1))

    def index(self) -> int:
        return current_step(self.steps, self.state, self.chosen)

    def go_to(self, index: int) -> None:
        """Replay to step ``index`` (clamped to the table)."""
        if not len(self.steps):
            return
        index = min(max(index, 0), len(self.steps) - 1)
        seq = int(self.steps["seq"].iloc[index])
        self._move(lambda: seek_event(self.state, seq), chosen=index)

    def _move(self, move: Callable[[], StepperState], chosen: int | None = None) -> None:
        """Move (a step of the table when ``chosen`` is given, else events or time), redraw."""
        self.chosen = chosen
        super()._move(move)

    def _tick(self, change: Mapping[str, Any]) -> None:
        self.chosen = None
        super()._tick(change)

    def _go(self, _button: Any) -> None:
        if self.bookmarks.value is not None:
            matches = self.steps.index[self.steps["seq"] == int(self.bookmarks.value)]
            self.go_to(int(matches[0]) if len(matches) else self.index())

    def _reset(self, button: Any) -> None:
        self.chosen = None
        super()._reset(button)

    def table(self, n: int) -> pd.DataFrame:
        """The steps up to the current one (the last ``n``), with readable keys and values."""
        upto = self.steps.iloc[: self.index() + 1].tail(n)
        shown = upto[self.shown].copy()
        for column in ("key", "value"):
            if column in shown:
                shown[column] = shown[column].map(_show)
        return shown.reset_index(drop=True)


def _probe(factory: KernelFactory, until_ms: float) -> Kernel:
    kernel = factory()
    kernel.run(until_ms=until_ms)
    return kernel


def journey_stepper(factory: KernelFactory, topic: str, partition: int, offset: int,
                    until_ms: float, title: str = "One record through the topology"
                    ) -> JourneyPanel | GradingPlaceholder:
    """A stepper that follows the record at ``topic``-``partition``@``offset``.

    Args:
        factory: builds a fresh kernel with the Streams application started and its input
            sent (the stepper replays it from there).
        until_ms: how long the run lasts (the journey is read from one run to this time).

    Raises:
        ConfigError: no task processed that record by ``until_ms``.
    """
    if grading_mode():
        return GradingPlaceholder(f"stepper: {title}")
    kernel = _probe(factory, until_ms)
    steps = record_journey(kernel, topic, partition, offset)
    if steps.empty:
        raise ConfigError(f"No Streams task processed {topic}-{partition}@{offset} by "
                          f"{until_ms:,} ms; check the topic, partition and offset "
                          "(ls.topic_records(kernel, topic) lists them) or run longer.")
    instance = _instance_of(kernel, f"{steps.instance.iloc[0]}-{steps.thread.iloc[0]}")
    assert instance is not None  # the journey came from one of its threads
    topology = instance.topology
    header = (f"application.id={instance.application_id} · statestore.cache.max.bytes="
              f"{instance.config['statestore.cache.max.bytes']:,} · commit.interval.ms="
              f"{instance.config['commit.interval.ms']:,} · processing.guarantee="
              f"{instance.config['processing.guarantee']}")
    return JourneyPanel(factory, title, steps,
                        lambda s, i, state: journey_figure(topology, s, i, state.now_ms),
                        header, until_ms,
                        ["time_ms", "task", "step", "what", "key", "value"],
                        journey_bookmarks(steps))


def restore_stepper(factory: KernelFactory, until_ms: float, since_ms: float | None = None,
                    title: str = "A restore, step by step") -> JourneyPanel | GradingPlaceholder:
    """A stepper through the restores that the run ``factory()`` builds goes through (a crash
    scheduled in it), from ``since_ms`` (default: the first crash) to ``until_ms``.

    Raises:
        ConfigError: nothing was restored in that time.
    """
    if grading_mode():
        return GradingPlaceholder(f"stepper: {title}")
    kernel = _probe(factory, until_ms)
    steps = restore_steps(kernel, since_ms)
    if not (steps.step == "restore start").any():
        raise ConfigError(f"No store was restored by {until_ms:,} ms after the crash; "
                          "schedule a crash in the factory, or run longer.")
    bookmarks = {f"{n + 1}. {row.what}": int(row.seq)
                 for n, row in enumerate(steps.itertuples(index=False))}
    header = ("restore consumer: max.poll.records=1000 · instances: "
              + ", ".join(_short_client(name) for name in dict.fromkeys(steps.instance)))
    return JourneyPanel(factory, title, steps, lambda s, i, _state: restore_figure(s, i),
                        header, until_ms, ["time_ms", "task", "step", "what"], bookmarks)
