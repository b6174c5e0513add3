"""Specification of workloads: send times at a rate, key distributions, value sizes, bad inputs,
and the memory guard that refuses a workload the machine cannot hold.

Statistical checks draw large seeded samples and allow five standard errors, so they are both
deterministic and meaningful: a wrong distribution misses by far more than the tolerance.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from sim import workloads
from sim.errors import ConfigError
from sim.workloads import KeyList, NoKeys, UniformKeys, Workload, ZipfKeys, vip_customers

SAMPLE = 200_000


def rng(seed: int = 1) -> np.random.Generator:
    return np.random.default_rng(seed)


def assert_frequencies(key_ids: np.ndarray, expected: np.ndarray) -> None:
    """Empirical frequencies within five standard errors of ``expected``."""
    n = len(key_ids)
    observed = np.bincount(key_ids, minlength=len(expected)) / n
    tolerance = 5 * np.sqrt(expected * (1 - expected) / n) + 1e-12
    assert np.all(np.abs(observed - expected) <= tolerance), (observed, expected)


# --- Send times ----------------------------------------------------------------------------------


def test_uniform_arrivals_are_evenly_spaced_at_the_rate() -> None:
    """Uniform arrivals: record i is sent at start + i × 1000 / rate ms."""
    load = Workload.generate(rng(), "t", records=1000, rate_per_s=400, start_ms=10.0)
    np.testing.assert_allclose(load.time_ms, 10.0 + np.arange(1000) * 2.5)
    assert load.time_ms.dtype == np.float64
    assert len(load) == 1000


def test_poisson_arrivals_have_the_mean_gap_of_the_rate() -> None:
    """Poisson arrivals: exponential gaps with mean 1000 / rate ms (so std ≈ mean)."""
    load = Workload.generate(rng(), "t", records=SAMPLE, rate_per_s=2000, arrivals="poisson",
                             start_ms=100.0)
    gaps = np.diff(np.concatenate([[100.0], load.time_ms]))
    assert np.all(gaps > 0)
    standard_error = 0.5 / np.sqrt(SAMPLE)
    assert abs(gaps.mean() - 0.5) <= 5 * standard_error
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, abs=0.02)  # exponential: CV = 1


def test_poisson_arrivals_differ_from_uniform_spacing() -> None:
    """Poisson gaps vary; they are not the uniform schedule."""
    load = Workload.generate(rng(), "t", records=100, rate_per_s=100, arrivals="poisson")
    assert np.diff(load.time_ms).std() > 1.0


def test_same_generator_state_gives_the_same_workload() -> None:
    """Generation depends only on the random stream it is given."""
    first = Workload.generate(rng(5), "t", 500, 100, keys=ZipfKeys(50), value_bytes=(10, 90),
                              arrivals="poisson")
    second = Workload.generate(rng(5), "t", 500, 100, keys=ZipfKeys(50), value_bytes=(10, 90),
                               arrivals="poisson")
    for name in ("time_ms", "key_ids", "value_bytes"):
        np.testing.assert_array_equal(getattr(first, name), getattr(second, name))


def test_zero_records_is_an_empty_workload() -> None:
    """A workload of zero records is valid and empty."""
    load = Workload.generate(rng(), "t", records=0, rate_per_s=10, keys=UniformKeys(3))
    assert len(load) == 0
    assert len(load.key_ids) == 0


# --- Keys ----------------------------------------------------------------------------------------


def test_no_keys_means_key_id_minus_one() -> None:
    """Key-less records have key id -1 and the workload's key table is empty."""
    load = Workload.generate(rng(), "t", 100, 100, keys=NoKeys())
    assert load.keys == []
    assert np.all(load.key_ids == -1)
    assert load.key_ids.dtype == np.int32


def test_uniform_keys_are_equally_likely() -> None:
    """UniformKeys(k): keys key-0 … key-{k-1}, each with frequency 1/k."""
    spec = UniformKeys(8)
    assert spec.keys() == [f"key-{i}" for i in range(8)]
    load = Workload.generate(rng(), "t", SAMPLE, 1000, keys=spec)
    assert load.keys == spec.keys()
    assert_frequencies(load.key_ids, np.full(8, 1 / 8))


