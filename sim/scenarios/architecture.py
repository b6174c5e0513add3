"""Architecture scenarios: one architecture of :mod:`sim.architectures` run as a scenario.

A scenario with a top-level ``architecture:`` section names no topics or producers: it runs
:func:`sim.architectures.simulate` (payments → revenue per merchant per hour, with late
payments and a change of the revenue rule) with one architecture attached, and its summary says
how fresh the answer was, how it compared with the right answer over time and after the rule
change, what it stored and what broke. Example::

    name: lambda-drift
    description: The logic lives twice; only the batch copy learns the new rule.
    seed: 9
    architecture:
      variant: lambda                  # batch | lambda | kappa | lake
      workload: {hours: 3, every_ms: 10000, change_ms: 6000000}
      batch_every_ms: 3600000          # batch and lambda: the bulk job's period
      batch_delay_ms: 300000           # how long after each period's end the job runs
      update_speed_layer: false        # lambda: does the change reach the speed layer too?
      outage: {start_ms: 3600000, end_ms: 4200000}  # processing components down meanwhile
      topic_configs: {local.retention.ms: 3600000}  # of the tiered topic payments

``query_from_ms`` (lake only) adds a query over the log from that event time. A top-level
``faults:`` list, as in other scenarios, hits the run's brokers and network (broker ids 0 to
``replication_factor - 1``, ``controller`` and the services' producer ``payment-services``);
faults of processes (``outage``) stay in the section. Limits keep a
run interactive (seconds): at most :data:`MAX_HOURS` hours and :data:`MAX_PAYMENTS` payments;
the workload defaults to :data:`WORKLOAD_DEFAULTS`.
"""

from __future__ import annotations

import math
import shutil
import tempfile
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim import config as configs
from sim.errors import ConfigError

VARIANT_FIELDS = {"variant", "workload", "partitions", "replication_factor", "topic_configs",
                  "batch_every_ms", "batch_delay_ms", "update_speed_layer", "query_from_ms",
                  "outage"}
ONLY_FOR = {"batch_every_ms": ("batch", "lambda"), "batch_delay_ms": ("batch", "lambda"),
            "update_speed_layer": ("lambda",), "query_from_ms": ("lake",)}
"""Knobs that only some architectures have."""
WORKLOAD_FIELDS = {"hours": int, "every_ms": int, "late_share": (int, float),
                   "late_min_ms": int, "late_max_ms": int, "prompt_max_ms": int,
                   "voucher_share": (int, float), "change_ms": int}
TOPIC_CONFIG_NAMES = ("retention.ms", "local.retention.ms", "segment.ms")
OTHER_TOP_LEVEL = ("duration_ms", "cluster", "topics", "producers", "consumers",
                   "group_coordinator", "streams")
"""Scenario fields an architecture scenario cannot have: the run makes its own cluster, topic,
payments and applications."""

MAX_HOURS = 3
MAX_PAYMENTS = 2_000
MAX_PARTITIONS = 4
MIN_BATCH_EVERY_MS = 600_000
MIN_SEGMENT_MS = 600_000
MAX_TIME_MS = 86_400_000
"""The lab's limits for an architecture run: beyond them a run takes more than seconds. A
batch job or a segment more often than every 10 minutes would be re-run at almost every
sample."""
WORKLOAD_DEFAULTS = {"hours": 3, "every_ms": 10_000}
"""An architecture scenario's workload unless it says otherwise: 3 hours, about 1,080
payments (the rule changes 11/16 into the run, as at 2 h 45 min of the lesson's 4 hours)."""

_RESULTS: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()
"""The summary of each kernel an architecture scenario ran, for :mod:`sim.report`."""


