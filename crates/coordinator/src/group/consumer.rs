//! The KIP-848 consumer group protocol (ConsumerGroupHeartbeat): the
//! coordinator computes a target assignment with a server-side assignor and
//! moves each member towards it by incremental reconciliation.
//!
//! Pure state, like [`super::classic`]. Invariants:
//! - A partition is in at most one member's `assigned` or `revoking` set, so
//!   it never has two owners: a partition leaves its old owner's `assigned`
//!   when revocation is asked and is given to a new owner only once the old
//!   owner has confirmed (its heartbeat's owned partitions no longer list it)
//!   or has left or expired.
//! - A member's epoch moves to the assignment epoch only after it has
//!   revoked everything it must give up.
//! - A static member's temporary leave (epoch -2 with a `group.instance.id`)
//!   keeps the member, its partitions and its target until its session
//!   expires; a member rejoining with that instance id takes them over
//!   without a new group epoch, so nobody else is reassigned.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use sluice_protocol::error::codes as code;
use tokio::time::Instant;
use uuid::Uuid;

use super::assignor::{self, ASSIGNORS, Assignment, TopicsView};
use super::offsets_log::{CONSUMER, GroupValue};

/// Settings the state machine needs.
#[derive(Debug, Clone, Copy)]
pub struct ConsumerLimits {
    /// `group.consumer.session.timeout.ms`.
    pub session_timeout_ms: i32,
    /// `group.consumer.heartbeat.interval.ms`.
    pub heartbeat_interval_ms: i32,
}

/// The epoch of a static member that left temporarily (KIP-848's
/// `LEAVE_GROUP_STATIC_MEMBER_EPOCH`), kept until its session expires.
pub const LEAVE_GROUP_STATIC_MEMBER_EPOCH: i32 = -2;

/// A member of a consumer group.
#[derive(Debug, Clone)]
pub struct ConsumerMember {
    /// Member id.
    pub member_id: String,
    /// `group.instance.id`.
    pub instance_id: Option<String>,
    /// Rack.
    pub rack_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client address.
    pub client_host: String,
    /// Current member epoch.
    pub member_epoch: i32,
    /// The epoch before the last bump (a heartbeat in flight may carry it).
    pub previous_member_epoch: i32,
    /// Subscribed topic names.
    pub subscribed_topic_names: Vec<String>,
    /// Subscribed regex (not resolved; kept for describe).
    pub subscribed_topic_regex: Option<String>,
    /// Server assignor the member asked for.
    pub server_assignor: Option<String>,
    /// Time the member has to revoke partitions.
    pub rebalance_timeout_ms: i32,
    /// Partitions the member owns.
    pub assigned: Assignment,
    /// Partitions it has been asked to revoke and has not yet released.
    pub revoking: Assignment,
    /// What the last response carried, to send changes only.
    last_sent: Option<Assignment>,
    session_deadline: Instant,
    revoke_deadline: Option<Instant>,
    join_seq: u64,
}

/// What a ConsumerGroupHeartbeat carries.
#[derive(Debug, Clone)]
pub struct HeartbeatArgs {
    /// Member id (v1: chosen by the client; v0: empty on join).
    pub member_id: String,
    /// 0 to join, -1 to leave, -2 for a static member's temporary leave.
    pub member_epoch: i32,
    /// `group.instance.id`.
    pub instance_id: Option<String>,
    /// Rack.
    pub rack_id: Option<String>,
    /// Rebalance timeout, -1 if unchanged.
    pub rebalance_timeout_ms: i32,
    /// Subscribed topics, `None` if unchanged.
    pub subscribed_topic_names: Option<Vec<String>>,
    /// Subscribed regex, `None` if unchanged.
    pub subscribed_topic_regex: Option<String>,
    /// Server assignor, `None` if unchanged.
    pub server_assignor: Option<String>,
    /// Owned partitions, `None` if unchanged.
    pub owned: Option<Assignment>,
    /// Client id.
    pub client_id: String,
    /// Client address.
    pub client_host: String,
}

