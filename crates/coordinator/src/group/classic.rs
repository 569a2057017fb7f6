//! The classic group protocol's state machine (JoinGroup, SyncGroup,
//! Heartbeat, LeaveGroup), as Kafka's `GroupCoordinator` runs it.
//!
//! Pure state: no I/O, no locks, no clocks. Every method takes `now`, and
//! the coordinator runs them under the group's lock, calls [`ClassicGroup::on_timer`]
//! at [`ClassicGroup::next_deadline`], and persists the group when
//! [`ClassicGroup::take_dirty`] says so. Waiting requests are oneshot
//! senders kept on the member; completing a phase answers them.
//!
//! States: Empty -> PreparingRebalance (a member joins) -> CompletingRebalance
//! (every member rejoined or the rebalance timeout passed; responses sent,
//! leader chosen) -> Stable (the leader's SyncGroup arrived). A leave, a
//! session expiry or a changed subscription goes back to PreparingRebalance.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bytes::Bytes;
use sluice_protocol::error::codes as code;
use sluice_protocol::messages::join_group::{JoinGroupResponse, JoinGroupResponseMember};
use sluice_protocol::messages::sync_group::SyncGroupResponse;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::offsets_log::{CLASSIC, GroupValue, MemberValue};

/// Kafka's names for classic group states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassicState {
    /// No members; may still hold offsets.
    Empty,
    /// Waiting for members to (re)join.
    PreparingRebalance,
    /// Joined; waiting for the leader's assignment.
    CompletingRebalance,
    /// Everyone has an assignment.
    Stable,
    /// Deleted.
    Dead,
}

impl ClassicState {
    /// The name Kafka reports in ListGroups and DescribeGroups.
    pub fn name(self) -> &'static str {
        match self {
            ClassicState::Empty => "Empty",
            ClassicState::PreparingRebalance => "PreparingRebalance",
            ClassicState::CompletingRebalance => "CompletingRebalance",
            ClassicState::Stable => "Stable",
            ClassicState::Dead => "Dead",
        }
    }
}

/// Settings the state machine needs.
#[derive(Debug, Clone, Copy)]
pub struct ClassicLimits {
    /// `group.initial.rebalance.delay.ms`.
    pub initial_rebalance_delay_ms: u64,
    /// Smallest allowed session timeout.
    pub min_session_timeout_ms: i32,
    /// Largest allowed session timeout.
    pub max_session_timeout_ms: i32,
}

/// One member of a classic group.
#[derive(Debug)]
pub struct ClassicMember {
    /// Member id.
    pub member_id: String,
    /// `group.instance.id` for static members.
    pub instance_id: Option<String>,
    /// Client id of its requests.
    pub client_id: String,
    /// Client address.
    pub client_host: String,
    /// Session timeout it asked for.
    pub session_timeout_ms: i32,
    /// Rebalance timeout it asked for.
    pub rebalance_timeout_ms: i32,
    /// Protocols it supports, in its preference order, with metadata.
    pub protocols: Vec<(String, Bytes)>,
    /// Its current assignment (opaque bytes from the leader).
    pub assignment: Bytes,
    /// A JoinGroup waiting for the rebalance to complete.
    join_waiter: Option<oneshot::Sender<JoinGroupResponse>>,
    /// A SyncGroup waiting for the leader's assignment.
    sync_waiter: Option<oneshot::Sender<SyncGroupResponse>>,
    /// The member is removed if no heartbeat arrives by then.
    session_deadline: Instant,
    /// Join order, to pick a leader deterministically.
    join_seq: u64,
}

impl ClassicMember {
    fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(n, _)| n == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }

    /// True while a JoinGroup or SyncGroup of this member is waiting; such a
    /// member does not expire (Kafka's `shouldKeepAlive`).
    fn awaiting(&self) -> bool {
        self.join_waiter.is_some() || self.sync_waiter.is_some()
    }
}

/// What a JoinGroup asks.
#[derive(Debug, Clone)]
pub struct JoinArgs {
    /// Member id, empty for a new member.
    pub member_id: String,
    /// `group.instance.id`.
    pub instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client address.
    pub client_host: String,
    /// Session timeout.
    pub session_timeout_ms: i32,
    /// Rebalance timeout (v0: the session timeout).
    pub rebalance_timeout_ms: i32,
    /// Protocol type ("consumer").
    pub protocol_type: String,
    /// Protocols and their metadata.
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: a new member must first get a member id and rejoin.
    pub require_known_member_id: bool,
}

/// The answer to a JoinGroup: now, or when the rebalance completes.
#[derive(Debug)]
pub enum JoinOutcome {
    /// Answered at once.
    Done(JoinGroupResponse),
    /// Answered when the join phase completes.
    Wait(oneshot::Receiver<JoinGroupResponse>),
}

/// The answer to a SyncGroup.
#[derive(Debug)]
pub enum SyncOutcome {
    /// Answered at once.
    Done(SyncGroupResponse),
    /// Answered when the leader's assignment arrives and is stored.
    Wait(oneshot::Receiver<SyncGroupResponse>),
    /// The leader's assignment arrived. The coordinator must make `value`
    /// (the group as it will be once Stable) durable, then report the
    /// result with [`ClassicGroup::assignment_stored`]; only that answers
    /// the members, so none acts on an assignment a crash could lose
    /// (Kafka answers SyncGroup in the group-metadata append's callback).
    Store {
        /// The leader's own answer.
        rx: oneshot::Receiver<SyncGroupResponse>,
        /// The generation the assignment belongs to.
        generation_id: i32,
        /// The record value to persist.
        value: GroupValue,
    },
}

/// A classic group.
#[derive(Debug)]
pub struct ClassicGroup {
    /// Group id.
    pub group_id: String,
    /// Current state.
    pub state: ClassicState,
    /// Generation, bumped at the end of each join phase.
    pub generation_id: i32,
    /// Protocol type of the members ("consumer"); `None` for a group used
    /// only to store offsets.
    pub protocol_type: Option<String>,
    /// Protocol (assignor) chosen for this generation.
    pub protocol_name: Option<String>,
    /// Leader member id.
    pub leader_id: Option<String>,
    /// Members by id.
    pub members: BTreeMap<String, ClassicMember>,
    /// Member ids handed out by MEMBER_ID_REQUIRED, with their expiry.
    pub pending_members: HashMap<String, Instant>,
    /// Static members: instance id -> member id.
    pub static_members: HashMap<String, String>,
    /// When the current join phase ends at the latest.
    rebalance_deadline: Option<Instant>,
    /// Initial-delay bookkeeping of a rebalance that started from Empty:
    /// (delay step, time still allowed to extend, joined since last step).
    initial_delay: Option<(Duration, Duration, bool)>,
    /// When the state last changed, ms since the epoch.
    pub state_timestamp_ms: i64,
    /// The leader's assignment while its group-metadata record is being
    /// made durable: (generation, assignment by member id).
    storing: Option<(i32, HashMap<String, Bytes>)>,
    next_join_seq: u64,
    dirty: bool,
}

