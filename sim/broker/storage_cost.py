"""What keeping a log costs: broker disks versus object storage, in money per month.

Tiered storage exists because a byte on a broker's disk costs several times a byte in object
storage, and the broker keeps it once per replica, while the object store replicates for you.
This module turns sizes into money with a small price list.

**The prices are lab assumptions**, rounded from public list prices of large cloud providers
around 2024 (block storage such as gp3 volumes, object storage such as S3 Standard, one region),
not a quote: change ``StoragePrices`` to your own. Network transfer, compute and provisioned
headroom on the disks are left out.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

DAY_MS = 86_400_000

GB = 1e9
"""Cloud storage is billed per decimal gigabyte."""


@dataclass(frozen=True)
class StoragePrices:
    """Prices in US dollars (lab assumptions; see the module docstring)."""

    disk_per_gb_month: float = 0.08
    """A broker's block storage, per GB-month of provisioned bytes."""
    object_per_gb_month: float = 0.023
    """Object storage, per GB-month (replicated by the provider)."""
    put_per_1000: float = 0.005
    """Object storage, per thousand writes (one per copied segment object)."""
    get_per_1000: float = 0.0004
    """Object storage, per thousand reads (one per remote fetch)."""


LAB_PRICES = StoragePrices()


def monthly_cost(local_bytes: float, replication_factor: int, remote_bytes: float = 0.0,
                 puts_per_month: float = 0.0, gets_per_month: float = 0.0,
                 prices: StoragePrices = LAB_PRICES) -> dict[str, float]:
    """Cost of one month at these sizes: ``local_bytes`` of log per replica, kept on each of
    ``replication_factor`` brokers, and ``remote_bytes`` kept once in object storage."""
    disk = local_bytes * replication_factor / GB * prices.disk_per_gb_month
    remote = remote_bytes / GB * prices.object_per_gb_month
    requests = (puts_per_month * prices.put_per_1000 + gets_per_month * prices.get_per_1000) / 1000
    return {"disk_usd": disk, "object_storage_usd": remote, "requests_usd": requests,
            "total_usd": disk + remote + requests}


def retention_plan(ingest_bytes_per_day: float, retention_days: float, replication_factor: int,
                   local_retention_days: float | None = None, segment_bytes: float = 1 << 30,
                   reads_per_month: float = 0.0,
                   prices: StoragePrices = LAB_PRICES) -> dict[str, Any]:
    """The steady-state monthly cost of keeping ``retention_days`` of a partition's log.

    Without ``local_retention_days`` everything stays on the brokers; with it (tiered storage)
    the brokers keep that many days and object storage keeps the whole retention (Kafka copies
    every closed segment, so the remote tier also holds the recent days). One PUT per segment
    copied; ``reads_per_month`` remote fetches.
    """
    if local_retention_days is not None and not 0 <= local_retention_days <= retention_days:
        raise ValueError(f"local_retention_days ({local_retention_days}) must be between 0 and "
                         f"retention_days ({retention_days}), as local.retention.ms ≤ "
                         "retention.ms in Kafka.")
    if local_retention_days is None:
        cost = monthly_cost(ingest_bytes_per_day * retention_days, replication_factor,
                            prices=prices)
    else:
        puts = ingest_bytes_per_day * 30 / segment_bytes
        cost = monthly_cost(ingest_bytes_per_day * local_retention_days, replication_factor,
                            ingest_bytes_per_day * retention_days, puts, reads_per_month, prices)
    return {"retention_days": retention_days, "local_retention_days": local_retention_days,
            **cost}


def topic_plan_cost(ingest_bytes_per_day: float, retention_ms: int, local_retention_ms: int,
                    replication_factor: int) -> float:
    """A tiered topic's monthly cost in dollars for its ``retention.ms`` and
    ``local.retention.ms`` (-2: the same as ``retention.ms``; -1 keeps forever: infinite)."""
    if retention_ms == -1:
        return math.inf
    local = retention_ms if local_retention_ms == -2 else local_retention_ms
    if local == -1:
        return math.inf
    return retention_plan(ingest_bytes_per_day, retention_ms / DAY_MS, replication_factor,
                          local / DAY_MS)["total_usd"]


def cluster_cost(cluster: Any, prices: StoragePrices = LAB_PRICES) -> pd.DataFrame:
    """One row per topic: what its logs as they are now would cost for a month.

    Local bytes are the leaders' logs times the replication factor; remote bytes the copied
    segments; requests the copies and remote reads done so far (as if repeated each month).
    """
    manager = cluster.remote_log_manager
    rows = []
    for name in sorted(cluster.topics):
        if name.startswith("__"):
            continue
        topic = cluster.topics[name]
        local = sum(p.log.size_bytes for p in topic.partitions)
        remote = puts = gets = 0
        if manager is not None:
            for part in topic.partitions:
                state = manager.states.get((name, part.partition))
                if state is not None:
                    remote += sum(s.size_bytes for s in state.segments())
                    puts += state.copy_requests
                    gets += state.fetch_requests
        rows.append({"topic": name, "local_bytes": local,
                     "replication_factor": topic.replication_factor, "remote_bytes": remote,
                     **monthly_cost(local, topic.replication_factor, remote, puts, gets, prices)})
    return pd.DataFrame(rows, columns=["topic", "local_bytes", "replication_factor",
                                       "remote_bytes", "disk_usd", "object_storage_usd",
                                       "requests_usd", "total_usd"])


def price_list(prices: StoragePrices = LAB_PRICES) -> pd.DataFrame:
    """The prices in force, labelled as the lab's assumptions."""
    return pd.DataFrame([{"price": k, "usd": v, "source": "lab assumption"}
                         for k, v in asdict(prices).items()])
