//! Incremental fetch sessions (KIP-227, Fetch v7+).
//!
//! A consumer or follower that fetches many partitions opens a session with
//! a full fetch (`session_epoch` 0). Its later fetches (epoch 1, 2, ...)
//! list only the partitions whose fetch position or limits changed, and
//! the broker answers only the partitions with something new: records, an
//! error, or a moved high watermark, last stable offset or log start
//! offset. A consumer of thousands of quiet partitions then sends and
//! receives a few bytes per fetch instead of every partition each time.
//!
//! Kafka's rules, which clients rely on:
//! - Epoch 0 is a full fetch that may create a session; the response
//!   carries the new id, or 0 when the cache has no room (the client
//!   simply keeps sending full fetches). A nonzero `session_id` with epoch
//!   0 or -1 closes that session first; epoch -1 creates none.
//! - Epoch N > 0 names a session: unknown id (or another principal's) is
//!   FETCH_SESSION_ID_NOT_FOUND, a wrong epoch INVALID_FETCH_SESSION_EPOCH,
//!   a session opened with topic names used with topic ids (or back)
//!   FETCH_SESSION_TOPIC_ID_ERROR. Each error answers with no partitions
//!   and session id 0; the client starts over with a full fetch.
//! - An incremental fetch adds or updates the partitions it lists, drops
//!   `forgotten_topics_data`, and reads every partition of the session.
//!   Partitions that answered are moved to the back, so under a tight
//!   `max_bytes` every partition gets its turn.
//!
//! Bounds: at most [`MAX_SESSIONS`] sessions (one idle longer than
//! [`SESSION_EVICTION`] may be evicted for a new one), at most
//! [`MAX_SESSION_PARTITIONS`] partitions in one session and
//! [`MAX_CACHED_PARTITIONS`] in all. A fetch past a bound is served without
//! a session, or its session is closed (FETCH_SESSION_ID_NOT_FOUND), so
//! the cache never grows with what a client asks for.
//!
//! The session's view of what the client was last told (high watermark and
//! the other offsets) is updated only by [`FetchSessions::commit`], once the
//! response is really sent: a response a quota throttled away tells the
//! client nothing.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sluice_protocol::error::codes as code;
use sluice_protocol::messages::fetch::{
    FetchPartition, FetchRequest, FetchResponse, FetchTopic, FetchableTopicResponse, PartitionData,
};
use uuid::Uuid;

/// Sessions kept at most (Kafka's `max.incremental.fetch.session.cache.slots`).
pub const MAX_SESSIONS: usize = 1_000;

/// A session idle this long may be evicted to make room for a new one
/// (Kafka's `min.incremental.fetch.session.eviction.ms`).
pub const SESSION_EVICTION: Duration = Duration::from_secs(120);

/// Partitions one session may hold; a bigger fetch is served sessionless.
pub const MAX_SESSION_PARTITIONS: usize = 50_000;

/// Partitions all sessions together may hold.
pub const MAX_CACHED_PARTITIONS: usize = 500_000;

/// Fetch sessions begin at this version.
const MIN_SESSION_VERSION: i16 = 7;

/// From this version topics are named by id.
const MIN_TOPIC_ID_VERSION: i16 = 13;

/// The epoch that opens a session.
const INITIAL_EPOCH: i32 = 0;

/// The epoch that closes one (and fetches without a session).
const FINAL_EPOCH: i32 = -1;

/// A partition as the request names it: by topic name before v13, by topic
/// id from v13 (the other field is left empty).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    topic: String,
    topic_id: Uuid,
    partition: i32,
}

/// What the client asked for a partition, and what it was last told.
#[derive(Clone, Debug)]
pub struct Cached {
    key: Key,
    /// The fetch parameters from the last request that listed it.
    request: FetchPartition,
    told: Told,
}

/// The offsets last sent for a partition; `None` before the first answer
/// and after an error, so the next read always answers it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Told(Option<(i64, i64, i64)>);

impl Told {
    fn of(data: &PartitionData) -> Told {
        if data.error_code != code::NONE {
            return Told(None);
        }
        Told(Some((
            data.high_watermark,
            data.last_stable_offset,
            data.log_start_offset,
        )))
    }

    /// True if `data` carries something the client has not been told.
    fn must_answer(&self, data: &PartitionData) -> bool {
        !data.records.is_empty()
            || data.error_code != code::NONE
            || data.diverging_epoch.epoch >= 0
            || data.preferred_read_replica >= 0
            || Told::of(data) != *self
    }
}

