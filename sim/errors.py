"""The lab's error hierarchy.

Every error names the thing that is wrong, the rule it broke, the value it got and what to do
instead, like Kafka's ``ConfigException`` ("Invalid value -5 for configuration linger.ms: ...").
"""

from __future__ import annotations


class KafkaLabError(Exception):
    """Base class of every error the simulator raises on purpose."""


class ConfigError(KafkaLabError, ValueError):
    """A config name is unknown or its value is not allowed (Kafka's ``ConfigException``)."""


class UnknownTopicError(KafkaLabError, KeyError):
    """A topic that the cluster does not have (Kafka's ``UnknownTopicOrPartitionException``)."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class PartitionerError(KafkaLabError):
    """A partitioner returned an invalid partition or raised while choosing one."""


class ScenarioError(KafkaLabError):
    """A scenario file or scenario name is invalid."""


class SimulationError(KafkaLabError):
    """The simulation cannot go on (for example, it was asked to run backwards in time)."""


class GradingError(KafkaLabError):
    """An exercise, a solution notebook or a check is malformed (not a learner's mistake)."""


class ProduceError(KafkaLabError):
    """A record could not be delivered (retries ran out or delivery.timeout.ms expired)."""


class TopologyError(KafkaLabError):
    """A topology is built wrongly (Kafka Streams' ``TopologyException``): an unknown parent, a
    duplicate name, a store connected to a source or sink, a sink used as a parent, bad windows."""


class StreamsError(KafkaLabError):
    """A running topology failed (Kafka Streams' ``StreamsException``): a processor forwarded to a
    node that is not its child, or asked for a store it is not connected to."""


class InvalidStateStoreError(StreamsError):
    """A store cannot be queried now (Kafka Streams' ``InvalidStateStoreException``): its task
    is restoring, or has migrated; try again later or on another instance."""


class MissingSourceTopicError(StreamsError):
    """A Streams application reads a topic the cluster does not have (Kafka Streams'
    ``MissingSourceTopicException``): source topics must exist before the application starts."""


class TransactionError(KafkaLabError):
    """A transactional producer call failed. ``abortable`` says what the application does next:
    True — abort the transaction and go on (Kafka's abortable errors); False — the producer is
    unusable and must be closed (fatal errors such as ``ProducerFencedException``)."""

    abortable = True


class ProducerFencedError(TransactionError):
    """A newer instance with the same ``transactional.id`` (or the coordinator, after
    ``transaction.timeout.ms``) bumped the producer epoch: this instance is a zombie
    (Kafka's ``ProducerFencedException``, fatal)."""

    abortable = False


class InvalidProducerEpochError(TransactionError):
    """A partition leader refused a batch from an older producer epoch (Kafka's
    ``InvalidProducerEpochException``, abortable: the abort then finds out whether the
    producer was fenced)."""


class TransactionStateError(TransactionError):
    """A transactional method called in the wrong state, e.g. ``send()`` before
    ``begin_transaction()`` (Kafka's ``IllegalStateException``)."""

    abortable = False
