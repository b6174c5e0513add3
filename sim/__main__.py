"""Command line: ``python -m sim list | run | exercises | grade`` — the lab without a browser.

- ``list``: the built-in scenarios, one per line with its description.
- ``run NAME|FILE.yaml [--seed N] [--trace FILE.csv|.parquet]``: run a scenario headless and print
  its summary; the same name and seed always print the same bytes.
- ``exercises build|check``: generate ``exercises/`` from ``solutions/``, or fail if they drifted.
- ``grade DIR --out grades.csv``: grade a folder of submitted exercise notebooks.
"""

from __future__ import annotations

import argparse
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
    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            return _list()
        return _run(args.scenario, args.seed, args.trace)
    except KafkaLabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _list() -> int:
    for name in scenarios.builtin_names():
        scenario = scenarios.load(name)
        print(name)
        print(textwrap.indent(textwrap.fill(scenario.description, 92), "    "))
    return 0


def _run(name: str, seed: int | None, trace_path: Path | None) -> int:
    scenario = scenarios.load(name)
    kernel = scenario.run(seed)
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


if __name__ == "__main__":
    sys.exit(main())