/// The answer to a heartbeat.
#[derive(Debug, Clone, PartialEq)]
pub struct HeartbeatReply {
    /// Member id.
    pub member_id: String,
    /// Member epoch.
    pub member_epoch: i32,
    /// Heartbeat interval.
    pub heartbeat_interval_ms: i32,
    /// The member's assignment, when it changed.
    pub assignment: Option<Assignment>,
}

/// A KIP-848 consumer group.
#[derive(Debug)]
pub struct ConsumerGroup {
    /// Group id.
    pub group_id: String,
    /// Bumped when members or subscriptions change.
    pub group_epoch: i32,
    /// Epoch of the current target assignment.
    pub assignment_epoch: i32,
    /// Members by id.
    pub members: BTreeMap<String, ConsumerMember>,
    /// Target assignment by member.
    pub target: BTreeMap<String, Assignment>,
    /// Topic metadata the target was computed from.
    topics_seen: TopicsView,
    /// Assignor used for the target.
    pub assignor: String,
    /// When the group last changed state, ms since the epoch.
    pub state_timestamp_ms: i64,
    next_join_seq: u64,
    dirty: bool,
}

fn count(a: &Assignment) -> usize {
    a.values().map(BTreeSet::len).sum()
}

fn minus(a: &Assignment, b: &Assignment) -> Assignment {
    let mut out = Assignment::new();
    for (id, parts) in a {
        let other = b.get(id);
        let rest: BTreeSet<i32> = parts
            .iter()
            .filter(|p| other.is_none_or(|o| !o.contains(p)))
            .copied()
            .collect();
        if !rest.is_empty() {
            out.insert(*id, rest);
        }
    }
    out
}

fn intersect(a: &Assignment, b: &Assignment) -> Assignment {
    let mut out = Assignment::new();
    for (id, parts) in a {
        if let Some(other) = b.get(id) {
            let both: BTreeSet<i32> = parts.intersection(other).copied().collect();
            if !both.is_empty() {
                out.insert(*id, both);
            }
        }
    }
    out
}

fn union_into(a: &mut Assignment, b: &Assignment) {
    for (id, parts) in b {
        a.entry(*id).or_default().extend(parts.iter().copied());
    }
}

fn contains(a: &Assignment, id: &Uuid, p: i32) -> bool {
    a.get(id).is_some_and(|s| s.contains(&p))
}

impl ConsumerGroup {
    /// A new empty group.
    pub fn new(group_id: &str, now_ms: i64) -> ConsumerGroup {
        ConsumerGroup {
            group_id: group_id.to_owned(),
            group_epoch: 0,
            assignment_epoch: 0,
            members: BTreeMap::new(),
            target: BTreeMap::new(),
            topics_seen: TopicsView::new(),
            assignor: ASSIGNORS[0].to_owned(),
            state_timestamp_ms: now_ms,
            next_join_seq: 0,
            dirty: true,
        }
    }

    /// Rebuilds a group from persisted metadata (epoch only; members rejoin).
    pub fn from_value(group_id: &str, value: &GroupValue) -> ConsumerGroup {
        let mut g = ConsumerGroup::new(group_id, value.state_timestamp_ms);
        g.group_epoch = value.generation;
        g.assignment_epoch = value.generation;
        g.dirty = false;
        g
    }

    /// The metadata to persist.
    pub fn to_value(&self) -> GroupValue {
        GroupValue {
            group_type: CONSUMER.to_owned(),
            protocol_type: Some(CONSUMER.to_owned()),
            generation: self.group_epoch,
            protocol: Some(self.assignor.clone()),
            leader: None,
            state_timestamp_ms: self.state_timestamp_ms,
            members: Vec::new(),
        }
    }

