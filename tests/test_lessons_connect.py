"""Lesson 08 (Kafka Connect): every number ``notebooks/08_connect.ipynb`` states, computed by the
same ``sim.lessons.connect`` functions the notebook calls. Each docstring quotes the claim.

Sources: Kafka's quickstart (``config/connect-file-*.properties``, FileStreamSourceTask offsets),
ConnectorsResource (201 + Location), JsonConverter (the schema envelope), DistributedConfig
(``scheduled.rebalance.max.delay.ms`` = 300000, ``session.timeout.ms`` = 10000) and KIP-415.
"""

from __future__ import annotations

import functools
import json
import re
import shlex
from pathlib import Path

import pandas as pd
import pytest

from sim.lessons import connect as lc

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = "300000 ms (the default)"


@functools.cache
def pipeline() -> dict:
    """Section 2 as the notebook runs it."""
    lab = lc.standalone_lab(seed=8)
    folder = lc.workspace()
    (folder / "orders.txt").write_text("apple\nbanana\ncherry\n")
    created = lc.answer(lab.rest.post("/connectors", json=lc.file_source(
        "orders-file", folder / "orders.txt", topic="orders")))
    lab.run_until(5)
    topic = lc.topic_frame(lab.kernel, "orders")
    database = folder / "lab.db"
    sink = lc.answer(lab.rest.post("/connectors", json=lc.sqlite_sink("orders-db", "orders",
                                                                      database)))
    lab.run_until(15)
    states = lc.statuses(lab)
    three = lc.read_table(database, "orders")
    lc.append_line(folder / "orders.txt", "damson")
    lab.run_until(30)
    return {"lab": lab, "folder": folder, "created": created, "topic": topic, "sink": sink,
            "states": states, "three": three, "four": lc.read_table(database, "orders"),
            "offsets": lab.rest.get("/connectors/orders-file/offsets").json()}


@functools.cache
def failover(delay_ms: int) -> lc.FailoverRun:
    return lc.failover_run(delay_ms)


def test_five_connector_plugins_each_a_source_or_a_sink():
    """§1: five connectors, each a source or a sink."""
    plugins = pd.DataFrame(lc.standalone_lab().rest.get("/connector-plugins").json())
    assert len(plugins) == 5
    assert sorted(plugins.type) == ["sink", "sink", "source", "source", "source"]


def test_post_answers_201_with_location_and_one_task():
    """§2: 201 Created, Location /connectors/orders-file, one task orders-file-0."""
    created = pipeline()["created"]
    assert created["status"] == 201
    assert created["location"] == "/connectors/orders-file"
    assert created["body"]["tasks"] == [{"connector": "orders-file", "task": 0}]
    assert pipeline()["sink"]["status"] == 201


def test_the_topic_holds_three_keyless_records_with_schema_envelopes():
    """§2: 3 records at offsets 0, 1, 2, no key, each value {"schema", "payload"}."""
    topic = pipeline()["topic"]
    assert list(topic.offset) == [0, 1, 2]
    assert topic.key.isna().all()
    values = [json.loads(v) for v in topic.value]
    assert [set(v) for v in values] == [{"schema", "payload"}] * 3
    assert [v["payload"]["line"] for v in values] == ["apple", "banana", "cherry"]


def test_both_connectors_run_on_the_one_worker_and_the_table_has_three_rows():
    """§2: everything RUNNING on 127.0.0.1:8083; one column `line`, 3 rows."""
    states = pipeline()["states"]
    assert set(states.state) == {"RUNNING"}
    assert set(states.worker_id) == {"127.0.0.1:8083"}
    three = pipeline()["three"]
    assert list(three.columns) == ["line"]
    assert list(three.line) == ["apple", "banana", "cherry"]


def test_an_appended_line_flows_through_and_the_offset_is_its_position():
    """§2: 4 rows; {"position": 27}; the four lines end at 6, 13, 20 and 27."""
    assert list(pipeline()["four"].line) == ["apple", "banana", "cherry", "damson"]
    [entry] = pipeline()["offsets"]["offsets"]
    assert entry["offset"] == {"position": 27}
    text = (pipeline()["folder"] / "orders.txt").read_text()
    ends = [m.end() for m in re.finditer("\n", text)]
    assert ends == [6, 13, 20, 27]


def test_the_schema_envelope_takes_61_bytes_for_foo():
    """§3: 61 bytes carry the three bytes `foo`; without schemas the value is bare JSON."""
    table = lc.converted_bytes("foo")
    assert len(table.loc["JsonConverter, schemas.enable=true", "string value"]) == 61
    assert list(table["string bytes"]) == [3, 61, 5]  # the column the lesson reads it from
    assert table.loc["JsonConverter, schemas.enable=false", "string value"] == '"foo"'
    assert table.loc["JsonConverter, schemas.enable=false", "struct value"] == '{"line":"foo"}'
    assert table.loc["StringConverter", "string value"] == "foo"


