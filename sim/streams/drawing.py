"""A picture of a :class:`~sim.streams.Topology`: what ``describe()`` prints, drawn.

``draw_topology(topology)`` returns a matplotlib ``Figure`` (or draws into ``ax``). Each
sub-topology is a grey box (a task runs one of them per input partition); inside, records flow left
to right from **sources** (green; the topics they read below the name) through **processors**
(blue) to **sinks** (orange; the topic they write); a chain longer than three nodes continues
on a tier below, so that the drawing fits a notebook at full size. A **state store** (yellow)
sits under the processor that first uses it; dotted lines join it to the others that use it. An
**internal topic** (repartition, foreign-key subscription) written by one sub-topology and read
by another is the dashed purple arrow between the boxes, labelled with the topic. Labels are
shortened for reading: ``KSTREAM-FILTER-0000000001`` shows as ``FILTER-1``; every node's patch
carries the full name as its ``gid`` (stores ``store:<name>``, sub-topologies
``subtopology:<id>``). Like :mod:`sim.viz`, nothing here touches pyplot's global state.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Patch

from sim.errors import TopologyError
from sim.streams.topology import Topology

NODE_W = 3.1
"""Box width in data units; the figure is drawn at :data:`INCH` inches per unit and equal
aspect, so it is never stretched."""
MAX_COLUMNS = 3
"""Columns side by side in a sub-topology; a longer chain wraps onto a tier below, so that
the drawing (at most 8 inches, 800 pixels) fits a notebook's 848-pixel output at full size."""
COL_GAP = 1.0
LINE_H = 0.32
PAD = 0.2
ROW_GAP = 0.45
STORE_GAP = 0.3
BAND_PAD = 0.5
TITLE_H = 0.5
LANE_H = 0.5
INCH = 0.62
FONT = 9.0
WRAP = 20

COLOURS = {"source": "#d8f0d2", "processor": "#dbe7f7", "sink": "#fde2c8", "store": "#fff3b0"}
EDGES = {"source": "#3f8f3a", "processor": "#3b6db3", "sink": "#c46a1c", "store": "#a08400"}
TOPIC_COLOUR = "#7a3fa0"
_COUNTER = re.compile(r"-(\d{10})(?=(.?))")


def short_name(name: str) -> str:
    """``KSTREAM-FILTER-0000000001`` → ``FILTER-1``; ``KTABLE-`` prefixes go too; a suffix
    glued to the counter is set off by a hyphen (branch ``KSTREAM-BRANCH-00000000040`` →
    ``BRANCH-4-0``)."""
    for prefix in ("KSTREAM-", "KTABLE-"):
        if name.startswith(prefix):
            name = name[len(prefix):]
            break
    return _COUNTER.sub(lambda m: f"-{int(m.group(1))}" + ("-" if m.group(2) not in ("", "-")
                                                         else ""), name)


def _wrap(text: str, width: int = WRAP) -> list[str]:
    """Lines of at most ``width`` characters, broken after hyphens (names have no spaces)."""
    lines: list[str] = []
    line = ""
    for part in re.findall(r"[^-]*-|[^-]+$", text):
        if line and len(line) + len(part) > width:
            lines.append(line)
            line = ""
        while len(part) > width:
            lines.append(part[:width])
            part = part[width:]
        line += part
    if line:
        lines.append(line)
    return lines or [""]


@dataclass
class _Box:
    name: str
    kind: str  # source / processor / sink / store
    lines: list[str]
    small: list[str] = field(default_factory=list)
    x: float = 0.0  # left edge
    y: float = 0.0  # top edge; y grows downwards
    h: float = 0.0  # height, set by the layout
    column: int = 0
    owner: str = ""  # for a store: the node it is drawn under

    @property
    def text_height(self) -> float:
        return 2 * PAD + LINE_H * (len(self.lines) + len(self.small))

    def anchor(self, side: str) -> tuple[float, float]:
        cx, cy = self.x + NODE_W / 2, self.y + self.h / 2
        return {"left": (self.x, cy), "right": (self.x + NODE_W, cy),
                "top": (cx, self.y), "bottom": (cx, self.y + self.h)}[side]


