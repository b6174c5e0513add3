"""Brokers, topics and partitions: the cluster the clients talk to.

A ``Cluster`` holds brokers and topics. Creating a topic places its replicas with Kafka's
rack-unaware assignment (``AdminUtils.assignReplicasToBrokersRackUnaware``): leaders go
round-robin over the brokers from a random start, and followers are shifted by a random amount
that grows by one every time the partitions wrap around the brokers, so that replicas spread
evenly. Worked example, 3 brokers [0, 1, 2], start index 0, shift 0, RF 2: partition 0 →
[0, 1], partition 1 → [1, 2], partition 2 → [2, 0], partition 3 (shift now 1) → [0, 2].

A broker models how long a produce request takes: network latency and bandwidth to reach it,
then a request handler that works one request at a time. Each client connection is read one
request at a time too (``Channel``). A broker can be made slow; crashes come with replication
(``alive`` is the seam).
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from sim import config
from sim.broker import remote_log_manager
from sim.broker.log import PartitionLog, log_for
from sim.errors import ConfigError, UnknownTopicError
from sim.partitioners import ClusterMetadata

if TYPE_CHECKING:
    from sim.broker.runtime import BrokerRuntime

LEGAL_TOPIC = re.compile(r"^[a-zA-Z0-9._-]+$")
MAX_TOPIC_LENGTH = 249  # Kafka's Topic.MAX_NAME_LENGTH


class Broker:
    """One broker: its network link and its request handler.

    Times are in simulated milliseconds. ``next_free_ms`` is when the request handler can start
    the next request, which makes requests queue up behind each other on a busy or slow broker.
    """

    def __init__(self, broker_id: int, configs: dict[str, Any] | None = None) -> None:
        self.broker_id = broker_id
        self.config = config.BROKER.parse(configs)
        self.alive = True
        self.incarnation = 0  # bumped at every restart: a new process, with its own timers
        self.disk_lost = False
        self.leads: dict[tuple[str, int], int] = {}  # partitions it believes it leads → epoch
        self.link_free_ms = 0.0
        self.next_free_ms = 0.0
        self.busy_ms = 0.0

    def __repr__(self) -> str:
        slow = self.config["lab.slowdown"]
        return f"Broker({self.broker_id}{', slow ×' + format(slow, 'g') if slow > 1 else ''})"

    @property
    def latency_ms(self) -> float:
        return float(self.config["lab.network.latency.ms"])

    @property
    def slowdown(self) -> float:
        return float(self.config["lab.slowdown"])

    def set_slowdown(self, factor: float) -> None:
        """Make request handling ``factor`` times slower (1 = normal)."""
        self.config["lab.slowdown"] = config.BROKER["lab.slowdown"].parse(factor, "broker")

    def arrival_ms(self, sent_ms: float, size_bytes: int) -> float:
        """When a request sent at ``sent_ms`` has fully arrived (link transfers one at a time)."""
        bytes_per_ms = self.config["lab.network.bandwidth.mbps"] * 1e6 / 8 / 1000
        start = max(sent_ms, self.link_free_ms)
        self.link_free_ms = start + size_bytes / bytes_per_ms
        return self.link_free_ms + self.latency_ms

    def handle(self, arrival_ms: float, size_bytes: int) -> float:
        """Queue a request read off its connection at ``arrival_ms`` (``Channel``); return when
        its handling finishes."""
        bytes_per_ms = self.config["lab.append.mb.per.s"] * 1e6 / 1000
        duration = (self.config["lab.request.time.ms"] + size_bytes / bytes_per_ms) * self.slowdown
        start = max(arrival_ms, self.next_free_ms)
        self.next_free_ms = start + duration
        self.busy_ms += duration
        return self.next_free_ms


class Channel:
    """One client connection as the broker's network thread reads it: one request at a time.

    Kafka's ``SocketServer.Processor`` mutes a connection once it has read a complete request
    (``KafkaChannel.ChannelMuteState.MUTED_AND_RESPONSE_PENDING``) and unmutes it only when that
    request's response has been sent (``processCompletedSends``) or, when there is none
    (acks=0), once the request was handled (``NoOpResponse``). So a producer may have
    ``max.in.flight.requests.per.connection`` requests on their way, but the broker reads the
    next one — its bytes arrived meanwhile — only after answering the one before: with acks=all,
    after that one's ``DelayedProduce`` completed.

    ``waiting`` holds, in order, requests that arrived (or are on their way) while the channel
    was muted; one is read at its arrival or at the previous response, whichever is later, and
    only then joins the request handler's queue (``Broker.handle``). A closed channel (the
    broker crashed, the client or the broker closed the connection) reads nothing more: what
    waited on it is lost.
    """

    def __init__(self) -> None:
        self.response_pending = False  # muted: a request read, its response not sent yet
        self.waiting: deque[Any] = deque()
        self.closed = False

    def __repr__(self) -> str:
        state = "closed" if self.closed else "muted" if self.response_pending else "open"
        return f"Channel({state}, waiting={len(self.waiting)})"

    def receive(self, request: Any) -> bool:
        """A request arrives: True if it is read at once (the channel was not muted, and now
        is), False if it waits for the response before it."""
        if self.response_pending:
            self.waiting.append(request)
            return False
        self.response_pending = True
        return True

    def response_sent(self) -> Any:
        """The response to the request read last was sent: unmute and return the next waiting
        request, now read (the channel is muted again), or None."""
        if self.closed or not self.waiting:
            self.response_pending = False
            return None
        return self.waiting.popleft()

    def close(self) -> None:
        """The connection is gone: waiting requests are never read."""
        self.closed = True
        self.waiting.clear()


class Network:
    """Links between nodes — brokers by id, clients and the controller by name.

    Every link works until a fault cuts it (``cut``) or makes it lose messages (``set_loss``).
    Cuts add up: a link that two overlapping faults cut stays cut until both are healed. Loss
    draws come from the kernel's random stream, so runs stay reproducible.

    A client is a node by its id, which the lab numbers when the ``client.id`` is taken
    already (``producer-3``). Where Kafka gives several clients one ``client.id`` on purpose,
    as Kafka Connect does to a restarted task's clients and to every worker's clients of its
    internal topics, ``name_client`` makes faults that name that ``client.id`` reach each of
    them (a task's producer cut off stays cut off when the task restarts).
    """

    CONTROLLER = "controller"

    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng
        self._cut: dict[frozenset[Any], int] = {}  # a cut link -> how many cuts hold it
        self._loss: dict[frozenset[Any], float] = {}
        self._names: dict[Any, Any] = {}  # a numbered client id -> the client.id faults name
        self.version = 0  # bumped on every cut, heal or loss change

    def __repr__(self) -> str:
        cut = sorted(tuple(sorted(map(str, link))) for link in self._cut)
        return f"Network(cut={cut}, lossy={len(self._loss)})"

    def name_client(self, client_id: Any, name: Any) -> None:
        """Let faults that name the node ``name`` (a ``client.id``) reach the client whose lab
        id is ``client_id`` too (the class docstring says when)."""
        if client_id != name:
            self._names[client_id] = name

    def _named(self, a: Any, b: Any) -> frozenset[Any]:
        """The link between ``a`` and ``b`` by the names faults give them."""
        return frozenset((self._names.get(a, a), self._names.get(b, b)))

    def connected(self, a: Any, b: Any) -> bool:
        if not self._cut or a == b:
            return True
        return frozenset((a, b)) not in self._cut and (
            not self._names or self._named(a, b) not in self._cut)

    def deliver(self, a: Any, b: Any) -> bool:
        """Whether one message from ``a`` reaches ``b`` now (cut links and losses drop it)."""
        if not self._cut and not self._loss:  # a healthy network, the usual case
            return True
        if not self.connected(a, b):
            return False
        if not self._loss:  # cut links only: this one is not
            return True
        loss = self._loss.get(frozenset((a, b)))
        if loss is None:
            loss = self._loss.get(self._named(a, b), 0.0) if self._names else 0.0
        return loss <= 0.0 or float(self._rng.random()) >= loss

    def cut(self, a: Any, b: Any) -> None:
        link = frozenset((a, b))
        self._cut[link] = self._cut.get(link, 0) + 1
        self.version += 1

    def heal(self, a: Any, b: Any) -> None:
        """Mend one cut of the link (it works again once every cut of it is healed)."""
        link = frozenset((a, b))
        if self._cut.get(link, 0) > 1:
            self._cut[link] -= 1
        else:
            self._cut.pop(link, None)
        self._loss.pop(frozenset((a, b)), None)
        self.version += 1

    def set_loss(self, a: Any, b: Any, probability: float) -> None:
        if not 0.0 <= probability <= 1.0:
            raise ConfigError(f"Link loss must be a probability between 0 and 1 but got "
                              f"{probability}.")
        self._loss[frozenset((a, b))] = probability
        self.version += 1


@dataclass
class FollowerState:
    """What a leader knows about one follower (Kafka's ``Replica`` on the leader side)."""

    log_end_offset: int = 0
    last_caught_up_ms: float = 0.0
    last_fetch_leader_leo: int = 0
    last_fetch_ms: float = 0.0
    broker_epoch: int = -1  # the incarnation of the follower's last fetch (-1: none yet)


@dataclass
class Partition:
    """One partition: replicas (first = preferred leader), leader, epoch, ISR and replica logs.

    ``logs`` holds every replica's copy; ``log`` is the current leader's. ``leader`` is -1 while
    the partition is offline (no replica the controller may elect). ``leader`` and ``isr`` are
    what the replicas act on: while the leader cannot hear the controller, the controller's own
    record may differ (``Controller.registration``).
    """

    topic: str
    partition: int
    replicas: list[int]
    logs: dict[int, PartitionLog]
    config: dict[str, Any] = field(default_factory=dict)
    leader: int = -1
    leader_epoch: int = 0
    isr: list[int] = field(default_factory=list)
    followers: dict[int, FollowerState] = field(default_factory=dict)
    last_leader: int = -1

    def __post_init__(self) -> None:
        if self.leader < 0:
            self.leader = self.replicas[0]
        self.last_leader = self.leader
        if not self.isr:
            self.isr = list(self.replicas)
        self.followers = {b: FollowerState() for b in self.replicas if b != self.leader}

    def __repr__(self) -> str:
        return (f"Partition({self.topic}-{self.partition}, leader={self.leader}, "
                f"epoch={self.leader_epoch}, isr={self.isr}, leo={self.log.log_end_offset}, "
                f"hw={self.log.high_watermark})")

    @property
    def log(self) -> PartitionLog:
        """The leader's log (the last leader's while the partition is offline)."""
        leader = self.leader
        return self.logs[leader if leader >= 0 else self.last_leader]

    @property
    def min_insync_replicas(self) -> int:
        """The ISR size acks=all appends and the high watermark need: ``min.insync.replicas``,
        but never more than the replicas there are (``Partition.effectiveMinIsr``,
        KAFKA-15583), so a topic set above its replication factor still takes writes."""
        return min(int(self.config.get("min.insync.replicas", 1)), len(self.replicas))


@dataclass
class Topic:
    """A topic: its name, its partitions and its topic-level configs."""

    name: str
    partitions: list[Partition]
    config: dict[str, Any]

    @property
    def replication_factor(self) -> int:
        return len(self.partitions[0].replicas)


def validate_topic_name(name: str) -> None:
    """Apply Kafka's topic naming rules (``org.apache.kafka.common.internals.Topic.validate``)."""
    if not isinstance(name, str) or not name:
        raise ConfigError(f"Topic name must be a non-empty string but got {name!r}.")
    if name in (".", ".."):
        raise ConfigError(f"Topic name cannot be {name!r}.")
    if len(name) > MAX_TOPIC_LENGTH:
        raise ConfigError(f"Topic name {name[:20]!r}… is {len(name)} characters; "
                          f"the limit is {MAX_TOPIC_LENGTH}.")
    if not LEGAL_TOPIC.fullmatch(name):
        raise ConfigError(f"Topic name {name!r} is illegal: use only ASCII letters, digits, "
                          "'.', '_' and '-'.")


def assign_replicas(
    n_partitions: int, replication_factor: int, broker_ids: list[int], rng: np.random.Generator
) -> list[list[int]]:
    """Kafka's rack-unaware replica assignment (see the module docstring for an example)."""
    n = len(broker_ids)
    start_index = int(rng.integers(n))
    shift = int(rng.integers(n))
    assignment = []
    for p in range(n_partitions):
        if p > 0 and p % n == 0:
            shift += 1
        first = (p + start_index) % n
        followers = [broker_ids[(first + 1 + (shift + j) % (n - 1)) % n]
                     for j in range(replication_factor - 1)]
        assignment.append([broker_ids[first], *followers])
    return assignment


class Cluster:
    """Brokers and topics; hands out metadata to clients."""

    def __init__(
        self,
        n_brokers: int = 3,
        rng: np.random.Generator | None = None,
        broker_configs: dict[str, Any] | None = None,
    ) -> None:
        if not isinstance(n_brokers, int) or n_brokers < 1:
            raise ConfigError(f"A cluster needs at least 1 broker but got {n_brokers!r}.")
        self.brokers = {b: Broker(b, broker_configs) for b in range(n_brokers)}
        self.topics: dict[str, Topic] = {}
        self._rng = rng if rng is not None else np.random.default_rng(0)
        self.runtime: BrokerRuntime | None = None  # set by the kernel that runs this cluster
        self.metadata_version = 0  # bumped whenever leaders, topics or liveness change
        self._metadata: ClusterMetadata | None = None
        self.network = Network(self._rng.spawn(1)[0])
        self._change_waiters: list[Any] = []
        # the newest leader epoch each client has seen per partition (the client's
        # ``Metadata.lastSeenLeaderEpochs``): older claims are ignored
        self._epochs_seen: dict[tuple[Any, str, int], int] = {}
        self.metadata_listeners: list[Callable[[], None]] = []  # told at once of each change
        self.remote_tier: remote_log_manager.RemoteTier | None = None  # KIP-405

    @property
    def remote_log_manager(self) -> remote_log_manager.RemoteTier | None:
        """The remote tier shared by the brokers' ``RemoteLogManager`` s (``remote_tier``;
        this name is kept for callers that read metrics or the folder through it)."""
        return self.remote_tier

    def __repr__(self) -> str:
        return f"Cluster(brokers={list(self.brokers)}, topics={list(self.topics)})"

    def create_topic(
        self,
        name: str,
        partitions: int = 1,
        replication_factor: int = 1,
        configs: dict[str, Any] | None = None,
        replica_assignment: list[list[int]] | None = None,
    ) -> Topic:
        """Create a topic, placing replicas as Kafka does (or as ``replica_assignment`` says).

        ``replica_assignment`` is ``kafka-topics.sh --replica-assignment``: one list of broker
        ids per partition, the first being the preferred leader.

        Raises:
            ConfigError: for an illegal or existing name, an impossible replication factor or
                an assignment naming unknown brokers.
        """
        if replica_assignment is not None:
            replica_assignment = self._check_assignment(name, replica_assignment)
            partitions, replication_factor = len(replica_assignment), len(replica_assignment[0])
        validate_topic_name(name)
        if name in self.topics:
            raise ConfigError(f"Topic {name!r} already exists.")
        if isinstance(partitions, bool) or not isinstance(partitions, int) or partitions < 1:
            raise ConfigError(f"Topic {name!r}: partitions must be at least 1 but got "
                              f"{partitions!r}.")
        if not isinstance(replication_factor, int) or not 1 <= replication_factor <= len(
            self.brokers
        ):
            raise ConfigError(
                f"Topic {name!r}: replication factor {replication_factor!r} must be between 1 "
                f"and the number of brokers ({len(self.brokers)})."
            )
        topic_config = config.TOPIC.parse(configs)
        if topic_config["remote.storage.enable"]:
            remote_log_manager.check_system_enabled(self, name)
        placement = replica_assignment or assign_replicas(partitions, replication_factor,
                                                          list(self.brokers), self._rng)
        parts = [
            Partition(name, p, replicas,
                      {b: log_for(topic_config) for b in replicas},
                      topic_config)
            for p, replicas in enumerate(placement)
        ]
        for part in parts:
            self.brokers[part.leader].leads[(name, part.partition)] = part.leader_epoch
        topic = Topic(name, parts, topic_config)
        self.topics[name] = topic
        if topic_config["remote.storage.enable"]:
            remote_log_manager.attach(self, topic)
        self.metadata_changed()
        return topic

    def _check_assignment(self, name: str, assignment: Any) -> list[list[int]]:
        rows = [list(r) for r in assignment] if isinstance(assignment, list | tuple) else []
        sizes = {len(r) for r in rows}
        valid = rows and len(sizes) == 1 and all(
            len(set(r)) == len(r) and all(b in self.brokers for b in r) for r in rows)
        if not valid:
            raise ConfigError(
                f"Topic {name!r}: replica_assignment must list, for each partition, the same "
                f"number of distinct broker ids from {sorted(self.brokers)}, e.g. [[0, 1, 2]]; "
                f"got {assignment!r}.")
        return rows

    def metadata_changed(self) -> None:
        """Tell clients to refresh what they cached (Kafka clients refetch metadata)."""
        self.metadata_version += 1
        self._metadata = None
        for listener in self.metadata_listeners:
            listener()
        waiters, self._change_waiters = self._change_waiters, []
        for waiter in waiters:
            if not waiter.triggered:
                waiter.succeed()

    def next_change(self) -> Any:
        """A SimPy event that fires at the next metadata, liveness or network change."""
        assert self.runtime is not None, "a cluster needs a kernel to wait for changes"
        waiter = self.runtime.env.event()
        self._change_waiters.append(waiter)
        return waiter

    def topic(self, name: str) -> Topic:
        """The topic called ``name``, or a clear error listing the topics that exist."""
        try:
            return self.topics[name]
        except KeyError:
            known = ", ".join(sorted(self.topics)) or "none yet"
            raise UnknownTopicError(
                f"Unknown topic {name!r}; the cluster has: {known}. Create it first with "
                "cluster.create_topic(name, partitions=...)."
            ) from None

    def partition(self, topic: str, partition: int) -> Partition:
        """One partition of a topic (asked for every batch a broker handles, so the topic is
        looked up directly; ``topic`` explains an unknown one)."""
        topics = self.topics
        return (topics[topic] if topic in topics else self.topic(topic)).partitions[partition]

    def leader(self, topic: str, partition: int) -> Broker:
        return self.brokers[self.partition(topic, partition).leader]

    def believed_leader(self, part: Partition) -> int:
        """The live broker acting as ``part``'s leader: the one that believes it leads with the
        newest leader epoch (``Broker.leads``), -1 if none does.

        Usually the partition's leader. While the controller is cut off from that broker and
        has elected another, the deposed leader still acts as one (a *zombie*) until it hears
        otherwise. (Cut off from every broker, the controller cannot replace it: the partition
        keeps its leader, offline only in the controller's record.)
        """
        key = (part.topic, part.partition)
        claims = [(epoch, broker_id) for broker_id, broker in self.brokers.items()
                  if broker.alive and (epoch := broker.leads.get(key)) is not None]
        return max(claims)[1] if claims else -1

    def leader_seen_by(self, client: Any, part: Partition) -> int:
        """The broker a client takes for ``part``'s leader (metadata, FindCoordinator).

        Normally the real leader. A client that cannot reach it learns its metadata from the
        brokers it can reach — and a broker cut off from the controller still claims the
        partitions it led (a zombie leader), so the client goes there, unless the claim's
        leader epoch is older than one the client has already seen: Kafka's client ignores
        such metadata (``Metadata.updateLatestMetadata``) and waits for the real leader. With
        no claim it reaches, the client takes the leader the reachable brokers heard from the
        controller (``_leader_in_metadata``): none, for a partition the controller took offline.
        """
        network = self.network
        seen_key = (client, part.topic, part.partition)
        seen = self._epochs_seen.get(seen_key, -1)
        if (part.leader >= 0 and network.connected(client, part.leader)
                and part.leader_epoch >= seen):
            if part.leader_epoch > seen:
                self._epochs_seen[seen_key] = part.leader_epoch
            return part.leader
        key = (part.topic, part.partition)
        claims = [(epoch, broker_id) for broker_id, broker in self.brokers.items()
                  if broker.alive and network.connected(client, broker_id)
                  and (epoch := broker.leads.get(key)) is not None and epoch >= seen]
        if not claims:
            return self._leader_in_metadata(client, part, seen)
        epoch, broker_id = max(claims)
        self._epochs_seen[seen_key] = epoch
        return broker_id

    def _leader_in_metadata(self, client: Any, part: Partition, seen: int) -> int:
        """The leader of ``part`` in the metadata ``client`` gets from the brokers it reaches,
        none of which claims to lead it: each answers with the leader and epoch it heard from
        the controller (``Controller.leader_known_by``; -1 for an offline partition), and the
        newest epoch not older than one the client has seen wins. A client that reaches no
        broker keeps what it knew."""
        if self.runtime is None:
            return part.leader
        known_by = self.runtime.controller.leader_known_by
        network = self.network
        heard = [(epoch, leader) for broker_id, broker in self.brokers.items()
                 if broker.alive and network.connected(client, broker_id)
                 for leader, epoch in [known_by(broker_id, part)] if epoch >= seen]
        if not heard:
            return part.leader
        epoch, leader = max(heard)
        self._epochs_seen[(client, part.topic, part.partition)] = epoch
        return leader

    def epoch_seen_by(self, client: Any, topic: str, partition: int) -> int:
        """The newest leader epoch of a partition that ``leader_seen_by`` gave ``client``
        (-1: none yet)."""
        return self._epochs_seen.get((client, topic, partition), -1)

    def metadata(self) -> ClusterMetadata:
        """What clients know: partition counts and which partitions have no live leader."""
        if self._metadata is None:
            self._metadata = self._build_metadata()
        return self._metadata

    def _build_metadata(self) -> ClusterMetadata:
        unavailable = frozenset(
            (t.name, p.partition)
            for t in self.topics.values()
            for p in t.partitions
            if p.leader < 0 or not self.brokers[p.leader].alive
        )
        return ClusterMetadata({t.name: len(t.partitions) for t in self.topics.values()},
                               unavailable)
