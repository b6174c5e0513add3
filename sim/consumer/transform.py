"""A consume-transform-produce application: read records, write one output record for each.

``ConsumeTransformProduce(output_topic, transactional=True)`` is an ``on_records`` for
``Consumer.run``. Each consumer that runs it gets its own producer (``<client.id>-producer``),
created when the consumer's application starts, before its first poll, as a Kafka application
creates its clients before its poll loop (``startup_gen``). A transactional one calls
``init_transactions()`` right then, once (as Kafka's ``ExactlyOnceMessageProcessor`` example
does, before it subscribes): that fences any older instance with the same ``transactional.id``
and aborts its open transaction at once, instead of when the first records arrive.
A crashed consumer's producer dies with it (the same process: a request it was retrying,
such as AddPartitionsToTxn, is never sent). A restarted consumer gets a new producer (a new
process). A consumer that closes closes its producer first (``shutdown_gen``,
``KafkaProducer.close``).
For every poll it sends one output record per input record, processes the records (the
output is in flight meanwhile), then:

- **transactional** (exactly once, KIP-98/KIP-447): the sends happen inside
  ``begin_transaction()``; then ``send_offsets_to_transaction(positions,
  consumer.group_metadata())`` and ``commit_transaction()``. The producer's
  ``transactional.id`` is the consumer's client id.
  A crash leaves the transaction open until ``transaction.timeout.ms``, when the coordinator
  aborts it, or until the restarted consumer's ``init_transactions()``: the next owner of the
  input starts at the last committed offsets, and ``read_committed`` readers of the output
  never see the aborted copies. An abortable error aborts and reads the records again; a
  fenced producer (a zombie) closes its consumer.
- **at least once**: send the output records, flush, then ``commit_sync()``. A crash between
  the flush and the commit writes the output again when the input is read again.

A ``close()`` asked for while the loop works on a poll's records takes effect after them: their
transaction commits (or their offsets are committed), as in a Kafka loop that checks a
"closed" flag before each poll.

The output record keeps the input's key and value (the lab's transformation is the identity);
``sources`` maps each output record id to the input record id it came from, so an audit can
tell a duplicate output from two inputs with equal payloads.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from sim.consumer.fetcher import ConsumerRecords
from sim.errors import TransactionError
from sim.payloads import payload
from sim.records import TopicPartition

FENCED = "fenced"


class ConsumeTransformProduce:
    """``on_records`` of a consume-transform-produce loop (see the module docstring)."""

    def __init__(self, output_topic: str, transactional: bool = True,
                 producer_config: dict[str, Any] | None = None) -> None:
        self.output_topic = output_topic
        self.transactional = transactional
        self.producer_config = dict(producer_config or {})
        self.producers: dict[str, Any] = {}  # consumer client id → its current producer
        self.writers: dict[int, str] = {}  # producer id → consumer client id, every instance
        self._incarnations: dict[str, int] = {}
        self.sources: dict[int, int] = {}  # output record id → input record id
        self.outcomes: list[dict[str, Any]] = []  # one row per transaction / batch

    def __repr__(self) -> str:
        mode = "exactly once (transactions)" if self.transactional else "at least once"
        return f"ConsumeTransformProduce(→ {self.output_topic}, {mode})"

    def producer_for(self, consumer: Any) -> Any:
        """The producer of the consumer's current process, created the first time it is
        needed (by ``startup_gen``)."""
        from sim.producer import Producer

        producer = self.producers.get(consumer.client_id)
        if producer is None or self._incarnations[consumer.client_id] != consumer.incarnation:
            # a restarted consumer is a new process with a new producer
            config = {"client.id": f"{consumer.client_id}-producer", "linger.ms": 0,
                      **self.producer_config}
            if self.transactional:
                config.setdefault("transactional.id", consumer.client_id)
            producer = Producer(consumer.kernel, config)
            self.producers[consumer.client_id] = producer
            self._incarnations[consumer.client_id] = consumer.incarnation
            self.writers[producer.producer_id] = consumer.client_id
        return producer

    def startup_gen(self, consumer: Any) -> Generator[Any, Any, None]:
        """The process starts, before its first poll: create the producer and, with
        transactions, ``init_transactions()`` once. Its InitProducerId bumps the epoch of the
        ``transactional.id``, fencing an older instance, and the coordinator aborts that
        instance's open transaction now (``KafkaProducer.initTransactions``). A fatal error
        closes the consumer, as a fenced producer does."""
        producer = self.producer_for(consumer)
        if producer.txn is None:
            return
        incarnation = consumer.incarnation
        try:
            yield from producer.txn.init_gen()
        except TransactionError as error:
            self._fenced(consumer, None, error)
            return
        consumer.check(incarnation)

    def shutdown_gen(self, consumer: Any) -> Generator[Any, Any, None]:
        """The consumer is closing: close its producer first (``KafkaProducer.close``): send
        what is left, then abort a transaction still ongoing (``TransactionalState.close_gen``),
        so that no offsets of it stay pending for the partitions' next owner (Kafka Streams'
        ``StreamThread`` also closes its producer before its main consumer)."""
        producer = self.producers.get(consumer.client_id)
        if (producer is None or producer.closed
                or self._incarnations[consumer.client_id] != consumer.incarnation):
            return
        yield from producer.close_gen()

    def process_crashed(self, consumer: Any) -> None:
        """The consumer's process died, and its producer with it (``Producer.crash``): it
        opens no transaction after the crash, so it leaves no offsets pending that the
        restarted consumer's OffsetFetch (require_stable) would wait for."""
        producer = self.producers.get(consumer.client_id)
        if producer is not None:
            producer.crash()

    def __call__(self, consumer: Any, records: ConsumerRecords) -> None:
        consumer.run_step(lambda: self._begin(consumer, records))  # transform and send …
        consumer.process(records)  # … taking processing time, while the output is in flight
        consumer.run_step(lambda: self._finish(consumer, records))
        if not self.transactional:
            consumer.commit_sync()

    # -- one poll's work, on the simulated clock ---------------------------------------------

    def _send(self, consumer: Any, producer: Any, records: ConsumerRecords) -> None:
        for record in records:
            key, value = payload(consumer.kernel, record.record_id) if record.record_id >= 0 \
                else (None, None)
            future = producer.send(self.output_topic, key=key, value=value)
            self.sources[future.record_id] = record.record_id

    def _begin(self, consumer: Any, records: ConsumerRecords) -> Generator[Any, Any, None]:
        producer = self.producer_for(consumer)
        if producer.txn is not None:
            try:
                producer.begin_transaction()
            except TransactionError as error:
                self._fenced(consumer, records, error)
                return
        self._send(consumer, producer, records)
        yield from ()  # a step of the replay (run_step) is a generator; this one takes no time

    def _finish(self, consumer: Any, records: ConsumerRecords) -> Generator[Any, Any, None]:
        producer = self.producer_for(consumer)
        incarnation = consumer.incarnation
        txn = producer.txn
        if txn is None:
            yield from producer.flush_gen()
            consumer.check(incarnation)
            return
        if txn.state in ("READY", "FATAL_ERROR"):
            return  # _begin found the producer fenced
        try:
            positions = {c.tp: c.last_offset + 1 for c in records.chunks}
            yield from txn.send_offsets_gen(positions, consumer.group_metadata())
            consumer.check(incarnation)
            yield from txn.commit_gen()
            self._outcome(consumer, records, "committed")
        except TransactionError as error:
            if not error.abortable:
                self._fenced(consumer, records, error)
                return
            try:
                yield from txn.abort_gen()
            except TransactionError as fatal:
                self._fenced(consumer, records, fatal)
                return
            self._outcome(consumer, records, "aborted", str(error))
            for chunk in records.chunks:  # read them again, in a new transaction
                if chunk.tp in consumer.subscriptions.owned:
                    consumer.subscriptions.seek(chunk.tp, chunk.first_offset, consumer.now_ms)

    def _fenced(self, consumer: Any, records: ConsumerRecords | None,
                error: Exception) -> None:
        """A zombie: its producer is fenced; it stops (Kafka applications close it). Also any
        other fatal error, e.g. of ``init_transactions()`` at start-up (no ``records``)."""
        self._outcome(consumer, records, FENCED, str(error))
        consumer.closing = True

    def _outcome(self, consumer: Any, records: ConsumerRecords | None, result: str,
                 error: str = "") -> None:
        chunks = records.chunks if records is not None else []
        self.outcomes.append({"consumer": consumer.client_id, "time_ms": consumer.now_ms,
                              "records": len(records) if records is not None else 0,
                              "result": result, "error": error,
                              "partitions": ",".join(str(TopicPartition(c.tp.topic,
                                                                        c.tp.partition))
                                                     for c in chunks)})