def _node_box(topology: Topology, name: str) -> _Box:
    node = topology.nodes[name]
    lines = _wrap(short_name(name))
    if node.kind == "source":
        topics = [node.pattern.pattern] if node.pattern is not None else list(node.topics)
        return _Box(name, "source", lines, [line for topic in topics
                                            for line in _wrap("⟵ " + short_name(topic))])
    if node.kind == "sink":
        return _Box(name, "sink", lines, _wrap("⟶ " + short_name(node.topic)))
    return _Box(name, "processor", lines)


def _columns(topology: Topology, names: list[str]) -> list[list[str | None]]:
    """Columns by longest path from a source; each node on the mean row of its parents if
    that cell is free (so chains stay on one row), else on the next free row. None marks an
    empty cell."""
    inside = set(names)
    depth: dict[str, int] = {}
    for name in names:  # a node is always added after its parents
        parents = [p for p in topology.nodes[name].predecessors if p in inside]
        depth[name] = 1 + max((depth[p] for p in parents), default=-1)
    columns: list[list[str]] = [[] for _ in range(max(depth.values()) + 1)]
    for name in names:
        columns[depth[name]].append(name)
    row: dict[str, int] = {}
    grid: list[list[str | None]] = []
    for column in columns:
        def wanted(name: str) -> float:
            parents = [row[p] for p in topology.nodes[name].predecessors if p in row]
            return sum(parents) / len(parents) if parents else -1.0
        column.sort(key=wanted)
        cells: list[str | None] = []
        for name in column:  # the wanted row if free, else the next free one below
            r = max(round(wanted(name)), len(cells))
            cells += [None] * (r - len(cells)) + [name]
            row[name] = r
        grid.append(cells)
    return grid


@dataclass
class _Band:
    """One sub-topology: its boxes, placed relative to the band's top, and its size.
    ``wraps`` are the edges from one tier of columns to a later one, each with the y of the
    lane it runs along (relative to the band's top)."""

    id: int
    title: str
    boxes: dict[str, _Box]
    stores: dict[str, _Box]
    width: float
    height: float
    wraps: list[tuple[str, str, float]] = field(default_factory=list)
    y: float = 0.0