struct Session {
    principal: String,
    uses_topic_ids: bool,
    /// The epoch the next fetch must carry.
    next_epoch: i32,
    /// In read order: partitions that answered last are at the back.
    partitions: Vec<Cached>,
    last_used: Instant,
}

impl Session {
    fn index(&self) -> HashMap<&Key, usize> {
        self.partitions
            .iter()
            .enumerate()
            .map(|(i, c)| (&c.key, i))
            .collect()
    }
}

#[derive(Default)]
struct Cache {
    sessions: HashMap<i32, Session>,
    /// Partitions across all sessions.
    partitions: usize,
}

impl Cache {
    fn remove(&mut self, id: i32) {
        if let Some(s) = self.sessions.remove(&id) {
            self.partitions -= s.partitions.len();
        }
        self.publish();
    }

    fn publish(&self) {
        sluice_metrics::fetch_session_cache(self.sessions.len(), self.partitions);
    }

    /// Makes room for a session of `size` partitions, evicting the least
    /// recently used session if it has been idle past [`SESSION_EVICTION`].
    fn make_room(&mut self, size: usize, now: Instant) -> bool {
        loop {
            if self.sessions.len() < MAX_SESSIONS && self.partitions + size <= MAX_CACHED_PARTITIONS
            {
                return true;
            }
            let oldest = self
                .sessions
                .iter()
                .min_by_key(|(_, s)| s.last_used)
                .map(|(id, s)| (*id, s.last_used));
            match oldest {
                Some((id, last_used)) if now.duration_since(last_used) >= SESSION_EVICTION => {
                    self.remove(id);
                }
                _ => return false,
            }
        }
    }

    fn new_id(&self) -> i32 {
        loop {
            // Random ids, as Kafka's: a guessable id would let one client
            // disturb another's session (ours are also bound to the
            // principal).
            let bits = Uuid::new_v4().as_u128() as u32;
            let id = (bits & i32::MAX as u32) as i32;
            if id != 0 && !self.sessions.contains_key(&id) {
                return id;
            }
        }
    }
}

/// The broker's fetch session cache.
#[derive(Default)]
pub struct FetchSessions {
    cache: Mutex<Cache>,
}

impl std::fmt::Debug for FetchSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (sessions, partitions) = self.size();
        f.debug_struct("FetchSessions")
            .field("sessions", &sessions)
            .field("partitions", &partitions)
            .finish()
    }
}

/// How one fetch relates to the session cache, from [`FetchSessions::begin`]
/// to [`FetchSessions::finish`].
#[derive(Debug)]
pub enum Ticket {
    /// Served as asked, no session (before v7, epoch -1, or over a bound).
    Sessionless,
    /// A full fetch that opens a session if the cache has room.
    Open {
        principal: String,
        uses_topic_ids: bool,
        /// The request's partitions, in order.
        partitions: Vec<Cached>,
    },
    /// An incremental fetch in session `id`.
    Incremental { id: i32 },
}

/// What [`FetchSessions::commit`] records once the response went out.
#[derive(Debug)]
pub struct Sent {
    session: Option<SentSession>,
}

#[derive(Debug)]
struct SentSession {
    id: i32,
    principal: String,
    uses_topic_ids: bool,
    /// This fetch opened the session.
    opened: bool,
    /// The partitions answered, with what they were told.
    answered: Vec<(Key, Told)>,
}

