"""The controller (KRaft's active controller): broker liveness, leader elections, leader epochs.

Brokers heartbeat to the controller every ``broker.heartbeat.interval.ms`` (2000 ms); one that
stays silent for ``broker.session.timeout.ms`` (9000 ms) — because it crashed or was cut off from
the controller — is *fenced*: it leaves every ISR it is not the last member of (an ISR is never
empty: a partition whose last in-sync replica is fenced keeps it, and waits for it), and each
partition it led gets a new leader. The rest of the ISR stays as it is (KRaft's
``handleBrokerFenced`` takes only the fenced broker out):

- *clean election*: the first replica, in replica-list order, that is in the ISR and
  *eligible*: registered and not fenced (``ClusterControlManager.isActive``, used by
  ``PartitionChangeBuilder.isValidNewLeader``);
- *unclean election* (``unclean.leader.election.enable=true``): if no ISR member is eligible,
  the first eligible replica at all, whose ISR is then itself alone — whatever it lacks is
  lost, and the others truncate to it;
- otherwise the partition is *offline* (leader -1) until an ISR member is unfenced.

The controller knows only what it has heard: a broker that crashed or was cut off is eligible
until its session times out, and it may be elected meanwhile. For example:

- replicas ``[0, 1]``, leader 0 crashes at t; follower 1 was cut off from the controller (not
  from the others) at t-2 s. 1 is fenced first, at t+7 s, and leaves the ISR; 0 stays the
  leader in the controller's record until it is fenced in turn at t+9 s, and the partition is
  offline with the ISR ``[0]`` (an unclean election has no candidate: 1 is fenced);
- replicas ``[0, 1, 2]``, leader 0 crashes at t and follower 1 at t+1 s: at 0's fencing
  (t+9 s) the controller elects 1, with the ISR ``[1, 2]``; nobody leads until 1 is fenced at
  t+10 s and 2 is elected, with the ISR ``[2]``;
- a new leader that cannot hear the controller does not lead: it answers produce requests
  with NOT_LEADER_OR_FOLLOWER (a crashed one does not answer) until it hears the controller
  again, or is fenced and another replica elected.

The lab counts a session from the moment of the crash or cut (the last heartbeat is taken to
have arrived just before it), so a fault at 5 s fences its broker at 14 s.

Every change of leader bumps the partition's leader epoch, to no leader (offline) included. A
broker that restarts *registers* with the controller, and is unfenced, only when the controller
hears from it: at once if it can reach the controller, otherwise at its first heartbeat after
the link heals. Registering fences its old incarnation if that was not fenced yet (KRaft bumps
the broker epoch). An unfenced broker follows the current leaders (truncating where its log
diverged), rejoins ISRs once caught up, and partitions left without a leader get one as soon as
a broker of their ISR is back in touch.
A *preferred leader election* moves leadership back to each partition's first replica — asked
for, or automatically ``leader.imbalance.check.interval.seconds`` after a restart when more than
``leader.imbalance.per.broker.percentage`` of a broker's preferred partitions are led elsewhere
(``auto.leader.rebalance.enable``).

A broker that is alive but cut off from the controller still believes it leads its partitions
(a *zombie* leader) until it can hear the controller again; ``Broker.leads`` is that belief. It
does not replicate from anyone meanwhile: only when it learns the new leader and epoch does it
become a follower, truncate to where its epochs end in the new leader's log, and fetch.

A follower cut off from the controller likewise knows only the leader and leader epoch of its
last metadata (``leader_known_by``): it fetches from that leader, and copies nothing while that
broker no longer leads in that epoch — its fetches fail with FENCED_LEADER_EPOCH,
NOT_LEADER_OR_FOLLOWER or UNKNOWN_LEADER_EPOCH (``Partition.getLocalLog``), or get no answer
from a crashed one. A leader elected after the cut is not followed until the follower hears the
controller again. A restarted broker knows no leader until it hears the controller (KRaft's
``BrokerServer`` waits for its first metadata catch-up before it starts replicating). One
simplification: a zombie leader would serve such a follower in Kafka (both still agree on the
epoch), which would copy the zombie's records and truncate them once it learns the new leader;
in the lab it copies nothing from a zombie either.

KRaft brokers learn the controller's decisions from the metadata log, which they fetch from the
controller. So a decision that neither its leader nor the partition's new leader can hear does
not change how a partition is replicated: when the controller fences a leader cut off from it
and elects a replica that cannot hear it either (crashed or cut off, but not fenced yet) or
none, or drops a fenced follower from the ISR of a leader cut off from it, it keeps that
decision in its own record (``registration``, Kafka's ``PartitionRegistration``) and the leader
goes on leading with the ISR it holds, its followers fetching from it. With the controller cut
off from every broker, acks=all writes go on while the brokers reach each other. The decision
takes effect when either leader hears the controller (or the old one's process ends).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sim import trace as events
from sim.broker.cluster import FollowerState, Network, Partition
from sim.broker.log import log_for
from sim.broker.replication import NOT_LEADER_OR_FOLLOWER, ReplicaManager

if TYPE_CHECKING:
    from sim.broker.runtime import BrokerRuntime

BROKER_SESSION_TIMEOUT_MS = 9000  # broker.session.timeout.ms (KRaftConfigs)
BROKER_HEARTBEAT_INTERVAL_MS = 2000  # broker.heartbeat.interval.ms (KRaftConfigs)

ELECTION = events.register(events.EventKind(
    "leader.election", ("topic", "partition", "leader", "leader_epoch", "election", "isr"),
    "the controller chose a new leader (clean, unclean, preferred) or took it offline"))
BROKER = events.register(events.EventKind(
    "broker.state", ("node", "state", "detail"),
    "a broker crashed, restarted, was fenced or unfenced"))
LOG_LOST = events.register(events.EventKind(
    "log.lost", ("topic", "partition", "node", "offset", "records"),
    "a broker restarted with an empty disk: its replica's records from offset on are gone"))


@dataclass
class PartitionRegistration:
    """The controller's leader, ISR and leader epoch of a partition whose leader has not heard
    them yet (Kafka's ``PartitionRegistration``, a record of the metadata log)."""

    leader: int
    isr: list[int]
    leader_epoch: int


class Controller:
    """Decides leaders and ISRs for the whole cluster, as KRaft's QuorumController does."""

    def __init__(self, runtime: BrokerRuntime, replicas: ReplicaManager) -> None:
        self.runtime = runtime
        self.cluster = runtime.cluster
        self.replicas = replicas
        self.fenced: set[int] = set()
        # brokers whose current process registered (KRaft: a registration with its incarnation)
        self.registered: set[int] = set(self.cluster.brokers)
        # each broker's registration as the metadata log holds it: the incarnation of the process
        # that registered last (KRaft's broker epoch), kept after a crash until it registers again
        self.broker_epochs: dict[int, int] = {b: broker.incarnation
                                              for b, broker in self.cluster.brokers.items()}
        self._last_contact_ms: dict[int, float] = dict.fromkeys(self.cluster.brokers, 0.0)
        self._imbalance_check_pending = False
        # decisions the partition's leader has not heard (see the module docstring)
        self.unheard: dict[tuple[str, int], PartitionRegistration] = {}
        # per broker that cannot hear the controller: each partition's leader and leader epoch
        # in the last metadata it heard (its metadata image; empty after a restart)
        self.last_heard: dict[int, dict[tuple[str, int], tuple[int, int]]] = {}

    def registration(self, part: Partition) -> tuple[int, list[int]]:
        """``part``'s leader and ISR as the controller records them: what its replicas act on,
        unless its leader has not heard the controller's latest decision (``unheard``)."""
        record = self.unheard.get((part.topic, part.partition))
        return (record.leader, record.isr) if record is not None else (part.leader, part.isr)

    def registered_epoch(self, part: Partition) -> int:
        """``part``'s leader epoch as the controller records it (see ``registration``)."""
        record = self.unheard.get((part.topic, part.partition))
        return record.leader_epoch if record is not None else part.leader_epoch

    def leader_known_by(self, broker_id: int, part: Partition) -> tuple[int, int]:
        """The leader and leader epoch ``broker_id`` takes for ``part``: the controller's if it
        hears the controller, else those of the last metadata it heard, ``(-1, -1)`` if none.

        KRaft brokers learn leadership only from the metadata log they replicate from the
        controller (``BrokerMetadataPublisher`` → ``ReplicaManager.applyDelta``, whose
        ``makeFollowers`` points the fetchers at the leader of the broker's image).
        """
        if self._hears(broker_id):
            return self.registration(part)[0], self.registered_epoch(part)
        return self.last_heard.get(broker_id, {}).get((part.topic, part.partition), (-1, -1))

    def _keep_last_heard(self, broker_id: int) -> None:
        """``broker_id`` stops hearing the controller: remember the leaders it knows now."""
        self.last_heard[broker_id] = {
            (part.topic, part.partition): (self.registration(part)[0], self.registered_epoch(part))
            for topic in self.cluster.topics.values() for part in topic.partitions}

    def _follow_leaders_learnt(self, broker_id: int) -> None:
        """``broker_id`` hears the controller again: it follows the leaders elected while it
        could not hear (its fetchers start; ``makeFollowers``)."""
        known = self.last_heard.pop(broker_id, {})
        for topic in self.cluster.topics.values():
            for part in topic.partitions:
                if (broker_id in part.replicas and part.leader not in (-1, broker_id)
                        and known.get((part.topic, part.partition))
                        != (part.leader, part.leader_epoch)):
                    self.replicas.on_leadership_change(part)

    def _unheard_by_leader(self, part: Partition) -> bool:
        """Whether ``part``'s leader is alive, believes it leads and cannot hear the controller:
        a decision about ``part`` does not reach it then."""
        leader = part.leader
        if leader < 0:
            return False
        broker = self.cluster.brokers[leader]
        return (broker.alive and broker.leads.get((part.topic, part.partition)) == part.leader_epoch
                and not self.cluster.network.connected(leader, Network.CONTROLLER))

    def _take_unheard(self, broker_id: int, crashed: bool = False) -> None:
        """Decisions kept in ``unheard`` reach the replicas once ``broker_id`` hears the
        controller again, as the leader that went on leading (it fails its waiting acks=all
        requests with NOT_LEADER_OR_FOLLOWER where it no longer leads) or as the leader the
        controller chose. If the leader that went on leading ``crashed`` instead, its
        partitions take the controller's leader; an ISR it did not hear waits for the next
        election."""
        for key, record in list(self.unheard.items()):
            part = self.cluster.partition(*key)
            if crashed:
                if part.leader != broker_id or record.leader == broker_id:
                    continue
            elif broker_id not in (part.leader, record.leader):
                continue
            del self.unheard[key]
            if record.leader == part.leader:  # only the ISR changed
                self.replicas.set_isr(part, record.isr, "the controller's ISR, heard late")
                continue
            self._apply(part, record)
            if not crashed:
                self.replicas.fail_delayed(part, NOT_LEADER_OR_FOLLOWER)
            self.replicas.on_leadership_change(part)
            self.cluster.metadata_changed()

    # -- faults that reach the controller -------------------------------------------------------

    def crash_broker(self, broker_id: int, lose_disk: bool = False) -> None:
        """Kill a broker's process (its disk is kept unless ``lose_disk``)."""
        broker = self.cluster.brokers[broker_id]
        broker.alive = False
        broker.leads.clear()
        self.last_heard[broker_id] = {}  # a restarted process learns leaders from the controller
        self._take_unheard(broker_id, crashed=True)
        broker.disk_lost = broker.disk_lost or lose_disk
        self.registered.discard(broker_id)
        if self.cluster.network.connected(broker_id, Network.CONTROLLER):
            # its last heartbeat came just before; cut off, its last one came before the cut
            self._last_contact_ms[broker_id] = self.runtime.now_ms
        self._emit_broker(broker_id, "crashed", "disk lost" if lose_disk else "disk kept")
        for client in self.runtime.clients:
            if hasattr(client, "broker_crashed"):
                client.broker_crashed(broker_id)
        self.cluster.metadata_changed()
        self._fence_after_session_timeout(broker_id)

    def restart_broker(self, broker_id: int) -> None:
        """Start a crashed broker again; it registers once the controller hears from it."""
        broker = self.cluster.brokers[broker_id]
        if broker.alive:
            return
        broker.alive = True
        broker.incarnation += 1
        broker.link_free_ms = broker.next_free_ms = self.runtime.now_ms
        for topic in self.cluster.topics.values():
            for part in topic.partitions:
                if broker_id in part.replicas and broker.disk_lost:
                    self._lose_log(part, broker_id)
                    part.logs[broker_id] = log_for(topic.config)
        broker.disk_lost = False
        self._emit_broker(broker_id, "restarted", "")
        self.replicas.start_isr_expiration(broker_id)
        self.replicas.retention.start(broker_id)
        self.replicas.cleaner.start(broker_id)
        self._heartbeat(broker_id, broker.incarnation)

    def connection_changed(self, broker_id: int) -> None:
        """A broker's link to the controller was cut or healed."""
        broker = self.cluster.brokers[broker_id]
        connected = self.cluster.network.connected(broker_id, Network.CONTROLLER)
        if broker.alive:  # its last heartbeat before the cut, or its first one after the heal
            self._last_contact_ms[broker_id] = self.runtime.now_ms
        if not connected:
            if broker.alive:
                self._keep_last_heard(broker_id)
            self._fence_after_session_timeout(broker_id)
            return
        if not broker.alive:
            return
        if broker_id in self.fenced or broker_id not in self.registered:
            self._heartbeat(broker_id, broker.incarnation)  # unfencing brings it up to date
        else:  # never fenced: partitions it could not lead while cut off may have waited for it
            self._learn_metadata(broker_id)
            self._elect_offline(broker_id)
            self._follow_leaders_learnt(broker_id)
            self.cluster.metadata_changed()

    def _heartbeat(self, broker_id: int, incarnation: int) -> None:
        """A broker that the controller does not count as live heartbeats until it is heard.

        The first attempt goes out at once (a restart's registration, or a heartbeat as soon as
        the link heals); a lost one is repeated every ``broker.heartbeat.interval.ms``; while
        the link is cut, ``connection_changed`` starts again once it heals. Heartbeats of a
        registered, unfenced broker change nothing here, so they are not simulated.
        """
        broker = self.cluster.brokers[broker_id]
        network = self.cluster.network
        if not broker.alive or broker.incarnation != incarnation or (
                broker_id not in self.fenced and broker_id in self.registered):
            return
        if network.deliver(broker_id, Network.CONTROLLER):
            self._heard_from(broker_id)
        elif network.connected(broker_id, Network.CONTROLLER):  # lost: try at the next beat
            timer = self.runtime.background_timeout(BROKER_HEARTBEAT_INTERVAL_MS)
            timer.callbacks.append(lambda _event: self._heartbeat(broker_id, incarnation))

    def _heard_from(self, broker_id: int) -> None:
        """A heartbeat or registration reached the controller: register and unfence."""
        self._last_contact_ms[broker_id] = self.runtime.now_ms
        if broker_id not in self.registered:
            if broker_id not in self.fenced:
                # It registers again before its session expired: the controller fences the old
                # incarnation at once, so leadership moves to in-sync replicas first (KRaft).
                self.fence(broker_id, "registered again: its old incarnation is fenced")
            self.registered.add(broker_id)
            self.broker_epochs[broker_id] = self.cluster.brokers[broker_id].incarnation
            self._schedule_imbalance_check()
        if broker_id in self.fenced:
            self.unfence(broker_id)

    def _fence_after_session_timeout(self, broker_id: int) -> None:
        def fence(_event: object) -> None:
            broker = self.cluster.brokers[broker_id]
            reachable = broker.alive and self.cluster.network.connected(
                broker_id, Network.CONTROLLER)
            silent_ms = self.runtime.now_ms - self._last_contact_ms[broker_id]
            if (broker_id not in self.fenced and not reachable
                    and silent_ms >= BROKER_SESSION_TIMEOUT_MS):
                self.fence(broker_id)

        timer = self.runtime.env.timeout(BROKER_SESSION_TIMEOUT_MS)
        timer.callbacks.append(fence)

    # -- fencing and elections ---------------------------------------------------------------

    def fence(self, broker_id: int, why: str = "") -> None:
        """Take a silent broker out of every ISR and move its leaderships elsewhere."""
        self.fenced.add(broker_id)
        self._emit_broker(broker_id, "fenced",
                          why or f"no heartbeat for {BROKER_SESSION_TIMEOUT_MS} ms")
        for topic in self.cluster.topics.values():
            for part in topic.partitions:
                if broker_id not in part.replicas:
                    continue
                leader, isr = self.registration(part)
                if broker_id in isr and len(isr) > 1 and leader != broker_id:
                    isr = [b for b in isr if b != broker_id]
                    if self._unheard_by_leader(part):  # its leader keeps the ISR it holds
                        self.unheard[(part.topic, part.partition)] = PartitionRegistration(
                            leader, isr, self.registered_epoch(part))
                    else:
                        self.replicas.set_isr(part, isr, f"shrink: broker {broker_id} fenced")
                if leader == broker_id:
                    self.elect(part, fenced=broker_id)
        self.cluster.metadata_changed()

    def unfence(self, broker_id: int) -> None:
        """A broker is back in touch: it follows current leaders; offline partitions may return."""
        self.fenced.discard(broker_id)
        self._emit_broker(broker_id, "unfenced", "registered with the controller")
        self._learn_metadata(broker_id)
        self._elect_offline(broker_id)
        for topic in self.cluster.topics.values():
            for part in topic.partitions:
                if broker_id in part.replicas and part.leader >= 0:
                    self.replicas.on_leadership_change(part)
        self.cluster.metadata_changed()

    def _learn_metadata(self, broker_id: int) -> None:
        """The broker reads the metadata it missed: a deposed leader stops acting as leader."""
        self._take_unheard(broker_id)
        broker = self.cluster.brokers[broker_id]
        stale = [k for k, epoch in broker.leads.items()
                 if (part := self.cluster.partition(*k)).leader != broker_id
                 or part.leader_epoch != epoch]
        for key in stale:
            del broker.leads[key]
        for key in stale:
            part = self.cluster.partition(*key)
            self.replicas.answer_deposed(broker_id, part)
            self.replicas.on_leadership_change(part)
        # partitions the controller gave it while it could not hear (or had crashed)
        elected = [part for topic in self.cluster.topics.values() for part in topic.partitions
                   if part.leader == broker_id
                   and broker.leads.get((part.topic, part.partition)) != part.leader_epoch]
        for part in elected:
            self._believe(part)
            self.replicas.on_leadership_change(part)
            self.replicas.maybe_advance_high_watermark(part)
        if stale or elected:
            self.cluster.metadata_changed()

    def _elect_offline(self, broker_id: int) -> None:
        """Partitions of ``broker_id`` without a leader get one now that it is back."""
        for topic in self.cluster.topics.values():
            for part in topic.partitions:
                if broker_id in part.replicas and self.registration(part)[0] < 0:
                    self.elect(part)

    def may_join_isr(self, broker_id: int) -> bool:
        """Whether the controller lets ``broker_id`` into an ISR (KIP-841, KIP-903).

        Only a broker whose current process is registered and unfenced (its leader asks
        after a fetch of it, which carries that process's broker epoch).
        """
        return broker_id in self.registered and broker_id not in self.fenced

    def isr_eligible(self, broker_id: int, broker_epoch: int) -> bool:
        """Whether a leader that last saw a fetch of ``broker_id``'s process ``broker_epoch``
        counts it as eligible for the ISR (``Partition.isReplicaIsrEligible``): its
        registration is unfenced and is that process's. A crashed broker keeps its registration
        until it is fenced or registers again, so it stays eligible until then.
        """
        return broker_id not in self.fenced and self.broker_epochs.get(broker_id) == broker_epoch

    def eligible(self, broker_id: int) -> bool:
        """Whether ``broker_id`` can be elected leader: its registration is unfenced
        (``ClusterControlManager.isActive``; the lab has no controlled shutdown).

        Only what the controller knows: a broker that crashed or was cut off stays eligible
        until its session times out and it is fenced.
        """
        return broker_id not in self.fenced

    def _hears(self, broker_id: int) -> bool:
        """Whether ``broker_id`` learns the controller's decisions now (it fetches the
        metadata log): its process runs and its link to the controller is up."""
        return broker_id >= 0 and self.cluster.brokers[broker_id].alive and (
            self.cluster.network.connected(broker_id, Network.CONTROLLER))

    def elect(self, part: Partition, preferred: bool = False, fenced: int | None = None
              ) -> None:
        """Choose a leader for ``part`` (see the module docstring for the rules).

        ``fenced``: the leader being fenced, which leaves the ISR unless it is its last member
        (KRaft's ``handleBrokerFenced``: the target ISR is the ISR without it, never empty), so
        an offline partition waits for the replicas that still hold what it acknowledged. The
        rest of the ISR stays as it is, silent members included
        (``generateLeaderAndIsrUpdates``).
        """
        old, current_isr = self.registration(part)
        old_epoch = self.registered_epoch(part)
        if fenced is not None and len(current_isr) > 1:
            current_isr = [b for b in current_isr if b != fenced]
        clean = [b for b in part.replicas if b in current_isr and self.eligible(b)]
        if preferred:
            clean = [b for b in clean if b == part.replicas[0]]
            kind = "preferred"
        else:
            kind = "clean"
        unclean = [] if clean or preferred or not part.config.get(
            "unclean.leader.election.enable") else [b for b in part.replicas if self.eligible(b)]
        if clean:
            leader, isr = clean[0], current_isr
        elif unclean:  # an out-of-sync replica leads, alone in the ISR
            leader, isr, kind = unclean[0], [unclean[0]], "unclean"
        else:  # nobody may lead: the partition is offline, unclean election enabled or not
            leader, isr, kind = -1, current_isr, "offline"
        if preferred and leader in (-1, old):
            return
        if (leader < 0 and part.leader < 0 and isr == part.isr
                and (part.topic, part.partition) not in self.unheard):
            return  # still offline with the same ISR: KRaft writes no PartitionChangeRecord
        # any change of leader, to none (-1) included, bumps the leader epoch (KRaft's
        # PartitionRegistration.merge); an offline partition that stays offline keeps it
        epoch = old_epoch + 1 if leader != old else old_epoch
        record = PartitionRegistration(leader, isr, epoch)
        if self._unheard_by_leader(part) and not self._hears(leader):
            # neither the leader that goes on leading nor the new one hears this
            self.unheard[(part.topic, part.partition)] = record
            self._emit_election(part, record, kind)
            self.cluster.metadata_changed()
            return
        self._apply(part, record)
        self._emit_election(part, record, kind)
        self.replicas.fail_delayed(part, NOT_LEADER_OR_FOLLOWER)
        self.replicas.on_leadership_change(part)
        if self._hears(leader):
            self.replicas.maybe_advance_high_watermark(part)
        self.cluster.metadata_changed()

    def _apply(self, part: Partition, record: PartitionRegistration) -> None:
        """The replicas act on the controller's ``record`` for ``part``: the brokers that hear
        the controller take it; one that does not keeps believing what it believed (a leader
        cut off goes on as a *zombie*, a new leader cut off or crashed does not lead yet)."""
        key = (part.topic, part.partition)
        self.unheard.pop(key, None)
        if self._hears(part.leader) and (
                self.cluster.brokers[part.leader].leads.pop(key, None) is not None):
            self.replicas.answer_deposed(part.leader, part)
        part.leader = record.leader
        part.leader_epoch = record.leader_epoch
        part.isr = record.isr
        if record.leader >= 0:
            part.last_leader = record.leader
            now = self.runtime.now_ms
            # Replica.resetReplicaState: caught up now if in the ISR, else never; nothing is
            # known of a follower's process until it fetches from the new leader
            part.followers = {b: FollowerState(last_caught_up_ms=now if b in record.isr else 0.0)
                              for b in part.replicas if b != record.leader}
            if self._hears(record.leader):
                self._believe(part)

    def _emit_election(self, part: Partition, record: PartitionRegistration, kind: str) -> None:
        """Trace the controller's decision for ``part`` (heard by the replicas or not)."""
        self.runtime.trace.emit(ELECTION, self.runtime.now_ms, "controller", part.topic,
                               part.partition, record.leader, record.leader_epoch, kind,
                               str(record.isr))

    def _schedule_imbalance_check(self) -> None:
        """With ``auto.leader.rebalance.enable``, check leader imbalance one interval from now.

        Kafka checks every ``leader.imbalance.check.interval.seconds``; the lab checks once per
        restart, which is when leadership can have drifted away from preferred replicas.
        """
        config = self.cluster.brokers[0].config
        if not config["auto.leader.rebalance.enable"] or self._imbalance_check_pending:
            return
        self._imbalance_check_pending = True

        def check(_event: object) -> None:
            self._imbalance_check_pending = False
            limit = config["leader.imbalance.per.broker.percentage"] / 100
            if any(ratio > limit for ratio in self.imbalance().values()):
                self.preferred_leader_election()

        timer = self.runtime.env.timeout(config["leader.imbalance.check.interval.seconds"] * 1000)
        timer.callbacks.append(check)

    def imbalance(self) -> dict[int, float]:
        """Per broker: the share of partitions it prefers to lead that another broker leads."""
        preferred: dict[int, list[Partition]] = {}
        for topic in self.cluster.topics.values():
            for part in topic.partitions:
                preferred.setdefault(part.replicas[0], []).append(part)
        return {broker: sum(self.registration(p)[0] != broker for p in parts) / len(parts)
                for broker, parts in preferred.items()}

    def preferred_leader_election(self) -> None:
        """Move leadership back to each partition's preferred (first) replica where possible."""
        for topic in self.cluster.topics.values():
            for part in topic.partitions:
                if self.registration(part)[0] != part.replicas[0]:
                    self.elect(part, preferred=True)

    def _believe(self, part: Partition) -> None:
        if part.leader >= 0:
            self.cluster.brokers[part.leader].leads[(part.topic, part.partition)] = (
                part.leader_epoch)

    def _lose_log(self, part: Partition, broker_id: int) -> None:
        """Record the replica a lost disk took away (the audit ties lost records to it)."""
        log = part.logs[broker_id]
        if len(log):
            self.replicas.truncated.append((part.topic, part.partition, broker_id,
                                            log.records(), len(self.runtime.trace)))
            self.runtime.trace.emit(LOG_LOST, self.runtime.now_ms, "controller", part.topic,
                                   part.partition, broker_id, log.log_start_offset, len(log))

    def _emit_broker(self, broker_id: int, state: str, detail: str) -> None:
        self.runtime.trace.emit(BROKER, self.runtime.now_ms, "controller", broker_id, state,
                               detail)
