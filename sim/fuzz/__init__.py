"""The fault-schedule fuzzer: random schedules, a checker for each run, and a minimiser.

``generate(profile, seed, index)`` draws a schedule as an ordinary scenario dict (write it with
``to_yaml`` and replay it with ``python -m sim run FILE.yaml``); ``check_scenario`` runs one under
guards and returns a ``Verdict``; ``minimise`` drops, shortens and moves faults while the same
failure still occurs; ``campaign`` does all three for many schedules (``python -m sim fuzz``).
"""

from __future__ import annotations

from sim.fuzz.campaign import Campaign, Finding, campaign
from sim.fuzz.checker import Guard, Verdict, Violation, check_scenario, kafka_also_loses
from sim.fuzz.generator import FAULT_KINDS, PROFILES, Profile, generate, to_yaml
from sim.fuzz.minimiser import fault_units, minimise

__all__ = ["FAULT_KINDS", "PROFILES", "Campaign", "Finding", "Guard", "Profile", "Verdict",
           "Violation", "campaign", "check_scenario", "fault_units", "generate",
           "kafka_also_loses", "minimise", "to_yaml"]
