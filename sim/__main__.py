"""Command line: ``python -m sim list | run | explain | fuzz | exercises | grade | lab | connect``.

Installed, the same commands answer to ``kafka-lab`` (``kafka-lab run keyed``).

- ``list``: the built-in scenarios, one per line with its description.
- ``run NAME|FILE.yaml [--seed N] [--trace FILE.csv|.parquet] [--json]``: run a scenario headless
  and print its summary (``--json``: one JSON object, with the delivery audit under ``audit``);
  the same name and seed always print the same bytes.
- ``exercises build|check``: generate ``exercises/`` from ``solutions/``, or fail if they drifted.
- ``grade DIR --out grades.csv``: grade a folder of submitted exercise notebooks.
- ``explain [TERM]``: what a word of the delivery audit means (all of them without TERM).
- ``lab``: open JupyterLab at the repository's root with the tour open.
- ``fuzz --runs N --seed S --profile P --out DIR``: random fault schedules, each checked; one
  line per failing schedule, each new failure minimised into DIR as replayable YAML.
- ``sweep [NAME|FILE.yaml] [--schedules N] [--profile P] [--seeds N] [--grid KEY=V1,V2 …]
  [--records N] [--jobs N] [--dask ADDRESS] [--out FILE.parquet|.csv]``: run a scenario over a
  grid of Kafka configs, seeds and random fault schedules (``sim.sweep``); print, per grid
  point, the runs, how many lost data, the lost records and their most common cause.
- ``connect serve [--port 8083] [--scenario NAME] [--speed X]``: Kafka Connect's REST API over
  HTTP on 127.0.0.1, simulated time following the wall clock; ``connect standalone WORKER
  CONNECTOR…``: run connector ``.properties`` files and print their status (``sim.connect``).

A user's mistake (a bad argument, an invalid scenario) is one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from sim import report, scenarios
from sim.errors import KafkaLabError
from sim.fuzz.generator import PROFILES

TOUR = Path("notebooks", "00_tour.ipynb")
DEFAULT_MEMORY_MB = 2048
"""``grade --memory-mb`` by default: the sandbox's ``Limits.memory_bytes``."""
MAX_MEMORY_MB = (2**63 - 1) >> 20
"""The largest ``--memory-mb`` an address-space limit (a signed 64-bit ``rlim_t``) holds: a
larger one made every submission's process fail to start, graded as the student's error."""


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage mistake reported in one line (as every other error is)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def _program_name() -> str:
    """``kafka-lab`` when started by the console script, else ``python -m sim``."""
    called = sys.argv[0].replace("\\", "/").rsplit("/", 1)[-1].lower()
    return "kafka-lab" if called in ("kafka-lab", "kafka-lab.exe") else "python -m sim"


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog=_program_name(), description="Kafka Lab simulator.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="list the built-in scenarios")
    run = commands.add_parser("run", help="run a scenario and print its summary")
    run.add_argument("scenario", help="a built-in name (see list) or a .yaml file")
    run.add_argument("--seed", type=int, default=None,
                     help="override the scenario's seed (an integer ≥ 0)")
    run.add_argument("--trace", type=Path, default=None,
                     help="write the event trace to FILE.csv or FILE.parquet")
    run.add_argument("--json", action="store_true",
                     help="print one JSON object (summary, consumer groups, audit) instead")
    exercises = commands.add_parser("exercises", help="generate or check exercises/")
    exercises.add_argument("action", choices=["build", "check"])
    exercises.add_argument("--solutions", type=Path, default=Path("solutions"))
    exercises.add_argument("--exercises", type=Path, default=Path("exercises"))
    grade = commands.add_parser("grade", help="grade a folder of submitted notebooks")
    grade.add_argument("directory", type=Path,
                       help="the submitted exercise notebooks (any file names)")
    grade.add_argument("--out", type=Path, required=True, help="the grade table (CSV)")
    grade.add_argument("--timeout", type=float, default=60.0,
                       help="seconds allowed per submission (default 60)")
    grade.add_argument("--cell-timeout", type=float, default=10.0,
                       help="seconds allowed per notebook cell (default 10)")
    grade.add_argument("--feedback", type=Path, default=None,
                       help="folder for one feedback text file per student")
    grade.add_argument("--jobs", type=int, default=None,
                       help="submissions graded at the same time (default: the CPU cores)")
    grade.add_argument("--memory-mb", type=int, default=DEFAULT_MEMORY_MB,
                       help="address space allowed to each process of a submission "
                            "(default 2048)")
    explain = commands.add_parser("explain", help="what a word of the delivery audit means")
    explain.add_argument("term", nargs="*",
                         help="e.g. lost-write, unseen, skipped (none: list every term)")
    commands.add_parser(
        "lab", help="open JupyterLab at the repository's root with the tour open",
        usage="%(prog)s [jupyter lab options, e.g. --port 8899 --no-browser]",
        description="Start JupyterLab rooted at the repository (so notebooks/, exercises/ and "
        "solutions/ are all reachable) with notebooks/00_tour.ipynb open. Run as root (as in "
        "many containers), it adds --allow-root. Other options go to jupyter lab.")
    fuzz = commands.add_parser("fuzz", help="run random fault schedules and check each run")
    fuzz.add_argument("--runs", type=int, default=100, help="schedules to run (default 100)")
    fuzz.add_argument("--seed", type=int, default=0, help="the campaign's seed (default 0)")
    fuzz.add_argument("--profile", default="safe",
                      choices=list(PROFILES))
    fuzz.add_argument("--records", type=int, default=None,
                      help="records per schedule (default: the profile's, 3000 at 50/s; "
                           "connect: lines of its source file, 600 at 12/s)")
    fuzz.add_argument("--out", type=Path, default=Path("fuzz-findings"),
                      help="folder for the minimised failing schedules (YAML)")
    fuzz.add_argument("--minimise-runs", type=int, default=60,
                      help="runs allowed to minimise each new failure (default 60; 0: none)")
    _add_sweep_parser(commands)
    _add_connect_parser(commands)
    args, unknown = parser.parse_known_args(argv)
    if unknown and args.command != "lab":
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        if args.command == "list":
            return _list()
        if args.command == "exercises":
            return _exercises(args.action, args.solutions, args.exercises)
        if args.command == "grade":
            return _grade(args)
        if args.command == "explain":
            return _explain(" ".join(args.term))
        if args.command == "lab":
            return subprocess.call(lab_command(_lab_root(), unknown))
        if args.command == "fuzz":
            return _fuzz(args)
        if args.command == "sweep":
            return _sweep(args)
        if args.command == "connect":
            from sim.connect.cli import run_command  # Starlette and uvicorn only when asked
            return run_command(args)
        _check_run_arguments(args.seed, args.trace)
        return _run(args.scenario, args.seed, args.trace, args.json)
    except KafkaLabError as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)  # always one line
        return 2