def check(check: Any, data: dict[str, Any]) -> dict[str, Any]:
    """Validate the ``architecture`` section of scenario ``data``; return it.

    Raises:
        ScenarioError: through ``check`` (a ``_Checker``), naming the file and the field.
    """
    for name in OTHER_TOP_LEVEL:
        if name in data:
            check.fail(name, "cannot be given with architecture: an architecture scenario "
                       "makes its own cluster, topic payments, producers and applications")
    spec = check.typed(data, "architecture", dict, "", required=True)
    check.known(spec, VARIANT_FIELDS, "architecture")
    variant = check.typed(spec, "variant", str, "architecture", required=True)
    variants = ("batch", "lambda", "kappa", "lake")
    if variant not in variants:
        check.fail("architecture.variant", f"must be one of {', '.join(variants)} but is "
                   f"{variant!r}")
    for knob, owners in ONLY_FOR.items():
        if knob in spec and variant not in owners:
            check.fail(f"architecture.{knob}", f"applies to {' and '.join(owners)} only, not "
                       f"to {variant}")
    workload = _check_workload(check, spec)
    end_ms = workload.duration_ms + _tail_ms()
    partitions = check.typed(spec, "partitions", int, "architecture", default=2)
    if not 1 <= partitions <= MAX_PARTITIONS:
        check.fail("architecture.partitions", f"must be between 1 and {MAX_PARTITIONS} (the "
                   f"lab's limit for an architecture run) but is {partitions}")
    rf = check.typed(spec, "replication_factor", int, "architecture", default=3)
    if not 1 <= rf <= 3:
        check.fail("architecture.replication_factor", f"must be between 1 and 3 (the run has "
                   f"as many brokers) but is {rf}")
    topic_configs = check.typed(spec, "topic_configs", dict, "architecture", default={})
    for name in topic_configs:
        if name not in TOPIC_CONFIG_NAMES:
            check.fail(f"architecture.topic_configs.{name}", "is not a config an architecture "
                       f"scenario sets; allowed: {', '.join(TOPIC_CONFIG_NAMES)}")
    from sim.architectures.run import TOPIC_CONFIGS

    check.config(configs.TOPIC, topic_configs, "architecture.topic_configs")
    check.config(configs.TOPIC, {**TOPIC_CONFIGS, **topic_configs},  # with the run's own
                 "architecture.topic_configs")
    segment_ms = configs.TOPIC.parse(topic_configs)["segment.ms"] \
        if "segment.ms" in topic_configs else None  # parsed: "1000" is a valid value too
    if segment_ms is not None and not MIN_SEGMENT_MS <= segment_ms <= MAX_TIME_MS:
        check.fail("architecture.topic_configs.segment.ms", f"must be between "
                   f"{MIN_SEGMENT_MS:,} and {MAX_TIME_MS:,} ms (the lab's limits for an "
                   f"architecture run) but is {segment_ms}")
    every = _time(check, spec, "batch_every_ms", default=None, low=MIN_BATCH_EVERY_MS)
    delay = _time(check, spec, "batch_delay_ms", default=None, low=0)
    if delay is not None and delay > (every or 3_600_000):
        check.fail("architecture.batch_delay_ms", f"is {delay} ms, longer than the batch "
                   f"period ({every or 3_600_000} ms): each job would run after the next "
                   "period ended")
    check.typed(spec, "update_speed_layer", bool, "architecture", default=False)
    query = _time(check, spec, "query_from_ms", default=None, low=0)
    if query is not None and query >= workload.duration_ms:
        check.fail("architecture.query_from_ms", f"is {query} ms, at or after the last payment's "
                   f"event time (the workload has {workload.hours} h): the query would read "
                   "nothing")
    outage = check.typed(spec, "outage", dict, "architecture", default=None)
    if outage is not None:
        check.known(outage, {"start_ms", "end_ms"}, "architecture.outage")
        start = _time(check, outage, "start_ms", default=None, low=0, where="architecture.outage",
                      required=True)
        end = _time(check, outage, "end_ms", default=None, low=0, where="architecture.outage",
                    required=True)
        if not start < end:
            check.fail("architecture.outage.end_ms", f"is {end} ms, not after start_ms ({start} "
                       "ms)")
        if start >= end_ms:
            check.fail("architecture.outage.start_ms", f"is {start} ms, after the run ends "
                       f"({end_ms} ms): the outage would never happen")
    return spec


