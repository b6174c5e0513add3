"""Architectures side by side on one workload: batch collection, lambda, kappa and the
streaming data lake (the seed curriculum's fourth section).

One run (:func:`simulate`) sends the same payments to a simulated cluster and attaches all four
architectures; :func:`comparison` turns it into one DataFrame and :func:`comparison_figure`
draws it. Modules, one concept each:

- ``workload``: the payments, the revenue rules ``v1``/``v2`` and the pandas logic;
- ``revenue_app``: the same logic as a Kafka Streams application;
- ``tiers``: reading a topic as it grows, and across the brokers and the remote tier;
- ``batch``, ``lambda_``, ``kappa``, ``data_lake``: the four architectures;
- ``run``: one run with all of them; ``comparison``: the table; ``figure``: the figure.
"""

from sim.architectures.batch import BatchCollection
from sim.architectures.comparison import comparison, freshness, hour_history
from sim.architectures.data_lake import StreamingDataLake, query_revenue
from sim.architectures.figure import comparison_figure
from sim.architectures.kappa import KappaArchitecture
from sim.architectures.lambda_ import LambdaArchitecture
from sim.architectures.revenue_app import revenue_topology
from sim.architectures.run import VARIANTS, ArchitectureRun, run_payments, simulate
from sim.architectures.tiers import TopicFollower, read_topic
from sim.architectures.workload import Workload, counts_as_revenue, payments, revenue, truth

__all__ = [
    "VARIANTS",
    "ArchitectureRun",
    "BatchCollection",
    "KappaArchitecture",
    "LambdaArchitecture",
    "StreamingDataLake",
    "TopicFollower",
    "Workload",
    "comparison",
    "comparison_figure",
    "counts_as_revenue",
    "freshness",
    "hour_history",
    "payments",
    "query_revenue",
    "read_topic",
    "revenue",
    "revenue_topology",
    "run_payments",
    "simulate",
    "truth",
]