def _columns_per_tier(columns: int) -> int:
    """A chain longer than :data:`MAX_COLUMNS` continues on a tier below, the tiers as even as
    can be (5 columns: 3 then 2; 4 columns: 2 and 2)."""
    tiers = -(-columns // MAX_COLUMNS)
    return -(-columns // tiers)


def _band(topology: Topology, group_id: int, names: list[str]) -> _Band:
    columns = _columns(topology, names)
    boxes = {n: _node_box(topology, n) for n in names}
    stores: dict[str, _Box] = {}
    owned: dict[str, list[str]] = {n: [] for n in names}
    for name in names:
        for store in topology.nodes[name].stores:
            if store not in stores:
                stores[store] = _Box(store, "store", _wrap(short_name(store)), owner=name)
                owned[name].append(store)
    for store in stores.values():
        store.h = store.text_height
    per_tier = _columns_per_tier(len(columns))
    tiers = -(-len(columns) // per_tier)
    tier_of = {n: c // per_tier for c, column in enumerate(columns) for n in column if n}
    wraps = [(parent, name) for name in names for parent in topology.nodes[name].predecessors
             if parent in tier_of and tier_of[parent] < tier_of[name]]
    top = TITLE_H
    wrap_y: dict[int, float] = {}  # tier -> y of its first wrap lane, above its nodes
    for tier in range(tiers):
        lanes = sum(tier_of[name] == tier for _, name in wraps)
        if tier:
            wrap_y[tier] = top - ROW_GAP / 2
            top += LANE_H * lanes
        tier_columns = columns[tier * per_tier:(tier + 1) * per_tier]
        rows = max(len(c) for c in tier_columns)
        node_h = [0.0] * rows  # every node of a row is as tall as the row's tallest
        below = [0.0] * rows  # room for the stores under the row's nodes
        for column in tier_columns:
            for r, name in enumerate(column):
                if name is None:
                    continue
                node_h[r] = max(node_h[r], boxes[name].text_height)
                below[r] = max(below[r], sum(stores[s].h + STORE_GAP for s in owned[name]))
        for r in range(rows):
            for c, column in enumerate(tier_columns):
                name = column[r] if r < len(column) else None
                if name is None:
                    continue
                box = boxes[name]
                box.x, box.y, box.h, box.column = BAND_PAD + c * (NODE_W + COL_GAP), top, \
                    node_h[r], c
                y = box.y + box.h + STORE_GAP
                for store in owned[name]:
                    stores[store].x, stores[store].y, stores[store].column = box.x, y, c
                    y += stores[store].h + STORE_GAP
            top += node_h[r] + below[r] + ROW_GAP
    lane = dict.fromkeys(wrap_y, 0)
    placed = []
    for parent, name in wraps:
        tier = tier_of[name]
        placed.append((parent, name, wrap_y[tier] + LANE_H * (lane[tier] + 0.5)))
        lane[tier] += 1
    is_global = any(topology.nodes[n].is_global for n in names)
    title = f"Sub-topology {group_id}" + (" (global store)" if is_global else "")
    width = 2 * BAND_PAD + per_tier * NODE_W + (per_tier - 1) * COL_GAP
    return _Band(group_id, title, boxes, stores, width, top - ROW_GAP + BAND_PAD * 0.6,
                 placed)


def _draw_box(ax: Axes, box: _Box, dy: float) -> None:
    patch = FancyBboxPatch((box.x, box.y + dy), NODE_W, box.h,
                           boxstyle="round,pad=0,rounding_size=0.12",
                           facecolor=COLOURS[box.kind], edgecolor=EDGES[box.kind],
                           linewidth=1.1, zorder=3, label=box.name)
    patch.set_gid(("store:" if box.kind == "store" else "") + box.name)
    ax.add_patch(patch)
    cx = box.x + NODE_W / 2
    y = box.y + dy + (box.h - LINE_H * (len(box.lines) + len(box.small))) / 2 + LINE_H / 2
    for line in box.lines:
        ax.text(cx, y, line, ha="center", va="center", fontsize=FONT, zorder=4,
                fontweight="normal" if box.kind == "store" else "bold")
        y += LINE_H
    for line in box.small:
        ax.text(cx, y, line, ha="center", va="center", fontsize=FONT - 0.5, zorder=4,
                style="italic", color="#333333")
        y += LINE_H


def _arrow(ax: Axes, start: tuple[float, float], end: tuple[float, float],
           color: str = "#444444", linestyle: str = "-") -> None:
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=9,
                                 linewidth=1.0, color=color, linestyle=linestyle, zorder=2,
                                 shrinkA=0, shrinkB=1))


def _gap_x(column: int) -> float:
    """The x of the free lane left of ``column`` (column 0: the band's left margin)."""
    return BAND_PAD + column * (NODE_W + COL_GAP) - (COL_GAP / 2 if column else BAND_PAD / 2)


def _store_link(box: _Box, store: _Box, used: dict[float, int]
                ) -> tuple[list[float], list[float]]:
    """A dotted path from a processor to a store drawn under another processor: out of the
    processor's side, along the free gap between columns, into the store's side; each link
    through a gap gets its own x so that links never run on top of each other."""
    right = store.x >= box.x
    gap = box.x + NODE_W + COL_GAP / 2 if right else box.x - COL_GAP / 2
    offset = used.get(gap, 0)
    used[gap] = offset + 1
    gx = gap + (0.12 * ((offset + 1) // 2) * (1 if offset % 2 else -1))
    x0 = box.x + NODE_W if right else box.x
    y0 = box.y + box.h * 0.75
    x1 = store.x + NODE_W if store.x <= box.x and store.x + NODE_W <= gx else store.x
    y1 = store.y + store.h / 2
    return [x0, gx, gx, x1], [y0, y0, y1, y1]


def _wrap_arrow(ax: Axes, band: _Band, parent: _Box, child: _Box, lane_y: float,
                shift: float) -> None:
    """An edge from a node to one on a later tier: out of the parent's right side, down the
    gap right of it, left along the lane above the child's tier, down the gap left of the
    child, into its left side; ``shift`` keeps edges through one gap apart."""
    last = parent.x + NODE_W + BAND_PAD >= band.width - 1e-9  # the rightmost column
    sx = parent.x + NODE_W + (BAND_PAD / 2 if last else COL_GAP / 2) + shift
    (x0, y0), (x1, y1) = parent.anchor("right"), child.anchor("left")
    dx = _gap_x(child.column) - shift
    ys = [y + band.y for y in (y0, y0, lane_y, lane_y, y1)]
    ax.plot([x0, sx, sx, dx, dx], ys, color="#444444", linewidth=1.0, zorder=2)
    _arrow(ax, (dx, y1 + band.y), (x1, y1 + band.y))


def draw_topology(topology: Topology, ax: Axes | None = None) -> Figure:
    """Draw ``topology`` — sub-topologies, sources, processors, sinks, edges, state stores and
    internal topics — and return the figure; draw into ``ax`` if given."""
    if not isinstance(topology, Topology):
        raise TopologyError(f"draw_topology needs a Topology (builder.build()), got "
                            f"{topology!r}.")
    if not topology.nodes:
        raise TopologyError("draw_topology: the topology is empty; add a source first.")
    bands = [_band(topology, gid, names) for gid, names in topology.node_groups().items()]
    band_of = {name: i for i, band in enumerate(bands) for name in band.boxes}
    sinks: dict[str, list[str]] = {}
    for node in topology.nodes.values():
        if node.kind == "sink":
            sinks.setdefault(node.topic, []).append(node.name)
    links = [(sink, node.name, topic) for node in topology.nodes.values()
             if node.kind == "source" for topic in node.topics for sink in sinks.get(topic, [])
             if band_of[sink] != band_of[node.name]]
    lanes = [0] * len(bands)  # links crossing the gap below band i
    lane_of: list[tuple[int, int]] = []
    for sink, source, _ in links:
        gap = min(band_of[sink], band_of[source])
        lane_of.append((gap, lanes[gap]))
        lanes[gap] += 1
    y = 0.0
    for i, band in enumerate(bands):
        band.y = y
        y += band.height + LANE_H * (lanes[i] + 1)
    total_w = max(b.width for b in bands) if bands else 1.0
    total_h = y - LANE_H if bands else 1.0

    if ax is None:
        span_w, span_h = total_w + 0.1, total_h + 0.1
        scale = max(INCH, 3.0 / span_w)  # inches per unit, the same both ways
        fig = Figure(figsize=(span_w * scale, span_h * scale))
        ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    else:
        fig = ax.figure  # type: ignore[assignment]
    ax.set_xlim(-0.05, total_w + 0.05)
    ax.set_ylim(total_h + 0.05, -0.05)
    ax.set_aspect("equal")
    ax.axis("off")

    used: dict[float, int] = {}  # links already routed through each column gap
    for band in bands:
        used.clear()
        frame = FancyBboxPatch((0.0, band.y), band.width, band.height,
                               boxstyle="round,pad=0,rounding_size=0.2", facecolor="#f6f6f6",
                               edgecolor="#999999", linewidth=1.0, zorder=1, label=band.title)
        frame.set_gid(f"subtopology:{band.id}")
        ax.add_patch(frame)
        ax.text(BAND_PAD, band.y + TITLE_H / 2, band.title, fontsize=FONT + 1,
                fontweight="bold", va="center", color="#555555", zorder=4)
        for box in [*band.boxes.values(), *band.stores.values()]:
            _draw_box(ax, box, band.y)
        wrapped = {(parent, name) for parent, name, _ in band.wraps}
        for name, box in band.boxes.items():
            for parent in topology.nodes[name].predecessors:
                if (parent, name) in wrapped:
                    continue
                (x0, y0), (x1, y1) = band.boxes[parent].anchor("right"), box.anchor("left")
                _arrow(ax, (x0, y0 + band.y), (x1, y1 + band.y))
            for store_name in topology.nodes[name].stores:
                store = band.stores[store_name]
                if store.owner == name:
                    (x0, y0), (x1, y1) = box.anchor("bottom"), store.anchor("top")
                    xs, ys = [x0, x1], [y0, y1]
                else:
                    xs, ys = _store_link(box, store, used)
                ax.plot(xs, [y + band.y for y in ys], linestyle=":", color=EDGES["store"],
                        linewidth=1.3, zorder=2)

        for n, (parent, name, lane_y) in enumerate(band.wraps):
            _wrap_arrow(ax, band, band.boxes[parent], band.boxes[name], lane_y, 0.12 * (n % 4))

    for (sink, source, topic), (gap, lane) in zip(links, lane_of, strict=True):
        out_band, in_band = bands[band_of[sink]], bands[band_of[source]]
        out_box, in_box = out_band.boxes[sink], in_band.boxes[source]
        lane_y = bands[gap].y + bands[gap].height + LANE_H * (lane + 0.6)
        last = out_box.x + NODE_W + BAND_PAD >= out_band.width - 1e-9
        shift = 0.12 * lane  # links through one gap run side by side, not on top of each other
        sx = out_box.x + NODE_W + (BAND_PAD / 2 if last else COL_GAP / 2) + shift
        sy = out_box.anchor("right")[1] + out_band.y
        dx = _gap_x(in_box.column) - shift
        dy = in_box.anchor("left")[1] + in_band.y
        ax.plot([out_box.x + NODE_W, sx, sx, dx, dx], [sy, sy, lane_y, lane_y, dy],
                linestyle="--", color=TOPIC_COLOUR, linewidth=1.1, zorder=2)
        _arrow(ax, (dx, dy), (in_box.x, dy), color=TOPIC_COLOUR)
        ax.text((sx + dx) / 2, lane_y, short_name(topic), fontsize=FONT - 0.5, ha="center",
                va="center", color=TOPIC_COLOUR, zorder=4,
                bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none"})
    return fig


TIMELINE_COLOURS = {"restoring": "#e69f00", "running": "#009e73", "standby": "#56b4e9"}
"""Colour-blind safe (Okabe–Ito)."""


def plot_restore_timeline(kernel: Any, until_ms: float | None = None,
                          title: str = "Restore timeline") -> Figure:
    """The restore timeline (``sim.streams.restore_timeline.timeline_frame``): a horizontal
    bar per interval of each thread and task, restoring, running or standby."""
    from sim.streams.restore_timeline import timeline_frame

    frame = timeline_frame(kernel, until_ms)
    rows = list(dict.fromkeys(zip(frame.thread, frame.task, strict=True)))
    height = max(2.0, 0.45 * len(rows) + 1.2)
    figure = Figure(figsize=(9, height))
    ax = figure.add_subplot()
    for y, (thread, task) in enumerate(rows):
        part = frame[(frame.thread == thread) & (frame.task == task)]
        for state, start, end in zip(part.state, part.start_ms, part.end_ms, strict=True):
            ax.barh(y, max(end - start, 1e-9) / 1000, left=start / 1000, height=0.6,
                    color=TIMELINE_COLOURS[state], edgecolor="white", linewidth=0.5)
    labels = [f"{_short_thread(thread)}  {task}" for thread, task in rows]
    ax.set_yticks(range(len(rows)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("time (s)")
    ax.set_title(title)
    shown = set(frame.state)  # the legend names only the states drawn
    handles = [Patch(color=c, label=s) for s, c in TIMELINE_COLOURS.items() if s in shown]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.15 - 0.3 / height),
              ncol=3, frameon=False)
    ax.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    return figure


def _short_thread(thread: str) -> str:
    """``app-<uuid>-StreamThread-1`` → ``app-1a2b…-T1`` (readable row labels)."""
    head, _, index = thread.rpartition("-StreamThread-")
    app, _, rest = head.partition("-")
    return f"{app}-{rest[:4]}…-T{index}" if len(rest) > 8 else f"{head}-T{index}"
