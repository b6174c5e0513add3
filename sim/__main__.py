"""Command line: ``python -m sim list | run | exercises | grade`` — the lab without a browser.

- ``list``: the built-in scenarios, one per line with its description.
- ``run NAME|FILE.yaml [--seed N] [--trace FILE.csv|.parquet] [--json]``: run a scenario headless
  and print its summary (``--json``: one JSON object, with the delivery audit under ``audit``);
  the same name and seed always print the same bytes.
- ``exercises build|check``: generate ``exercises/`` from ``solutions/``, or fail if they drifted.
- ``grade DIR --out grades.csv``: grade a folder of submitted exercise notebooks.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path

from sim import report, scenarios
from sim.errors import KafkaLabError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim", description="Kafka Lab simulator.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="list the built-in scenarios")
    run = commands.add_parser("run", help="run a scenario and print its summary")
    run.add_argument("scenario", help="a built-in name (see list) or a .yaml file")
    run.add_argument("--seed", type=int, default=None, help="override the scenario's seed")
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
    grade.add_argument("--memory-mb", type=int, default=2048,
                       help="address space allowed to each process of a submission "
                            "(default 2048)")
    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            return _list()
        if args.command == "exercises":
            return _exercises(args.action, args.solutions, args.exercises)
        if args.command == "grade":
            return _grade(args)
        return _run(args.scenario, args.seed, args.trace, args.json)
    except KafkaLabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _list() -> int:
    for name in scenarios.builtin_names():
        scenario = scenarios.load(name)
        print(name)
        print(textwrap.indent(textwrap.fill(scenario.description, 92), "    "))
    return 0


def _run(name: str, seed: int | None, trace_path: Path | None, as_json: bool = False) -> int:
    scenario = scenarios.load(name)
    kernel = scenario.run(seed)
    if as_json:
        summary = report.summary_json(kernel, scenario.name, scenario.description)
        print(json.dumps(summary, allow_nan=False, default=str))
    else:
        print(report.summary(kernel, scenario.name, scenario.description), end="")
    if trace_path is not None:
        frame = kernel.trace.to_frame()
        if trace_path.suffix == ".parquet":
            frame.to_parquet(trace_path, index=False)
        elif trace_path.suffix == ".csv":
            frame.to_csv(trace_path, index=False)
        else:
            raise KafkaLabError(f"--trace {trace_path}: use a .csv or .parquet file name.")
    return 0


def _exercises(action: str, solutions: Path, exercises: Path) -> int:
    from sim.grading.notebooks import build_exercises, check_exercises

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
    from sim.grading.batch import grade_directory

    if not args.directory.is_dir():
        raise KafkaLabError(f"{args.directory} is not a folder of submitted notebooks.")
    folder = args.directory.resolve()
    if any(Path(entry or ".").resolve() == folder for entry in sys.path):
        raise KafkaLabError(f"{args.directory} is on Python's import path (the current folder?): "
                            "a .py file there would run in the grader. Run grade from another "
                            "folder, or as python -I -m sim grade ...")
    if args.jobs is not None and args.jobs < 1:
        raise KafkaLabError(f"--jobs {args.jobs}: grade at least one submission at a time.")
    table = grade_directory(args.directory, args.out, timeout_s=args.timeout,
                            feedback_dir=args.feedback, cell_timeout_s=args.cell_timeout,
                            jobs=args.jobs, memory_bytes=args.memory_mb << 20)
    totals = table.groupby("student")[["points", "max_points"]].sum()
    print(totals.to_string())
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