@pytest.mark.parametrize("s", [0.0, 0.8, 1.1, 2.0])
def test_zipf_probabilities_are_proportional_to_inverse_rank_power(s: float) -> None:
    """ZipfKeys(k, s): key i has probability (1/(i+1)^s) / Σ_j 1/(j+1)^s, seen in a sample."""
    count = 20
    expected = np.array([1 / (i + 1) ** s for i in range(count)])
    expected /= expected.sum()
    spec = ZipfKeys(count, s)
    np.testing.assert_allclose(spec.probabilities(), expected)
    load = Workload.generate(rng(), "t", SAMPLE, 1000, keys=spec)
    assert_frequencies(load.key_ids, expected)


def test_zipf_hottest_key_is_key_0() -> None:
    """With s > 0, key-0 is the most frequent key."""
    load = Workload.generate(rng(), "t", 20_000, 1000, keys=ZipfKeys(100, 1.2))
    assert np.bincount(load.key_ids).argmax() == 0
    assert load.keys[0] == "key-0"


def test_key_list_weights_are_relative() -> None:
    """KeyList(keys, weights): key i with probability weight_i / Σ weights."""
    spec = KeyList(["a", "b", "c"], [1, 3, 6])
    np.testing.assert_allclose(spec.probabilities(), [0.1, 0.3, 0.6])
    load = Workload.generate(rng(), "t", SAMPLE, 1000, keys=spec)
    assert load.keys == ["a", "b", "c"]
    assert_frequencies(load.key_ids, np.array([0.1, 0.3, 0.6]))


def test_key_list_without_weights_is_uniform() -> None:
    """KeyList without weights gives every key the same probability."""
    np.testing.assert_allclose(KeyList(["x", "y", "z", "w"]).probabilities(), [0.25] * 4)


def test_key_list_zero_weight_key_never_appears() -> None:
    """A key of weight 0 is never drawn."""
    load = Workload.generate(rng(), "t", 10_000, 1000, keys=KeyList(["a", "b"], [0, 1]))
    assert np.all(load.key_ids == 1)


def test_vip_customers_send_their_share() -> None:
    """vip_customers: vip-0… and customer-0… keys; VIPs carry vip_share of the traffic."""
    spec = vip_customers(vip=5, ordinary=45, vip_share=0.7)
    keys = spec.keys()
    assert keys[:5] == [f"vip-{i}" for i in range(5)]
    assert keys[5:] == [f"customer-{i}" for i in range(45)]
    probabilities = spec.probabilities()
    assert probabilities[:5].sum() == pytest.approx(0.7)
    np.testing.assert_allclose(probabilities[:5], 0.7 / 5)
    np.testing.assert_allclose(probabilities[5:], 0.3 / 45)
    load = Workload.generate(rng(), "t", SAMPLE, 1000, keys=spec)
    vip = np.mean(load.key_ids < 5)
    assert abs(vip - 0.7) <= 5 * np.sqrt(0.7 * 0.3 / SAMPLE)


def test_vip_customers_defaults() -> None:
    """By default 20 VIPs send 80% and 200 ordinary customers the rest."""
    spec = vip_customers()
    assert len(spec.keys()) == 220
    assert spec.probabilities()[:20].sum() == pytest.approx(0.8)


# --- Value sizes ---------------------------------------------------------------------------------


def test_fixed_value_size() -> None:
    """An int value_bytes gives every record that size."""
    load = Workload.generate(rng(), "t", 50, 100, value_bytes=321)
    assert np.all(load.value_bytes == 321)
    assert load.value_bytes.dtype == np.int32


def test_value_size_range_is_inclusive() -> None:
    """(low, high) gives sizes uniform in [low, high], both ends included."""
    load = Workload.generate(rng(), "t", 20_000, 100, value_bytes=(10, 13))
    assert set(np.unique(load.value_bytes)) == {10, 11, 12, 13}