    /// True (once) when the persisted metadata is out of date.
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    /// Kafka's consumer group state names.
    pub fn state_name(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else if self.assignment_epoch < self.group_epoch {
            "Assigning"
        } else if self.members.values().any(|m| {
            // A static member away on a temporary leave keeps its partitions
            // and does not hold the group in Reconciling.
            m.member_epoch != LEAVE_GROUP_STATIC_MEMBER_EPOCH
                && m.member_epoch != self.assignment_epoch
                || !m.revoking.is_empty()
                || self
                    .target
                    .get(&m.member_id)
                    .is_some_and(|t| *t != m.assigned)
        }) {
            "Reconciling"
        } else {
            "Stable"
        }
    }

    /// Union of members' subscriptions.
    pub fn subscribed_topics(&self) -> Vec<String> {
        let set: BTreeSet<&String> = self
            .members
            .values()
            .flat_map(|m| m.subscribed_topic_names.iter())
            .collect();
        set.into_iter().cloned().collect()
    }

    /// Advances the group epoch: the start of a rebalance.
    fn bump(&mut self, now_ms: i64) {
        sluice_metrics::group_rebalanced(sluice_metrics::GroupProtocol::Consumer);
        self.group_epoch = self.group_epoch.wrapping_add(1);
        self.state_timestamp_ms = now_ms;
        self.dirty = true;
    }

    fn remove_member(&mut self, id: &str, now_ms: i64) {
        if self.members.remove(id).is_some() {
            self.target.remove(id);
            self.bump(now_ms);
        }
    }