fn join_error(error_code: i16, member_id: &str) -> JoinGroupResponse {
    JoinGroupResponse {
        error_code,
        member_id: member_id.to_owned(),
        protocol_name: None,
        ..Default::default()
    }
}

fn sync_error(error_code: i16) -> SyncGroupResponse {
    SyncGroupResponse {
        error_code,
        ..Default::default()
    }
}

impl ClassicGroup {
    /// A new empty group.
    pub fn new(group_id: &str, now_ms: i64) -> ClassicGroup {
        ClassicGroup {
            group_id: group_id.to_owned(),
            state: ClassicState::Empty,
            generation_id: 0,
            protocol_type: None,
            protocol_name: None,
            leader_id: None,
            members: BTreeMap::new(),
            pending_members: HashMap::new(),
            static_members: HashMap::new(),
            rebalance_deadline: None,
            initial_delay: None,
            state_timestamp_ms: now_ms,
            storing: None,
            next_join_seq: 0,
            dirty: false,
        }
    }

    /// True (once) when the persisted metadata is out of date.
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    fn set_state(&mut self, state: ClassicState, now_ms: i64) {
        self.state = state;
        self.state_timestamp_ms = now_ms;
    }

    /// True if `member_id` with `instance_id` is fenced by a newer static member.
    fn fenced(&self, member_id: &str, instance_id: Option<&str>) -> bool {
        instance_id
            .and_then(|i| self.static_members.get(i))
            .is_some_and(|m| m != member_id)
    }

    /// Handles a JoinGroup.
    pub fn join(
        &mut self,
        args: JoinArgs,
        limits: &ClassicLimits,
        now: Instant,
        now_ms: i64,
    ) -> JoinOutcome {
        let fail = |c: i16| JoinOutcome::Done(join_error(c, &args.member_id));
        if self.state == ClassicState::Dead {
            return fail(code::COORDINATOR_NOT_AVAILABLE);
        }
        if args.session_timeout_ms < limits.min_session_timeout_ms
            || args.session_timeout_ms > limits.max_session_timeout_ms
        {
            return fail(code::INVALID_SESSION_TIMEOUT);
        }
        if !self.supports(&args.protocol_type, &args.protocols) {
            return fail(code::INCONSISTENT_GROUP_PROTOCOL);
        }
        if args.member_id.is_empty() {
            self.join_unknown(args, limits, now, now_ms)
        } else {
            self.join_known(args, limits, now, now_ms)
        }
    }