def check_faults(check: Any, data: dict[str, Any], spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Validate the scenario's top-level ``faults`` against the run's cluster; return them.

    Only the cluster's faults (``sim.faults.FAULT_KINDS``): the run's consumers and
    applications are its own, and ``outage`` stops them.
    """
    from sim import faults
    from sim.architectures.run import PRODUCER_CLIENT_ID
    from sim.scenarios import _check_broker_lifecycle, _check_nodes

    fault_list = check.typed(data, "faults", list, "", default=[])
    brokers = spec.get("replication_factor", 3)  # the run has as many brokers
    end_ms = workload_of(spec).duration_ms + _tail_ms()
    for i, fault in enumerate(fault_list):
        where = f"faults[{i}]"
        try:
            faults.from_spec(fault, brokers)
        except faults.FaultSpecError as exc:
            check.fail(f"{where}.{exc.field}" if exc.field else where, exc.problem)
        _check_nodes(check, fault, where, brokers, [PRODUCER_CLIENT_ID])
        if fault.get("at_ms", 0) > end_ms:
            check.fail(f"{where}.at_ms", f"is {fault.get('at_ms', 0)}, after the run ends "
                       f"({end_ms} ms): the fault would never happen")
    _check_broker_lifecycle(check, fault_list)
    return fault_list


def _tail_ms() -> int:
    """How long a run goes on after the last payment (simulate's default)."""
    return 3 * 60_000


def _time(check: Any, spec: dict[str, Any], name: str, default: Any, low: int,
          where: str = "architecture", required: bool = False) -> Any:
    """An integer time in ms between ``low`` and a day, or ``default`` when left out."""
    value = check.typed(spec, name, int, where, default=default, required=required)
    if value is not None and not low <= value <= MAX_TIME_MS:
        check.fail(f"{where}.{name}", f"must be a time in ms from {low:,} to {MAX_TIME_MS:,} "
                   f"but is {value}")
    return value


def _check_workload(check: Any, spec: dict[str, Any]) -> Any:
    """The section's ``workload`` as a :class:`sim.architectures.Workload`."""
    fields = check.typed(spec, "workload", dict, "architecture", default={})
    where = "architecture.workload"
    check.known(fields, set(WORKLOAD_FIELDS), where)
    for name, kind in WORKLOAD_FIELDS.items():
        value = check.typed(fields, name, kind, where)
        if value is None:
            continue
        if kind is int and not 0 <= value <= MAX_TIME_MS:
            check.fail(f"{where}.{name}", f"must be from 0 to {MAX_TIME_MS:,} but is {value}")
        if kind is not int and not 0 <= value <= 1:
            check.fail(f"{where}.{name}", f"must be a share from 0 to 1 but is {value}")
    hours = fields.get("hours", WORKLOAD_DEFAULTS["hours"])
    if not 1 <= hours <= MAX_HOURS:
        check.fail(f"{where}.hours", f"must be between 1 and {MAX_HOURS} (the lab's limit for "
                   f"an architecture run) but is {hours}")
    every = fields.get("every_ms", WORKLOAD_DEFAULTS["every_ms"])
    if every < 1 or hours * 3_600_000 / every > MAX_PAYMENTS:
        check.fail(f"{where}.every_ms", f"is {every}: {hours} h of payments would be "
                   f"{hours * 3_600_000 / max(every, 1):,.0f} on average, and an architecture "
                   f"run takes at most {MAX_PAYMENTS:,}; raise every_ms")
    try:
        return workload_of({"workload": fields})
    except ConfigError as exc:
        check.fail(where, f"is invalid: {exc}")
    raise AssertionError  # check.fail raises


def workload_of(spec: dict[str, Any]) -> Any:
    """The section's workload: its fields over :data:`WORKLOAD_DEFAULTS`.

    Raises:
        ConfigError: fields that make no workload (e.g. the change after the last payment).
    """
    from sim.architectures.workload import Workload

    fields = {**WORKLOAD_DEFAULTS, **(spec.get("workload") or {})}
    fields.setdefault("change_ms", fields["hours"] * 3_600_000 * 11 // 16)
    return Workload(**fields)


def simulate_spec(spec: dict[str, Any], seed: int, root: Path | None = None,
                  fault_list: list[dict[str, Any]] | None = None,
                  advance: Any = None) -> Any:
    """The :class:`sim.architectures.ArchitectureRun` of a validated section (batch
    collection's services dump into ``root``, default a new temporary folder), with the
    scenario's validated ``fault_list``; ``advance`` runs the kernel (``simulate``'s)."""
    from sim import faults
    from sim.architectures.run import simulate

    variant = spec["variant"]
    options: dict[str, Any] = {}
    if variant == "batch":
        options = {"root": root} if root is not None else {}
        for knob, arg in (("batch_every_ms", "dump_every_ms"), ("batch_delay_ms", "job_delay_ms")):
            if knob in spec:
                options[arg] = spec[knob]
    elif variant == "lambda":
        options = {k: spec[k] for k in ("batch_every_ms", "batch_delay_ms", "update_speed_layer")
                   if k in spec}
    outage = spec.get("outage")
    return simulate(workload_of(spec), seed=seed, variants=(variant,),
                    partitions=spec.get("partitions", 2),
                    replication_factor=spec.get("replication_factor", 3),
                    topic_configs=spec.get("topic_configs") or None,
                    outage=(outage["start_ms"], outage["end_ms"]) if outage else None,
                    options={variant: options},
                    faults=[faults.from_spec(f, spec.get("replication_factor", 3))
                            for f in fault_list or []],
                    advance=advance)


def run(spec: dict[str, Any], seed: int, fault_list: list[dict[str, Any]] | None = None,
        advance: Any = None, summary: bool = True) -> Any:
    """Run the section's architecture with the scenario's faults (``advance`` runs the kernel,
    as ``simulate``'s); return the :class:`sim.architectures.ArchitectureRun`.

    Batch collection's files go to a temporary folder, deleted after the run. With
    ``summary`` the run's summary is kept for the report (made before the folder goes:
    it measures the files); the fuzzer, which judges the answers only, leaves it out.
    """
    folder = Path(tempfile.mkdtemp(prefix="kafka-lab-batch-"))
    try:
        result = simulate_spec(spec, seed, folder, fault_list, advance)
        if summary:
            _RESULTS[result.kernel] = summarise(result, spec)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return result


def summary_lines(kernel: Any) -> list[str]:
    """The architecture section of a run's text summary (none for other scenarios)."""
    found = _RESULTS.get(kernel)
    return [] if found is None else ["", *found["lines"]]


def summary_json(kernel: Any) -> dict[str, Any]:
    """``{"architecture": {...}}`` for a run of an architecture scenario, else ``{}``."""
    found = _RESULTS.get(kernel)
    return {} if found is None else {"architecture": found["json"]}


# --- The summary -------------------------------------------------------------------------------


def _s(value: float) -> str:
    """Seconds as text: ``inf`` for never, else rounded to a tenth."""
    return "never" if math.isinf(value) else "n/a" if math.isnan(value) else f"{value:,.1f} s"


def _min(ms: float) -> str:
    return f"{ms / 60_000:g} min"


def summarise(run: Any, spec: dict[str, Any]) -> dict[str, Any]:
    """The text lines and a JSON-ready dict describing one architecture run."""
    from sim.architectures.comparison import (
        NAMES,
        comparison,
        freshness,
        payments_topic_storage,
        settled_hours,
    )

    (variant,) = run.variants
    arch = run.variants[variant]
    row = comparison(run).iloc[0]
    w, pay = run.workload, run.payments
    fresh = freshness(run, variant)
    lines = [f"Architecture: {NAMES[variant]} ({arch.code_paths} code "
             f"path{'s' if arch.code_paths > 1 else ''} of the revenue logic)"]
    lines.append(f"  workload: {w.hours} h of payments to topic {run.topic}, {len(pay):,} "
                 f"payments, {int(pay['late'].sum()):,} late (arriving "
                 f"{_min(w.late_min_ms)}–{_min(w.late_max_ms)} after), "
                 f"{int((pay['method'] == 'voucher').sum()):,} by voucher; the revenue rule "
                 f"changes from v1 (every payment) to v2 (vouchers are not revenue) at "
                 f"{_min(w.change_ms)}")
    lines.extend(_knob_lines(run, variant, arch))
    lines.append(f"  freshness (arrival → answer, sampled every "
                 f"{(run.sample_ms[1] - run.sample_ms[0]) / 1000:g} s): median "
                 f"{_s(row['freshness median (s)'])}, p95 {_s(row['freshness p95 (s)'])}; "
                 f"shown by the end {row['shown by the end (%)']:g}% of payments")
    settled = settled_hours(run)
    lines.append(f"  after the logic change: the settled hours ({_hours(settled)}) show the new "
                 f"rule {_s(row['history restated after (s)'])} after it; reprocessing took "
                 f"{_s(row['reprocessing (s)'])}")
    lines.append(f"  wrong cells at the end: {row['wrong cells at the end']} of "
                 f"{len(run.cells)} (merchant, hour) answers differ from the right one")
    lines.append("  answered vs right answer (revenue of all merchants, cents):")
    timeline = _timeline(run, variant)
    shown = timeline.assign(answered=["none" if pd.isna(v) else str(v)
                                      for v in timeline["answered"]])
    lines.extend("    " + line for line in shown.to_string(index=False).splitlines())
    detail = _detail_lines(run, variant, arch, spec)
    lines.extend(detail)
    storage = arch.storage()
    kept = "the dumped files and the report" if variant == "batch" else \
        f"besides topic {run.topic}"
    lines.append(f"  storage: {row['storage (USD per GB of payments per month)']:g} USD per "
                 f"GB of payments per month (lab prices); {kept}: disk "
                 f"{int(storage['disk_bytes']):,} bytes, object storage "
                 f"{int(storage['object_bytes']):,} bytes")
    if variant != "batch":
        shared = payments_topic_storage(run)
        lines.append(f"  topic {run.topic} keeps {int(shared['disk_bytes']):,} bytes on broker "
                     f"disks (every replica) and {int(shared['object_bytes']):,} bytes in the "
                     "remote tier")
    lines.extend(_broke_lines(run, variant, arch, fresh))
    lines.append(f"  when a component crashes: {arch.when_a_component_crashes}")
    data = {"variant": variant, "payments": len(pay),
            "comparison": {k: (None if isinstance(v, float) and not math.isfinite(v)
                               else (v.item() if isinstance(v, np.generic) else v))
                           for k, v in row.items()},
            "timeline": [{k: (None if v is pd.NA else v) for k, v in r.items()}
                         for r in timeline.astype(object).to_dict(orient="records")]}
    return {"lines": [_wrapped for line in lines for _wrapped in _wrap(line)], "json": data}


def _wrap(line: str) -> list[str]:
    """Long prose lines wrapped at 96 columns, keeping their indent (tables are left alone)."""
    import textwrap

    if len(line) <= 96 or line.startswith("    "):
        return [line]
    indent = line[: len(line) - len(line.lstrip())]
    return textwrap.wrap(line, 96, initial_indent="", subsequent_indent=indent + "  ",
                         break_on_hyphens=False)


def _hours(hours: list[int]) -> str:
    if not hours:
        return "none"
    return f"hour {hours[0]}" if len(hours) == 1 else f"hours {hours[0]}–{hours[-1]}"


def _knob_lines(run: Any, variant: str, arch: Any) -> list[str]:
    if variant == "batch":
        return [f"  each service dumps a file every {_min(arch.dump_every_ms)}; the bulk job "
                f"runs {_min(arch.job_delay_ms)} after each dump, reads every file and "
                "overwrites the report"]
    if variant == "lambda":
        copy = "both copies" if arch.update_speed_layer else "the batch copy only (the " \
            "speed layer keeps v1)"
        return [f"  batch job every {_min(arch.batch_every_ms)}, {_min(arch.batch_delay_ms)} "
                f"after the period; speed layer: Kafka Streams; serving layer: SQLite; the "
                f"rule change reaches {copy}"]
    if variant == "kappa":
        return ["  one Kafka Streams job; at the change a second instance replays the log "
                "from offset 0 into a new table, and readers switch when it has caught up"]
    configs_ = run.kernel.cluster.topics[run.topic].config
    return [f"  no serving layer: queries read {run.topic} itself (segment.ms="
            f"{configs_['segment.ms']}, local.retention.ms={configs_['local.retention.ms']}, "
            f"retention.ms={configs_['retention.ms']}; closed segments are copied to the "
            "remote tier, Parquet files)"]


def _timeline(run: Any, variant: str) -> pd.DataFrame:
    """Answered and right revenue (all merchants) at each full hour, at the change, at every
    batch run and at the end."""
    times = {float(t) for t in range(3_600_000, int(run.end_ms) + 1, 3_600_000)}
    times |= {float(run.workload.change_ms), run.end_ms}
    for t in _batch_run_times(run, variant):
        times |= {t, _sample_before(run, t)}
    rows = []
    for t in sorted(times):
        answer = run.answer_at(variant, t).to_numpy()
        right = run.truth_at(t).to_numpy()
        shown = answer[~np.isnan(answer)]
        rows.append({"time (min)": round(t / 60_000, 2),
                     "rule": run.workload.rule_at(t),
                     "answered": int(shown.sum()) if len(shown) else None,
                     "right answer": int(right.sum()),
                     "wrong cells": int((~np.isclose(np.nan_to_num(answer, nan=-1), right)
                                         ).sum())})
    frame = pd.DataFrame(rows)
    frame["answered"] = frame["answered"].astype("Int64")
    return frame


def _sample_before(run: Any, t: float) -> float:
    earlier = run.sample_ms[run.sample_ms < t]
    return float(earlier[-1]) if len(earlier) else float(t)


def _batch_run_times(run: Any, variant: str) -> list[float]:
    arch = run.variants[variant]
    if variant == "batch":
        return [float(r["run_ms"]) for r in arch.runs]
    if variant == "lambda":
        return [float(r[0]) for r in arch.db.execute("SELECT run_ms FROM batch_runs")]
    return []


def _detail_lines(run: Any, variant: str, arch: Any, spec: dict[str, Any]) -> list[str]:
    """What only this architecture has: batch runs, the lambda merge, kappa's switch, the lake
    query."""
    lines: list[str] = []
    if variant == "batch":
        lines.append(f"  bulk jobs: {len(arch.runs)} ran, {len(arch.failed_runs)} failed; the "
                     "report keeps none of this (it is overwritten: lineage is lost):")
        frame = pd.DataFrame(arch.runs or [], columns=["due_ms", "run_ms", "files", "payments",
                                                        "rule"])
        frame.insert(0, "run (min)", frame.pop("run_ms") / 60_000)
        frame = frame.drop(columns=["due_ms"])
        lines.extend("    " + line for line in _table(frame).splitlines())
    elif variant == "lambda":
        lines.extend(_lambda_lines(run, arch))
    elif variant == "kappa":
        lines.append(f"  reprocessing: second instance started at "
                     f"{_min(arch.reprocessing.get('start_ms', math.nan))}, readers switched at "
                     f"{_min(arch.reprocessing.get('switch_ms', math.nan))}")
    else:
        lines.extend(_lake_lines(run, arch, spec))
    return lines


def _table(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "(none)"
    return frame.to_string(index=False, float_format=lambda v: f"{v:g}")


def _lambda_lines(run: Any, arch: Any) -> list[str]:
    """Per hour at the end: which layer answers, the difference from the right answer, and
    the vouchers of that hour (what the speed layer still counts after the change)."""
    from sim.architectures.workload import HOUR_MS

    runs = pd.DataFrame(arch.db.execute(
        "SELECT run_ms / 60000.0, covered_until_hour, rule, payments FROM batch_runs").fetchall(),
        columns=["run (min)", "covers hours before", "rule", "payments"])
    lines = [f"  batch runs (serving database, table batch_runs; {len(arch.failed_runs)} failed):"]
    lines.extend("    " + line for line in _table(runs).splitlines())
    answer, layers = arch.answer(), arch.layers()
    right = run.truth_at(run.end_ms).to_numpy()
    pay = run.payments
    vouchers = pay[pay["method"] == "voucher"].groupby(pay["event_ms"] // HOUR_MS)[
        "amount_cents"].sum()
    rows = []
    for hour in range(run.workload.hours):
        mask = np.array([h == hour for _m, h in run.cells])
        shown = answer[mask]
        rows.append({"hour": hour, "layer": next((x for x in layers[mask] if x), "none"),
                     "answered": int(np.nansum(shown)), "right answer": int(right[mask].sum()),
                     "difference": int(np.nansum(shown) - right[mask].sum()),
                     "vouchers": int(vouchers.get(hour, 0))})
    lines.append(f"  serving layer's merge at the end ({_min(run.end_ms)}), per hour:")
    lines.extend("    " + line for line in _table(pd.DataFrame(rows)).splitlines())
    return lines


def _lake_lines(run: Any, arch: Any, spec: dict[str, Any]) -> list[str]:
    """The query by time over both tiers, and how far the Parquet tier lags the log."""
    from sim.architectures.data_lake import query_revenue
    from sim.architectures.workload import revenue

    lines = []
    start = spec.get("query_from_ms")
    if start is not None:
        answer, reads = query_revenue(run.kernel, run.topic, run.workload,
                                      run.workload.rule_at(run.end_ms), start)
        pay = run.payments
        right = revenue(pay[(pay["event_ms"] >= start) & (pay["arrival_ms"] <= run.end_ms)],
                        run.workload.rule_at(run.end_ms), run.workload)
        lines.append(f"  query at the end: revenue of event time ≥ {_min(start)} "
                     f"(offsets_for_times finds where to start in each partition): read "
                     f"{reads['remote']:,} records from the remote tier (Parquet) and "
                     f"{reads['local']:,} from the brokers; total {int(answer.sum()):,} cents, "
                     f"{'equal to' if answer.equals(right) else 'DIFFERENT from'} the payments "
                     f"of that time ({int(right.sum()):,} cents)")
        lines.append(f"  out of order: {reads['missed_by_offset_range']:,} late payments sit "
                     "after the offset where the next hour starts; reading each hour as an "
                     "offset range would miss them, so the query reads on and filters by "
                     "timestamp")
    lag = arch.cold_lag()
    hourly = lag[lag["time_ms"] % 3_600_000 == 0].copy()
    hourly.insert(0, "time (min)", hourly.pop("time_ms") / 60_000)
    lines.append("  records in the log and already in the remote tier (the Parquet table lags "
                 "the log until a segment closes and is copied):")
    lines.extend("    " + line for line in _table(hourly).splitlines())
    return lines


def _broke_lines(run: Any, variant: str, arch: Any, fresh: np.ndarray) -> list[str]:
    """The outage, if any: what failed and how fresh the answer was meanwhile."""
    if run.outage is None:
        return ["  what broke: nothing (no outage in this run)"]
    start, end = run.outage
    arrival = run.payments["arrival_ms"].to_numpy()
    during = (arrival >= start) & (arrival < end)
    median = float(np.quantile(fresh[during], 0.5, method="higher")) if during.any() \
        else math.nan
    failed = getattr(arch, "failed_runs", [])
    parts = [f"processing down {_min(start)}–{_min(end)} (brokers up)"]
    if failed:
        parts.append(f"batch job{'s' if len(failed) > 1 else ''} due at "
                     f"{', '.join(_min(t) for t in failed)} failed")
    parts.append(f"{int(during.sum())} payments arrived meanwhile, median freshness "
                 f"{_s(median)}")
    return [f"  what broke: {'; '.join(parts)}"]
