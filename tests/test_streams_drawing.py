"""The topology figure (``sim.streams.drawing.draw_topology``): one patch per node named after
it, one frame per sub-topology, stores and internal topics shown, labels that never overlap,
and a drawing at equal aspect (never stretched)."""

from __future__ import annotations

import itertools
import re

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch
from matplotlib.text import Text

from sim.errors import TopologyError
from sim.streams import (
    Branched,
    BufferConfig,
    JoinWindows,
    Materialized,
    StreamsBuilder,
    Suppressed,
    TimeWindows,
    Topology,
)
from sim.streams.drawing import draw_topology, short_name


def seed() -> Topology:
    builder = StreamsBuilder()
    builder.stream("payment").filter(lambda key, value: key == "unknown").to("unknown-payment")
    return builder.build()


def wordcount() -> Topology:
    builder = StreamsBuilder()
    (builder.stream("streams-plaintext-input")
     .flat_map_values(lambda line: re.split(r"\W+", line.lower()))
     .group_by(lambda key, word: word).count(Materialized.as_("counts-store"))
     .to_stream().to("streams-wordcount-output"))
    return builder.build()


def join() -> Topology:
    builder = StreamsBuilder()
    orders = builder.stream("orders").select_key(lambda key, value: value)
    orders.left_join(builder.stream("payments"), lambda o, p: (o, p),
                     JoinWindows.of_time_difference_with_no_grace(100)).to("paid")
    return builder.build()


def fk_join() -> Topology:
    builder = StreamsBuilder()
    left, right = builder.stream("input1").to_table(), builder.stream("input2").to_table()
    left.join(right, lambda v: v.split("|")[1], lambda a, b: (a, b)).to_stream().to("output")
    return builder.build()


def branches_and_global_table() -> Topology:
    """split/branch, merge, a GlobalKTable join, a windowed count and suppress."""
    builder = StreamsBuilder()
    customers = builder.global_table("customers")
    split = builder.stream(re.compile("pay.*")).split()
    branches = split.branch(lambda k, v: v > 10, Branched.as_("big")).default_branch()
    big, rest = branches.values()
    (big.merge(rest).join(customers, lambda k, v: k, lambda v, c: (v, c)).group_by_key()
     .windowed_by(TimeWindows.of_size_with_no_grace(1000)).count()
     .suppress(Suppressed.until_window_closes(BufferConfig.unbounded())).to_stream().to("out"))
    return builder.build()


TOPOLOGIES = {"seed": seed, "wordcount": wordcount, "join": join, "fk": fk_join,
              "misc": branches_and_global_table}


def patches(fig: Figure) -> dict[str, FancyBboxPatch]:
    ax = fig.axes[0]
    return {p.get_gid(): p for p in ax.patches if isinstance(p, FancyBboxPatch)}


@pytest.mark.parametrize("name", TOPOLOGIES)
def test_one_patch_per_node_store_and_subtopology(name: str) -> None:
    topology = TOPOLOGIES[name]()
    drawn = patches(draw_topology(topology))
    nodes = {gid for gid in drawn if not gid.startswith(("store:", "subtopology:"))}
    assert nodes == set(topology.nodes)
    assert all(drawn[n].get_label() == n for n in nodes)
    stores = {s for node in topology.nodes.values() for s in node.stores}
    assert {gid[len("store:"):] for gid in drawn if gid.startswith("store:")} == stores
    groups = {gid for gid in drawn if gid.startswith("subtopology:")}
    assert groups == {f"subtopology:{g}" for g in topology.node_groups()}


def test_group_counts() -> None:
    """The seed example is one sub-topology; WordCount two (split by the repartition topic);
    a foreign-key join two (split by its subscription and response topics); a global store is
    a sub-topology of its own."""
    counts = {name: sum(gid.startswith("subtopology:") for gid in patches(draw_topology(f())))
              for name, f in TOPOLOGIES.items()}
    assert counts == {"seed": 1, "wordcount": 2, "join": 2, "fk": 2, "misc": 2}


def test_internal_topics_are_labelled_between_subtopologies() -> None:
    texts = [t.get_text() for t in draw_topology(fk_join()).axes[0].texts]
    assert "FK-JOIN-SUBSCRIPTION-REGISTRATION-6-topic" in texts
    assert "FK-JOIN-SUBSCRIPTION-RESPONSE-14-topic" in texts
    assert "counts-store-repartition" in [t.get_text() for t in
                                          draw_topology(wordcount()).axes[0].texts]
    assert "counts-store-repartition" not in [t.get_text() for t in
                                              draw_topology(seed()).axes[0].texts]


