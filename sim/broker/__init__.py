"""The broker side: where Kafka keeps your data and who decides which copy counts.

- ``cluster``: brokers, topics, partitions and their replicas, the network between them;
- ``log``: one replica's log of a partition (records, batches, segments, leader epochs, the log
  start offset) on the column store;
- ``retention``: which old segments brokers delete by ``retention.ms`` / ``retention.bytes``;
- ``log_cleaner``: compaction of ``cleanup.policy=compact`` logs (latest record per key);
- ``list_offsets``: finding offsets by time (``offsets_for_times``) or the first and last ones;
- ``log_metrics``: per-partition segments, log start offset, bytes and dirty ratio;
- ``producer_state``: what each broker remembers of every idempotent producer (KIP-98, KIP-360);
- ``replication``: produce requests, followers fetching, ISR and high watermark;
- ``controller``: broker liveness, fencing and leader elections (KRaft's active controller);
- ``runtime``: the small protocol through which the kernel gives the broker side simulated time.

The kernel builds all of it; nothing here imports the kernel.
"""
