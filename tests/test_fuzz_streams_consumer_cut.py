"""The fuzzer's ``streams-consumer-cut``: a broker cut from a stream thread's consumer or its
restore consumer, named by Kafka's client ids (``ClientUtils.consumerClientId``,
``restoreConsumerClientId``), drawn by ``Profile.streams_consumer_cuts`` from a stream of its
own so that the plain schedules stay as they were."""

from __future__ import annotations

from dataclasses import replace

import pytest

from sim import scenarios
from sim.consumer import events
from sim.consumer.group import group_coordinator
from sim.fuzz import PROFILES, generate, to_yaml
from sim.fuzz.generator import STREAMS_APP
from sim.streams.scenario import client_ids

SEED = 2026
RECORDS = 600
SESSION_TIMEOUT_MS = 10_000  # the streams profile's session.timeout.ms


def _profile(name: str, cuts: int = 0):
    return replace(PROFILES[name].scaled(RECORDS), streams_consumer_cuts=cuts)


def _consumer_cuts(scenario: dict) -> list[tuple[int, int, int, str]]:
    """(start, heal, broker, client) of each cut of a stream thread's consumer."""
    cuts = []
    for entry in scenario["faults"]:
        sides = entry.get("network_partition")
        if sides and str(sides["b"][0]).endswith("consumer"):
            heal = next(e["at_ms"] for e in scenario["faults"]
                        if e.get("heal_network") == sides)
            cuts.append((entry["at_ms"], heal, sides["a"][0], sides["b"][0]))
    return cuts


def test_streams_consumer_cuts_add_cuts_of_thread_consumers_to_the_plain_schedule():
    """With ``streams_consumer_cuts=1`` a streams schedule is the plain one (same faults, same
    run seed) plus one cut and its heal before the horizon; the cut client is a thread consumer
    or restore consumer the scenario's instances create (a restore consumer only where there
    are stores to restore); both are drawn. Other profiles ignore the option."""
    drawn = set()
    for index in range(30):
        plain = generate(_profile("streams"), SEED, index)
        cut = generate(_profile("streams", 1), SEED, index)
        assert cut["seed"] == plain["seed"]
        extra = list(cut["faults"])
        for entry in plain["faults"]:
            extra.remove(entry)
        assert len(extra) == 2, extra
        ((start, heal, broker, client),) = _consumer_cuts({"faults": extra})
        assert 0 <= start < heal <= PROFILES["streams"].horizon_ms
        assert broker in (0, 1, 2)
        assert client in client_ids(scenarios.parse(to_yaml(cut), "cut.yaml").streams)
        stateful = plain["streams"][0]["app"] == "count"
        assert stateful or not client.endswith("restore-consumer")
        drawn.add(client.removeprefix(STREAMS_APP).split("-", 1)[1])
    assert drawn == {f"{n}-StreamThread-1-{kind}" for n in (1, 2)
                     for kind in ("consumer", "restore-consumer")}
    for name in ("safe", "consumers", "transactions"):
        assert generate(_profile(name, 1), SEED, 3) == generate(_profile(name), SEED, 3)


def _coordinator(scenario: dict) -> int:
    """The broker hosting the Streams group once it formed, in a run without faults."""
    kernel = scenarios.from_dict({**scenario, "faults": []}, "probe.yaml").build()
    kernel.run(8_000)
    return group_coordinator(kernel).node_for(STREAMS_APP)


@pytest.mark.slow
def test_a_drawn_cut_of_a_thread_consumer_from_its_group_coordinator_expires_its_session():
    """The first drawn cut of a main consumer from the group's coordinator that outlasts
    session.timeout.ms: run alone, its heartbeats fail, the coordinator removes it for its
    session timeout during the cut and the other instance takes its tasks; without the cut
    nobody is removed (Kafka: the classic group heartbeat timer,
    ``GroupMetadataManager.expireClassicGroupMemberHeartbeat``)."""
    for index in range(60):
        scenario = generate(_profile("streams", 1), SEED, index)
        ((start, heal, broker, client),) = _consumer_cuts(scenario)
        if (client.endswith("-StreamThread-1-consumer")
                and heal - start > SESSION_TIMEOUT_MS + 4_000 and start > 8_000
                and broker == _coordinator(scenario)):
            break
    else:
        raise AssertionError("no long cut of a thread consumer from its coordinator drawn")
    only_cut = [e for e in scenario["faults"] if client in str(e)]
    assert len(only_cut) == 2
    removed = {}
    for name, faults in (("cut", only_cut), ("none", [])):
        kernel = scenarios.from_dict({**scenario, "faults": faults}, f"{name}.yaml").build()
        kernel.run(scenario["duration_ms"])
        frame = kernel.trace.frame(events.GROUP_MEMBER_REMOVED)
        removed[name] = [(t, m) for t, m, r in zip(frame.time_ms, frame.member, frame.reason,
                                                     strict=True) if "session timeout" in r]
        history = group_coordinator(kernel).groups[STREAMS_APP].history
        if name == "cut":
            alone = [h for h in history if start < h["time_ms"] < heal]
            assert alone, history
            assert all(client not in h["clients"].values() for h in alone), history
            assert history[-1]["time_ms"] > heal
            assert client in history[-1]["clients"].values()
    assert removed["none"] == []
    ((at, member),) = removed["cut"]
    assert member.startswith(client)
    assert start < at < heal
