//! Dynamic broker configs: the broker configs Kafka lets an admin change
//! at run time with (Incremental)AlterConfigs on a BROKER resource, kept in
//! the metadata ([`crate::MetadataRecord::BrokerConfig`]) per broker or as
//! the cluster-wide default.
//!
//! Sluice has exactly the two replication throttle rates (KIP-73), which
//! `kafka-reassign-partitions --throttle` sets. Every other broker config
//! is static (the config file) and an alter of one is refused.

use sluice_protocol::error::codes as code;

use crate::error::ApiError;

/// Bytes/s the leader may send to throttled followers (KIP-73).
pub const LEADER_THROTTLED_RATE: &str = "leader.replication.throttled.rate";
/// Bytes/s a follower may fetch for throttled replicas (KIP-73).
pub const FOLLOWER_THROTTLED_RATE: &str = "follower.replication.throttled.rate";

/// Kafka's default for both rates: `Long.MAX_VALUE` bytes/s, unlimited.
pub const UNLIMITED_RATE: i64 = i64::MAX;

/// The broker configs that can be changed at run time.
pub const DYNAMIC_BROKER_CONFIGS: &[&str] = &[LEADER_THROTTLED_RATE, FOLLOWER_THROTTLED_RATE];

/// True if `name` is a dynamic broker config.
pub fn is_dynamic(name: &str) -> bool {
    DYNAMIC_BROKER_CONFIGS.contains(&name)
}

/// Checks a dynamic broker config and its value (`None` = remove, always
/// valid for a known key). A static key is INVALID_REQUEST, as Sluice
/// refused every broker alter before; a bad value is INVALID_CONFIG.
pub fn validate(name: &str, value: Option<&str>) -> Result<(), ApiError> {
    if !is_dynamic(name) {
        return Err(ApiError::new(
            code::INVALID_REQUEST,
            format!(
                "broker config `{name}` cannot be updated dynamically (only {} can); \
                 change the config file and restart",
                DYNAMIC_BROKER_CONFIGS.join(", ")
            ),
        ));
    }
    let Some(value) = value else { return Ok(()) };
    // Both rates are Kafka LONGs with `atLeast(0)`.
    match value.trim().parse::<i64>() {
        Ok(n) if n >= 0 => Ok(()),
        _ => Err(ApiError::new(
            code::INVALID_CONFIG,
            format!(
                "invalid value `{value}` for broker config `{name}`: must be an integer of at least 0 (bytes/s)"
            ),
        )),
    }
}

/// The rate a validated value stands for; [`UNLIMITED_RATE`] when unset.
pub fn rate(value: Option<&str>) -> i64 {
    value
        .and_then(|v| v.trim().parse::<i64>().ok())
        .filter(|&n| n >= 0)
        .unwrap_or(UNLIMITED_RATE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_throttle_rates_are_dynamic_and_they_take_non_negative_longs() {
        assert!(validate(LEADER_THROTTLED_RATE, Some("0")).is_ok());
        assert!(validate(FOLLOWER_THROTTLED_RATE, Some("9223372036854775807")).is_ok());
        assert!(validate(FOLLOWER_THROTTLED_RATE, None).is_ok());
        let bad = validate(LEADER_THROTTLED_RATE, Some("-1")).expect_err("negative");
        assert_eq!(bad.code, code::INVALID_CONFIG);
        assert!(bad.message.contains(LEADER_THROTTLED_RATE));
        let bad = validate(LEADER_THROTTLED_RATE, Some("fast")).expect_err("not a number");
        assert_eq!(bad.code, code::INVALID_CONFIG);
        let fixed = validate("num.partitions", Some("3")).expect_err("static");
        assert_eq!(fixed.code, code::INVALID_REQUEST);
        assert_eq!(rate(None), UNLIMITED_RATE);
        assert_eq!(rate(Some("2048")), 2048);
    }
}