    /// Handles a heartbeat. `topics` is the cluster's topic metadata.
    pub fn heartbeat(
        &mut self,
        args: HeartbeatArgs,
        topics: &TopicsView,
        limits: &ConsumerLimits,
        now: Instant,
        now_ms: i64,
    ) -> Result<HeartbeatReply, i16> {
        if let Some(a) = &args.server_assignor
            && !ASSIGNORS.contains(&a.as_str())
        {
            return Err(code::UNSUPPORTED_ASSIGNOR);
        }
        let session = Duration::from_millis(limits.session_timeout_ms.max(0) as u64);
        let mut reply = HeartbeatReply {
            member_id: args.member_id.clone(),
            member_epoch: args.member_epoch,
            heartbeat_interval_ms: limits.heartbeat_interval_ms,
            assignment: None,
        };
        match args.member_epoch {
            LEAVE_GROUP_STATIC_MEMBER_EPOCH if args.instance_id.is_some() => {
                // KIP-848 static member temporary leave: keep the member,
                // its partitions and its target; its session keeps running
                // and its expiry removes it then (with a new group epoch).
                let id = self.resolve_leaving(&args)?;
                if let Some(m) = self.members.get_mut(&id) {
                    m.member_epoch = LEAVE_GROUP_STATIC_MEMBER_EPOCH;
                    m.previous_member_epoch = LEAVE_GROUP_STATIC_MEMBER_EPOCH;
                    m.last_sent = None;
                    m.session_deadline = now + session;
                }
                reply.member_id = id;
                return Ok(reply);
            }
            -1 | LEAVE_GROUP_STATIC_MEMBER_EPOCH => {
                let id = self.resolve_leaving(&args)?;
                self.remove_member(&id, now_ms);
                reply.member_id = id;
                return Ok(reply);
            }
            0 => {
                let topics_wanted = args.subscribed_topic_names.clone().unwrap_or_default();
                let id = if args.member_id.is_empty() {
                    Uuid::new_v4().to_string()
                } else {
                    args.member_id.clone()
                };
                // A static member that comes back replaces its old incarnation.
                let mut inherited = Assignment::new();
                let mut inherited_revoking = Assignment::new();
                let mut inherited_seq = None;
                let mut inherited_assignor = None;
                // True when the old incarnation was on a temporary leave and
                // the new one wants the same: it takes over in place.
                let mut quiet_replacement = false;
                if let Some(instance) = &args.instance_id {
                    let old = self
                        .members
                        .values()
                        .find(|m| m.instance_id.as_ref() == Some(instance))
                        .map(|m| m.member_id.clone());
                    if let Some(old) = old
                        && let Some(m) = self.members.remove(&old)
                    {
                        quiet_replacement = m.member_epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH
                            && m.subscribed_topic_names == topics_wanted
                            && (args.server_assignor.is_none()
                                || args.server_assignor == m.server_assignor);
                        inherited = m.assigned;
                        if quiet_replacement {
                            // Still being revoked: the new incarnation must
                            // confirm it released them before they move.
                            inherited_revoking = m.revoking;
                        } else {
                            union_into(&mut inherited, &m.revoking);
                        }
                        inherited_seq = Some(m.join_seq);
                        if quiet_replacement {
                            inherited_assignor = m.server_assignor.clone();
                        }
                        if let Some(t) = self.target.remove(&old) {
                            self.target.insert(id.clone(), t);
                        }
                    }
                }
                let existing = self.members.remove(&id);
                self.next_join_seq += 1;
                let member = ConsumerMember {
                    member_id: id.clone(),
                    instance_id: args.instance_id.clone(),
                    rack_id: args.rack_id.clone(),
                    client_id: args.client_id.clone(),
                    client_host: args.client_host.clone(),
                    member_epoch: 0,
                    previous_member_epoch: -1,
                    subscribed_topic_names: topics_wanted,
                    subscribed_topic_regex: args.subscribed_topic_regex.clone(),
                    server_assignor: args.server_assignor.clone().or(inherited_assignor),
                    rebalance_timeout_ms: if args.rebalance_timeout_ms > 0 {
                        args.rebalance_timeout_ms
                    } else {
                        300_000
                    },
                    // A member rejoining at epoch 0 has lost what it owned.
                    assigned: inherited,
                    revoking: inherited_revoking,
                    last_sent: None,
                    session_deadline: now + session,
                    revoke_deadline: None,
                    join_seq: inherited_seq
                        .or(existing.as_ref().map(|m| m.join_seq))
                        .unwrap_or(self.next_join_seq),
                };
                self.members.insert(id.clone(), member);
                if !quiet_replacement {
                    self.bump(now_ms);
                }
                reply.member_id = id;
            }
            epoch => {
                let Some(member) = self.members.get_mut(&args.member_id) else {
                    return Err(code::UNKNOWN_MEMBER_ID);
                };
                let in_flight_ok = epoch == member.previous_member_epoch
                    && args
                        .owned
                        .as_ref()
                        .is_some_and(|o| minus(o, &member.assigned).is_empty());
                if epoch != member.member_epoch && !in_flight_ok {
                    return Err(code::FENCED_MEMBER_EPOCH);
                }
                member.session_deadline = now + session;
                let mut changed = false;
                if let Some(names) = &args.subscribed_topic_names
                    && *names != member.subscribed_topic_names
                {
                    member.subscribed_topic_names = names.clone();
                    changed = true;
                }
                if args.subscribed_topic_regex.is_some()
                    && args.subscribed_topic_regex != member.subscribed_topic_regex
                {
                    member.subscribed_topic_regex = args.subscribed_topic_regex.clone();
                }
                if args.server_assignor.is_some() && args.server_assignor != member.server_assignor
                {
                    member.server_assignor = args.server_assignor.clone();
                    changed = true;
                }
                if args.rebalance_timeout_ms > 0 {
                    member.rebalance_timeout_ms = args.rebalance_timeout_ms;
                }
                if changed {
                    self.bump(now_ms);
                }
            }
        }
        let id = reply.member_id.clone();
        self.refresh_target(topics, now_ms);
        self.reconcile(&id, args.owned.as_ref(), now);
        let full = args.member_epoch == 0 || args.owned.is_some();
        let Some(member) = self.members.get_mut(&id) else {
            return Err(code::UNKNOWN_MEMBER_ID);
        };
        reply.member_epoch = member.member_epoch;
        if full || member.last_sent.as_ref() != Some(&member.assigned) {
            member.last_sent = Some(member.assigned.clone());
            reply.assignment = Some(member.assigned.clone());
        }
        Ok(reply)
    }

