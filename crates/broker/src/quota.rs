//! Client quotas enforced (Kafka's KIP-13 byte rates, KIP-124 request
//! rates, KIP-219 throttling, KIP-599 controller mutations, KIP-612
//! connection creation): each (user, client id) is metered against
//! the quota that applies to it, and one over its quota is throttled.
//!
//! Which quota applies is Kafka's precedence over the quotas in the
//! metadata image ([`sluice_metadata::client_quota::resolve`]). Every
//! connection of the entity the quota was set on shares one meter (a
//! [`SampledRate`] over `quota.window_num` windows of
//! `quota.window_size_ms`): a quota on `/clients/slow` bounds all of
//! client id `slow`'s connections together, one on `/users/<default>`
//! bounds each user separately.
//!
//! What is metered, per request:
//! - Produce: the request's frame bytes (Kafka's `request.sizeInBytes`);
//! - Fetch from a consumer (never a follower): the response's frame bytes;
//!   a fetch over its quota is answered empty and its bytes are taken back,
//!   as Kafka does;
//! - every request: the time its handler spent being polled, as a
//!   percentage of one thread (Kafka measures request-handler thread time;
//!   Sluice has no handler threads, and poll time is the same work).
//!
//! Over a quota, the throttle time is Kafka's:
//! `(rate - quota) / quota * window span`, the span being the time the rate
//! is averaged over (request quotas are capped at one window, as in Kafka).
//! It goes in the response's `throttle_time_ms` (Produce and Fetch), and
//! the connection is muted (no request is read) for that long: at once for
//! request versions whose clients throttle themselves (KIP-219), after
//! holding back the response for older versions.
//!
//! Two more quotas have their own shape:
//! - `controller_mutation_rate` (KIP-599): CreateTopics, CreatePartitions
//!   and DeleteTopics ask for their partitions from a [`TokenBucket`] per
//!   entity ([`MutationCharge`]); strict versions are refused with
//!   THROTTLING_QUOTA_EXCEEDED once it is empty, older ones are throttled;
//! - `connection_creation_rate` (KIP-612) on `ip` entities: the accept
//!   loop counts each new connection on its address's meter
//!   ([`ClientQuotas::record_connection`]) and holds one over the rate,
//!   unserved, before closing it.
//!
//! Meters exist only for entities with a quota, and one idle for
//! [`IDLE_ENTITY_EXPIRY_MS`] is dropped, so client ids cannot grow memory
//! without bound; past [`MAX_METERED_ENTITIES`] new entities share one
//! overflow meter (stricter, never looser).

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sluice_metadata::MetadataImage;
use sluice_metadata::client_quota::{
    self, CLIENT_ID, CONNECTION_CREATION_RATE, CONSUMER_BYTE_RATE, CONTROLLER_MUTATION_RATE, IP,
    PRODUCER_BYTE_RATE, REQUEST_PERCENTAGE, USER,
};
use sluice_metrics::QuotaLabels;

use crate::context::Reply;
use crate::throttle::SampledRate;

/// How long a quota entity's meter is kept without traffic: Kafka's
/// `InactiveSensorExpirationTimeSeconds` (one hour). Past it the meter
/// restarts from nothing, which is what an hour of silence measures anyway.
pub const IDLE_ENTITY_EXPIRY_MS: i64 = 3_600_000;

/// How often idle meters are looked for; a sweep walks every meter, so it
/// runs at most this often, on the request path of whoever comes next.
const SWEEP_INTERVAL_MS: i64 = 60_000;

/// Most entities metered at once. Each costs a few hundred bytes; a client
/// minting client ids under a `/clients/<default>` quota would otherwise
/// grow the map for an hour at a time. Entities past it share one meter.
pub const MAX_METERED_ENTITIES: usize = 100_000;

/// What a quota bounds (Kafka's quota types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuotaType {
    /// Produce request bytes/s (`producer_byte_rate`).
    Produce,
    /// Consumer fetch response bytes/s (`consumer_byte_rate`).
    Fetch,
    /// Handler time as a percentage of one thread (`request_percentage`).
    Request,
    /// Partitions created or deleted per second (`controller_mutation_rate`,
    /// KIP-599): metered with a token bucket, not a sampled rate.
    ControllerMutation,
    /// New connections per second from one IP (`connection_creation_rate`,
    /// KIP-612), on `ip` entities.
    ConnectionCreation,
}

impl QuotaType {
    /// The quota key this type is bounded by.
    pub fn key(self) -> &'static str {
        match self {
            QuotaType::Produce => PRODUCER_BYTE_RATE,
            QuotaType::Fetch => CONSUMER_BYTE_RATE,
            QuotaType::Request => REQUEST_PERCENTAGE,
            QuotaType::ControllerMutation => CONTROLLER_MUTATION_RATE,
            QuotaType::ConnectionCreation => CONNECTION_CREATION_RATE,
        }
    }

    fn name(self) -> &'static str {
        match self {
            QuotaType::Produce => "Produce",
            QuotaType::Fetch => "Fetch",
            QuotaType::Request => "Request",
            QuotaType::ControllerMutation => "ControllerMutation",
            QuotaType::ConnectionCreation => "ConnectionCreation",
        }
    }
}

/// Which meter a request is counted on: the quota type and the parts of
/// the (user, client id) that the applying quota's entity names (Kafka's
/// metric tags). `None` parts are shared by every user or client id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct BucketKey {
    quota: QuotaType,
    user: Option<String>,
    client_id: Option<String>,
    /// The address of an `ip` entity's meter (connection creation rate).
    ip: Option<String>,
    /// True for the shared meter of entities past [`MAX_METERED_ENTITIES`].
    overflow: bool,
}

/// One entity's meter.
#[derive(Debug)]
struct Bucket {
    meter: SampledRate,
    /// The token bucket of a controller mutation quota (unused by the
    /// other types, which are sampled rates).
    tokens: TokenBucket,
    /// Last record, for expiry.
    last_used_ms: AtomicI64,
}

/// The broker's client quota meters.
#[derive(Debug)]
pub struct ClientQuotas {
    /// `quota.window_num`.
    window_num: usize,
    /// `quota.window_size_ms`.
    window_size_ms: i64,
    /// Meters by entity. Held only to find or insert a meter (or sweep),
    /// never across an await or a measurement.
    buckets: Mutex<HashMap<BucketKey, Arc<Bucket>>>,
    /// When idle meters were last looked for.
    last_sweep_ms: AtomicI64,
}

impl ClientQuotas {
    /// Meters over `window_num` windows of `window_size_ms`.
    pub fn new(window_num: u32, window_size_ms: u64) -> Self {
        ClientQuotas {
            window_num: window_num.max(1) as usize,
            window_size_ms: i64::try_from(window_size_ms).unwrap_or(i64::MAX).max(1),
            buckets: Mutex::new(HashMap::new()),
            last_sweep_ms: AtomicI64::new(0),
        }
    }