def _add_sweep_parser(commands: Any) -> None:
    """``sweep``: one scenario over a grid of configs, seeds and fault schedules."""
    sweep = commands.add_parser("sweep", help="run a scenario over a grid of configs, seeds "
                                "and random fault schedules; one row per run")
    sweep.add_argument("scenario", nargs="?", default=None,
                       help="a built-in name or a .yaml file (default: the fuzzer's own "
                            "scenarios of --profile; needs --schedules)")
    sweep.add_argument("--schedules", type=int, default=0,
                       help="random fault schedules per grid point and seed, replacing the "
                            "scenario's faults (default 0: its own faults)")
    sweep.add_argument("--profile", default="safe",
                       help=f"fuzzer profile of the schedules: {', '.join(PROFILES)} "
                            "(default safe)")
    sweep.add_argument("--seeds", type=int, default=None,
                       help="seeds per grid point (default 1: the scenario's own; with "
                            "--schedules, campaign seeds from 0)")
    sweep.add_argument("--grid", nargs="+", default=None, metavar="KEY=V1,V2",
                       help="Kafka configs to vary, e.g. acks=1,all min.insync.replicas=1,2 "
                            "(every combination runs)")
    sweep.add_argument("--records", type=int, default=None,
                       help="records per producer workload (default: the scenario's)")
    sweep.add_argument("--jobs", type=int, default=None,
                       help="worker processes on this machine (default: the CPU cores)")
    sweep.add_argument("--dask", default=None, metavar="ADDRESS",
                       help="run on the Dask cluster whose scheduler is at ADDRESS "
                            "(tcp://host:8786) instead")
    sweep.add_argument("--out", type=Path, default=None,
                       help="write one row per run to FILE.parquet or FILE.csv")
    sweep.add_argument("--no-progress", action="store_true", help="no progress bar")