    fn resolve_leaving(&self, args: &HeartbeatArgs) -> Result<String, i16> {
        if self.members.contains_key(&args.member_id) {
            return Ok(args.member_id.clone());
        }
        if let Some(instance) = &args.instance_id
            && let Some(m) = self
                .members
                .values()
                .find(|m| m.instance_id.as_ref() == Some(instance))
        {
            return Ok(m.member_id.clone());
        }
        Err(code::UNKNOWN_MEMBER_ID)
    }

    /// Recomputes the target assignment when the group epoch moved or the
    /// subscribed topics' metadata changed.
    fn refresh_target(&mut self, topics: &TopicsView, now_ms: i64) {
        let subscribed = self.subscribed_topics();
        let relevant: TopicsView = subscribed
            .iter()
            .filter_map(|t| topics.get(t).map(|v| (t.clone(), *v)))
            .collect();
        if relevant != self.topics_seen {
            self.topics_seen = relevant;
            if self.assignment_epoch == self.group_epoch {
                self.bump(now_ms);
            }
        }
        if self.assignment_epoch >= self.group_epoch {
            return;
        }
        self.assignor = self
            .members
            .values()
            .min_by_key(|m| m.join_seq)
            .and_then(|m| m.server_assignor.clone())
            .unwrap_or_else(|| ASSIGNORS[0].to_owned());
        let subs: BTreeMap<String, Vec<String>> = self
            .members
            .values()
            .map(|m| (m.member_id.clone(), m.subscribed_topic_names.clone()))
            .collect();
        self.target = assignor::assign(&self.assignor, &subs, &self.topics_seen, &self.target);
        self.assignment_epoch = self.group_epoch;
    }

    /// Moves one member towards its target (Kafka's CurrentAssignmentBuilder).
    fn reconcile(&mut self, id: &str, owned: Option<&Assignment>, now: Instant) {
        let target = self.target.get(id).cloned().unwrap_or_default();
        let assignment_epoch = self.assignment_epoch;
        // Partitions held (owned or being revoked) by the other members.
        let mut held_by_others = Assignment::new();
        for (other_id, m) in &self.members {
            if other_id != id {
                union_into(&mut held_by_others, &m.assigned);
                union_into(&mut held_by_others, &m.revoking);
            }
        }
        let Some(member) = self.members.get_mut(id) else {
            return;
        };
        if let Some(owned) = owned {
            member.revoking = intersect(&member.revoking, owned);
        }
        if !member.revoking.is_empty() {
            return; // still waiting for the member to release partitions
        }
        member.revoke_deadline = None;
        let to_revoke = minus(&member.assigned, &target);
        if !to_revoke.is_empty() {
            member.assigned = intersect(&member.assigned, &target);
            member.revoking = to_revoke;
            member.revoke_deadline =
                Some(now + Duration::from_millis(member.rebalance_timeout_ms.max(0) as u64));
            return;
        }
        for (tid, parts) in &target {
            for p in parts {
                if !contains(&member.assigned, tid, *p) && !contains(&held_by_others, tid, *p) {
                    member.assigned.entry(*tid).or_default().insert(*p);
                }
            }
        }
        if member.member_epoch != assignment_epoch {
            member.previous_member_epoch = member.member_epoch;
            member.member_epoch = assignment_epoch;
        }
    }