    /// Kafka's `supportsProtocols`: the type matches and at least one
    /// protocol is supported by every current member.
    fn supports(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if protocol_type.is_empty() || protocols.is_empty() {
            return false;
        }
        if self.members.is_empty() {
            return true;
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols.iter().any(|(name, _)| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(n, _)| n == name))
            })
    }

    fn new_member_id(args: &JoinArgs) -> String {
        let prefix = args.instance_id.as_deref().unwrap_or(&args.client_id);
        format!("{prefix}-{}", uuid::Uuid::new_v4())
    }

    fn join_unknown(
        &mut self,
        args: JoinArgs,
        limits: &ClassicLimits,
        now: Instant,
        now_ms: i64,
    ) -> JoinOutcome {
        let new_id = Self::new_member_id(&args);
        if let Some(instance) = args.instance_id.clone() {
            if let Some(old_id) = self.static_members.get(&instance).cloned() {
                return self.replace_static_member(&old_id, new_id, args, limits, now, now_ms);
            }
        } else if args.require_known_member_id {
            let deadline = now + Duration::from_millis(args.session_timeout_ms as u64);
            self.pending_members.insert(new_id.clone(), deadline);
            return JoinOutcome::Done(join_error(code::MEMBER_ID_REQUIRED, &new_id));
        }
        self.add_member_and_rebalance(new_id, args, limits, now, now_ms)
    }

    fn join_known(
        &mut self,
        args: JoinArgs,
        limits: &ClassicLimits,
        now: Instant,
        now_ms: i64,
    ) -> JoinOutcome {
        let id = args.member_id.clone();
        if self.pending_members.remove(&id).is_some() {
            return self.add_member_and_rebalance(id, args, limits, now, now_ms);
        }
        if self.fenced(&id, args.instance_id.as_deref()) {
            return JoinOutcome::Done(join_error(code::FENCED_INSTANCE_ID, &id));
        }
        let Some(member) = self.members.get(&id) else {
            return JoinOutcome::Done(join_error(code::UNKNOWN_MEMBER_ID, &id));
        };
        let unchanged = member.protocols == args.protocols;
        match self.state {
            ClassicState::PreparingRebalance => {
                self.update_member(&id, &args, now);
                let rx = self.await_join(&id);
                self.maybe_complete_join(now, now_ms);
                rx
            }
            ClassicState::CompletingRebalance if unchanged => {
                // A duplicate join (the response was lost): answer again.
                JoinOutcome::Done(self.join_response(&id, false))
            }
            ClassicState::Stable if unchanged && self.leader_id.as_deref() != Some(&id) => {
                // A follower rejoining without change gets the current generation.
                JoinOutcome::Done(self.join_response(&id, false))
            }
            ClassicState::CompletingRebalance | ClassicState::Stable => {
                self.update_member(&id, &args, now);
                let rx = self.await_join(&id);
                self.prepare_rebalance(now, now_ms);
                rx
            }
            ClassicState::Empty | ClassicState::Dead => {
                JoinOutcome::Done(join_error(code::UNKNOWN_MEMBER_ID, &id))
            }
        }
    }

    fn update_member(&mut self, id: &str, args: &JoinArgs, now: Instant) {
        if let Some(m) = self.members.get_mut(id) {
            m.protocols = args.protocols.clone();
            m.session_timeout_ms = args.session_timeout_ms;
            m.rebalance_timeout_ms = args.rebalance_timeout_ms;
            m.client_id = args.client_id.clone();
            m.client_host = args.client_host.clone();
            m.session_deadline = now + Duration::from_millis(args.session_timeout_ms as u64);
        }
    }

    fn await_join(&mut self, id: &str) -> JoinOutcome {
        let (tx, rx) = oneshot::channel();
        if let Some(m) = self.members.get_mut(id)
            && let Some(old) = m.join_waiter.replace(tx)
        {
            let _ = old.send(join_error(code::REBALANCE_IN_PROGRESS, id));
        }
        JoinOutcome::Wait(rx)
    }

    fn add_member_and_rebalance(
        &mut self,
        id: String,
        args: JoinArgs,
        limits: &ClassicLimits,
        now: Instant,
        now_ms: i64,
    ) -> JoinOutcome {
        if self.members.is_empty() {
            self.protocol_type = Some(args.protocol_type.clone());
        }
        if let Some(instance) = &args.instance_id {
            self.static_members.insert(instance.clone(), id.clone());
        }
        self.next_join_seq += 1;
        let member = ClassicMember {
            member_id: id.clone(),
            instance_id: args.instance_id.clone(),
            client_id: args.client_id.clone(),
            client_host: args.client_host.clone(),
            session_timeout_ms: args.session_timeout_ms,
            rebalance_timeout_ms: args.rebalance_timeout_ms,
            protocols: args.protocols.clone(),
            assignment: Bytes::new(),
            join_waiter: None,
            sync_waiter: None,
            session_deadline: now + Duration::from_millis(args.session_timeout_ms as u64),
            join_seq: self.next_join_seq,
        };
        self.members.insert(id.clone(), member);
        if let Some((_, _, joined)) = &mut self.initial_delay {
            *joined = true;
        }
        let rx = self.await_join(&id);
        match self.state {
            ClassicState::PreparingRebalance => self.maybe_complete_join(now, now_ms),
            _ => self.prepare_rebalance_with(limits, now, now_ms),
        }
        rx
    }

    #[allow(clippy::too_many_arguments)]
    fn replace_static_member(
        &mut self,
        old_id: &str,
        new_id: String,
        args: JoinArgs,
        limits: &ClassicLimits,
        now: Instant,
        now_ms: i64,
    ) -> JoinOutcome {
        let Some(mut member) = self.members.remove(old_id) else {
            // Mapping without member: treat as a new static member.
            self.static_members
                .remove(args.instance_id.as_deref().unwrap_or(""));
            return self.add_member_and_rebalance(new_id, args, limits, now, now_ms);
        };
        if let Some(w) = member.join_waiter.take() {
            let _ = w.send(join_error(code::FENCED_INSTANCE_ID, old_id));
        }
        if let Some(w) = member.sync_waiter.take() {
            let _ = w.send(sync_error(code::FENCED_INSTANCE_ID));
        }
        let selected_unchanged = self.protocol_name.as_deref().is_some_and(|p| {
            member.metadata_for(p)
                == args
                    .protocols
                    .iter()
                    .find(|(n, _)| n == p)
                    .map(|(_, m)| m.clone())
                    .unwrap_or_default()
        });
        member.member_id = new_id.clone();
        self.members.insert(new_id.clone(), member);
        if let Some(instance) = &args.instance_id {
            self.static_members.insert(instance.clone(), new_id.clone());
        }
        if self.leader_id.as_deref() == Some(old_id) {
            self.leader_id = Some(new_id.clone());
        }
        self.update_member(&new_id, &args, now);
        self.dirty = true;
        match self.state {
            ClassicState::Stable if selected_unchanged => {
                // KIP-345: a static member that comes back with the same
                // subscription keeps its assignment, and nobody rebalances.
                let leader = self.leader_id.as_deref() == Some(&new_id);
                JoinOutcome::Done(self.join_response(&new_id, leader))
            }
            ClassicState::PreparingRebalance => {
                let rx = self.await_join(&new_id);
                self.maybe_complete_join(now, now_ms);
                rx
            }
            _ => {
                let rx = self.await_join(&new_id);
                self.prepare_rebalance(now, now_ms);
                rx
            }
        }
    }

    /// The JoinGroup response for `id` in the current generation. The
    /// leader gets every member's metadata; `skip_assignment` tells a v9+
    /// leader that the assignment is already in place.
    fn join_response(&self, id: &str, skip_assignment: bool) -> JoinGroupResponse {
        let protocol = self.protocol_name.clone().unwrap_or_default();
        let is_leader = self.leader_id.as_deref() == Some(id);
        let members = if is_leader {
            let mut ordered: Vec<&ClassicMember> = self.members.values().collect();
            ordered.sort_by_key(|m| m.join_seq);
            ordered
                .into_iter()
                .map(|m| JoinGroupResponseMember {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.instance_id.clone(),
                    metadata: m.metadata_for(&protocol),
                })
                .collect()
        } else {
            Vec::new()
        };
        JoinGroupResponse {
            error_code: code::NONE,
            generation_id: self.generation_id,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader: self.leader_id.clone().unwrap_or_default(),
            skip_assignment,
            member_id: id.to_owned(),
            members,
            ..Default::default()
        }
    }

    /// Starts a join phase (Kafka's `prepareRebalance`).
    fn prepare_rebalance(&mut self, now: Instant, now_ms: i64) {
        let limits = ClassicLimits {
            initial_rebalance_delay_ms: 0,
            min_session_timeout_ms: 0,
            max_session_timeout_ms: i32::MAX,
        };
        self.prepare_rebalance_with(&limits, now, now_ms);
    }

    fn prepare_rebalance_with(&mut self, limits: &ClassicLimits, now: Instant, now_ms: i64) {
        if self.state != ClassicState::PreparingRebalance {
            sluice_metrics::group_rebalanced(sluice_metrics::GroupProtocol::Classic);
        }
        // An assignment still being stored belongs to the generation this
        // rebalance ends; its late result is ignored.
        self.storing = None;
        if self.state == ClassicState::CompletingRebalance {
            for m in self.members.values_mut() {
                m.assignment = Bytes::new();
                if let Some(w) = m.sync_waiter.take() {
                    let _ = w.send(sync_error(code::REBALANCE_IN_PROGRESS));
                }
            }
        }
        let rebalance_timeout = Duration::from_millis(
            self.members
                .values()
                .map(|m| m.rebalance_timeout_ms.max(0) as u64)
                .max()
                .unwrap_or(0),
        );
        if self.state == ClassicState::Empty && limits.initial_rebalance_delay_ms > 0 {
            let delay =
                Duration::from_millis(limits.initial_rebalance_delay_ms).min(rebalance_timeout);
            self.initial_delay = Some((delay, rebalance_timeout.saturating_sub(delay), false));
            self.rebalance_deadline = Some(now + delay);
        } else {
            self.initial_delay = None;
            self.rebalance_deadline = Some(now + rebalance_timeout);
        }
        self.set_state(ClassicState::PreparingRebalance, now_ms);
        self.maybe_complete_join(now, now_ms);
    }

    /// Completes the join phase early once every member has rejoined and no
    /// handed-out member id is still expected.
    fn maybe_complete_join(&mut self, now: Instant, now_ms: i64) {
        if self.state == ClassicState::PreparingRebalance
            && self.initial_delay.is_none()
            && self.pending_members.is_empty()
            && self.members.values().all(|m| m.join_waiter.is_some())
        {
            self.complete_join(now, now_ms);
        }
    }

    /// Ends the join phase: members that did not rejoin are removed, the
    /// generation advances, a protocol and a leader are chosen, and every
    /// waiting JoinGroup is answered.
    fn complete_join(&mut self, now: Instant, now_ms: i64) {
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| m.join_waiter.is_none())
            .map(|m| m.member_id.clone())
            .collect();
        for id in gone {
            self.drop_member(&id);
        }
        self.rebalance_deadline = None;
        self.initial_delay = None;
        self.generation_id = self.generation_id.wrapping_add(1);
        if self.members.is_empty() {
            self.protocol_name = None;
            self.leader_id = None;
            self.set_state(ClassicState::Empty, now_ms);
            self.dirty = true;
            return;
        }
        self.protocol_name = self.select_protocol();
        if self
            .leader_id
            .as_ref()
            .is_none_or(|l| !self.members.contains_key(l))
        {
            self.leader_id = self
                .members
                .values()
                .min_by_key(|m| m.join_seq)
                .map(|m| m.member_id.clone());
        }
        self.set_state(ClassicState::CompletingRebalance, now_ms);
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let response = self.join_response(&id, false);
            if let Some(m) = self.members.get_mut(&id) {
                m.session_deadline = now + Duration::from_millis(m.session_timeout_ms as u64);
                if let Some(w) = m.join_waiter.take() {
                    let _ = w.send(response);
                }
            }
        }
    }

    /// Kafka's `selectProtocol`: among protocols every member supports, each
    /// member votes for its most preferred; most votes wins.
    fn select_protocol(&self) -> Option<String> {
        let mut ordered: Vec<&ClassicMember> = self.members.values().collect();
        ordered.sort_by_key(|m| m.join_seq);
        let first = ordered.first()?;
        let candidates: Vec<&String> = first
            .protocols
            .iter()
            .map(|(n, _)| n)
            .filter(|n| {
                ordered
                    .iter()
                    .all(|m| m.protocols.iter().any(|(p, _)| p == *n))
            })
            .collect();
        let mut votes: Vec<(&String, usize)> = candidates.iter().map(|c| (*c, 0)).collect();
        for m in &ordered {
            if let Some((name, _)) = m.protocols.iter().find(|(n, _)| candidates.contains(&n))
                && let Some(v) = votes.iter_mut().find(|(c, _)| *c == name)
            {
                v.1 += 1;
            }
        }
        let best = votes.iter().map(|(_, n)| *n).max()?;
        votes
            .iter()
            .find(|(_, n)| *n == best)
            .map(|(c, _)| (*c).clone())
    }

    /// Removes a member without starting a rebalance; answers its waiters.
    fn drop_member(&mut self, id: &str) {
        if let Some(mut m) = self.members.remove(id) {
            if let Some(w) = m.join_waiter.take() {
                let _ = w.send(join_error(code::UNKNOWN_MEMBER_ID, id));
            }
            if let Some(w) = m.sync_waiter.take() {
                let _ = w.send(sync_error(code::UNKNOWN_MEMBER_ID));
            }
            if let Some(instance) = &m.instance_id
                && self.static_members.get(instance).map(String::as_str) == Some(id)
            {
                self.static_members.remove(instance);
            }
        }
    }

    /// Removes a member (leave or expiry) and moves the group on.
    fn remove_member(&mut self, id: &str, now: Instant, now_ms: i64) {
        self.drop_member(id);
        match self.state {
            ClassicState::Stable | ClassicState::CompletingRebalance => {
                self.prepare_rebalance(now, now_ms)
            }
            ClassicState::PreparingRebalance => {
                if self.members.is_empty() {
                    self.complete_join(now, now_ms);
                } else {
                    self.maybe_complete_join(now, now_ms);
                }
            }
            ClassicState::Empty | ClassicState::Dead => {}
        }
    }

    /// Handles a SyncGroup.
    #[allow(clippy::too_many_arguments)] // one per SyncGroup field, plus the clocks
    pub fn sync(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
        protocol_type: Option<&str>,
        protocol_name: Option<&str>,
        assignments: Vec<(String, Bytes)>,
        now: Instant,
        now_ms: i64,
    ) -> SyncOutcome {
        let fail = |c| SyncOutcome::Done(sync_error(c));
        if self.state == ClassicState::Dead {
            return fail(code::COORDINATOR_NOT_AVAILABLE);
        }
        if self.fenced(member_id, instance_id) {
            return fail(code::FENCED_INSTANCE_ID);
        }
        if !self.members.contains_key(member_id) {
            return fail(code::UNKNOWN_MEMBER_ID);
        }
        if generation_id != self.generation_id {
            return fail(code::ILLEGAL_GENERATION);
        }
        if protocol_type.is_some_and(|t| Some(t) != self.protocol_type.as_deref())
            || protocol_name.is_some_and(|n| Some(n) != self.protocol_name.as_deref())
        {
            return fail(code::INCONSISTENT_GROUP_PROTOCOL);
        }
        match self.state {
            ClassicState::Empty | ClassicState::Dead => fail(code::UNKNOWN_MEMBER_ID),
            ClassicState::PreparingRebalance => fail(code::REBALANCE_IN_PROGRESS),
            ClassicState::Stable => {
                self.touch(member_id, now);
                SyncOutcome::Done(self.sync_response(member_id))
            }
            ClassicState::CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                if let Some(m) = self.members.get_mut(member_id)
                    && let Some(old) = m.sync_waiter.replace(tx)
                {
                    let _ = old.send(sync_error(code::REBALANCE_IN_PROGRESS));
                }
                // A leader's SyncGroup repeated while the first one's
                // assignment is being stored waits for that store.
                if self.leader_id.as_deref() != Some(member_id) || self.storing.is_some() {
                    return SyncOutcome::Wait(rx);
                }
                let mut given: HashMap<String, Bytes> = assignments.into_iter().collect();
                let assignment: HashMap<String, Bytes> = self
                    .members
                    .keys()
                    .map(|id| (id.clone(), given.remove(id).unwrap_or_default()))
                    .collect();
                let value = self.value_with(Some(&assignment), now_ms);
                self.storing = Some((self.generation_id, assignment));
                SyncOutcome::Store {
                    rx,
                    generation_id: self.generation_id,
                    value,
                }
            }
        }
    }

    /// The result of storing the leader's assignment for `generation_id`
    /// (Kafka's SyncGroup append callback). On success the group becomes
    /// Stable and every waiting member gets its assignment; on failure every
    /// waiting member gets `result`'s error code and the group rebalances.
    /// Ignored if the group has moved on since the assignment arrived.
    pub fn assignment_stored(
        &mut self,
        generation_id: i32,
        result: Result<(), i16>,
        now: Instant,
        now_ms: i64,
    ) {
        if self.state != ClassicState::CompletingRebalance
            || self.generation_id != generation_id
            || self
                .storing
                .as_ref()
                .is_none_or(|(g, _)| *g != generation_id)
        {
            return;
        }
        let Some((_, mut assignment)) = self.storing.take() else {
            return;
        };
        match result {
            Ok(()) => {
                for m in self.members.values_mut() {
                    m.assignment = assignment.remove(&m.member_id).unwrap_or_default();
                }
                self.set_state(ClassicState::Stable, now_ms);
                let ids: Vec<String> = self.members.keys().cloned().collect();
                for id in ids {
                    let response = self.sync_response(&id);
                    if let Some(m) = self.members.get_mut(&id) {
                        m.session_deadline =
                            now + Duration::from_millis(m.session_timeout_ms as u64);
                        if let Some(w) = m.sync_waiter.take() {
                            let _ = w.send(response);
                        }
                    }
                }
            }
            Err(error_code) => {
                // Kafka's resetAndPropagateAssignmentError, then
                // maybePrepareRebalance.
                tracing::warn!(
                    group = %self.group_id,
                    generation_id,
                    error_code,
                    "cannot store the group assignment; rebalancing"
                );
                for m in self.members.values_mut() {
                    m.assignment = Bytes::new();
                    m.session_deadline = now + Duration::from_millis(m.session_timeout_ms as u64);
                    if let Some(w) = m.sync_waiter.take() {
                        let _ = w.send(sync_error(error_code));
                    }
                }
                self.prepare_rebalance(now, now_ms);
            }
        }
    }

    fn sync_response(&self, id: &str) -> SyncGroupResponse {
        SyncGroupResponse {
            error_code: code::NONE,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            assignment: self
                .members
                .get(id)
                .map(|m| m.assignment.clone())
                .unwrap_or_default(),
            ..Default::default()
        }
    }

    fn touch(&mut self, id: &str, now: Instant) {
        if let Some(m) = self.members.get_mut(id) {
            m.session_deadline = now + Duration::from_millis(m.session_timeout_ms as u64);
        }
    }

    /// Handles a Heartbeat; returns the error code.
    pub fn heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
        now: Instant,
    ) -> i16 {
        if self.state == ClassicState::Dead {
            return code::COORDINATOR_NOT_AVAILABLE;
        }
        if self.fenced(member_id, instance_id) {
            return code::FENCED_INSTANCE_ID;
        }
        if !self.members.contains_key(member_id) {
            return code::UNKNOWN_MEMBER_ID;
        }
        if generation_id != self.generation_id {
            return code::ILLEGAL_GENERATION;
        }
        match self.state {
            ClassicState::Empty | ClassicState::Dead => code::UNKNOWN_MEMBER_ID,
            ClassicState::CompletingRebalance | ClassicState::Stable => {
                self.touch(member_id, now);
                code::NONE
            }
            ClassicState::PreparingRebalance => {
                self.touch(member_id, now);
                code::REBALANCE_IN_PROGRESS
            }
        }
    }

    /// Handles one member of a LeaveGroup; returns its error code.
    pub fn leave(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        now: Instant,
        now_ms: i64,
    ) -> i16 {
        if self.state == ClassicState::Dead {
            return code::COORDINATOR_NOT_AVAILABLE;
        }
        let id = match instance_id {
            Some(instance) => match self.static_members.get(instance) {
                Some(current) if member_id.is_empty() || member_id == current => current.clone(),
                Some(_) => return code::FENCED_INSTANCE_ID,
                None => return code::UNKNOWN_MEMBER_ID,
            },
            None => member_id.to_owned(),
        };
        if self.pending_members.remove(&id).is_some() {
            self.maybe_complete_join(now, now_ms);
            return code::NONE;
        }
        if !self.members.contains_key(&id) {
            return code::UNKNOWN_MEMBER_ID;
        }
        self.remove_member(&id, now, now_ms);
        code::NONE
    }

    /// Checks an OffsetCommit against the group (Kafka's
    /// `handleCommitOffsets`): `Ok(())` if it may be written.
    pub fn validate_commit(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
        now: Instant,
    ) -> Result<(), i16> {
        if self.state == ClassicState::Dead {
            return Err(code::COORDINATOR_NOT_AVAILABLE);
        }
        if generation_id < 0 && self.state == ClassicState::Empty {
            return Ok(()); // offsets stored by a client that does not use the group protocol
        }
        if self.fenced(member_id, instance_id) {
            return Err(code::FENCED_INSTANCE_ID);
        }
        if !self.members.contains_key(member_id) {
            return Err(code::UNKNOWN_MEMBER_ID);
        }
        if generation_id != self.generation_id {
            return Err(code::ILLEGAL_GENERATION);
        }
        match self.state {
            ClassicState::CompletingRebalance => Err(code::REBALANCE_IN_PROGRESS),
            _ => {
                self.touch(member_id, now);
                Ok(())
            }
        }
    }

    /// Expires sessions and handed-out member ids and ends a join phase
    /// whose time is up.
    pub fn on_timer(&mut self, now: Instant, now_ms: i64) {
        let before = self.pending_members.len();
        self.pending_members.retain(|_, deadline| *deadline > now);
        if self.pending_members.len() != before {
            self.maybe_complete_join(now, now_ms);
        }
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| !m.awaiting() && m.session_deadline <= now)
            .map(|m| m.member_id.clone())
            .collect();
        for id in expired {
            tracing::info!(group = %self.group_id, member = %id, "member session expired");
            self.remove_member(&id, now, now_ms);
        }
        if self.state == ClassicState::PreparingRebalance
            && self.rebalance_deadline.is_some_and(|d| d <= now)
        {
            match self.initial_delay {
                Some((delay, remaining, true)) if !remaining.is_zero() => {
                    let step = delay.min(remaining);
                    self.initial_delay = Some((delay, remaining - step, false));
                    self.rebalance_deadline = Some(now + step);
                }
                _ => self.complete_join(now, now_ms),
            }
        }
    }

    /// When [`ClassicGroup::on_timer`] next has work.
    pub fn next_deadline(&self) -> Option<Instant> {
        let sessions = self
            .members
            .values()
            .filter(|m| !m.awaiting())
            .map(|m| m.session_deadline);
        let pending = self.pending_members.values().copied();
        sessions
            .chain(pending)
            .chain(
                self.rebalance_deadline
                    .filter(|_| self.state == ClassicState::PreparingRebalance),
            )
            .min()
    }

    /// Topics the members subscribe to, parsed from the selected protocol's
    /// ConsumerProtocolSubscription (only for protocol type "consumer").
    pub fn subscribed_topics(&self) -> Option<Vec<String>> {
        if self.protocol_type.as_deref() != Some("consumer") {
            return None;
        }
        let protocol = self.protocol_name.as_deref()?;
        let mut topics = Vec::new();
        for m in self.members.values() {
            topics.extend(parse_subscription_topics(&m.metadata_for(protocol))?);
        }
        Some(topics)
    }

    /// The metadata to persist.
    pub fn to_value(&self) -> GroupValue {
        if self.state == ClassicState::Stable {
            let assignment: HashMap<String, Bytes> = self
                .members
                .values()
                .map(|m| (m.member_id.clone(), m.assignment.clone()))
                .collect();
            self.value_with(Some(&assignment), self.state_timestamp_ms)
        } else {
            self.value_with(None, self.state_timestamp_ms)
        }
    }

    /// The metadata of this generation: Stable with `assignment` (members
    /// and their assignments are kept), or without members when `None`.
    fn value_with(
        &self,
        assignment: Option<&HashMap<String, Bytes>>,
        state_timestamp_ms: i64,
    ) -> GroupValue {
        let protocol = self.protocol_name.clone().unwrap_or_default();
        let stable = assignment.is_some();
        GroupValue {
            group_type: CLASSIC.to_owned(),
            protocol_type: self.protocol_type.clone(),
            generation: self.generation_id,
            protocol: self.protocol_name.clone().filter(|_| stable),
            leader: self.leader_id.clone().filter(|_| stable),
            state_timestamp_ms,
            members: if let Some(assignment) = assignment {
                self.members
                    .values()
                    .map(|m| MemberValue {
                        member_id: m.member_id.clone(),
                        instance_id: m.instance_id.clone(),
                        client_id: m.client_id.clone(),
                        client_host: m.client_host.clone(),
                        session_timeout_ms: m.session_timeout_ms,
                        rebalance_timeout_ms: m.rebalance_timeout_ms,
                        subscription: m.metadata_for(&protocol),
                        assignment: assignment.get(&m.member_id).cloned().unwrap_or_default(),
                    })
                    .collect()
            } else {
                Vec::new()
            },
        }
    }

    /// Rebuilds a group from persisted metadata. Members come back Stable
    /// with a fresh session: if they are still alive their heartbeats keep
    /// them, otherwise they expire and the group rebalances.
    pub fn from_value(group_id: &str, value: &GroupValue, now: Instant) -> ClassicGroup {
        let mut g = ClassicGroup::new(group_id, value.state_timestamp_ms);
        g.generation_id = value.generation;
        g.protocol_type = value.protocol_type.clone();
        if value.members.is_empty() {
            return g;
        }
        g.protocol_name = value.protocol.clone();
        g.leader_id = value.leader.clone();
        g.state = ClassicState::Stable;
        let protocol = value.protocol.clone().unwrap_or_default();
        for (seq, m) in value.members.iter().enumerate() {
            if let Some(instance) = &m.instance_id {
                g.static_members
                    .insert(instance.clone(), m.member_id.clone());
            }
            g.members.insert(
                m.member_id.clone(),
                ClassicMember {
                    member_id: m.member_id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    session_timeout_ms: m.session_timeout_ms,
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    protocols: vec![(protocol.clone(), m.subscription.clone())],
                    assignment: m.assignment.clone(),
                    join_waiter: None,
                    sync_waiter: None,
                    session_deadline: now
                        + Duration::from_millis(m.session_timeout_ms.max(0) as u64),
                    join_seq: seq as u64,
                },
            );
        }
        g.next_join_seq = value.members.len() as u64;
        g
    }
}

