//! Async Rust client for Sluice and any Kafka broker.