impl FetchSessions {
    /// The number of open sessions and the partitions they hold.
    pub fn size(&self) -> (usize, usize) {
        let cache = self.lock();
        (cache.sessions.len(), cache.partitions)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Resolves `request`'s session. Returns the request to serve (for an
    /// incremental fetch, every partition of the session with the
    /// parameters last given) and the ticket to finish with, or the
    /// top-level error to answer.
    pub fn begin(
        &self,
        principal: &str,
        version: i16,
        mut request: FetchRequest,
    ) -> Result<(FetchRequest, Ticket), i16> {
        if version < MIN_SESSION_VERSION {
            return Ok((request, Ticket::Sessionless));
        }
        let uses_topic_ids = version >= MIN_TOPIC_ID_VERSION;
        let mut cache = self.lock();
        if request.session_epoch == INITIAL_EPOCH || request.session_epoch == FINAL_EPOCH {
            if request.session_id != 0 {
                let owned = cache
                    .sessions
                    .get(&request.session_id)
                    .is_some_and(|s| s.principal == principal);
                if owned {
                    cache.remove(request.session_id);
                }
            }
            let size: usize = request.topics.iter().map(|t| t.partitions.len()).sum();
            let ticket = if request.session_epoch == INITIAL_EPOCH && size <= MAX_SESSION_PARTITIONS
            {
                let mut partitions = Vec::new();
                update(&mut partitions, &request, uses_topic_ids);
                Ticket::Open {
                    principal: principal.to_owned(),
                    uses_topic_ids,
                    partitions,
                }
            } else {
                Ticket::Sessionless
            };
            return Ok((request, ticket));
        }
        let id = request.session_id;
        let Some(session) = cache
            .sessions
            .get_mut(&id)
            .filter(|s| s.principal == principal)
        else {
            return Err(code::FETCH_SESSION_ID_NOT_FOUND);
        };
        if session.next_epoch != request.session_epoch {
            return Err(code::INVALID_FETCH_SESSION_EPOCH);
        }
        if session.uses_topic_ids != uses_topic_ids {
            return Err(code::FETCH_SESSION_TOPIC_ID_ERROR);
        }
        let before = session.partitions.len();
        update(&mut session.partitions, &request, uses_topic_ids);
        let after = session.partitions.len();
        cache.partitions = cache.partitions + after - before;
        cache.publish();
        let over = after > MAX_SESSION_PARTITIONS || cache.partitions > MAX_CACHED_PARTITIONS;
        if over || after == 0 {
            cache.remove(id);
            if over {
                tracing::debug!(
                    session = id,
                    partitions = after,
                    "fetch session over its bound; closed"
                );
                return Err(code::FETCH_SESSION_ID_NOT_FOUND);
            }
            // Kafka: a session emptied by its own fetch ends, and that
            // fetch is answered without one.
            request.topics.clear();
            return Ok((request, Ticket::Sessionless));
        }
        let session = cache.sessions.get_mut(&id).expect("present above");
        session.next_epoch = next_epoch(session.next_epoch);
        session.last_used = Instant::now();
        request.topics = expand(&session.partitions);
        request.forgotten_topics_data.clear();
        Ok((request, Ticket::Incremental { id }))
    }

    /// Shapes `response` for the ticket: sets its session id and, for an
    /// incremental fetch, keeps only the partitions with something new. The
    /// returned [`Sent`] goes to [`FetchSessions::commit`] once the
    /// response is delivered as it is now.
    pub fn finish(&self, ticket: Ticket, response: &mut FetchResponse) -> Sent {
        match ticket {
            Ticket::Sessionless => {
                response.session_id = 0;
                Sent { session: None }
            }
            Ticket::Open {
                principal,
                uses_topic_ids,
                partitions,
            } => {
                if response.error_code != code::NONE {
                    response.session_id = 0;
                    return Sent { session: None };
                }
                let mut cache = self.lock();
                let now = Instant::now();
                if !cache.make_room(partitions.len(), now) {
                    response.session_id = 0;
                    return Sent { session: None };
                }
                let id = cache.new_id();
                let answered = answered(&response.responses, uses_topic_ids);
                // The session holds every partition from now on; what they
                // were told is recorded by `commit`, so a response that is
                // held back leaves them all to be answered next time.
                cache.partitions += partitions.len();
                cache.sessions.insert(
                    id,
                    Session {
                        principal: principal.clone(),
                        uses_topic_ids,
                        next_epoch: next_epoch(INITIAL_EPOCH),
                        partitions,
                        last_used: now,
                    },
                );
                cache.publish();
                response.session_id = id;
                Sent {
                    session: Some(SentSession {
                        id,
                        principal,
                        uses_topic_ids,
                        opened: true,
                        answered,
                    }),
                }
            }
            Ticket::Incremental { id } => {
                response.session_id = id;
                let cache = self.lock();
                let Some(session) = cache.sessions.get(&id) else {
                    // Evicted while the fetch waited: the client starts over.
                    response.session_id = 0;
                    response.error_code = code::FETCH_SESSION_ID_NOT_FOUND;
                    response.responses.clear();
                    return Sent { session: None };
                };
                let index = session.index();
                let uses_topic_ids = session.uses_topic_ids;
                let mut answered = Vec::new();
                for topic in &mut response.responses {
                    let (name, topic_id) = (topic.topic.clone(), topic.topic_id);
                    topic.partitions.retain(|p| {
                        let key = key_of_parts(&name, topic_id, p.partition_index, uses_topic_ids);
                        let answer = index
                            .get(&key)
                            .is_none_or(|&i| session.partitions[i].told.must_answer(p));
                        if answer {
                            answered.push((key, Told::of(p)));
                        }
                        answer
                    });
                }
                response.responses.retain(|t| !t.partitions.is_empty());
                Sent {
                    session: Some(SentSession {
                        id,
                        principal: session.principal.clone(),
                        uses_topic_ids,
                        opened: false,
                        answered,
                    }),
                }
            }
        }
    }

    /// A quota replaced the response with an empty one. As in Kafka, a
    /// session this fetch opened is not kept (the answer says no session),
    /// and an incremental session keeps what it was last told, so the next
    /// fetch answers the same partitions again.
    pub fn throttled(&self, sent: Sent, response: &mut FetchResponse) {
        let Some(sent) = sent.session else {
            return;
        };
        if sent.opened {
            let mut cache = self.lock();
            if cache
                .sessions
                .get(&sent.id)
                .is_some_and(|s| s.principal == sent.principal)
            {
                cache.remove(sent.id);
            }
            response.session_id = 0;
        }
    }

    /// Records what the delivered response told the client: call it when
    /// the response from [`FetchSessions::finish`] went out unchanged.
    pub fn commit(&self, sent: Sent) {
        let Some(sent) = sent.session else {
            return;
        };
        let mut cache = self.lock();
        let Some(session) = cache.sessions.get_mut(&sent.id) else {
            return;
        };
        if session.principal != sent.principal || session.uses_topic_ids != sent.uses_topic_ids {
            return;
        }
        let told: HashMap<Key, Told> = sent.answered.into_iter().collect();
        if !told.is_empty() {
            // Answered partitions move to the back, in their order.
            let (mut quiet, mut loud): (Vec<Cached>, Vec<Cached>) = session
                .partitions
                .drain(..)
                .partition(|c| !told.contains_key(&c.key));
            for c in &mut loud {
                c.told = told[&c.key];
            }
            quiet.append(&mut loud);
            session.partitions = quiet;
        }
    }
}

fn next_epoch(epoch: i32) -> i32 {
    // Kafka wraps from i32::MAX to 1: 0 and -1 are reserved.
    if epoch == i32::MAX { 1 } else { epoch + 1 }
}

/// Every partition of a full response, with what it tells the client.
fn answered(responses: &[FetchableTopicResponse], uses_topic_ids: bool) -> Vec<(Key, Told)> {
    responses
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(move |p| {
                let key = key_of_parts(&t.topic, t.topic_id, p.partition_index, uses_topic_ids);
                (key, Told::of(p))
            })
        })
        .collect()
}