/// Topic names of a ConsumerProtocolSubscription (version, then an array of
/// strings, non-flexible). `None` if the bytes are not one.
pub fn parse_subscription_topics(mut b: &[u8]) -> Option<Vec<String>> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        if b.len() < n {
            return None;
        }
        let (head, tail) = b.split_at(n);
        *b = tail;
        Some(head)
    }
    let _version = take(&mut b, 2)?;
    let count = i32::from_be_bytes(take(&mut b, 4)?.try_into().ok()?);
    // Each name needs at least its 2-byte length: bound the count by the bytes.
    if count < 0 || count as usize > b.len() / 2 {
        return None;
    }
    let mut topics = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let len = i16::from_be_bytes(take(&mut b, 2)?.try_into().ok()?);
        let name = take(&mut b, usize::try_from(len).ok()?)?;
        topics.push(String::from_utf8(name.to_vec()).ok()?);
    }
    Some(topics)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: ClassicLimits = ClassicLimits {
        initial_rebalance_delay_ms: 0,
        min_session_timeout_ms: 6000,
        max_session_timeout_ms: 60_000,
    };

    fn args(member_id: &str, instance: Option<&str>) -> JoinArgs {
        JoinArgs {
            member_id: member_id.to_owned(),
            instance_id: instance.map(str::to_owned),
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout_ms: 6000,
            rebalance_timeout_ms: 10_000,
            protocol_type: "consumer".into(),
            protocols: vec![("range".into(), Bytes::from_static(b"sub"))],
            require_known_member_id: true,
        }
    }

    fn done(o: JoinOutcome) -> JoinGroupResponse {
        match o {
            JoinOutcome::Done(r) => r,
            JoinOutcome::Wait(mut rx) => rx.try_recv().expect("join completed"),
        }
    }

    /// Joins a dynamic member through the two-step join; returns its id.
    fn join_new(g: &mut ClassicGroup, now: Instant) -> (String, JoinOutcome) {
        let first = done(g.join(args("", None), &LIMITS, now, 0));
        assert_eq!(first.error_code, code::MEMBER_ID_REQUIRED);
        let id = first.member_id.clone();
        (id.clone(), g.join(args(&id, None), &LIMITS, now, 0))
    }

    fn sync_all(g: &mut ClassicGroup, ids: &[String], now: Instant) {
        let leader = g.leader_id.clone().expect("leader");
        let gen_id = g.generation_id;
        for id in ids.iter().filter(|i| **i != leader) {
            let _ = g.sync(id, None, gen_id, None, None, vec![], now, 0);
        }
        let assignments = ids
            .iter()
            .map(|i| (i.clone(), Bytes::from(format!("for-{i}"))))
            .collect();
        let SyncOutcome::Store { generation_id, .. } =
            g.sync(&leader, None, gen_id, None, None, assignments, now, 0)
        else {
            panic!("the leader's assignment must be stored")
        };
        g.assignment_stored(generation_id, Ok(()), now, 0);
        assert_eq!(g.state, ClassicState::Stable);
    }

    #[test]
    fn two_step_join_then_leader_sync_makes_the_group_stable() {
        let now = Instant::now();
        let mut g = ClassicGroup::new("g", 0);
        let (id, outcome) = join_new(&mut g, now);
        let joined = done(outcome);
        assert_eq!(joined.error_code, code::NONE);
        assert_eq!(joined.generation_id, 1);
        assert_eq!(joined.leader, id);
        assert_eq!(joined.members.len(), 1);
        assert_eq!(joined.protocol_name.as_deref(), Some("range"));
        let SyncOutcome::Store {
            mut rx,
            generation_id,
            value,
        } = g.sync(
            &id,
            None,
            1,
            Some("consumer"),
            Some("range"),
            vec![(id.clone(), Bytes::from_static(b"a"))],
            now,
            0,
        )
        else {
            panic!("the leader's assignment must be stored before anyone is answered")
        };
        assert_eq!(generation_id, 1);
        assert_eq!(value.members.len(), 1);
        assert_eq!(value.members[0].assignment, Bytes::from_static(b"a"));
        assert!(rx.try_recv().is_err(), "no answer before the store");
        assert_eq!(g.state, ClassicState::CompletingRebalance);
        g.assignment_stored(1, Ok(()), now, 0);
        let synced = rx.try_recv().expect("answered");
        assert_eq!(synced.assignment, Bytes::from_static(b"a"));
        assert_eq!(g.state, ClassicState::Stable);
        assert_eq!(g.to_value(), value, "what was stored is the Stable group");
    }

    #[test]
    fn a_join_and_a_second_member_each_count_a_rebalance() {
        use sluice_metrics::{GroupProtocol, group_rebalances};
        // The counter is process-wide and other tests rebalance at the same
        // time, so this asserts lower bounds only.
        let now = Instant::now();
        let mut g = ClassicGroup::new("g", 0);
        let before = group_rebalances(GroupProtocol::Classic);
        let (a, oa) = join_new(&mut g, now);
        done(oa);
        assert!(group_rebalances(GroupProtocol::Classic) > before);
        sync_all(&mut g, std::slice::from_ref(&a), now);
        let stable = group_rebalances(GroupProtocol::Classic);
        let (_b, _ob) = join_new(&mut g, now);
        assert_eq!(g.state, ClassicState::PreparingRebalance);
        assert!(group_rebalances(GroupProtocol::Classic) > stable);
    }

    #[test]
    fn followers_are_answered_only_after_the_assignment_is_stored() {
        let now = Instant::now();
        let mut g = ClassicGroup::new("g", 0);
        let (a, oa) = join_new(&mut g, now);
        done(oa);
        sync_all(&mut g, std::slice::from_ref(&a), now);
        let (b, ob) = join_new(&mut g, now);
        let oa = g.join(args(&a, None), &LIMITS, now, 0);
        done(ob);
        done(oa);
        let leader = g.leader_id.clone().expect("leader");
        let follower = if leader == a { b.clone() } else { a.clone() };
        let SyncOutcome::Wait(mut follower_rx) =
            g.sync(&follower, None, 2, None, None, vec![], now, 0)
        else {
            panic!("follower waits for the leader")
        };
        let assignments = vec![
            (a.clone(), Bytes::from_static(b"A")),
            (b.clone(), Bytes::from_static(b"B")),
        ];
        let SyncOutcome::Store { mut rx, .. } =
            g.sync(&leader, None, 2, None, None, assignments.clone(), now, 0)
        else {
            panic!("leader's assignment is stored")
        };
        // A repeated leader SyncGroup during the store starts no second store.
        let SyncOutcome::Wait(mut again) =
            g.sync(&leader, None, 2, None, None, assignments, now, 0)
        else {
            panic!("a repeated leader sync waits")
        };
        assert_eq!(
            rx.try_recv().expect("replaced").error_code,
            code::REBALANCE_IN_PROGRESS
        );
        assert!(
            follower_rx.try_recv().is_err(),
            "follower answered before the store"
        );
        // A result for another generation is ignored.
        g.assignment_stored(1, Ok(()), now, 0);
        assert!(follower_rx.try_recv().is_err());
        g.assignment_stored(2, Ok(()), now, 0);
        let f = follower_rx.try_recv().expect("follower answered");
        assert_eq!(f.error_code, code::NONE);
        let expected = if follower == a { &b"A"[..] } else { &b"B"[..] };
        assert_eq!(f.assignment.as_ref(), expected);
        assert_eq!(
            again.try_recv().expect("leader answered").error_code,
            code::NONE
        );
        assert_eq!(g.state, ClassicState::Stable);
    }

    #[test]
    fn a_failed_assignment_store_answers_the_error_and_rebalances() {
        let now = Instant::now();
        let mut g = ClassicGroup::new("g", 0);
        let (a, oa) = join_new(&mut g, now);
        done(oa);
        sync_all(&mut g, std::slice::from_ref(&a), now);
        let (b, ob) = join_new(&mut g, now);
        let oa = g.join(args(&a, None), &LIMITS, now, 0);
        done(ob);
        done(oa);
        let leader = g.leader_id.clone().expect("leader");
        let follower = if leader == a { b.clone() } else { a.clone() };
        let SyncOutcome::Wait(mut follower_rx) =
            g.sync(&follower, None, 2, None, None, vec![], now, 0)
        else {
            panic!("follower waits")
        };
        let assignments = vec![(a.clone(), Bytes::from_static(b"A"))];
        let SyncOutcome::Store { mut rx, .. } =
            g.sync(&leader, None, 2, None, None, assignments, now, 0)
        else {
            panic!("leader's assignment is stored")
        };
        g.assignment_stored(2, Err(code::NOT_COORDINATOR), now, 0);
        assert_eq!(
            rx.try_recv().expect("leader").error_code,
            code::NOT_COORDINATOR
        );
        assert_eq!(
            follower_rx.try_recv().expect("follower").error_code,
            code::NOT_COORDINATOR
        );
        assert_eq!(g.state, ClassicState::PreparingRebalance);
        assert!(g.members.values().all(|m| m.assignment.is_empty()));
        assert_eq!(g.members.len(), 2, "members stay and rejoin");
        // The next generation can complete normally.
        let oa = g.join(args(&a, None), &LIMITS, now, 0);
        let ob = g.join(args(&b, None), &LIMITS, now, 0);
        done(oa);
        done(ob);
        assert_eq!(g.generation_id, 3);
        sync_all(&mut g, &[a, b], now);
    }

    #[test]
    fn stale_generation_and_unknown_member_are_refused_without_change() {
        let now = Instant::now();
        let mut g = ClassicGroup::new("g", 0);
        let (id, o) = join_new(&mut g, now);
        done(o);
        sync_all(&mut g, std::slice::from_ref(&id), now);
        assert_eq!(g.heartbeat(&id, None, 7, now), code::ILLEGAL_GENERATION);
        assert_eq!(g.heartbeat("nobody", None, 1, now), code::UNKNOWN_MEMBER_ID);
        assert_eq!(
            g.validate_commit(&id, None, 7, now),
            Err(code::ILLEGAL_GENERATION)
        );
        assert_eq!(
            g.validate_commit("nobody", None, 1, now),
            Err(code::UNKNOWN_MEMBER_ID)
        );
        assert_eq!(g.validate_commit(&id, None, 1, now), Ok(()));
        assert_eq!(g.state, ClassicState::Stable);
        assert_eq!(g.generation_id, 1);
        assert_eq!(g.members.len(), 1);
    }

    #[test]
    fn join_without_a_common_protocol_is_refused() {
        let now = Instant::now();
        let mut g = ClassicGroup::new("g", 0);
        let (_id, o) = join_new(&mut g, now);
        done(o);
        let mut other = args("", None);
        other.protocols = vec![("roundrobin".into(), Bytes::new())];
        let r = done(g.join(other, &LIMITS, now, 0));
        assert_eq!(r.error_code, code::INCONSISTENT_GROUP_PROTOCOL);
        assert_eq!(g.members.len(), 1);
        assert!(g.pending_members.is_empty());
    }

    #[test]
    fn session_expiry_removes_the_member_and_rebalances_the_rest() {
        let now = Instant::now();
        let mut g = ClassicGroup::new("g", 0);
        let (a, oa) = join_new(&mut g, now);
        // The first join completes at once (no initial delay); b's join
        // starts a second rebalance that a must rejoin.
        done(oa);
        sync_all(&mut g, std::slice::from_ref(&a), now);
        let (b, ob) = join_new(&mut g, now);
        assert_eq!(g.state, ClassicState::PreparingRebalance);
        let oa = g.join(args(&a, None), &LIMITS, now, 0);
        done(ob);
        done(oa);
        sync_all(&mut g, &[a.clone(), b.clone()], now);
        assert_eq!(g.generation_id, 2);
        // b keeps heartbeating; a goes silent past its session timeout.
        let later = now + Duration::from_millis(5000);
        assert_eq!(g.heartbeat(&b, None, 2, later), code::NONE);
        let expiry = g.next_deadline().expect("a session deadline");
        assert!(expiry <= now + Duration::from_millis(6000));
        g.on_timer(now + Duration::from_millis(6001), 0);
        assert!(!g.members.contains_key(&a));
        assert_eq!(g.state, ClassicState::PreparingRebalance);
        assert_eq!(
            g.heartbeat(&b, None, 2, now + Duration::from_millis(6002)),
            code::REBALANCE_IN_PROGRESS
        );
        let r = done(g.join(args(&b, None), &LIMITS, now, 0));
        assert_eq!(r.generation_id, 3);
        assert_eq!(r.leader, b);
    }

    #[test]
    fn static_member_rejoin_keeps_its_assignment_without_rebalance() {
        let now = Instant::now();
        let mut g = ClassicGroup::new("g", 0);
        let a = done(g.join(args("", Some("a")), &LIMITS, now, 0));
        assert_eq!(
            a.error_code,
            code::NONE,
            "static members skip MEMBER_ID_REQUIRED"
        );
        sync_all(&mut g, std::slice::from_ref(&a.member_id), now);
        let generation = g.generation_id;
        let again = done(g.join(args("", Some("a")), &LIMITS, now, 0));
        assert_eq!(again.error_code, code::NONE);
        assert_ne!(again.member_id, a.member_id);
        assert_eq!(again.generation_id, generation);
        assert_eq!(g.state, ClassicState::Stable);
        // The old incarnation is fenced; the new one gets the old assignment.
        assert_eq!(
            g.heartbeat(&a.member_id, Some("a"), generation, now),
            code::FENCED_INSTANCE_ID
        );
        let SyncOutcome::Done(s) = g.sync(
            &again.member_id,
            Some("a"),
            generation,
            None,
            None,
            vec![],
            now,
            0,
        ) else {
            panic!("stable sync answers at once")
        };
        assert_eq!(s.assignment, Bytes::from(format!("for-{}", a.member_id)));
    }

    #[test]
    fn subscription_topics_parse_and_hostile_counts_are_refused() {
        let mut b = vec![0, 1, 0, 0, 0, 2];
        for t in ["a", "bc"] {
            b.extend_from_slice(&(t.len() as i16).to_be_bytes());
            b.extend_from_slice(t.as_bytes());
        }
        b.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(
            parse_subscription_topics(&b),
            Some(vec!["a".into(), "bc".into()])
        );
        assert_eq!(
            parse_subscription_topics(&[0, 1, 0x7f, 0xff, 0xff, 0xff]),
            None
        );
    }
}
