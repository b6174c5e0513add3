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


class MissingSourceTopicError(StreamsError):
    """A Streams application reads a topic the cluster does not have (Kafka Streams'
    ``MissingSourceTopicException``): source topics must exist before the application starts."""
