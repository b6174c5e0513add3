"""The transactional producer's side of a transaction (the transactional part of Kafka's
``TransactionManager``, KIP-98, with KIP-447's group metadata and KIP-588's abortable epoch
error).

States, as Kafka's ``TransactionManager.State``::

    UNINITIALIZED --init_transactions--> READY --begin_transaction--> IN_TRANSACTION
    IN_TRANSACTION --commit_transaction--> READY      (COMMITTING_TRANSACTION meanwhile)
    IN_TRANSACTION / ABORTABLE_ERROR --abort_transaction--> READY
    any --ProducerFenced, or a misuse of the API--> FATAL_ERROR

- ``init_transactions`` finds the coordinator of the ``transactional.id`` and gets the producer
  id with a new epoch (``InitProducerId``), fencing any older instance with the same id.
- Before the first batch of a partition leaves in a transaction, the producer adds the
  partition with ``AddPartitionsToTxn`` (batches of that partition wait meanwhile).
- ``send_offsets_to_transaction`` sends ``AddOffsetsToTxn`` to the transaction coordinator,
  then ``TxnOffsetCommit`` to the group coordinator with the consumer's group metadata.
- ``commit_transaction`` flushes, then sends ``EndTxn``; ``abort_transaction`` drops the
  batches not sent yet, waits for those in flight, and sends ``EndTxn(abort)``.
- Closing the producer aborts a transaction still open (``close_gen``).

Errors: a leader's INVALID_PRODUCER_EPOCH for a batch is abortable
(``InvalidProducerEpochError``); the coordinator's PRODUCER_FENCED is fatal
(``ProducerFencedError``), so a zombie finds out at its next abort or commit at the latest.
Requests to a coordinator travel with the brokers' network latency and are asked again after
``retry.backoff.ms`` when the coordinator is unavailable, moved, or busy.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

from sim.broker.producer_state import INVALID_PRODUCER_EPOCH
from sim.broker.transaction_coordinator import (
    CONCURRENT_TRANSACTIONS,
    PRODUCER_FENCED,
    RETRIABLE,
    transaction_coordinator,
)
from sim.errors import (
    InvalidProducerEpochError,
    ProducerFencedError,
    TransactionError,
    TransactionStateError,
)
from sim.records import TopicPartition

if TYPE_CHECKING:
    from sim.producer import Producer

UNINITIALIZED = "UNINITIALIZED"
INITIALIZING = "INITIALIZING"
READY = "READY"
IN_TRANSACTION = "IN_TRANSACTION"
COMMITTING = "COMMITTING_TRANSACTION"
ABORTING = "ABORTING_TRANSACTION"
ABORTABLE_ERROR = "ABORTABLE_ERROR"
FATAL_ERROR = "FATAL_ERROR"

ADD_PARTITIONS_RETRY_BACKOFF_MS = 20
"""``TransactionManager.ADD_PARTITIONS_RETRY_BACKOFF_MS``."""
GROUP_RETRIABLE = frozenset({"NOT_COORDINATOR", "COORDINATOR_NOT_AVAILABLE"})


class TransactionalState:
    """One transactional producer's transaction (see the module docstring)."""

    def __init__(self, producer: Producer) -> None:
        self.producer = producer
        self.transactional_id: str = producer.config["transactional.id"]
        self.coordinator = transaction_coordinator(producer.kernel)
        self.state = UNINITIALIZED
        self.producer_id = -1
        self.producer_epoch = -1
        self.partitions: set[tuple[str, int]] = set()  # added to the transaction
        self._to_add: dict[tuple[str, int], None] = {}  # waiting for AddPartitionsToTxn
        self._adding = False
        self.error: TransactionError | None = None
        self.transactions = 0  # committed
        self.committed_upto = 0  # records sent before the end of the last committed transaction
        self.aborts = 0

    def __repr__(self) -> str:
        return (f"TransactionalState({self.transactional_id!r}, {self.state}, "
                f"pid={self.producer_id}, epoch={self.producer_epoch})")

    # -- state checks ---------------------------------------------------------------------------

    @property
    def in_error(self) -> bool:
        return self.state in (ABORTABLE_ERROR, FATAL_ERROR)

    def _raise_error_state(self, method: str) -> None:
        if self.state == FATAL_ERROR and self.error is not None:
            raise self.error
        if self.state == ABORTABLE_ERROR and self.error is not None:
            raise type(self.error)(f"Cannot call {method}: the transaction of "
                                   f"{self.transactional_id!r} hit an abortable error "
                                   f"({self.error}); call abort_transaction() first.")

    def _transition(self, target: str, allowed: tuple[str, ...], method: str) -> None:
        self._raise_error_state(method)
        if self.state not in allowed:
            raise TransactionStateError(
                f"TransactionalId {self.transactional_id}: Invalid transition attempted from "
                f"state {self.state} to state {target} ({method})")
        self.state = target

    def check_send(self) -> None:
        """``send()`` is allowed only inside a transaction (``maybeAddPartition``)."""
        self._raise_error_state("send()")
        if self.state != IN_TRANSACTION:
            raise TransactionStateError(
                f"Cannot call send in state {self.state}: a transactional producer sends "
                "between begin_transaction() and commit_transaction() / abort_transaction()"
                + (" (call init_transactions() first)" if self.state == UNINITIALIZED else ""))

    def fail(self, error: TransactionError) -> None:
        """Enter an error state (fatal errors win over abortable ones)."""
        if self.state == FATAL_ERROR:
            return
        self.error = error
        self.state = ABORTABLE_ERROR if error.abortable else FATAL_ERROR
        if self.state == FATAL_ERROR:  # Sender.maybeAbortBatches: a fatal error fails what
            self.producer.abort_incomplete_batches()  # waits, as nothing will send it now
        self.producer.notify_progress()

    # -- the sender's hooks -------------------------------------------------------------------

    def maybe_add_partition(self, tp: tuple[str, int]) -> None:
        """Ask the coordinator to add ``tp`` to the transaction unless it is in it or asked
        for already (``TransactionManager.maybeAddPartition``; the lab asks when the sender
        first finds the partition's records, Kafka when ``send()`` appends them)."""
        if tp in self.partitions or tp in self._to_add:
            return
        if self.state in (IN_TRANSACTION, COMMITTING):
            self._to_add[tp] = None
            if not self._adding:
                self._adding = True
                self.producer.kernel.env.process(self._add_partitions())

    def is_send_to_partition_allowed(self, tp: tuple[str, int]) -> bool:
        """Whether a batch of ``tp`` may be sent: the coordinator added the partition to the
        transaction (``TransactionManager.isSendToPartitionAllowed``)."""
        return tp in self.partitions

    def batch_failed(self, error: str) -> None:
        """A batch of the transaction failed: the transaction can only be aborted."""
        if error == "INVALID_PRODUCER_EPOCH":
            self.fail(InvalidProducerEpochError(
                f"Producer attempted to produce with an old epoch ({self.producer_epoch}) for "
                f"transactional.id {self.transactional_id!r}: a newer instance or the "
                "coordinator bumped it. Abort the transaction."))
        else:
            self.fail(TransactionError(f"A batch of the transaction of "
                                       f"{self.transactional_id!r} failed ({error}); abort it."))

    def _add_partitions(self) -> Generator[Any, Any, None]:
        from sim.consumer.client import Stopped

        while self._to_add and self.state in (IN_TRANSACTION, COMMITTING):
            batch = list(self._to_add)
            wanted = [TopicPartition(t, p) for t, p in batch]
            try:
                error = yield from self._call(
                    lambda wanted=wanted: self.coordinator.add_partitions(
                        self.transactional_id, self.producer_id, self.producer_epoch, wanted),
                    first_add=not self.partitions)
            except Stopped:
                break  # the process died: it asks for nothing more
            if error:
                self._coordinator_error(error, "AddPartitionsToTxn")
                break
            for tp in batch:
                self._to_add.pop(tp, None)
                self.partitions.add(tp)
            self.producer.wakeup()
        self._adding = False

    def _coordinator_error(self, error: str, request: str) -> None:
        if error == PRODUCER_FENCED:
            self.fail(ProducerFencedError(
                f"There is a newer producer with the same transactional.id "
                f"{self.transactional_id!r} which fences the current one (epoch "
                f"{self.producer_epoch}, {request}); close this producer."))
        else:
            self.fail(TransactionError(f"{request} for {self.transactional_id!r} failed: "
                                       f"{error}."))

    # -- requests -------------------------------------------------------------------------------

    def _call(self, handler: Callable[[], Any], group_id: str | None = None,
              first_add: bool = False) -> Generator[Any, Any, Any]:
        """Send a request to the transaction (or ``group_id``'s group) coordinator; ask again
        while the answer is a retriable error, after ``retry.backoff.ms`` — or 20 ms for the
        first AddPartitionsToTxn of a transaction that finds the previous one still completing
        (``ADD_PARTITIONS_RETRY_BACKOFF_MS``, KAFKA-5482). Returns the answer."""
        producer = self.producer
        env = producer.kernel.env
        cluster = producer.cluster
        backoff = producer.config["retry.backoff.ms"] or 1
        retriable = GROUP_RETRIABLE if group_id is not None else RETRIABLE
        while True:
            self._check_crashed()
            if group_id is not None:
                node = cluster.group_coordinator.node_seen_by(group_id, producer.client_id)
            else:
                node = self.coordinator.node_for(self.transactional_id)
            if not self._reachable(node):
                yield env.timeout(backoff)
                continue
            latency = cluster.brokers[node].latency_ms
            yield env.timeout(latency)
            if not self._reachable(node):
                yield env.timeout(backoff)
                continue
            self._check_crashed()
            answer = handler()
            if not answer.processed:
                yield answer
            answer = answer.value
            yield env.timeout(latency)
            error = answer[0] if isinstance(answer, tuple) else answer
            if error in retriable:
                yield env.timeout(ADD_PARTITIONS_RETRY_BACKOFF_MS
                                  if first_add and error == CONCURRENT_TRANSACTIONS else backoff)
                continue
            return answer

    def _check_crashed(self) -> None:
        """A crashed process sends no more requests: its transaction stays open until the
        next ``init_transactions`` with its id or ``transaction.timeout.ms`` aborts it."""
        if self.producer.crashed:
            from sim.consumer.client import Stopped

            raise Stopped()

    def _reachable(self, node: int) -> bool:
        cluster = self.producer.cluster
        return (node >= 0 and cluster.brokers[node].alive
                and cluster.network.connected(self.producer.client_id, node))

    # -- the API as generators --------------------------------------------------------------------

    def init_gen(self) -> Generator[Any, Any, None]:
        """``initTransactions``: producer id and a new epoch (fencing older instances)."""
        self._transition(INITIALIZING, (UNINITIALIZED,), "init_transactions()")
        timeout = self.producer.config["transaction.timeout.ms"]
        error, pid, epoch = yield from self._call(
            lambda: self.coordinator.init_producer_id(self.transactional_id, timeout))
        if error:
            self.state = FATAL_ERROR
            self.error = TransactionError(
                f"init_transactions() for {self.transactional_id!r} failed: {error}"
                + (f" (transaction.timeout.ms={timeout} is above the broker's "
                   "transaction.max.timeout.ms)" if error == "INVALID_TRANSACTION_TIMEOUT"
                   else ""))
            raise self.error
        self._new_epoch(pid, epoch)
        self.state = READY

    def _new_epoch(self, pid: int, epoch: int) -> None:
        self.producer_id, self.producer_epoch = pid, epoch
        self.producer.transactions.reset_producer_id_and_epoch(epoch)

    def begin(self) -> None:
        """``beginTransaction``: local only; the coordinator hears of it with the first add."""
        self._transition(IN_TRANSACTION, (READY,), "begin_transaction()")

    def send_offsets_gen(self, offsets: dict[TopicPartition, int],
                         group_metadata: dict[str, Any]) -> Generator[Any, Any, None]:
        """``sendOffsetsToTransaction``: the consumer's offsets commit with the transaction."""
        self._raise_error_state("send_offsets_to_transaction()")
        if self.state != IN_TRANSACTION:
            raise TransactionStateError(f"Cannot send offsets in state {self.state}: call "
                                        "begin_transaction() first.")
        group_id = group_metadata["group.id"]
        groups = self.producer.cluster.group_coordinator
        offsets_partition = groups.partition_for(group_id)
        error = yield from self._call(lambda: self.coordinator.add_offsets(
            self.transactional_id, self.producer_id, self.producer_epoch, group_id,
            offsets_partition))
        if error:
            self._coordinator_error(error, "AddOffsetsToTxn")
            raise self.error  # type: ignore[misc]
        from sim.consumer.config import OFFSETS_TOPIC

        self.partitions.add((OFFSETS_TOPIC, offsets_partition))
        error = yield from self._call(lambda: groups.txn_offset_commit(
            group_id, self.producer_id, self.producer_epoch, group_metadata["member.id"],
            group_metadata["generation.id"], offsets), group_id=group_id)
        if error in (PRODUCER_FENCED, INVALID_PRODUCER_EPOCH):
            # a late TxnOffsetCommit of an epoch the coordinator already bumped (it timed the
            # transaction out): fatal, as TransactionManager.TxnOffsetCommitHandler
            self._coordinator_error(PRODUCER_FENCED, "TxnOffsetCommit")
            raise self.error  # type: ignore[misc]
        if error:
            from sim.consumer.errors import CommitFailedError

            self.fail(TransactionError(
                f"TxnOffsetCommit for group {group_id!r} failed ({error}): the consumer is no "
                "longer in that group generation (CommitFailedException); abort the "
                "transaction."))
            self.error.__cause__ = CommitFailedError(error)  # type: ignore[union-attr]
            raise self.error  # type: ignore[misc]

    def commit_gen(self) -> Generator[Any, Any, None]:
        """``commitTransaction``: flush, then EndTxn(commit)."""
        self._raise_error_state("commit_transaction()")
        self._transition(COMMITTING, (IN_TRANSACTION,), "commit_transaction()")
        yield from self.producer.flush_gen()
        if self.state != COMMITTING:  # a batch failed meanwhile
            self._raise_error_state("commit_transaction()")
        yield from self._end(commit=True)
        self.transactions += 1
        self.committed_upto = self.producer.buffer.n

    def abort_gen(self) -> Generator[Any, Any, None]:
        """``abortTransaction``: drop unsent batches, wait for those in flight, EndTxn(abort)."""
        if self.state == FATAL_ERROR:
            raise self.error  # type: ignore[misc]
        if self.state not in (IN_TRANSACTION, ABORTABLE_ERROR):
            raise TransactionStateError(
                f"TransactionalId {self.transactional_id}: Invalid transition attempted from "
                f"state {self.state} to state {ABORTING} (abort_transaction())")
        self.state = ABORTING
        self.producer.abort_incomplete_batches()
        yield from self.producer.flush_gen()
        yield from self._end(commit=False)
        self.aborts += 1
        if self.producer.transactions.epoch_bump_required:
            # KIP-360: sequences can no longer be trusted; a new epoch starts them at 0
            error, pid, epoch = yield from self._call(lambda: self.coordinator.init_producer_id(
                self.transactional_id, self.producer.config["transaction.timeout.ms"]))
            if error:
                self._coordinator_error(error, "InitProducerId")
                raise self.error  # type: ignore[misc]
            self._new_epoch(pid, epoch)

    def close_gen(self) -> Generator[Any, Any, None]:
        """The transaction's part of ``KafkaProducer.close()``, once the records left are sent:
        the Sender aborts a transaction still ongoing before it stops (``Sender.run``,
        ``TransactionManager.hasOngoingTransaction``), so a closed producer leaves none open
        until ``transaction.timeout.ms``. After a fatal error (fenced) nothing is ongoing, and
        an abort that fails ends the close (the Sender's force close)."""
        if self.state not in (IN_TRANSACTION, ABORTABLE_ERROR):
            return  # nothing ongoing (a commit or abort under way ends the transaction itself)
        try:
            yield from self.abort_gen()
        except TransactionError:
            return

    def _end(self, commit: bool) -> Generator[Any, Any, None]:
        if self.partitions:  # nothing added: the coordinator never heard of this transaction
            error = yield from self._call(lambda: self.coordinator.end_txn(
                self.transactional_id, self.producer_id, self.producer_epoch, commit))
            if error:
                self._coordinator_error(error, "EndTxn")
                raise self.error  # type: ignore[misc]
        self.partitions.clear()
        self._to_add.clear()
        self.state = READY
        self.error = None