fn key_of_parts(topic: &str, topic_id: Uuid, partition: i32, uses_topic_ids: bool) -> Key {
    if uses_topic_ids {
        Key {
            topic: String::new(),
            topic_id,
            partition,
        }
    } else {
        Key {
            topic: topic.to_owned(),
            topic_id: Uuid::nil(),
            partition,
        }
    }
}

/// Applies an incremental fetch's additions, updates and removals.
fn update(partitions: &mut Vec<Cached>, request: &FetchRequest, uses_topic_ids: bool) {
    let mut index: HashMap<Key, usize> = partitions
        .iter()
        .enumerate()
        .map(|(i, c)| (c.key.clone(), i))
        .collect();
    for topic in &request.topics {
        for p in &topic.partitions {
            let key = key_of_parts(&topic.topic, topic.topic_id, p.partition, uses_topic_ids);
            // A partition listed twice in one request keeps its last parameters.
            match index.get(&key) {
                Some(&i) => partitions[i].request = p.clone(),
                None => {
                    index.insert(key.clone(), partitions.len());
                    partitions.push(Cached {
                        key,
                        request: p.clone(),
                        told: Told(None),
                    });
                }
            }
        }
    }
    let forgotten: std::collections::HashSet<Key> = request
        .forgotten_topics_data
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|&p| key_of_parts(&t.topic, t.topic_id, p, uses_topic_ids))
        })
        .collect();
    if !forgotten.is_empty() {
        partitions.retain(|c| !forgotten.contains(&c.key));
    }
}