# --- Bad inputs ----------------------------------------------------------------------------------

BAD_SPECS: list[tuple[Any, tuple[Any, ...], str]] = [
    (UniformKeys, (0,), "count ≥ 1"),
    (ZipfKeys, (0,), "count ≥ 1"),
    (ZipfKeys, (10, -0.5), "s ≥ 0"),
    (KeyList, ([],), "at least one key"),
    (KeyList, (["a", "b"], [1]), "one non-negative number per key"),
    (KeyList, (["a", "b"], [-1, 2]), "non-negative"),
    (KeyList, (["a", "b"], [0, 0]), "not all zero"),
]


@pytest.mark.parametrize(("factory", "args", "phrase"), BAD_SPECS,
                         ids=[f"{f.__name__}{a}" for f, a, _ in BAD_SPECS])
def test_bad_key_specs_raise_config_error(factory: Any, args: tuple[Any, ...], phrase: str) -> None:
    """An impossible key distribution is rejected with what is allowed."""
    with pytest.raises(ConfigError, match=phrase):
        factory(*args)


def test_vip_share_above_one_is_rejected() -> None:
    """A VIP share over 1 would give ordinary customers negative weight."""
    with pytest.raises(ConfigError, match="vip_share"):
        vip_customers(vip_share=1.5)


BAD_WORKLOADS: list[tuple[dict[str, Any], str]] = [
    ({"records": -1}, "records ≥ 0"),
    ({"rate_per_s": 0}, "rate_per_s > 0"),
    ({"rate_per_s": -5}, "rate_per_s > 0"),
    ({"arrivals": "bursty"}, "'uniform' or 'poisson'"),
    ({"value_bytes": -1}, "must not be negative"),
    ({"value_bytes": (-5, 5)}, "must not be negative"),
]


@pytest.mark.parametrize(("override", "phrase"), BAD_WORKLOADS,
                         ids=[str(o) for o, _ in BAD_WORKLOADS])
def test_bad_workloads_raise_config_error(override: dict[str, Any], phrase: str) -> None:
    """Impossible record counts, rates, arrival kinds or sizes are rejected, saying why."""
    args: dict[str, Any] = {"topic": "t", "records": 100, "rate_per_s": 10, **override}
    with pytest.raises(ConfigError, match=phrase):
        Workload.generate(rng(), **args)


@pytest.mark.parametrize("counts", [{"vip": 0}, {"ordinary": 0}])
def test_vip_customers_without_customers_is_a_config_error(counts: dict[str, int]) -> None:
    """No VIPs (or no ordinary customers) cannot carry a share of the traffic: ConfigError."""
    with pytest.raises(ConfigError):
        vip_customers(**counts)


# --- Memory --------------------------------------------------------------------------------------


def test_small_runs_never_probe_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Up to 512 MiB nothing is read (a graded notebook's sandbox forbids /proc/meminfo)."""
    def probe() -> int:
        raise AssertionError("probed")

    monkeypatch.setattr(workloads, "available_memory_bytes", probe)
    workloads.check_run_fits_in_memory(600_000)  # 458 MiB
    with pytest.raises(AssertionError, match="probed"):
        workloads.check_run_fits_in_memory(700_000)  # 534 MiB


def test_generating_a_workload_beyond_free_memory_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workload.generate checks before numpy allocates (no _ArrayMemoryError)."""
    monkeypatch.setattr(workloads, "available_memory_bytes", lambda: 2**30)
    with pytest.raises(ConfigError, match=r"100,000,000 records: that needs about 4\.5 GiB"):
        Workload.generate(None, "t", 100_000_000, 1000)  # type: ignore[arg-type]


def test_available_memory_is_read_on_this_machine() -> None:
    """The probe finds a positive amount of free memory where the tests run."""
    available = workloads.available_memory_bytes()
    assert available is not None
    assert available > 0