    /// Counts `value` (bytes, or percent-seconds for [`QuotaType::Request`])
    /// for `user` with `client_id` at `now_ms`, and returns the throttle
    /// time it earns: zero when no quota applies or the rate is within it.
    pub fn record(
        &self,
        image: &MetadataImage,
        quota: QuotaType,
        user: &str,
        client_id: &str,
        value: f64,
        now_ms: i64,
    ) -> Duration {
        let Some((bound, key)) = applying(image, quota, user, client_id) else {
            return Duration::ZERO;
        };
        let bucket = self.bucket(key.clone(), now_ms);
        bucket.meter.record(value, now_ms);
        let rate = bucket.meter.rate(now_ms);
        if rate <= bound {
            return Duration::ZERO;
        }
        let span_ms = bucket.meter.window_span_ms(now_ms) as f64;
        let mut throttle_ms = ((rate - bound) / bound * span_ms).round();
        if quota == QuotaType::Request {
            // Kafka bounds request throttles by one window: handler time
            // comes in large, uneven pieces.
            throttle_ms = throttle_ms.min(self.window_size_ms as f64);
        }
        // Clamped to what `throttle_time_ms` (an int32) can say.
        let throttle_ms = throttle_ms.clamp(0.0, f64::from(i32::MAX)) as u64;
        sluice_metrics::quota_throttled(&labels(&key), throttle_ms);
        Duration::from_millis(throttle_ms)
    }

    /// Takes back `value` recorded for `user` with `client_id` (a fetch
    /// over its quota is answered empty and costs nothing).
    pub fn unrecord(
        &self,
        image: &MetadataImage,
        quota: QuotaType,
        user: &str,
        client_id: &str,
        value: f64,
        now_ms: i64,
    ) {
        if let Some((_, key)) = applying(image, quota, user, client_id) {
            self.bucket(key, now_ms).meter.record(-value, now_ms);
        }
    }

    /// The most a single response may carry for `user` with `client_id`
    /// under `quota`, or `None` when no quota applies: the quota times the
    /// span it is averaged over (Kafka's `getMaxValueInQuotaWindow`), so one
    /// response can always pass within the quota instead of being answered
    /// empty forever.
    pub fn max_in_window(
        &self,
        image: &MetadataImage,
        quota: QuotaType,
        user: &str,
        client_id: &str,
    ) -> Option<f64> {
        let (bound, _) = applying(image, quota, user, client_id)?;
        let span_s = (self.window_num as f64 - 1.0).max(1.0) * self.window_size_ms as f64 / 1_000.0;
        Some(bound * span_s)
    }

    /// Asks for `permits` partition mutations (topics or partitions created
    /// or deleted) for `user` with `client_id` at `now_ms`, against the
    /// `controller_mutation_rate` that applies (KIP-599's token bucket,
    /// which refills at the quota and holds at most
    /// `quota.window_num` × `quota.window_size_ms` of it).
    ///
    /// `strict` (the request versions that can say
    /// THROTTLING_QUOTA_EXCEEDED): `Err(throttle)` when the bucket is
    /// already below zero, else the permits are taken whole, even past zero,
    /// so one request may go over and the next one is refused. Otherwise
    /// (older versions) the permits are always taken and the throttle is
    /// the time the bucket needs to refill to zero. `Ok(ZERO)` when no
    /// quota applies.
    pub fn record_mutations(
        &self,
        image: &MetadataImage,
        user: &str,
        client_id: &str,
        permits: f64,
        strict: bool,
        now_ms: i64,
    ) -> Result<Duration, Duration> {
        let quota = QuotaType::ControllerMutation;
        let Some((rate, key)) = applying(image, quota, user, client_id) else {
            return Ok(Duration::ZERO);
        };
        let bucket = self.bucket(key.clone(), now_ms);
        let burst = self.burst(rate);
        let outcome = bucket.tokens.take(permits, rate, burst, strict, now_ms);
        let throttle = match outcome {
            Ok(d) | Err(d) => d,
        };
        if !throttle.is_zero() {
            let throttle_ms = u64::try_from(throttle.as_millis()).unwrap_or(u64::MAX);
            sluice_metrics::quota_throttled(&labels(&key), throttle_ms);
        }
        outcome
    }

    /// Gives back `permits` taken by [`ClientQuotas::record_mutations`] for
    /// a mutation that did not happen (the topic failed validation).
    pub fn give_back_mutations(
        &self,
        image: &MetadataImage,
        user: &str,
        client_id: &str,
        permits: f64,
        now_ms: i64,
    ) {
        if let Some((rate, key)) = applying(image, QuotaType::ControllerMutation, user, client_id) {
            let burst = self.burst(rate);
            self.bucket(key, now_ms)
                .tokens
                .give_back(permits, rate, burst, now_ms);
        }
    }

    /// Counts a new connection from `ip` at `now_ms` against the
    /// `connection_creation_rate` of its `ip` entity, else of
    /// `ip=<default>` (KIP-612), and returns how long it must be held
    /// before it is closed unserved: zero when it is within the quota (or
    /// none applies). As in Kafka, a refused connection is not counted, and
    /// the delay is at most one window.
    pub fn record_connection(
        &self,
        image: &MetadataImage,
        ip: std::net::IpAddr,
        now_ms: i64,
    ) -> Duration {
        let Some((bound, key)) = applying_ip(image, ip) else {
            return Duration::ZERO;
        };
        let bucket = self.bucket(key.clone(), now_ms);
        bucket.meter.record(1.0, now_ms);
        let rate = bucket.meter.rate(now_ms);
        if rate <= bound {
            return Duration::ZERO;
        }
        bucket.meter.record(-1.0, now_ms);
        let span_ms = bucket.meter.window_span_ms(now_ms) as f64;
        let throttle_ms = ((rate - bound) / bound * span_ms)
            .round()
            .clamp(1.0, self.window_size_ms as f64) as u64;
        sluice_metrics::quota_throttled(&labels(&key), throttle_ms);
        Duration::from_millis(throttle_ms)
    }

    /// The most a token bucket of `rate` holds (Kafka's
    /// `samples × window × quota`).
    fn burst(&self, rate: f64) -> f64 {
        self.window_num as f64 * self.window_size_ms as f64 / 1_000.0 * rate
    }

    /// How many meters exist (for tests and the bound).
    pub fn metered_entities(&self) -> usize {
        self.lock().len()
    }