/// The session's partitions as request topics, in read order (a topic
/// appears again wherever its partitions are not adjacent).
fn expand(partitions: &[Cached]) -> Vec<FetchTopic> {
    let mut topics: Vec<FetchTopic> = Vec::new();
    for c in partitions {
        let same = topics
            .last()
            .is_some_and(|t| t.topic == c.key.topic && t.topic_id == c.key.topic_id);
        if !same {
            topics.push(FetchTopic {
                topic: c.key.topic.clone(),
                topic_id: c.key.topic_id,
                partitions: Vec::new(),
                ..Default::default()
            });
        }
        let last = topics.last_mut().expect("pushed above");
        last.partitions.push(c.request.clone());
    }
    topics
}

#[cfg(test)]
mod tests {
    use super::*;

    const V12: i16 = 12;
    const V13: i16 = 13;

    fn request(session_id: i32, epoch: i32, parts: &[(&str, i32, i64)]) -> FetchRequest {
        let mut topics: Vec<FetchTopic> = Vec::new();
        for &(topic, partition, offset) in parts {
            if topics.last().is_none_or(|t| t.topic != topic) {
                topics.push(FetchTopic {
                    topic: topic.to_owned(),
                    ..Default::default()
                });
            }
            topics
                .last_mut()
                .expect("pushed above")
                .partitions
                .push(FetchPartition {
                    partition,
                    fetch_offset: offset,
                    partition_max_bytes: 1 << 20,
                    ..Default::default()
                });
        }
        FetchRequest {
            session_id,
            session_epoch: epoch,
            topics,
            ..Default::default()
        }
    }

    /// What the fetch handler would answer for `request`: every partition,
    /// with high watermark `hw(topic, partition)` and records when the
    /// fetch offset is below it.
    fn serve(request: &FetchRequest, hw: impl Fn(&str, i32) -> i64) -> FetchResponse {
        FetchResponse {
            responses: request
                .topics
                .iter()
                .map(|t| FetchableTopicResponse {
                    topic: t.topic.clone(),
                    topic_id: t.topic_id,
                    partitions: t
                        .partitions
                        .iter()
                        .map(|p| {
                            let hw = hw(&t.topic, p.partition);
                            PartitionData {
                                partition_index: p.partition,
                                high_watermark: hw,
                                last_stable_offset: hw,
                                log_start_offset: 0,
                                records: if p.fetch_offset < hw {
                                    sluice_protocol::Records::from(bytes::Bytes::from_static(b"x"))
                                } else {
                                    sluice_protocol::Records::default()
                                },
                                ..Default::default()
                            }
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    fn answered(response: &FetchResponse) -> Vec<(String, i32)> {
        response
            .responses
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| (t.topic.clone(), p.partition_index))
            })
            .collect()
    }

    /// One full round trip: begin, serve, finish, commit.
    fn fetch(
        sessions: &FetchSessions,
        principal: &str,
        version: i16,
        request: FetchRequest,
        hw: impl Fn(&str, i32) -> i64,
    ) -> Result<(FetchRequest, FetchResponse), i16> {
        let (served, ticket) = sessions.begin(principal, version, request)?;
        let mut response = serve(&served, hw);
        let sent = sessions.finish(ticket, &mut response);
        sessions.commit(sent);
        Ok((served, response))
    }

    fn open(sessions: &FetchSessions, parts: &[(&str, i32, i64)]) -> i32 {
        let (_, response) =
            fetch(sessions, "alice", V12, request(0, 0, parts), |_, _| 0).expect("served");
        assert_eq!(
            answered(&response).len(),
            parts.len(),
            "a full fetch answers everything"
        );
        assert_ne!(response.session_id, 0);
        response.session_id
    }

    #[test]
    fn an_incremental_fetch_reads_the_whole_session_and_answers_only_what_changed() {
        let sessions = FetchSessions::default();
        let id = open(&sessions, &[("a", 0, 0), ("a", 1, 0), ("b", 0, 0)]);
        assert_eq!(sessions.size(), (1, 3));

        // Nothing listed, nothing changed: all three are read, none answered.
        let (served, response) =
            fetch(&sessions, "alice", V12, request(id, 1, &[]), |_, _| 0).expect("served");
        assert_eq!(
            served
                .topics
                .iter()
                .map(|t| t.partitions.len())
                .sum::<usize>(),
            3
        );
        assert_eq!(response.session_id, id);
        assert!(answered(&response).is_empty());

        // a-1 gets data: only it is answered.
        let (_, response) = fetch(&sessions, "alice", V12, request(id, 2, &[]), |t, p| {
            i64::from(t == "a" && p == 1) * 5
        })
        .expect("served");
        assert_eq!(answered(&response), vec![("a".to_owned(), 1)]);

        // The client moves a-1's position to 5 (listing only it); no new
        // data: nothing answered, and the session keeps the new position.
        let (served, response) = fetch(
            &sessions,
            "alice",
            V12,
            request(id, 3, &[("a", 1, 5)]),
            |t, p| i64::from(t == "a" && p == 1) * 5,
        )
        .expect("served");
        assert!(answered(&response).is_empty());
        let a1 = served
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(move |p| (t.topic.as_str(), p)))
            .find(|(t, p)| *t == "a" && p.partition == 1)
            .expect("a-1 is in the session");
        assert_eq!(a1.1.fetch_offset, 5);
    }

    #[test]
    fn answered_partitions_move_to_the_back_of_the_read_order() {
        let sessions = FetchSessions::default();
        let id = open(&sessions, &[("a", 0, 0), ("a", 1, 0), ("a", 2, 0)]);
        fetch(&sessions, "alice", V12, request(id, 1, &[]), |_, p| {
            i64::from(p == 0) * 3
        })
        .expect("served");
        let (served, _) = fetch(&sessions, "alice", V12, request(id, 2, &[]), |_, p| {
            i64::from(p == 0) * 3
        })
        .expect("served");
        let order: Vec<i32> = served
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| p.partition))
            .collect();
        assert_eq!(order, vec![1, 2, 0]);
    }