def test_lesson_tables_show_json_left_aligned_and_in_full():
    """§1 and §3 show JSON and class names through ``lc.table``: JupyterLab right-aligns table
    cells, so the table must override it for headers and cells, and keep every value whole."""
    html = lc.table(lc.converted_bytes("foo")).to_html()
    for cell in ("th", "td"):
        assert re.search(cell + r" \{\s*text-align: left !important;", html), cell
    assert '{"line":"foo"}' in html.replace("&quot;", '"')


def test_lesson_tables_keep_short_values_on_one_line():
    """§2's topic table: a value of JSON may wrap anywhere, but a short column (the offset, the
    key None) never wraps; with wrapping allowed everywhere the browser squeezed the key column
    and printed ``Non`` over ``e``. The topic and the HTTP answers go through ``lc.table``."""
    html = lc.table(pipeline()["topic"]).to_html()
    match = re.search(r"((?:#T_\w+_row\d+_col\d+,?\s*)+)\{\s*white-space: nowrap;", html)
    assert match is not None
    columns = {int(c) for c in re.findall(r"_col(\d+)", match.group(1))}
    assert columns == {0, 1, 2}  # partition, offset, key; not value (3)
    lesson = json.loads((ROOT / "notebooks" / "08_connect.ipynb").read_text(encoding="utf-8"))
    code = ["".join(c["source"]) for c in lesson["cells"] if c["cell_type"] == "code"]
    assert any('lc.table(lc.topic_frame(lab.kernel, "orders"))' in c for c in code)
    assert any("lc.table(lc.http_requests(lab))" in c for c in code)


def test_quickstart_copies_foo_and_bar_and_the_offset_is_8():
    """§4: test.sink.txt holds foo and bar, offset position 8 (after foo it was 4)."""
    qs = lc.quickstart()
    assert qs.sink_file() == "foo\nbar\n"
    [entry] = qs.offsets()["offsets"]
    assert entry["offset"] == {"position": 8}
    assert (qs.folder / "connect.offsets").exists()  # the standalone offset file


def test_the_crashed_worker_ran_two_tasks():
    """§5: worker 8084 runs two of the five tasks (1 and 4) and crashes at 30 s; the connector
    and tasks 0 and 3 are on 8083 (connectors and tasks are balanced separately)."""
    run = failover(300_000)
    assert list(run.snapshots[29.0]) == ["RUNNING on 8083", "RUNNING on 8084", "RUNNING on 8085",
                                         "RUNNING on 8083", "RUNNING on 8084"]
    assert run.crashed == "127.0.0.1:8084"


@pytest.mark.parametrize(("delay_ms", "moved_s"), [(300_000, 340.0), (0, 40.0)])
def test_lost_tasks_move_after_the_delay(delay_ms, moved_s):
    """§5: with the default delay orders-gen-1 and orders-gen-4 start again at 340 s (40 s +
    300 s), both on 8085, which ran one task where 8083 ran two; with 0 at the rebalance at
    40 s."""
    moved = failover(delay_ms).moved()
    assert sorted(zip(moved.task, moved["on worker"], strict=True)) == [
        ("orders-gen-1", "127.0.0.1:8085"), ("orders-gen-4", "127.0.0.1:8085")]
    # shown to a tenth of a second, as the lesson says it: 340.0, not 340.010303
    assert list(moved["restarted at (s)"]) == [moved_s] * 2


def test_lost_tasks_keep_the_dead_workers_status_until_340_s():
    """§5: nobody runs them from 40 s to 340 s, yet their status (the last one written to the
    status topic, by the worker that died) still says RUNNING on 8084; the other tasks run on
    without a pause."""
    table = failover(300_000).snapshots
    assert list(table.loc[["orders-gen-1", "orders-gen-4"], 45.0]) == ["RUNNING on 8084"] * 2
    assert list(table.loc[["orders-gen-1", "orders-gen-4"], 339.0]) == ["RUNNING on 8084"] * 2
    assert list(table.loc[["orders-gen-1", "orders-gen-4"], 345.0]) == ["RUNNING on 8085"] * 2
    timeline = failover(300_000).timeline
    others = timeline[timeline.unit.isin(["orders-gen", "orders-gen-0", "orders-gen-2",
                                          "orders-gen-3"])]
    assert set(others.event) == {"started"}  # never stopped, never lost


