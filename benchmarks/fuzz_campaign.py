"""Fault-schedule fuzzing campaign: schedules per second and what the campaign found.

Run with ``python benchmarks/fuzz_campaign.py [--runs 1000] [--seed 0] [--profile safe]
[--records 3000] [--controller-cuts 0] [--streams-consumer-cuts 0] [--out fuzz-findings]``.
The default is the reference setup of issue 12: 3 brokers, a topic of 3 partitions with
replication factor 3, 3,000 keyed records at 50/s, every fault undone within 60 s and then
60 s to settle. Prints one line per failing schedule (with the minimised YAML of the first of
each cause), then the campaign's size, its schedules per second, the failures per cause and
the lost records seen.
``--profile all`` runs every profile; ``--controller-cuts N`` adds N faults cutting the
controller off from brokers to each schedule (``Profile.controller_cuts``);
``--streams-consumer-cuts N`` adds N cuts of a stream thread's consumer or restore consumer from
a broker to each schedule of a Streams profile (``Profile.streams_consumer_cuts``).
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from sim.fuzz import PROFILES, campaign


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", default="safe", choices=[*PROFILES, "all"])
    parser.add_argument("--records", type=int, default=None)
    parser.add_argument("--controller-cuts", type=int, default=0)
    parser.add_argument("--streams-consumer-cuts", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("fuzz-findings"))
    args = parser.parse_args()
    names = list(PROFILES) if args.profile == "all" else [args.profile]
    for name in names:
        profile = PROFILES[name]
        if args.records is not None:
            profile = profile.scaled(args.records)
        if args.controller_cuts:
            profile = replace(profile, controller_cuts=args.controller_cuts)
        if args.streams_consumer_cuts:
            profile = replace(profile, streams_consumer_cuts=args.streams_consumer_cuts)
        result = campaign(profile, args.runs, args.seed, args.out, report=print)
        causes = ", ".join(f"{k}: {n}" for k, n in sorted(result.causes.items())) or "none"
        tolerated = ", ".join(f"{k}: {n}" for k, n in sorted(result.tolerated.items()))
        load = "an hour of payments" if profile.architecture else f"{profile.records} records"
        print(f"profile {name}: {result.runs} schedules, {load} each, in "
              f"{result.wall_s:.0f} s = {result.per_second:.2f} schedules/s")
        print(f"  failing schedules: {len(result.findings)} ({causes})")
        print(f"  tolerated: {tolerated or 'none'}; lost records seen {result.losses}, "
              f"without a cause {result.uncaused}")


if __name__ == "__main__":
    main()