    #[test]
    fn session_errors_follow_kafka() {
        let sessions = FetchSessions::default();
        let id = open(&sessions, &[("a", 0, 0)]);
        let nope = |r| {
            sessions
                .begin("alice", V12, r)
                .map(|_| ())
                .expect_err("refused")
        };
        assert_eq!(
            nope(request(id.wrapping_add(1).max(1), 1, &[])),
            code::FETCH_SESSION_ID_NOT_FOUND
        );
        assert_eq!(nope(request(id, 2, &[])), code::INVALID_FETCH_SESSION_EPOCH);
        // Another principal cannot use (or learn of) the session.
        assert_eq!(
            sessions
                .begin("mallory", V12, request(id, 1, &[]))
                .map(|_| ())
                .expect_err("refused"),
            code::FETCH_SESSION_ID_NOT_FOUND
        );
        // A session opened with topic names cannot continue with topic ids.
        assert_eq!(
            sessions
                .begin("alice", V13, request(id, 1, &[]))
                .map(|_| ())
                .expect_err("refused"),
            code::FETCH_SESSION_TOPIC_ID_ERROR
        );
        // The failed attempts did not advance the epoch.
        assert!(fetch(&sessions, "alice", V12, request(id, 1, &[]), |_, _| 0).is_ok());
    }

    #[test]
    fn epoch_minus_one_closes_the_session_and_opens_none() {
        let sessions = FetchSessions::default();
        let id = open(&sessions, &[("a", 0, 0)]);
        let (_, response) = fetch(
            &sessions,
            "alice",
            V12,
            request(id, -1, &[("a", 0, 0)]),
            |_, _| 0,
        )
        .expect("served");
        assert_eq!(response.session_id, 0);
        assert_eq!(answered(&response).len(), 1);
        assert_eq!(sessions.size(), (0, 0));
        // Another principal's id in a full fetch does not close the session.
        let id = open(&sessions, &[("a", 0, 0)]);
        fetch(
            &sessions,
            "mallory",
            V12,
            request(id, -1, &[("a", 0, 0)]),
            |_, _| 0,
        )
        .expect("served");
        assert_eq!(sessions.size(), (1, 1));
        // Before v7 there are no sessions at all.
        let (_, response) = fetch(
            &sessions,
            "alice",
            6,
            request(0, 0, &[("a", 0, 0)]),
            |_, _| 0,
        )
        .expect("served");
        assert_eq!(response.session_id, 0);
    }