def _add_connect_parser(commands: Any) -> None:
    """``connect serve`` (the REST API over HTTP) and ``connect standalone`` (run, print status)."""
    connect = commands.add_parser("connect", help="Kafka Connect: serve the REST API, or run "
                                  "a standalone worker")
    actions = connect.add_subparsers(dest="action", required=True)
    serve = actions.add_parser("serve", help="serve the Connect REST API on 127.0.0.1")
    serve.add_argument("--port", type=int, default=8083, help="TCP port (default 8083; 0: any)")
    serve.add_argument("--scenario", default=None,
                       help="a scenario name or .yaml file for the cluster (default: 3 brokers)")
    serve.add_argument("--speed", type=float, default=1.0,
                       help="simulated ms per wall-clock ms (default 1)")
    serve.add_argument("--worker", type=Path, default=None,
                       help="worker .properties (default: connect-standalone.properties' "
                            "settings, offsets in memory)")
    serve.add_argument("connectors", nargs="*", type=Path,
                       help="connector .properties files to start with")
    standalone = actions.add_parser("standalone", help="run connectors for a simulated time "
                                    "and print their status, like connect-standalone.sh")
    standalone.add_argument("worker", type=Path, help="worker .properties")
    standalone.add_argument("connectors", nargs="+", type=Path,
                            help="connector .properties files")
    standalone.add_argument("--until-ms", type=float, default=30_000,
                            help="simulated time to run (default 30000)")
    standalone.add_argument("--scenario", default=None,
                            help="a scenario name or .yaml file for the cluster")


def _list() -> int:
    for name in scenarios.builtin_names():
        scenario = scenarios.load(name)
        print(name)
        print(textwrap.indent(textwrap.fill(scenario.description, 92), "    "))
    return 0


def _check_run_arguments(seed: int | None, trace_path: Path | None) -> None:
    """Reject bad ``--seed`` and ``--trace`` values before anything runs."""
    if seed is not None:
        scenarios.check_seed(seed, "--seed")
    if trace_path is None:
        return
    if trace_path.suffix not in (".csv", ".parquet"):
        raise KafkaLabError(f"--trace {trace_path}: use a .csv or .parquet file name.")
    folder = trace_path.parent
    if not folder.is_dir():
        raise KafkaLabError(f"--trace {trace_path}: the folder {folder} does not exist; "
                            "create it or pick another path.")
    if trace_path.is_dir():
        raise KafkaLabError(f"--trace {trace_path} is a folder; give a file name ending in "
                            ".csv or .parquet.")


def _run(name: str, seed: int | None, trace_path: Path | None, as_json: bool = False) -> int:
    scenario = scenarios.load(name)
    try:
        kernel = scenario.run(seed)
    except KafkaLabError as exc:  # found while running (a partitioner, the clock): name the file
        if str(exc).startswith(f"{scenario.source}: "):
            raise
        raise KafkaLabError(f"{scenario.source}: {exc}") from exc
    if as_json:
        summary = report.summary_json(kernel, scenario.name, scenario.description)
        print(json.dumps(summary, allow_nan=False, default=str))
    else:
        print(report.summary(kernel, scenario.name, scenario.description), end="")
    if trace_path is not None:
        frame = kernel.trace.to_frame()
        if trace_path.suffix == ".parquet":
            frame.to_parquet(trace_path, index=False)
        else:
            frame.to_csv(trace_path, index=False)
    return 0


def _explain(term: str) -> int:
    from sim.audit import TERMS, explain

    texts = [explain(term)] if term else [explain(name) for name in TERMS]
    for text in texts:
        print(textwrap.fill(text, 96, subsequent_indent="    ", break_on_hyphens=False))
    return 0


