"""The business workload every architecture runs: payments → revenue per merchant per hour.

Vocabulary:

- a **payment** happens at its **event time** (``event_ms``, the record's CreateTime
  timestamp) and reaches the system at its **arrival time** (``arrival_ms``, when the service
  sends it). Most arrive within seconds; a share of them are **late**: a shop's card terminal
  was offline and uploads minutes later, so they arrive **out of order** (after payments with
  later event times).
- **revenue** of a merchant in an hour is the sum, over the payments whose event time falls in
  that hour, of what the **revenue rule** counts for each payment.
- the **logic change**: midway through the run the business changes the rule. Rule ``v1``
  counts every payment; rule ``v2`` no longer counts payments made with a gift **voucher**
  (the voucher was sold, and counted, earlier). The new rule applies to the whole history:
  the right answer after the change is ``v2`` over every payment.

The workload is drawn from a random stream of the kernel (one seed, one workload), and
:func:`revenue` is the one pandas implementation of both rules (what a batch job runs).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim.errors import ConfigError

HOUR_MS = 3_600_000
MINUTE_MS = 60_000

MERCHANTS: tuple[str, ...] = ("bakery", "books", "cafe", "garage")
SERVICES: tuple[str, ...] = ("web-shop", "card-terminals")
"""The two services that take payments (each dumps its own files in batch collection)."""
METHODS: tuple[str, ...] = ("card", "voucher")

RULES = ("v1", "v2")
"""``v1``: every payment is revenue; ``v2``: voucher payments are not."""


def counts_as_revenue(rule: str, method: str, amount_cents: int) -> int:
    """What one payment adds to revenue under ``rule`` (the rule, written once per copy of the
    logic: the Streams applications call this through their own aggregator).

    Raises:
        ConfigError: for a rule other than ``v1`` or ``v2``.
    """
    if rule == "v1":
        return amount_cents
    if rule == "v2":
        return 0 if method == "voucher" else amount_cents
    raise ConfigError(f"revenue rule {rule!r} is unknown; use 'v1' (every payment) or 'v2' "
                      "(vouchers are not revenue).")


def encode_value(method: str, amount_cents: int) -> str:
    """The record value a service sends: ``"card:1250"`` (method, amount in cents)."""
    return f"{method}:{amount_cents}"


def decode_value(value: str | bytes) -> tuple[str, int]:
    """``(method, amount_cents)`` from a record value (bytes when read from Parquet)."""
    text = value.decode("utf-8") if isinstance(value, bytes) else str(value)
    method, _, amount = text.partition(":")
    return method, int(amount)


@dataclass(frozen=True)
class Workload:
    """The shape of the payments: how long, how many, how late, when the rule changes.

    ``hours`` of payments (event times in ``[0, hours)``), on average one every
    ``every_ms``; a ``late_share`` of them arrive ``late_min_ms``–``late_max_ms`` after their
    event time, the others within ``prompt_max_ms``; a ``voucher_share`` is paid by voucher.
    The rule changes from ``v1`` to ``v2`` at ``change_ms``.
    """

    hours: int = 4
    every_ms: int = 5_000
    late_share: float = 0.08
    late_min_ms: int = 5 * MINUTE_MS
    late_max_ms: int = 40 * MINUTE_MS
    prompt_max_ms: int = 3_000
    voucher_share: float = 0.2
    change_ms: int = 165 * MINUTE_MS

    def __post_init__(self) -> None:
        if self.hours < 1:
            raise ConfigError(f"Workload.hours must be at least 1, got {self.hours}")
        if self.every_ms < 1:
            raise ConfigError(f"Workload.every_ms must be at least 1, got {self.every_ms}")
        if not 0 <= self.late_share <= 1 or not 0 <= self.voucher_share <= 1:
            raise ConfigError("Workload.late_share and voucher_share are shares between 0 and 1")
        if not 0 <= self.late_min_ms <= self.late_max_ms:
            raise ConfigError("Workload needs 0 ≤ late_min_ms ≤ late_max_ms")
        if not 0 < self.change_ms < self.duration_ms:
            raise ConfigError(f"Workload.change_ms ({self.change_ms}) must fall inside the run "
                              f"(0, {self.duration_ms})")

    @property
    def duration_ms(self) -> int:
        """Payments arrive in ``[0, duration_ms)``: the hours of event time."""
        return self.hours * HOUR_MS

    def rule_at(self, now_ms: float) -> str:
        """The rule the business wants at ``now_ms``."""
        return "v1" if now_ms < self.change_ms else "v2"


PAYMENT_COLUMNS = ["payment", "merchant", "service", "method", "amount_cents", "event_ms",
                   "arrival_ms", "late"]


def payments(workload: Workload, rng: np.random.Generator) -> pd.DataFrame:
    """The payments of one run, in arrival order (ties by event time, then number).

    Event times are a Poisson process of mean gap ``every_ms``; payments that would arrive
    after the run (late ones near its end) are left out: nobody has seen them yet.
    """
    count = int(workload.duration_ms / workload.every_ms * 1.2) + 10
    gaps = rng.exponential(workload.every_ms, count)
    event_ms = np.floor(np.cumsum(gaps)).astype(np.int64)
    event_ms = event_ms[event_ms < workload.duration_ms]
    n = len(event_ms)
    late = rng.random(n) < workload.late_share
    delay = np.where(late, rng.integers(workload.late_min_ms, workload.late_max_ms + 1, n),
                     rng.integers(100, workload.prompt_max_ms + 1, n))
    merchant = rng.integers(0, len(MERCHANTS), n)
    # late payments come from the card terminals (offline, uploading later)
    service = np.where(late, 1, (rng.random(n) < 0.4).astype(np.int64))
    voucher = rng.random(n) < workload.voucher_share
    amount = rng.integers(2, 120, n) * 50
    frame = pd.DataFrame({
        "payment": np.arange(n),
        "merchant": np.asarray(MERCHANTS)[merchant],
        "service": np.asarray(SERVICES)[service],
        "method": np.where(voucher, "voucher", "card"),
        "amount_cents": amount.astype(np.int64),
        "event_ms": event_ms,
        "arrival_ms": event_ms + delay,
        "late": late,
    })
    frame = frame[frame["arrival_ms"] < workload.duration_ms]
    return frame.sort_values(["arrival_ms", "event_ms", "payment"], kind="stable",
                             ignore_index=True)[PAYMENT_COLUMNS]


def cells(workload: Workload) -> pd.MultiIndex:
    """Every (merchant, hour) the answer has a row for, in a fixed order."""
    return pd.MultiIndex.from_product([list(MERCHANTS), range(workload.hours)],
                                      names=["merchant", "hour"])


def revenue(frame: pd.DataFrame, rule: str, workload: Workload) -> pd.Series:
    """Revenue per (merchant, hour) of the payments in ``frame`` under ``rule``, over every
    cell of the workload (0 where there is none): the batch jobs' logic, in pandas.

    ``frame`` needs ``merchant``, ``method``, ``amount_cents`` and ``event_ms``.
    """
    counted = frame["amount_cents"].where(frame["method"] != "voucher", 0) if rule == "v2" \
        else frame["amount_cents"]
    if rule not in RULES:
        counts_as_revenue(rule, "card", 0)  # raises the rule error
    hours = frame["event_ms"] // HOUR_MS
    sums = counted.groupby([frame["merchant"], hours.rename("hour")]).sum()
    return sums.reindex(cells(workload), fill_value=0).astype(np.int64).rename("revenue")


def truth(frame: pd.DataFrame, workload: Workload, until_ms: float,
          rule: str | None = None) -> pd.Series:
    """The right answer at ``until_ms``: ``rule`` (default: the rule in force then) over every
    payment that has arrived by then."""
    arrived = frame[frame["arrival_ms"] <= until_ms]
    return revenue(arrived, rule or workload.rule_at(until_ms), workload)