    #[test]
    fn forgotten_partitions_leave_and_an_emptied_session_ends() {
        let sessions = FetchSessions::default();
        let id = open(&sessions, &[("a", 0, 0), ("a", 1, 0)]);
        let mut r = request(id, 1, &[]);
        r.forgotten_topics_data = vec![sluice_protocol::messages::fetch::ForgottenTopic {
            topic: "a".to_owned(),
            partitions: vec![0],
            ..Default::default()
        }];
        let (served, _) = fetch(&sessions, "alice", V12, r.clone(), |_, _| 0).expect("served");
        assert_eq!(served.topics[0].partitions.len(), 1);
        assert_eq!(sessions.size(), (1, 1));
        r.session_epoch = 2;
        r.forgotten_topics_data[0].partitions = vec![1];
        let (_, response) = fetch(&sessions, "alice", V12, r, |_, _| 0).expect("served");
        assert_eq!(response.session_id, 0);
        assert_eq!(sessions.size(), (0, 0));
    }

    #[test]
    fn a_full_cache_serves_without_a_session_and_evicts_only_idle_ones() {
        let sessions = FetchSessions::default();
        for _ in 0..MAX_SESSIONS {
            open(&sessions, &[("a", 0, 0)]);
        }
        let (_, response) = fetch(
            &sessions,
            "alice",
            V12,
            request(0, 0, &[("a", 0, 0)]),
            |_, _| 0,
        )
        .expect("served");
        assert_eq!(response.session_id, 0, "no room: served without a session");
        assert_eq!(sessions.size().0, MAX_SESSIONS);
        let mut cache = sessions.lock();
        let later = Instant::now() + SESSION_EVICTION;
        assert!(
            cache.make_room(1, later),
            "sessions idle past the eviction time give way"
        );
        assert_eq!(cache.sessions.len(), MAX_SESSIONS - 1);
    }

    #[test]
    fn a_session_past_its_partition_bound_is_closed() {
        let sessions = FetchSessions::default();
        let id = open(&sessions, &[("a", 0, 0)]);
        let many: Vec<(&str, i32, i64)> = (0..=MAX_SESSION_PARTITIONS as i32)
            .map(|p| ("b", p, 0))
            .collect();
        assert_eq!(
            sessions
                .begin("alice", V12, request(id, 1, &many))
                .map(|_| ())
                .expect_err("refused"),
            code::FETCH_SESSION_ID_NOT_FOUND
        );
        assert_eq!(sessions.size(), (0, 0));
        // A full fetch that large is served, without a session.
        let (_, response) =
            fetch(&sessions, "alice", V12, request(0, 0, &many), |_, _| 0).expect("served");
        assert_eq!(response.session_id, 0);
        assert_eq!(answered(&response).len(), many.len());
    }

    #[test]
    fn a_throttled_response_opens_no_session_and_tells_the_session_nothing() {
        let sessions = FetchSessions::default();
        let (served, ticket) = sessions
            .begin("alice", V12, request(0, 0, &[("a", 0, 0)]))
            .expect("served");
        let mut response = serve(&served, |_, _| 0);
        let sent = sessions.finish(ticket, &mut response);
        sessions.throttled(sent, &mut response);
        assert_eq!(response.session_id, 0);
        assert_eq!(sessions.size(), (0, 0));

        let id = open(&sessions, &[("a", 0, 0)]);
        let (served, ticket) = sessions
            .begin("alice", V12, request(id, 1, &[]))
            .expect("served");
        let mut response = serve(&served, |_, _| 7);
        let sent = sessions.finish(ticket, &mut response);
        sessions.throttled(sent, &mut response);
        assert_eq!(response.session_id, id);
        // The moved high watermark was never delivered: answered again.
        let (_, response) =
            fetch(&sessions, "alice", V12, request(id, 2, &[]), |_, _| 7).expect("served");
        assert_eq!(answered(&response), vec![("a".to_owned(), 0)]);
    }

    #[test]
    fn topic_id_sessions_key_partitions_by_id() {
        let sessions = FetchSessions::default();
        let topic_id = Uuid::new_v4();
        let mut r = request(0, 0, &[("", 0, 0)]);
        r.topics[0].topic_id = topic_id;
        let (_, response) = fetch(&sessions, "alice", V13, r, |_, _| 0).expect("served");
        let id = response.session_id;
        assert_ne!(id, 0);
        let (served, _) =
            fetch(&sessions, "alice", V13, request(id, 1, &[]), |_, _| 0).expect("served");
        assert_eq!(served.topics[0].topic_id, topic_id);
        assert_eq!(served.topics[0].partitions[0].partition, 0);
    }
}
