"""Specification of record payloads: record ids lead back to the key and value that were sent,
and key identity is decided by the serialized key, never by its 32-bit hash."""

from __future__ import annotations

import numpy as np

from sim import Kernel, Producer
from sim.murmur2 import murmur2
from sim.payloads import key_identities, payload


def _kernel() -> Kernel:
    kernel = Kernel(seed=3, brokers=1)
    kernel.cluster.create_topic("t", partitions=2)
    return kernel


def test_payload_returns_what_each_producer_sent() -> None:
    kernel = _kernel()
    first, second = Producer(kernel), Producer(kernel)
    first.send("t", key="alice", value="book")
    second.send("t", key=None, value="pen")
    first.send("t", key="bob", value=None)
    kernel.run()
    ids = list(first.results().record_id) + list(second.results().record_id)
    assert [payload(kernel, i) for i in ids] == [
        ("alice", "book"), ("bob", None), (None, "pen")]


def test_key_identity_follows_serialized_keys_across_producers() -> None:
    """Two producers' "alice" are one key; 1 and "1" are different keys only if their bytes
    differ; a null key has no identity (-1), as the log cleaner needs."""
    kernel = _kernel()
    a, b = Producer(kernel), Producer(kernel)
    for key in ["alice", "bob", None, "alice"]:
        a.send("t", key=key, value="v")
    for key in ["bob", "carol", "alice"]:
        b.send("t", key=key, value="v")
    kernel.run()
    ids = np.concatenate([a.results().record_id.to_numpy(), b.results().record_id.to_numpy()])
    got = key_identities(kernel, ids[::-1])[::-1]  # order of the input must not matter
    alice, bob = got[0], got[1]
    assert got.tolist() == [alice, bob, -1, alice, bob, got[5], alice]
    assert len({alice, bob, got[5]}) == 3


def test_keys_with_equal_hash_keep_distinct_identities() -> None:
    """Compaction must never merge two keys whose murmur2 hashes collide: "k8312" and
    "k201076" share a hash (and so a partition and the log's key_hash column) but are two
    keys."""
    assert murmur2(b"k8312") == murmur2(b"k201076")
    kernel = _kernel()
    p = Producer(kernel)
    for key in ["k8312", "k201076", "k8312"]:
        p.send("t", key=key, value="v")
    kernel.run()
    frame = p.results()
    logged = kernel.cluster.partition("t", int(frame.partition[0])).log.column("key_hash")
    assert len(set(logged.tolist())) == 1
    got = key_identities(kernel, frame.record_id.to_numpy()).tolist()
    assert got[0] == got[2] != got[1]