    /// Expires sessions and members that did not revoke in time.
    pub fn on_timer(&mut self, now: Instant, now_ms: i64) {
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| m.session_deadline <= now || m.revoke_deadline.is_some_and(|d| d <= now))
            .map(|m| m.member_id.clone())
            .collect();
        for id in expired {
            tracing::info!(group = %self.group_id, member = %id, "consumer group member expired");
            self.remove_member(&id, now_ms);
        }
    }

    /// When [`ConsumerGroup::on_timer`] next has work.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.members
            .values()
            .flat_map(|m| std::iter::once(m.session_deadline).chain(m.revoke_deadline))
            .min()
    }

    /// OffsetCommit check: the member exists and its epoch is current.
    pub fn validate_commit(
        &mut self,
        member_id: &str,
        epoch: i32,
        now: Instant,
    ) -> Result<(), i16> {
        if member_id.is_empty() && epoch < 0 && self.members.is_empty() {
            return Ok(());
        }
        let Some(m) = self.members.get_mut(member_id) else {
            return Err(code::UNKNOWN_MEMBER_ID);
        };
        if epoch != m.member_epoch {
            return Err(code::STALE_MEMBER_EPOCH);
        }
        let _ = now;
        Ok(())
    }

    /// OffsetFetch v9 check.
    pub fn validate_fetch(&self, member_id: &str, epoch: i32) -> Result<(), i16> {
        if member_id.is_empty() || epoch < 0 {
            return Ok(());
        }
        let Some(m) = self.members.get(member_id) else {
            return Err(code::UNKNOWN_MEMBER_ID);
        };
        if epoch != m.member_epoch {
            return Err(code::STALE_MEMBER_EPOCH);
        }
        Ok(())
    }

    /// Number of partitions a member owns (for describe and tests).
    pub fn owned_count(&self, member_id: &str) -> usize {
        self.members
            .get(member_id)
            .map_or(0, |m| count(&m.assigned))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: ConsumerLimits = ConsumerLimits {
        session_timeout_ms: 45_000,
        heartbeat_interval_ms: 5_000,
    };

    fn topics() -> TopicsView {
        [("t".to_owned(), (Uuid::from_u128(1), 4))]
            .into_iter()
            .collect()
    }

    fn hb(member_id: &str, epoch: i32, owned: Option<Assignment>) -> HeartbeatArgs {
        HeartbeatArgs {
            member_id: member_id.to_owned(),
            member_epoch: epoch,
            instance_id: None,
            rack_id: None,
            rebalance_timeout_ms: 60_000,
            subscribed_topic_names: Some(vec!["t".into()]),
            subscribed_topic_regex: None,
            server_assignor: Some("uniform".into()),
            owned,
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
        }
    }

    #[test]
    fn a_partition_moves_only_after_its_owner_revokes_it() {
        let now = Instant::now();
        let mut g = ConsumerGroup::new("g", 0);
        let a = g
            .heartbeat(hb("a", 0, None), &topics(), &LIMITS, now, 0)
            .expect("join a");
        let a_all = a.assignment.clone().expect("assignment");
        assert_eq!(count(&a_all), 4);
        // b joins: the target splits 2/2, but a still owns everything.
        let b = g
            .heartbeat(hb("b", 0, None), &topics(), &LIMITS, now, 0)
            .expect("join b");
        assert_eq!(b.assignment.as_ref().map(count), Some(0));
        // a's next heartbeat asks it to revoke two partitions; its epoch stays.
        let a2 = g
            .heartbeat(
                hb("a", a.member_epoch, Some(a_all.clone())),
                &topics(),
                &LIMITS,
                now,
                0,
            )
            .expect("a heartbeat");
        let a_kept = a2.assignment.clone().expect("shrunk assignment");
        assert_eq!(count(&a_kept), 2);
        assert_eq!(a2.member_epoch, a.member_epoch);
        // b still gets nothing while a has not confirmed.
        let b2 = g
            .heartbeat(hb("b", b.member_epoch, None), &topics(), &LIMITS, now, 0)
            .expect("b heartbeat");
        assert_eq!(g.owned_count("b"), 0, "{b2:?}");
        // a confirms (owned == kept): its epoch moves on and b gets the rest.
        let a3 = g
            .heartbeat(
                hb("a", a.member_epoch, Some(a_kept.clone())),
                &topics(),
                &LIMITS,
                now,
                0,
            )
            .expect("a confirms");
        assert_eq!(a3.member_epoch, g.assignment_epoch);
        let b3 = g
            .heartbeat(hb("b", b2.member_epoch, None), &topics(), &LIMITS, now, 0)
            .expect("b heartbeat");
        let b_got = b3.assignment.expect("b's assignment");
        assert_eq!(count(&b_got), 2);
        assert!(intersect(&b_got, &a_kept).is_empty());
        assert_eq!(g.state_name(), "Stable");
    }

    #[test]
    fn unknown_members_and_stale_epochs_are_fenced() {
        let now = Instant::now();
        let mut g = ConsumerGroup::new("g", 0);
        let a = g
            .heartbeat(hb("a", 0, None), &topics(), &LIMITS, now, 0)
            .expect("join");
        assert_eq!(
            g.heartbeat(hb("x", 3, None), &topics(), &LIMITS, now, 0),
            Err(code::UNKNOWN_MEMBER_ID)
        );
        assert_eq!(
            g.heartbeat(
                hb("a", a.member_epoch + 5, None),
                &topics(),
                &LIMITS,
                now,
                0
            ),
            Err(code::FENCED_MEMBER_EPOCH)
        );
        assert_eq!(
            g.validate_commit("a", a.member_epoch + 1, now),
            Err(code::STALE_MEMBER_EPOCH)
        );
        assert_eq!(g.validate_commit("a", a.member_epoch, now), Ok(()));
    }

    fn static_hb(
        member_id: &str,
        instance: &str,
        epoch: i32,
        owned: Option<Assignment>,
    ) -> HeartbeatArgs {
        HeartbeatArgs {
            instance_id: Some(instance.to_owned()),
            ..hb(member_id, epoch, owned)
        }
    }

    /// Two static members, a (instance "ia") and b (instance "ib"), with
    /// two partitions each and a Stable group.
    fn stable_static_pair(g: &mut ConsumerGroup, now: Instant) -> (HeartbeatReply, HeartbeatReply) {
        let mut a = g
            .heartbeat(static_hb("a", "ia", 0, None), &topics(), &LIMITS, now, 0)
            .expect("join a");
        let mut b = g
            .heartbeat(static_hb("b", "ib", 0, None), &topics(), &LIMITS, now, 0)
            .expect("join b");
        let mut a_owned = a.assignment.clone().unwrap_or_default();
        let mut b_owned = b.assignment.clone().unwrap_or_default();
        for _ in 0..4 {
            a = g
                .heartbeat(
                    static_hb("a", "ia", a.member_epoch, Some(a_owned.clone())),
                    &topics(),
                    &LIMITS,
                    now,
                    0,
                )
                .expect("a heartbeat");
            if let Some(x) = &a.assignment {
                a_owned = x.clone();
            }
            b = g
                .heartbeat(
                    static_hb("b", "ib", b.member_epoch, Some(b_owned.clone())),
                    &topics(),
                    &LIMITS,
                    now,
                    0,
                )
                .expect("b heartbeat");
            if let Some(x) = &b.assignment {
                b_owned = x.clone();
            }
        }
        assert_eq!(g.state_name(), "Stable");
        assert_eq!((g.owned_count("a"), g.owned_count("b")), (2, 2));
        a.assignment = Some(a_owned);
        b.assignment = Some(b_owned);
        (a, b)
    }

    #[test]
    fn a_static_member_on_temporary_leave_gets_its_partitions_back_without_rebalance() {
        let now = Instant::now();
        let mut g = ConsumerGroup::new("g", 0);
        let (a, b) = stable_static_pair(&mut g, now);
        let epoch = g.group_epoch;
        let a_parts = a.assignment.clone().expect("a's partitions");
        let b_parts = b.assignment.clone().expect("b's partitions");
        // a leaves temporarily: it stays, with its partitions, at epoch -2.
        let left = g
            .heartbeat(
                static_hb("a", "ia", LEAVE_GROUP_STATIC_MEMBER_EPOCH, None),
                &topics(),
                &LIMITS,
                now,
                0,
            )
            .expect("temporary leave");
        assert_eq!(left.member_epoch, LEAVE_GROUP_STATIC_MEMBER_EPOCH);
        assert_eq!(
            g.group_epoch, epoch,
            "a temporary leave is not a membership change"
        );
        assert_eq!(g.owned_count("a"), 2);
        assert_eq!(g.state_name(), "Stable");
        // b's heartbeats do not pick up a's partitions meanwhile.
        let b2 = g
            .heartbeat(
                static_hb("b", "ib", b.member_epoch, Some(b_parts.clone())),
                &topics(),
                &LIMITS,
                now,
                0,
            )
            .expect("b heartbeat");
        assert_eq!(g.owned_count("b"), 2, "{b2:?}");
        // The old incarnation is fenced.
        assert_eq!(
            g.heartbeat(
                static_hb("a", "ia", a.member_epoch, None),
                &topics(),
                &LIMITS,
                now,
                0
            ),
            Err(code::FENCED_MEMBER_EPOCH)
        );
        // A new process with the same instance id takes a's place as is.
        let later = now + Duration::from_millis(10_000);
        let a2 = g
            .heartbeat(
                static_hb("a2", "ia", 0, Some(Assignment::new())),
                &topics(),
                &LIMITS,
                later,
                1,
            )
            .expect("rejoin");
        assert_eq!(a2.assignment, Some(a_parts));
        assert_eq!(a2.member_epoch, epoch);
        assert_eq!(
            g.group_epoch, epoch,
            "rejoin must not start a new assignment"
        );
        assert!(!g.members.contains_key("a"));
        let b3 = g
            .heartbeat(
                static_hb("b", "ib", b.member_epoch, Some(b_parts.clone())),
                &topics(),
                &LIMITS,
                later,
                1,
            )
            .expect("b heartbeat");
        assert_eq!(b3.member_epoch, b.member_epoch);
        assert!(
            b3.assignment.is_none_or(|x| x == b_parts),
            "b was reassigned"
        );
        assert_eq!(g.state_name(), "Stable");
    }

    #[test]
    fn a_static_member_that_does_not_return_expires_after_its_session() {
        let now = Instant::now();
        let mut g = ConsumerGroup::new("g", 0);
        let (_a, b) = stable_static_pair(&mut g, now);
        let epoch = g.group_epoch;
        g.heartbeat(
            static_hb("a", "ia", LEAVE_GROUP_STATIC_MEMBER_EPOCH, None),
            &topics(),
            &LIMITS,
            now,
            0,
        )
        .expect("temporary leave");
        let b_owned = b.assignment.clone().expect("b's partitions");
        let mid = now + Duration::from_millis(30_000);
        g.heartbeat(
            static_hb("b", "ib", b.member_epoch, Some(b_owned.clone())),
            &topics(),
            &LIMITS,
            mid,
            1,
        )
        .expect("b stays alive");
        g.on_timer(now + Duration::from_millis(44_000), 1);
        assert!(g.members.contains_key("a"), "kept for the session timeout");
        g.on_timer(now + Duration::from_millis(45_001), 1);
        assert!(!g.members.contains_key("a"));
        assert!(g.group_epoch > epoch);
        let later = now + Duration::from_millis(45_001);
        let b2 = g
            .heartbeat(
                static_hb("b", "ib", b.member_epoch, Some(b_owned)),
                &topics(),
                &LIMITS,
                later,
                1,
            )
            .expect("b heartbeat");
        assert_eq!(b2.assignment.as_ref().map(count), Some(4));
        // A plain leave (-1) of a static member removes it at once.
        let mut g = ConsumerGroup::new("g", 0);
        stable_static_pair(&mut g, now);
        g.heartbeat(static_hb("a", "ia", -1, None), &topics(), &LIMITS, now, 0)
            .expect("leave");
        assert!(!g.members.contains_key("a"));
    }

    #[test]
    fn an_expired_member_frees_its_partitions() {
        let now = Instant::now();
        let mut g = ConsumerGroup::new("g", 0);
        g.heartbeat(hb("a", 0, None), &topics(), &LIMITS, now, 0)
            .expect("join");
        g.on_timer(now + Duration::from_millis(45_001), 1);
        assert!(g.members.is_empty());
        assert_eq!(g.state_name(), "Empty");
        let b = g
            .heartbeat(hb("b", 0, None), &topics(), &LIMITS, now, 0)
            .expect("join b");
        assert_eq!(b.assignment.as_ref().map(count), Some(4));
    }
}