@pytest.mark.parametrize("name", TOPOLOGIES)
def test_labels_do_not_overlap_and_stay_in_their_boxes(name: str) -> None:
    fig = draw_topology(TOPOLOGIES[name]())
    FigureCanvasAgg(fig).draw()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    ax = fig.axes[0]
    texts: list[Text] = [t for t in ax.texts if t.get_text()]
    boxes = [t.get_window_extent(renderer) for t in texts]
    for (a, ta), (b, tb) in itertools.combinations(zip(boxes, texts, strict=True), 2):
        assert not a.overlaps(b), f"{ta.get_text()!r} overlaps {tb.get_text()!r}"
    nodes = [p.get_window_extent(renderer) for gid, p in patches(fig).items()
             if not gid.startswith("subtopology:")]
    figure_box = fig.bbox
    for box, text in zip(boxes, texts, strict=True):
        assert figure_box.contains(box.x0, box.y0)
        assert figure_box.contains(box.x1, box.y1)
        centre = ((box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2)
        for node in (n for n in nodes if n.contains(*centre)):  # a node's label fits in it
            assert node.x0 <= box.x0, text.get_text()
            assert box.x1 <= node.x1, text.get_text()
            assert node.y0 <= box.y0, text.get_text()
            assert box.y1 <= node.y1, text.get_text()


@pytest.mark.parametrize("name", TOPOLOGIES)
def test_drawing_is_not_stretched(name: str) -> None:
    """Equal aspect: the figure's width/height ratio is the drawing's."""
    fig = draw_topology(TOPOLOGIES[name]())
    ax = fig.axes[0]
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    width, height = fig.get_size_inches()
    assert width / height == pytest.approx(abs(x1 - x0) / abs(y1 - y0), rel=0.02)
    assert ax.get_aspect() == 1.0


@pytest.mark.parametrize("name", TOPOLOGIES)
def test_fits_a_notebook_output_at_full_size(name: str) -> None:
    """A notebook output is 848 pixels wide: the drawing (plus the 0.1-inch margins the inline
    backend adds around it) fits at 100 dpi, with labels of 8.5 pt or more, so it is never
    shrunk. WordCount's five columns side by side were 1,204 pixels, shown at 70 %; long chains
    now wrap onto tiers below."""
    fig = draw_topology(TOPOLOGIES[name]())
    assert (fig.get_figwidth() + 0.2) * 100 <= 848
    assert min(t.get_fontsize() for t in fig.axes[0].texts) >= 8.5
    columns = {round(p.get_x(), 3) for gid, p in patches(fig).items()
               if not gid.startswith("subtopology:")}
    assert len(columns) <= 3


def test_a_long_chain_wraps_onto_a_tier_below() -> None:
    """WordCount's sub-topology 0 is five nodes in a chain: three on the first tier, two on
    the second, the edge between them routed around (not a diagonal through the boxes)."""
    fig = draw_topology(wordcount())
    drawn = patches(fig)
    first = [drawn[n] for n in ("KSTREAM-SOURCE-0000000000", "KSTREAM-FLATMAPVALUES-0000000001",
                                "KSTREAM-KEY-SELECT-0000000002")]
    second = [drawn[n] for n in ("counts-store-repartition-filter",
                                 "counts-store-repartition-sink")]
    assert len({p.get_y() for p in first}) == len({p.get_y() for p in second}) == 1
    assert second[0].get_y() > first[0].get_y() + first[0].get_height()
    assert second[0].get_x() == first[0].get_x()
    routed = [line for line in fig.axes[0].lines if len(line.get_xdata()) == 5
              and line.get_linestyle() == "-"]
    assert len(routed) == 2  # KEY-SELECT-2 -> filter, and AGGREGATE-3 -> TOSTREAM-7


def test_draws_into_a_given_axes() -> None:
    fig = Figure(figsize=(8, 4))
    ax = fig.add_subplot()
    assert draw_topology(seed(), ax=ax) is fig
    assert len(patches(fig)) == 4  # three nodes and the sub-topology


def test_short_names() -> None:
    assert short_name("KSTREAM-FILTER-0000000001") == "FILTER-1"
    assert short_name("KTABLE-FK-JOIN-SUBSCRIPTION-STATE-STORE-0000000010") == \
        "FK-JOIN-SUBSCRIPTION-STATE-STORE-10"
    assert short_name("KSTREAM-OUTERSHARED-0000000004-store") == "OUTERSHARED-4-store"
    assert short_name("first-join-merge") == "first-join-merge"
    assert short_name("KSTREAM-BRANCH-00000000040") == "BRANCH-4-0"  # default branch
    assert short_name("KSTREAM-BRANCH-0000000004big") == "BRANCH-4-big"


def test_rejects_what_is_not_a_topology() -> None:
    with pytest.raises(TopologyError, match="needs a Topology"):
        draw_topology(StreamsBuilder())  # type: ignore[arg-type]
    with pytest.raises(TopologyError, match="empty"):
        draw_topology(Topology())