def _exercises(action: str, solutions: Path, exercises: Path) -> int:
    from sim.grading.notebooks import build_exercises, check_exercises

    if not solutions.is_dir():
        raise KafkaLabError(f"{solutions}/ is not a folder: run this from the repository's root "
                            "(where solutions/ is) or name it with --solutions DIR.")
    if exercises.exists() and not exercises.is_dir():
        raise KafkaLabError(f"--exercises {exercises} is a file, not a folder; name the folder "
                            "the exercises go to.")
    if action == "check" and not exercises.is_dir():
        raise KafkaLabError(f"{exercises}/ is not a folder: build it with python -m sim "
                            "exercises build, or name it with --exercises DIR.")
    if action == "build":
        for path in build_exercises(solutions, exercises):
            print(f"wrote {path}")
        return 0
    problems = check_exercises(solutions, exercises)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print("exercises/ is out of date: run python -m sim exercises build", file=sys.stderr)
        return 1
    print(f"{exercises}/ is in step with {solutions}/")
    return 0


def _grade(args: argparse.Namespace) -> int:
    from sim.grading.batch import grade_directory, memory_suffices

    for option, value in (("--timeout", args.timeout), ("--cell-timeout", args.cell_timeout)):
        if not 0 < value < math.inf:
            raise KafkaLabError(f"{option} {value}: give a number of seconds > 0.")
    if not 1 <= args.memory_mb <= MAX_MEMORY_MB:
        raise KafkaLabError(f"--memory-mb {args.memory_mb}: give the megabytes each process "
                            f"may use (at least 1, at most {MAX_MEMORY_MB}; default "
                            f"{DEFAULT_MEMORY_MB}).")
    if not args.directory.is_dir():
        raise KafkaLabError(f"{args.directory} is not a folder of submitted notebooks.")
    folder = args.directory.resolve()
    if any(Path(entry or ".").resolve() == folder for entry in sys.path):
        raise KafkaLabError(f"{args.directory} is on Python's import path (the current folder?): "
                            "a .py file there would run in the grader. Run grade from another "
                            "folder, or as python -I -m sim grade ...")
    if args.jobs is not None and args.jobs < 1:
        raise KafkaLabError(f"--jobs {args.jobs}: grade at least one submission at a time.")
    if args.memory_mb < DEFAULT_MEMORY_MB and not memory_suffices(args.memory_mb << 20):
        raise KafkaLabError(f"--memory-mb {args.memory_mb}: a notebook's process cannot import "
                            "the simulator and the libraries the exercises use within it, so "
                            f"submissions would get 0; give more (default {DEFAULT_MEMORY_MB}).")
    _check_grade_outputs(args.out, args.feedback)
    table = grade_directory(args.directory, args.out, timeout_s=args.timeout,
                            feedback_dir=args.feedback, cell_timeout_s=args.cell_timeout,
                            jobs=args.jobs, memory_bytes=args.memory_mb << 20)
    totals = table.groupby("student")[["points", "max_points"]].sum()
    print(totals.to_string())
    print(f"wrote {args.out}")
    return 0


def _check_grade_outputs(out: Path, feedback: Path | None) -> None:
    """Make the folders of ``--out`` and ``--feedback`` now, so that a path that cannot be
    written is refused before the submissions are graded rather than after."""
    if out.is_dir():
        raise KafkaLabError(f"--out {out} is a folder; give the grade table's file name, e.g. "
                            "grades.csv.")
    for option, folder in (("--out", out.parent), ("--feedback", feedback)):
        if folder is None:
            continue
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise KafkaLabError(f"{option}: cannot make the folder {folder}: "
                                f"{exc.strerror}.") from None


def _lab_root() -> Path:
    """The repository holding the lessons: the current folder, or the one ``sim`` came from."""
    for root in (Path.cwd(), Path(__file__).resolve().parents[1]):
        if (root / TOUR).is_file() and (root / "exercises").is_dir():
            return root
    raise KafkaLabError(f"lab needs a copy of the repository: run it in the folder that holds "
                        f"{TOUR} and exercises/ (the lab was installed without them).")


def lab_command(root: Path, extra: list[str], as_root: bool | None = None) -> list[str]:
    """The ``jupyter lab`` command rooted at ``root`` with the tour open.

    JupyterLab refuses to start as root unless told ``--allow-root`` (common in containers).
    """
    if as_root is None:
        as_root = hasattr(os, "geteuid") and os.geteuid() == 0
    command = [sys.executable, "-m", "jupyter", "lab", f"--ServerApp.root_dir={root}",
               str(root / TOUR)]
    if as_root and "--allow-root" not in extra:
        command.append("--allow-root")
    return command + extra