    /// The meter for `key`, created if new; sweeps idle meters first when
    /// a sweep is due.
    fn bucket(&self, key: BucketKey, now_ms: i64) -> Arc<Bucket> {
        let mut buckets = self.lock();
        let last = self.last_sweep_ms.load(Ordering::Relaxed);
        if now_ms - last >= SWEEP_INTERVAL_MS {
            self.last_sweep_ms.store(now_ms, Ordering::Relaxed);
            buckets.retain(|key, b| {
                let live = now_ms - b.last_used_ms.load(Ordering::Relaxed) < IDLE_ENTITY_EXPIRY_MS;
                // Connection-creation throttles of every address share one
                // series: one address going idle must not reset it.
                if !live && key.quota != QuotaType::ConnectionCreation {
                    sluice_metrics::forget_quota_entity(&labels(key));
                }
                live
            });
        }
        let key = if !buckets.contains_key(&key) && buckets.len() >= MAX_METERED_ENTITIES {
            BucketKey {
                quota: key.quota,
                user: None,
                client_id: None,
                ip: None,
                overflow: true,
            }
        } else {
            key
        };
        let bucket = buckets.entry(key).or_insert_with(|| {
            Arc::new(Bucket {
                meter: SampledRate::new(self.window_num, self.window_size_ms),
                tokens: TokenBucket::default(),
                last_used_ms: AtomicI64::new(now_ms),
            })
        });
        bucket.last_used_ms.store(now_ms, Ordering::Relaxed);
        Arc::clone(bucket)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<BucketKey, Arc<Bucket>>> {
        // Every update under the lock is one insert or one retain, so a
        // poisoned map is consistent and still used.
        self.buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The quota bound for `quota` that applies to (user, client id), and the
/// meter it is counted on.
fn applying(
    image: &MetadataImage,
    quota: QuotaType,
    user: &str,
    client_id: &str,
) -> Option<(f64, BucketKey)> {
    let (bound, entity) = client_quota::resolve(image, user, client_id, quota.key())?;
    let names = |t: &str, name: &str| {
        entity
            .iter()
            .any(|(et, _)| et == t)
            .then(|| name.to_owned())
    };
    Some((
        bound,
        BucketKey {
            quota,
            user: names(USER, user),
            client_id: names(CLIENT_ID, client_id),
            ip: None,
            overflow: false,
        },
    ))
}

/// The `connection_creation_rate` that applies to connections from `ip`
/// (its own `ip` entity, else `ip=<default>`), and the meter it is counted
/// on: each address has its own, as in Kafka.
fn applying_ip(image: &MetadataImage, ip: std::net::IpAddr) -> Option<(f64, BucketKey)> {
    if image.client_quotas.is_empty() {
        return None;
    }
    let address = ip.to_string();
    let named = vec![(IP.to_owned(), Some(address.clone()))];
    let default = vec![(IP.to_owned(), None)];
    let bound = [named, default].iter().find_map(|entity| {
        image
            .client_quotas
            .get(entity)
            .and_then(|q| q.get(CONNECTION_CREATION_RATE).copied())
    })?;
    Some((
        bound,
        BucketKey {
            quota: QuotaType::ConnectionCreation,
            user: None,
            client_id: None,
            ip: Some(address),
            overflow: false,
        },
    ))
}

/// Kafka's token bucket (`TokenBucket`, KIP-599): tokens refill at the
/// quota per second up to a burst, each mutation takes one, and the quota
/// is exceeded while the count is below zero. Unlike a sampled rate, a
/// large burst is paid off in exactly the time it is over, not when its
/// sample leaves the window. Time is passed in (ms), so tests drive it.
#[derive(Debug, Default)]
pub(crate) struct TokenBucket {
    /// `(tokens, last refill ms)`; `None` until first used, when the bucket
    /// is full. Held only to refill and take, never across an await.
    state: Mutex<Option<(f64, i64)>>,
}

impl TokenBucket {
    /// Takes `permits` at `now_ms` from a bucket refilled at `rate`/s up to
    /// `burst`; see [`ClientQuotas::record_mutations`] for `strict`.
    /// `Ok(throttle)` when taken, `Err(throttle)` when refused; the
    /// throttle is the time until the bucket is back at zero.
    pub(crate) fn take(
        &self,
        permits: f64,
        rate: f64,
        burst: f64,
        strict: bool,
        now_ms: i64,
    ) -> Result<Duration, Duration> {
        let mut state = self.lock();
        let tokens = refill(*state, rate, burst, now_ms);
        if strict && tokens < 0.0 {
            *state = Some((tokens, now_ms));
            return Err(refill_time(tokens, rate));
        }
        let left = (tokens - permits).min(burst);
        *state = Some((left, now_ms));
        if strict {
            // Strict quotas do not throttle the request that goes over; the
            // next one is refused (Kafka's StrictControllerMutationQuota).
            Ok(Duration::ZERO)
        } else {
            Ok(refill_time(left, rate))
        }
    }

    /// Puts back `permits` taken for a mutation that did not happen.
    pub(crate) fn give_back(&self, permits: f64, rate: f64, burst: f64, now_ms: i64) {
        let mut state = self.lock();
        let tokens = refill(*state, rate, burst, now_ms);
        *state = Some(((tokens + permits).min(burst), now_ms));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(f64, i64)>> {
        // One pair, always consistent: a poisoned lock is used.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The tokens of a bucket in `state` at `now_ms`, refilled at `rate`/s and
/// capped at `burst` (a new bucket is full).
fn refill(state: Option<(f64, i64)>, rate: f64, burst: f64, now_ms: i64) -> f64 {
    match state {
        None => burst,
        Some((tokens, last_ms)) => {
            let elapsed_s = (now_ms - last_ms).max(0) as f64 / 1_000.0;
            (tokens + rate * elapsed_s).min(burst)
        }
    }
}

/// How long a bucket at `tokens` takes to refill to zero at `rate`/s
/// (Kafka: `-tokens / quota * 1000` ms); zero when it is not below zero.
fn refill_time(tokens: f64, rate: f64) -> Duration {
    if tokens >= 0.0 || rate <= 0.0 {
        return Duration::ZERO;
    }
    let ms = (-tokens / rate * 1_000.0)
        .round()
        .clamp(0.0, f64::from(i32::MAX));
    Duration::from_millis(ms as u64)
}

fn labels(key: &BucketKey) -> QuotaLabels {
    QuotaLabels {
        quota_type: key.quota.name().to_owned(),
        user: key.user.clone().unwrap_or_default(),
        client_id: if key.overflow {
            "<overflow>".to_owned()
        } else {
            key.client_id.clone().unwrap_or_default()
        },
    }
}

/// Whether a response at `version` of `api_key` tells its client to
/// throttle itself (KIP-219): then the broker answers at once and mutes the
/// connection; for older versions it holds the response back instead.
pub fn client_throttles_itself(api_key: i16, version: i16) -> bool {
    use sluice_protocol::ApiKey;
    // The first version of each API whose response carries
    // `throttle_time_ms` with KIP-219's meaning (Kafka 2.0).
    let first = match ApiKey::try_from(api_key) {
        Ok(ApiKey::Produce) => 6,
        Ok(ApiKey::Fetch) => 8,
        Ok(ApiKey::ListOffsets) => 3,
        Ok(ApiKey::Metadata) => 6,
        Ok(ApiKey::OffsetCommit) => 4,
        Ok(ApiKey::OffsetFetch) => 4,
        Ok(ApiKey::FindCoordinator) => 2,
        Ok(ApiKey::JoinGroup) => 3,
        Ok(ApiKey::Heartbeat) => 2,
        Ok(ApiKey::LeaveGroup) => 2,
        Ok(ApiKey::SyncGroup) => 2,
        Ok(ApiKey::DescribeGroups) => 2,
        Ok(ApiKey::ListGroups) => 2,
        Ok(ApiKey::ApiVersions) => 2,
        Ok(ApiKey::CreateTopics) => 3,
        Ok(ApiKey::DeleteTopics) => 2,
        // Every API added since answers with the KIP-219 meaning from v0
        // or v1; v1 is the safe choice for the ones not listed.
        _ => 1,
    };
    version >= first
}

/// One request's account with the client quotas: who it is charged to,
/// and how a throttle is applied to its connection. `None` from the
/// constructors when no quota exists at all (the common case costs one
/// check).
#[derive(Debug)]
pub struct Charge {
    quotas: Arc<ClientQuotas>,
    image: Arc<MetadataImage>,
    quota: QuotaType,
    user: String,
    client_id: String,
    throttle: ConnectionThrottle,
    api_key: i16,
    version: i16,
}

impl Charge {
    /// The charge of a request from `ctx` with `header` against `quota`,
    /// or `None` when the image holds no client quota.
    pub fn new(
        quotas: &Arc<ClientQuotas>,
        image: Arc<MetadataImage>,
        quota: QuotaType,
        ctx: &crate::context::RequestContext,
        header: &sluice_protocol::RequestHeader,
    ) -> Option<Charge> {
        if image.client_quotas.is_empty() {
            return None;
        }
        Some(Charge {
            quotas: Arc::clone(quotas),
            image,
            quota,
            user: ctx.principal.name.clone(),
            // Kafka meters a request without a client id as client id "".
            client_id: header.client_id.clone().unwrap_or_default(),
            throttle: ctx.throttle.clone(),
            api_key: header.request_api_key,
            version: header.request_api_version,
        })
    }

    /// Counts `value` now; the throttle time it earns.
    pub fn record(&self, value: f64) -> Duration {
        let now = sluice_metadata::now_ms();
        self.quotas.record(
            &self.image,
            self.quota,
            &self.user,
            &self.client_id,
            value,
            now,
        )
    }

    /// The most one response may carry within the quota (see
    /// [`ClientQuotas::max_in_window`]); `None` when no quota applies.
    pub fn max_in_window(&self) -> Option<f64> {
        self.quotas
            .max_in_window(&self.image, self.quota, &self.user, &self.client_id)
    }

    /// Takes back `value` counted by [`Charge::record`].
    pub fn unrecord(&self, value: f64) {
        let now = sluice_metadata::now_ms();
        self.quotas.unrecord(
            &self.image,
            self.quota,
            &self.user,
            &self.client_id,
            value,
            now,
        );
    }

    /// Applies a throttle of `delay` (Kafka's KIP-219): the connection reads
    /// nothing more for `delay`; a request version whose client does not
    /// throttle itself also has its response held back that long.
    pub async fn enforce(&self, delay: Duration) {
        self.mute(delay);
        self.hold_back(delay).await;
    }

    /// Mutes the connection for `delay` from now. Called as soon as the
    /// throttle is known (at dispatch for Produce): requests read after it
    /// wait, as Kafka, which reads one request per connection at a time,
    /// never has a second one in hand.
    pub fn mute(&self, delay: Duration) {
        self.throttle.mute_for(delay);
    }

    /// Holds the response back for `delay` if the request's version leaves
    /// throttling to the broker (before KIP-219).
    pub async fn hold_back(&self, delay: Duration) {
        if !delay.is_zero() && !client_throttles_itself(self.api_key, self.version) {
            tokio::time::sleep(delay).await;
        }
    }

    /// Wraps `reply` so the time its handler spends (`sync` already spent
    /// at dispatch, then every poll of the reply) is charged as request
    /// time, and a throttle it earns is enforced before the response goes.
    pub fn time_request(self, reply: Reply, sync: Duration) -> Reply {
        Box::pin(async move {
            let (response, busy) = Timed {
                inner: reply,
                busy: sync,
            }
            .await;
            // Percent of one thread, in percent-seconds: the rate of this
            // over a window is Kafka's request percentage.
            let percent_seconds = busy.as_secs_f64() * 100.0;
            let delay = self.record(percent_seconds);
            self.enforce(delay).await;
            response
        })
    }
}

/// Kafka's message for THROTTLING_QUOTA_EXCEEDED.
pub const THROTTLING_QUOTA_EXCEEDED_MESSAGE: &str = "The throttling quota has been exceeded.";

/// One CreateTopics, CreatePartitions or DeleteTopics request's account
/// with its controller mutation quota (KIP-599): each topic asks for its
/// partitions in request order; the response carries the throttle it
/// earned, and the connection is muted for it.
#[derive(Debug)]
pub struct MutationCharge {
    /// `None` when no client quota exists at all (nothing is metered).
    inner: Option<MutationAccount>,
}

/// What a metered [`MutationCharge`] holds.
#[derive(Debug)]
struct MutationAccount {
    quotas: Arc<ClientQuotas>,
    image: Arc<MetadataImage>,
    user: String,
    client_id: String,
    /// The request's version can say THROTTLING_QUOTA_EXCEEDED.
    strict: bool,
    /// The longest throttle a topic earned, and when: the response says
    /// what is left of it (Kafka's `throttleTime`). Held only to read or
    /// update it.
    throttle: Mutex<Option<(Duration, tokio::time::Instant)>>,
    /// The client's connection, muted for the throttle.
    connection: ConnectionThrottle,
    /// Forwarded by another broker: that broker throttles its client.
    forwarded: bool,
    api_key: i16,
    version: i16,
}

impl MutationCharge {
    /// No quota: every mutation passes (tests, and internal callers).
    pub fn unbounded() -> MutationCharge {
        MutationCharge { inner: None }
    }

    /// The account of a request from `ctx` with `header`; strict from
    /// `strict_since_version` (KIP-599: CreateTopics 6, DeleteTopics 5,
    /// CreatePartitions 3).
    pub fn new(
        quotas: &Arc<ClientQuotas>,
        image: Arc<MetadataImage>,
        ctx: &crate::context::RequestContext,
        header: &sluice_protocol::RequestHeader,
        strict_since_version: i16,
    ) -> MutationCharge {
        if image.client_quotas.is_empty() {
            return MutationCharge::unbounded();
        }
        MutationCharge {
            inner: Some(MutationAccount {
                quotas: Arc::clone(quotas),
                image,
                user: ctx.principal.name.clone(),
                client_id: header.client_id.clone().unwrap_or_default(),
                strict: header.request_api_version >= strict_since_version,
                throttle: Mutex::new(None),
                connection: ctx.throttle.clone(),
                forwarded: &*ctx.listener == crate::context::FORWARDED_LISTENER,
                api_key: header.request_api_key,
                version: header.request_api_version,
            }),
        }
    }

    /// Asks for `partitions` mutations for one topic: refused with
    /// THROTTLING_QUOTA_EXCEEDED while a strict quota is exhausted.
    pub fn request(&self, partitions: i32) -> Result<(), sluice_metadata::ApiError> {
        let Some(account) = &self.inner else {
            return Ok(());
        };
        if partitions <= 0 {
            return Ok(());
        }
        let outcome = account.quotas.record_mutations(
            &account.image,
            &account.user,
            &account.client_id,
            f64::from(partitions),
            account.strict,
            sluice_metadata::now_ms(),
        );
        match outcome {
            Ok(throttle) => {
                account.note(throttle);
                Ok(())
            }
            Err(throttle) => {
                account.note(throttle);
                Err(sluice_metadata::ApiError::new(
                    sluice_protocol::error::codes::THROTTLING_QUOTA_EXCEEDED,
                    THROTTLING_QUOTA_EXCEEDED_MESSAGE,
                ))
            }
        }
    }

    /// Gives back `partitions` asked for by a topic whose mutation failed.
    pub fn give_back(&self, partitions: i32) {
        if let Some(account) = &self.inner
            && partitions > 0
        {
            account.quotas.give_back_mutations(
                &account.image,
                &account.user,
                &account.client_id,
                f64::from(partitions),
                sluice_metadata::now_ms(),
            );
        }
    }

    /// What is left of the throttle earned, as the response's
    /// `throttle_time_ms`.
    pub fn throttle_time_ms(&self) -> i32 {
        throttle_time_ms(self.remaining())
    }

    /// Applies the throttle earned (Kafka's KIP-219 rules, as
    /// [`Charge::enforce`]): mutes the connection, and holds the response
    /// back for versions whose clients do not throttle themselves. A
    /// forwarded request is throttled by the broker that forwarded it.
    pub async fn enforce(&self) {
        let Some(account) = &self.inner else {
            return;
        };
        if account.forwarded {
            return;
        }
        throttle_connection(
            &account.connection,
            account.api_key,
            account.version,
            self.remaining(),
        )
        .await;
    }

    fn remaining(&self) -> Duration {
        let Some(account) = &self.inner else {
            return Duration::ZERO;
        };
        let throttle = *account
            .throttle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        throttle.map_or(Duration::ZERO, |(d, at)| d.saturating_sub(at.elapsed()))
    }
}

/// Applies a throttle of `delay` to a connection for a request at
/// `version` of `api_key` (KIP-219): mutes it, and holds the response back
/// when the version leaves throttling to the broker.
pub async fn throttle_connection(
    connection: &ConnectionThrottle,
    api_key: i16,
    version: i16,
    delay: Duration,
) {
    if delay.is_zero() {
        return;
    }
    connection.mute_for(delay);
    if !client_throttles_itself(api_key, version) {
        tokio::time::sleep(delay).await;
    }
}

/// The throttle the active controller put in its answer to a forwarded
/// CreateTopics, DeleteTopics or CreatePartitions (`frame`, length prefix
/// included), which the forwarding broker applies to its client's
/// connection as Kafka's does; `None` for other APIs, no throttle, or a
/// frame that does not parse.
pub fn forwarded_mutation_throttle(
    header: &sluice_protocol::RequestHeader,
    frame: &[u8],
) -> Option<Duration> {
    use bytes::Buf;
    use sluice_protocol::{ApiKey, ResponseHeader, response_header_version};
    let api = ApiKey::try_from(header.request_api_key).ok()?;
    if !matches!(
        api,
        ApiKey::CreateTopics | ApiKey::DeleteTopics | ApiKey::CreatePartitions
    ) {
        return None;
    }
    let mut body = bytes::Bytes::copy_from_slice(frame.get(4..)?);
    let version = response_header_version(api, header.request_api_version);
    ResponseHeader::decode(&mut body, version).ok()?;
    // `throttle_time_ms` is the first field of all three at every version
    // Sluice advertises (CreateTopics 2+, DeleteTopics 1+, CreatePartitions 0+).
    if body.remaining() < 4 {
        return None;
    }
    let throttle_ms = body.get_i32();
    (throttle_ms > 0).then(|| Duration::from_millis(throttle_ms.unsigned_abs().into()))
}

impl MutationAccount {
    /// Keeps the longest throttle earned so far.
    fn note(&self, throttle: Duration) {
        if throttle.is_zero() {
            return;
        }
        let now = tokio::time::Instant::now();
        let mut kept = self
            .throttle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let longer = kept.is_none_or(|(d, at)| d.saturating_sub(now - at) < throttle);
        if longer {
            *kept = Some((throttle, now));
        }
    }
}

/// A throttle as the `throttle_time_ms` of a response (an int32).
pub fn throttle_time_ms(throttle: Duration) -> i32 {
    i32::try_from(throttle.as_millis()).unwrap_or(i32::MAX)
}

/// A Fetch request's account with the consumer byte-rate quota
/// (`consumer_byte_rate`): only consumers have one, never followers.
#[derive(Debug)]
pub struct ConsumerFetch {
    /// `None` for a follower, or when no quota exists at all.
    charge: Option<Charge>,
}

impl ConsumerFetch {
    /// The quota account of a fetch from `ctx` with `header`;
    /// `from_follower` fetches are replication and are never charged.
    pub fn new(
        quotas: &Arc<ClientQuotas>,
        image: &Arc<MetadataImage>,
        ctx: &crate::context::RequestContext,
        header: &sluice_protocol::RequestHeader,
        from_follower: bool,
    ) -> ConsumerFetch {
        let charge = if from_follower {
            None
        } else {
            Charge::new(quotas, Arc::clone(image), QuotaType::Fetch, ctx, header)
        };
        ConsumerFetch { charge }
    }

    /// The most the response may carry: `fetch_max_bytes`, capped to what
    /// the consumer's quota lets through in one window (as Kafka caps it),
    /// so one response can always pass.
    pub fn max_bytes(&self, fetch_max_bytes: u32) -> u32 {
        self.charge
            .as_ref()
            .and_then(Charge::max_in_window)
            .map_or(fetch_max_bytes, |m| (m as u32).clamp(1, fetch_max_bytes))
    }

    /// Charges the encoded `response` and answers with it; over the quota,
    /// Kafka answers with no data (and takes its bytes back, so the client
    /// gets nothing until its rate is back within the quota), with
    /// `throttle_time_ms` set, and the throttle is enforced. `throttled`
    /// adjusts that empty answer (a fetch session that must not record it
    /// as told).
    pub async fn answer<E, T>(
        self,
        mut response: sluice_protocol::messages::fetch::FetchResponse,
        encode: E,
        throttled: T,
    ) -> Option<sluice_protocol::SplicedFrame>
    where
        E: Fn(
            &sluice_protocol::messages::fetch::FetchResponse,
        ) -> Option<sluice_protocol::SplicedFrame>,
        T: FnOnce(&mut sluice_protocol::messages::fetch::FetchResponse),
    {
        let frame = encode(&response)?;
        let Some(charge) = self.charge else {
            return Some(frame);
        };
        let bytes = frame.len() as f64;
        let throttle = charge.record(bytes);
        if throttle.is_zero() {
            return Some(frame);
        }
        charge.unrecord(bytes);
        response.responses.clear();
        response.throttle_time_ms = throttle_time_ms(throttle);
        throttled(&mut response);
        let frame = encode(&response);
        charge.enforce(throttle).await;
        frame
    }
}

/// A reply future that sums the time spent inside its polls: the work its
/// handler did, without the time it waited (fsync, long poll).
struct Timed {
    inner: Reply,
    busy: Duration,
}

impl std::future::Future for Timed {
    type Output = (Option<sluice_protocol::SplicedFrame>, Duration);

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let started = std::time::Instant::now();
        let polled = std::future::Future::poll(self.inner.as_mut(), cx);
        self.busy += started.elapsed();
        let busy = self.busy;
        polled.map(|response| (response, busy))
    }
}

pub use crate::context::ConnectionThrottle;

#[cfg(test)]
mod tests {
    use sluice_metadata::MetadataRecord;

    use super::*;

    fn image_with(entity: &[(&str, Option<&str>)], key: &str, value: f64) -> MetadataImage {
        let image = MetadataImage::default();
        let mut entity: Vec<(String, Option<String>)> = entity
            .iter()
            .map(|(t, n)| ((*t).to_owned(), n.map(str::to_owned)))
            .collect();
        entity.sort();
        let record = MetadataRecord::ClientQuota {
            entity,
            key: key.to_owned(),
            value: Some(value),
        };
        image
            .with_change(&[record], 0, 1)
            .expect("the record applies")
    }

    #[test]
    fn throttle_time_is_kafkas_excess_over_the_quota_times_the_window() {
        // 1000 B/s on client "slow"; Kafka's defaults: 11 windows of 1 s.
        let image = image_with(&[(CLIENT_ID, Some("slow"))], PRODUCER_BYTE_RATE, 1_000.0);
        let quotas = ClientQuotas::new(11, 1_000);
        let t0 = 1_000_000;
        // 5 000 B in a fresh meter: spread over the 10 s minimum span it is
        // 500 B/s, within the quota.
        let d = quotas.record(&image, QuotaType::Produce, "ANONYMOUS", "slow", 5_000.0, t0);
        assert_eq!(d, Duration::ZERO);
        // 20 000 B more: 25 000 B / 10 s = 2 500 B/s, 1.5x over the quota:
        // Kafka's (2500 - 1000) / 1000 * 10 000 ms = 15 000 ms.
        let d = quotas.record(
            &image,
            QuotaType::Produce,
            "ANONYMOUS",
            "slow",
            20_000.0,
            t0,
        );
        assert_eq!(d, Duration::from_millis(15_000));
        // Another client id has no quota and is never throttled nor metered.
        let d = quotas.record(&image, QuotaType::Produce, "ANONYMOUS", "fast", 1e9, t0);
        assert_eq!(d, Duration::ZERO);
        assert_eq!(quotas.metered_entities(), 1);
        // Taking the bytes back brings the rate within the quota again.
        quotas.unrecord(
            &image,
            QuotaType::Produce,
            "ANONYMOUS",
            "slow",
            20_000.0,
            t0,
        );
        let d = quotas.record(&image, QuotaType::Produce, "ANONYMOUS", "slow", 1.0, t0);
        assert_eq!(d, Duration::ZERO);
    }

    #[test]
    fn a_steady_client_at_the_quota_settles_at_the_quota() {
        // A client that always waits out its throttle ends up at the quota:
        // send 10 000 B, wait the throttle (or 100 ms), repeat for 60 s.
        let image = image_with(&[(USER, Some("alice"))], PRODUCER_BYTE_RATE, 10_000.0);
        let quotas = ClientQuotas::new(11, 1_000);
        let start = 5_000_000;
        let mut now = start;
        let mut sent = 0.0;
        while now < start + 60_000 {
            let d = quotas.record(&image, QuotaType::Produce, "alice", "any", 10_000.0, now);
            sent += 10_000.0;
            now += (d.as_millis() as i64).max(100);
        }
        let rate = sent * 1_000.0 / (now - start) as f64;
        assert!(
            (9_000.0..=12_000.0).contains(&rate),
            "held to about 10 000 B/s, measured {rate}"
        );
    }

    #[test]
    fn all_client_ids_of_a_user_quota_share_one_meter_and_users_do_not() {
        let image = image_with(&[(USER, None)], CONSUMER_BYTE_RATE, 1_000.0);
        let quotas = ClientQuotas::new(11, 1_000);
        let t = 10_000_000;
        // 8 000 B from each of two client ids of alice: 16 000 B over 10 s
        // is over the 1 000 B/s of her bucket.
        assert!(
            quotas
                .record(&image, QuotaType::Fetch, "alice", "a", 8_000.0, t)
                .is_zero()
        );
        assert!(
            !quotas
                .record(&image, QuotaType::Fetch, "alice", "b", 8_000.0, t)
                .is_zero()
        );
        // Bob is another bucket under the same default.
        assert!(
            quotas
                .record(&image, QuotaType::Fetch, "bob", "a", 8_000.0, t)
                .is_zero()
        );
        assert_eq!(quotas.metered_entities(), 2);
    }

    #[test]
    fn one_fetch_may_carry_the_quota_times_the_window_span() {
        let image = image_with(&[(CLIENT_ID, Some("c"))], CONSUMER_BYTE_RATE, 1_000.0);
        let quotas = ClientQuotas::new(11, 1_000);
        // Kafka: quota * (samples - 1) * window seconds.
        assert_eq!(
            quotas.max_in_window(&image, QuotaType::Fetch, "u", "c"),
            Some(10_000.0)
        );
        assert_eq!(
            quotas.max_in_window(&image, QuotaType::Fetch, "u", "other"),
            None
        );
        // A response of exactly that size passes without a throttle.
        let d = quotas.record(&image, QuotaType::Fetch, "u", "c", 10_000.0, 1_000_000);
        assert!(d.is_zero());
    }

    #[test]
    fn request_throttles_are_capped_at_one_window() {
        let image = image_with(&[(CLIENT_ID, None)], REQUEST_PERCENTAGE, 1.0);
        let quotas = ClientQuotas::new(11, 1_000);
        // 500 percent-seconds at once: far over 1 %, capped at 1 s.
        let d = quotas.record(&image, QuotaType::Request, "u", "c", 500.0, 1_000_000);
        assert_eq!(d, Duration::from_millis(1_000));
    }

    #[test]
    fn idle_entities_expire_and_the_count_is_bounded() {
        let image = image_with(&[(CLIENT_ID, None)], PRODUCER_BYTE_RATE, 1e6);
        let quotas = ClientQuotas::new(11, 1_000);
        let t = 100_000_000;
        for i in 0..10 {
            quotas.record(&image, QuotaType::Produce, "u", &format!("c{i}"), 1.0, t);
        }
        assert_eq!(quotas.metered_entities(), 10);
        // One more client long after: the sweep drops the idle ten.
        let later = t + IDLE_ENTITY_EXPIRY_MS + SWEEP_INTERVAL_MS;
        quotas.record(&image, QuotaType::Produce, "u", "new", 1.0, later);
        assert_eq!(quotas.metered_entities(), 1);
    }

    #[test]
    fn a_request_is_charged_to_its_principals_user_and_its_client_id() {
        // /users/alice/clients/<default>: any client id of alice, not bob.
        let image = Arc::new(image_with(
            &[(USER, Some("alice")), (CLIENT_ID, None)],
            PRODUCER_BYTE_RATE,
            100.0,
        ));
        let quotas = Arc::new(ClientQuotas::new(11, 1_000));
        let ctx_of = |user: &str| crate::context::RequestContext {
            peer: "127.0.0.1:1".parse().expect("addr"),
            principal: Arc::new(crate::Principal {
                principal_type: "User".to_owned(),
                name: user.to_owned(),
            }),
            listener: Arc::from("SASL_PLAINTEXT"),
            throttle: ConnectionThrottle::default(),
        };
        let header = sluice_protocol::RequestHeader {
            request_api_key: 0,
            request_api_version: 9,
            correlation_id: 1,
            client_id: Some("app".to_owned()),
        };
        let alice = ctx_of("alice");
        let charge = Charge::new(
            &quotas,
            Arc::clone(&image),
            QuotaType::Produce,
            &alice,
            &header,
        )
        .expect("quotas exist");
        // 2 000 B over the 10 s span is 200 B/s, twice the quota: 10 s.
        let throttle = charge.record(2_000.0);
        assert!(throttle >= Duration::from_millis(9_000), "{throttle:?}");
        charge.mute(throttle);
        assert!(
            alice.throttle.muted_until().is_some(),
            "the connection is muted"
        );
        let bob = ctx_of("bob");
        let charge =
            Charge::new(&quotas, image, QuotaType::Produce, &bob, &header).expect("quotas exist");
        assert!(charge.record(2_000.0).is_zero(), "bob has no quota");
        // No quota anywhere: no charge at all.
        assert!(
            Charge::new(
                &quotas,
                Arc::new(MetadataImage::default()),
                QuotaType::Produce,
                &bob,
                &header
            )
            .is_none()
        );
    }

    #[test]
    fn kip_219_versions_tell_the_client_to_throttle_itself() {
        use sluice_protocol::ApiKey;
        assert!(!client_throttles_itself(ApiKey::Produce as i16, 5));
        assert!(client_throttles_itself(ApiKey::Produce as i16, 6));
        assert!(!client_throttles_itself(ApiKey::Fetch as i16, 7));
        assert!(client_throttles_itself(ApiKey::Fetch as i16, 8));
    }

    #[test]
    fn a_token_bucket_starts_full_goes_over_once_and_refills_at_the_rate() {
        // 2 mutations/s, burst 11 windows x 1 s x 2 = 22 (Kafka's formula).
        let bucket = TokenBucket::default();
        let (rate, burst) = (2.0, 22.0);
        let t = 1_000_000;
        // Strict: a full bucket takes 30 at once (one request may go over),
        // without a throttle for that request.
        assert_eq!(bucket.take(30.0, rate, burst, true, t), Ok(Duration::ZERO));
        // Now at -8: the next strict ask is refused, with the 4 s the
        // bucket needs to refill to zero (-tokens / rate).
        assert_eq!(
            bucket.take(1.0, rate, burst, true, t),
            Err(Duration::from_millis(4_000))
        );
        // 3 s later it is at -2: still refused, 1 s to go.
        assert_eq!(
            bucket.take(1.0, rate, burst, true, t + 3_000),
            Err(Duration::from_millis(1_000))
        );
        // At zero it is accepted again.
        assert_eq!(
            bucket.take(1.0, rate, burst, true, t + 4_000),
            Ok(Duration::ZERO)
        );
        // Permissive: always taken, throttled by the time to refill to zero.
        assert_eq!(
            bucket.take(5.0, rate, burst, false, t + 4_000),
            Ok(Duration::from_millis(3_000))
        );
        // Giving back the 5 undoes it; refills never pass the burst.
        bucket.give_back(5.0, rate, burst, t + 4_000);
        assert_eq!(
            bucket.take(0.0, rate, burst, false, t + 1_000_000),
            Ok(Duration::ZERO)
        );
        assert_eq!(
            bucket.take(22.0, rate, burst, true, t + 1_000_000),
            Ok(Duration::ZERO)
        );
        assert!(bucket.take(1.0, rate, burst, true, t + 1_000_000).is_ok());
        assert!(bucket.take(1.0, rate, burst, true, t + 1_000_000).is_err());
    }

    #[test]
    fn controller_mutations_are_metered_per_entity_with_kafkas_precedence() {
        // 1 partition/s for user alice: burst 11.
        let image = image_with(&[(USER, Some("alice"))], CONTROLLER_MUTATION_RATE, 1.0);
        let quotas = ClientQuotas::new(11, 1_000);
        let t = 2_000_000;
        assert_eq!(
            quotas.record_mutations(&image, "alice", "admin", 11.0, true, t),
            Ok(Duration::ZERO)
        );
        assert_eq!(
            quotas.record_mutations(&image, "alice", "admin", 5.0, true, t),
            Ok(Duration::ZERO),
            "at exactly zero the bucket is not exhausted: one request goes over"
        );
        assert_eq!(
            quotas.record_mutations(&image, "alice", "other-client", 1.0, true, t),
            Err(Duration::from_millis(5_000)),
            "every client id of alice shares her bucket"
        );
        // Bob has no quota.
        for _ in 0..100 {
            assert_eq!(
                quotas.record_mutations(&image, "bob", "admin", 100.0, true, t),
                Ok(Duration::ZERO)
            );
        }
        // Giving back what a failed mutation took makes room again.
        quotas.give_back_mutations(&image, "alice", "admin", 5.0, t);
        assert!(
            quotas
                .record_mutations(&image, "alice", "admin", 1.0, true, t)
                .is_ok()
        );
    }

    #[test]
    fn connections_over_an_ips_rate_are_delayed_at_most_one_window_and_not_counted() {
        // 2 connections/s from 10.0.0.1; its rate is averaged over 10 s
        // at first, so 20 pass at once (Kafka's sampled rate).
        let image = image_with(&[(IP, Some("10.0.0.1"))], CONNECTION_CREATION_RATE, 2.0);
        let quotas = ClientQuotas::new(11, 1_000);
        let ip: std::net::IpAddr = "10.0.0.1".parse().expect("ip");
        let other: std::net::IpAddr = "10.0.0.2".parse().expect("ip");
        let t = 3_000_000;
        for i in 0..20 {
            assert!(
                quotas.record_connection(&image, ip, t).is_zero(),
                "connection {i} is within the quota"
            );
        }
        // The 21st: 21 / 10 s = 2.1/s, (2.1 - 2) / 2 x 10 s = 500 ms.
        assert_eq!(
            quotas.record_connection(&image, ip, t),
            Duration::from_millis(500)
        );
        // A refused connection is not counted: the next one earns the same.
        assert_eq!(
            quotas.record_connection(&image, ip, t),
            Duration::from_millis(500)
        );
        // Far over, the delay is capped at one window (1 s).
        let heavy = image_with(&[(IP, None)], CONNECTION_CREATION_RATE, 0.1);
        assert!(quotas.record_connection(&heavy, other, t).is_zero());
        assert_eq!(
            quotas.record_connection(&heavy, other, t),
            Duration::from_millis(1_000)
        );
        // Another address is not limited by 10.0.0.1's own quota.
        assert!(quotas.record_connection(&image, other, t).is_zero());
        // Once the window has moved on, the address may connect again.
        assert!(quotas.record_connection(&image, ip, t + 20_000).is_zero());
    }

    #[tokio::test]
    async fn a_mutation_charge_refuses_strict_versions_and_throttles_older_ones() {
        let image = Arc::new(image_with(
            &[(CLIENT_ID, Some("admin"))],
            CONTROLLER_MUTATION_RATE,
            1.0,
        ));
        let quotas = Arc::new(ClientQuotas::new(11, 1_000));
        let ctx = crate::context::RequestContext {
            peer: "127.0.0.1:1".parse().expect("addr"),
            principal: Arc::new(crate::Principal::anonymous()),
            listener: Arc::from("PLAINTEXT"),
            throttle: ConnectionThrottle::default(),
        };
        let header = |version: i16| sluice_protocol::RequestHeader {
            request_api_key: sluice_protocol::ApiKey::CreateTopics as i16,
            request_api_version: version,
            correlation_id: 1,
            client_id: Some("admin".to_owned()),
        };
        // CreateTopics v6: strict. 12 partitions empty the bucket (11) and
        // go over; the request is not throttled, the next topic is refused.
        let strict = MutationCharge::new(&quotas, Arc::clone(&image), &ctx, &header(6), 6);
        assert!(strict.request(12).is_ok());
        assert_eq!(strict.throttle_time_ms(), 0);
        let refused = strict.request(1).expect_err("over the quota");
        assert_eq!(
            refused.code,
            sluice_protocol::error::codes::THROTTLING_QUOTA_EXCEEDED
        );
        let throttle = strict.throttle_time_ms();
        assert!((900..=1_000).contains(&throttle), "{throttle}");
        strict.enforce().await;
        assert!(
            ctx.throttle.muted_until().is_some(),
            "the connection is muted"
        );
        // CreateTopics v5: permissive. Accepted, and throttled instead.
        let older = MutationCharge::new(&quotas, Arc::clone(&image), &ctx, &header(5), 6);
        assert!(older.request(1).is_ok());
        let throttle = older.throttle_time_ms();
        assert!((1_900..=2_000).contains(&throttle), "{throttle}");
        // No quotas at all: nothing is metered.
        let none = MutationCharge::new(
            &quotas,
            Arc::new(MetadataImage::default()),
            &ctx,
            &header(6),
            6,
        );
        assert!(none.request(1_000_000).is_ok());
        assert_eq!(none.throttle_time_ms(), 0);
    }

    #[test]
    fn a_forwarding_broker_reads_the_controllers_mutation_throttle() {
        use sluice_protocol::messages::create_topics::CreateTopicsResponse;
        use sluice_protocol::messages::delete_topics::DeleteTopicsResponse;
        use sluice_protocol::{ApiKey, encode_response, response_header_version};
        let header = |api: ApiKey, version: i16| sluice_protocol::RequestHeader {
            request_api_key: api as i16,
            request_api_version: version,
            correlation_id: 5,
            client_id: None,
        };
        for version in [2, 4, 5, 7] {
            let frame = encode_response(
                5,
                response_header_version(ApiKey::CreateTopics, version),
                &CreateTopicsResponse {
                    throttle_time_ms: 1_234,
                    ..Default::default()
                },
                version,
            )
            .expect("encodes");
            assert_eq!(
                forwarded_mutation_throttle(&header(ApiKey::CreateTopics, version), &frame),
                Some(Duration::from_millis(1_234)),
                "CreateTopics v{version}"
            );
        }
        let frame = encode_response(
            5,
            response_header_version(ApiKey::DeleteTopics, 6),
            &DeleteTopicsResponse::default(),
            6,
        )
        .expect("encodes");
        assert_eq!(
            forwarded_mutation_throttle(&header(ApiKey::DeleteTopics, 6), &frame),
            None,
            "no throttle"
        );
        assert_eq!(
            forwarded_mutation_throttle(&header(ApiKey::AlterConfigs, 1), &frame),
            None,
            "not a mutation API"
        );
        assert_eq!(
            forwarded_mutation_throttle(&header(ApiKey::CreateTopics, 7), &[0, 0]),
            None,
            "a short frame is not read"
        );
    }

    #[tokio::test]
    async fn a_muted_connection_unmutes_at_its_deadline() {
        let t = ConnectionThrottle::default();
        assert!(t.muted_until().is_none());
        t.mute_for(Duration::from_millis(50));
        let until = t.muted_until().expect("muted");
        // A shorter mute does not cut a longer one.
        t.mute_for(Duration::from_millis(1));
        assert_eq!(t.muted_until(), Some(until));
        tokio::time::sleep_until(until).await;
        assert!(t.muted_until().is_none());
    }
}