def test_the_figure_draws_one_row_per_unit_and_the_gap():
    """§5's figure: a panel per run, six rows each, hatched gaps of 310 s and 10 s."""
    runs = {DEFAULT: failover(300_000), "0": failover(0)}
    fig = lc.failover_figure(runs)
    assert len(fig.axes) == 2
    for ax, gap in zip(fig.axes, (310, 10), strict=True):
        assert [t.get_text() for t in ax.get_yticklabels()] == [
            "orders-gen (connector)", *(f"orders-gen-{i}" for i in range(5))]
        hatched = [p for p in ax.patches if p.get_hatch()]
        assert [round(p.get_width()) for p in hatched] == [gap, gap]
    width, height = fig.get_size_inches()
    assert width / height < 2.5  # not stretched
    assert width <= 8.4  # a notebook output's width: 9.5 inches were shown at 88 %


def test_tolerance_none_fails_the_task_and_writes_nothing():
    """§6: with none the task is FAILED with a trace and the file is empty."""
    strict = lc.errors_run("none")
    task = strict.task()
    assert task["state"] == "FAILED"
    assert "Tolerance exceeded" in lc.first_line(task["trace"])
    assert strict.written() == []
    restart = strict.lab.rest.post("/connectors/payments-file/tasks/0/restart")
    assert restart.status_code == 204
    strict.lab.run_until(30)
    assert strict.task()["state"] == "FAILED"  # fails again on the same record


def test_tolerance_all_writes_the_good_ones_and_dead_letters_the_bad_one():
    """§6: RUNNING, pay-1 and pay-2 written, the bad record in payments-dlq with headers topic
    payments, partition 0, offset 1, stage VALUE_CONVERTER."""
    tolerant = lc.errors_run("all")
    assert tolerant.task()["state"] == "RUNNING"
    assert tolerant.written() == ["pay-1", "pay-2"]
    [dead] = tolerant.dead_letters().to_dict("records")
    assert dead["value"] == "not json"
    assert (dead["topic"], dead["partition"], dead["offset"], dead["stage"]) == (
        "payments", "0", "1", "VALUE_CONVERTER")
    assert dead["dlq offset"] == 0


def test_the_dead_letter_table_is_shown_one_row_per_header():
    """§6's table, one column per header, was 1,336 pixels wide in an 848-pixel output and
    scrolled the stage and the exception out of view. The lesson shows it turned: one row per
    header (topic, partition, offset and stage among them), the dead letter as one column of
    left-aligned text that wraps."""
    lesson = json.loads((Path(__file__).parents[1] / "notebooks" / "08_connect.ipynb")
                        .read_text(encoding="utf-8"))
    code = ["".join(c["source"]) for c in lesson["cells"] if c["cell_type"] == "code"]
    (cell,) = [c for c in code if "dead_letters()" in c]
    assert cell.startswith("lc.table(tolerant.dead_letters().T)")
    shown = lc.errors_run("all").dead_letters().T
    assert shown.shape == (11, 1)
    assert {"topic", "partition", "offset", "stage", "exception.message"} <= set(shown.index)
    assert "overflow-wrap: anywhere" in lc.table(shown).to_html()


def test_http_lists_the_same_connectors_and_stops_the_server():
    """§7: status 200; GET /connectors lists orders-db and orders-file; the server stops."""
    lab = pipeline()["lab"]
    table = lc.http_requests(lab)
    assert set(table.status) == {200}
    assert json.loads(table.body[1]) == ["orders-db", "orders-file"]
    with lc.serve(lab.herder, port=0) as server:  # a second server is refused while one runs
        assert server.port > 0


def test_curl_commands_name_real_paths_of_the_api():
    """§7: the commands go to the worker's port and each path answers in process."""
    text = lc.curl_commands(port=8083)
    assert "python -m sim connect serve --port 8083" in text
    assert "-X POST" in text
    assert "/connectors/orders-file/offsets" in text


def test_curl_commands_fit_the_output_and_post_a_config_the_api_accepts():
    """§7: no line is wider than a notebook's output (the one-line POST, 214 characters,
    wrapped in the middle of a word); the JSON body, over several lines inside its quotes, is
    still one shell word that the REST API accepts."""
    text = lc.curl_commands(port=8083)
    assert max(len(line) for line in text.splitlines()) <= 100
    words = shlex.split(text, comments=True)
    body = json.loads(words[words.index("--data") + 1])
    assert words[words.index("--data") - 1] == "http://localhost:8083/connectors"
    lab = lc.standalone_lab(seed=8)
    assert lab.rest.post("/connectors", json=body).status_code == 201


def test_the_lesson_writes_nothing_into_the_repository():
    """Files go to temporary folders: the workspace is outside the repository."""
    assert ROOT not in lc.workspace().parents