def _fuzz(args: argparse.Namespace) -> int:
    from sim.fuzz import campaign

    if args.runs < 1:
        raise KafkaLabError(f"--runs must be at least 1 but is {args.runs}.")
    if args.seed < 0:
        raise KafkaLabError(f"--seed must be an integer ≥ 0 but is {args.seed}.")
    if args.minimise_runs < 0:
        raise KafkaLabError(f"--minimise-runs must be ≥ 0 (0: do not minimise) but is "
                            f"{args.minimise_runs}.")
    profile = PROFILES[args.profile]
    if args.records is not None:
        if args.records < 1:
            raise KafkaLabError(f"--records must be at least 1 but is {args.records}.")
        if profile.architecture:
            raise KafkaLabError("--records does not apply to profile architectures: its runs "
                                "send lesson 09's hour of payments.")
        profile = profile.scaled(args.records)
    out = args.out if args.minimise_runs > 0 else None
    result = campaign(profile, args.runs, args.seed, out, args.minimise_runs, report=print)
    causes = ", ".join(f"{k} {n}" for k, n in sorted(result.causes.items())) or "none"
    print(f"{result.runs} schedules of profile {profile.name} (seed {args.seed}) in "
          f"{result.wall_s:.1f} s: {result.per_second:.2f} schedules/s; "
          f"{len(result.findings)} failing ({causes}); {result.losses} lost records seen")
    return 1 if result.findings else 0


def _sweep(args: argparse.Namespace) -> int:
    from sim.sweep import summary, sweep

    grid = _grid_arguments(args.grid) if args.grid else None
    if args.out is not None:
        _check_out(args.out)
    if args.seeds is not None and args.seeds < 1:
        raise KafkaLabError(f"--seeds must be at least 1 but is {args.seeds}.")
    jobs = args.jobs if args.jobs is not None else max(1, os.cpu_count() or 1)
    frame = sweep(args.scenario, grid=grid, schedules=args.schedules, profile=args.profile,
                  seeds=args.seeds, records=args.records, jobs=jobs, client=args.dask,
                  progress=not args.no_progress)
    timing = frame.attrs["timing"]
    print(summary(frame).to_string(index=False))
    if args.out is not None:
        table = frame.copy()
        table.attrs = {}  # parquet would keep attrs: no wall-clock figures in the file
        if args.out.suffix == ".parquet":
            table.to_parquet(args.out, index=False)
        else:
            table.to_csv(args.out, index=False)
        print(f"wrote {args.out}")
    print(f"{timing['runs']} runs in {timing['wall_s']:.1f} s ({timing['backend']}, "
          f"{timing['workers']} worker(s), {timing['batches']} batches)", file=sys.stderr)
    return 0


def _grid_arguments(items: list[str]) -> dict[str, list[str]]:
    """``["acks=1,all", "min.insync.replicas=1,2"]`` as ``{"acks": ["1", "all"], …}``."""
    grid: dict[str, list[str]] = {}
    for item in items:
        key, equals, values = item.partition("=")
        listed = [v.strip() for v in values.split(",")]
        if not equals or not key.strip() or not all(listed):
            raise KafkaLabError(f"--grid {item!r}: write KEY=VALUE1,VALUE2 with a Kafka config "
                                "name and its values, e.g. acks=1,all.")
        if key.strip() in grid:
            raise KafkaLabError(f"--grid names {key.strip()} twice; list all its values once, "
                                f"e.g. {key.strip()}=1,2.")
        grid[key.strip()] = listed
    return grid


def _check_out(path: Path) -> None:
    """``--out`` is a .parquet or .csv file in a folder that exists."""
    if path.suffix not in (".csv", ".parquet"):
        raise KafkaLabError(f"--out {path}: use a .parquet or .csv file name.")
    if not path.parent.is_dir():
        raise KafkaLabError(f"--out {path}: the folder {path.parent} does not exist; create it "
                            "or pick another path.")
    if path.is_dir():
        raise KafkaLabError(f"--out {path} is a folder; give a file name ending in .parquet "
                            "or .csv.")


if __name__ == "__main__":
    sys.exit(main())
