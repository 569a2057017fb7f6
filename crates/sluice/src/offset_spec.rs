//! `sluice consume -o SPEC`: where each partition starts and, for ranges,
//! where it stops, in the forms kcat and rpk take. Parsing is pure; turning
//! a spec into offsets asks the partition leaders (ListOffsets) once, before
//! the first fetch. Ends are exclusive and never past the high watermark
//! seen at start, as rpk does, so a range always finishes.

use sluice_client::admin::{EARLIEST_TIMESTAMP, LATEST_TIMESTAMP, list_offsets};
use sluice_client::{Client, Offset};

use crate::common::{CliError, parse_datetime_ms};

/// Where a partition starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The log start offset (`beginning`, `start`, `earliest`, `oldest`).
    Beginning,
    /// The high watermark: only new records (`end`, `latest`, `newest`).
    End,
    /// The group's committed offset (`stored`, `committed`).
    Stored,
    /// An exact offset.
    At(i64),
    /// `+N`: N records after the log start offset.
    AfterBeginning(i64),
    /// `-N`: the last N records of each partition.
    BeforeEnd(i64),
    /// `@TIME`: the first record whose timestamp is at or after this, in ms.
    Time(i64),
}

/// Where a partition stops (exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Never: follow new records.
    Never,
    /// Before this offset (`A:B`), capped at the high watermark.
    At(i64),
    /// Before the first record at or after this time, in ms (`@T1:@T2`).
    Time(i64),
    /// At the high watermark seen at start (`:end`, `--no-follow`).
    CurrentEnd,
}

/// A parsed `-o` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetSpec {
    /// Where to start.
    pub start: Start,
    /// Where to stop.
    pub stop: Stop,
}

impl OffsetSpec {
    /// Starts at `start` and follows.
    pub fn from(start: Start) -> OffsetSpec {
        OffsetSpec {
            start,
            stop: Stop::Never,
        }
    }
}

const OFFSET_FORMS: &str =
    "beginning, end, stored, N, +N, -N, A:B, A:, :B, A:end, @TIME or @T1:@T2";

/// Parses a `-o` value (see [`OFFSET_FORMS`]).
pub fn parse_offset_spec(s: &str) -> Result<OffsetSpec, String> {
    let bad = |why: &str| format!("'{s}' is not an offset ({why}; one of {OFFSET_FORMS})");
    let number = |n: &str| n.parse::<i64>().ok().filter(|n| *n >= 0);
    let time = |t: &str| parse_datetime_ms(t).map_err(|e| bad(&e));
    if let Some(rest) = s.strip_prefix('@') {
        // Timestamps may hold colons (10:00:00), so ranges split at ":@".
        if let Some((from, to)) = rest.split_once(":@") {
            let (from, to) = (time(from)?, time(to)?);
            if to <= from {
                return Err(bad("the end time must be after the start time"));
            }
            return Ok(OffsetSpec {
                start: Start::Time(from),
                stop: Stop::Time(to),
            });
        }
        if let Some(from) = rest.strip_suffix(":end") {
            return Ok(OffsetSpec {
                start: Start::Time(time(from)?),
                stop: Stop::CurrentEnd,
            });
        }
        return Ok(OffsetSpec::from(Start::Time(time(rest)?)));
    }
    // kcat's spellings: s@T starts at a time, e@T stops before one.
    if let Some(from) = s.strip_prefix("s@") {
        return Ok(OffsetSpec::from(Start::Time(time(from)?)));
    }
    if let Some(to) = s.strip_prefix(":@").or_else(|| s.strip_prefix("e@")) {
        return Ok(OffsetSpec {
            start: Start::Beginning,
            stop: Stop::Time(time(to)?),
        });
    }
    if let Some(n) = s.strip_prefix('-') {
        let n = number(n).ok_or_else(|| bad("-N needs a count"))?;
        return Ok(OffsetSpec::from(Start::BeforeEnd(n)));
    }
    if let Some(n) = s.strip_prefix('+') {
        let n = number(n).ok_or_else(|| bad("+N needs a count"))?;
        return Ok(OffsetSpec::from(Start::AfterBeginning(n)));
    }
    let start_word = |w: &str| match w {
        "beginning" | "start" | "earliest" | "oldest" => Some(Start::Beginning),
        "end" | "latest" | "newest" => Some(Start::End),
        "stored" | "committed" => Some(Start::Stored),
        n => number(n).map(Start::At),
    };
    let Some((from, to)) = s.split_once(':') else {
        return start_word(s)
            .map(OffsetSpec::from)
            .ok_or_else(|| bad("unknown form"));
    };
    let start = match from {
        "" => Start::Beginning,
        w => match start_word(w) {
            Some(Start::End) | None => return Err(bad("a range starts at an offset or beginning")),
            Some(start) => start,
        },
    };
    let stop = match to {
        "" => Stop::Never,
        "end" => Stop::CurrentEnd,
        n => Stop::At(number(n).ok_or_else(|| bad("a range ends at an offset or end"))?),
    };
    if let (Start::At(a), Stop::At(b)) = (start, stop)
        && b <= a
    {
        return Err(bad(
            "the end offset is exclusive and must be after the start",
        ));
    }
    Ok(OffsetSpec { start, stop })
}

/// One partition's resolved bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Where the consumer starts (it resolves committed offsets itself).
    pub start: Offset,
    /// Offset to stop before, if any.
    pub end: Option<i64>,
}

/// Resolves `spec` for each partition, asking the leaders for log start,
/// high watermark and time offsets only when the spec needs them.
pub async fn resolve(
    client: &Client,
    spec: OffsetSpec,
    partitions: &[(String, i32)],
) -> Result<Vec<Bounds>, CliError> {
    let needs_bounds = matches!(spec.start, Start::AfterBeginning(_) | Start::BeforeEnd(_))
        || spec.stop != Stop::Never;
    let (log_starts, high_watermarks) = if needs_bounds {
        let query = |ts: i64| -> Vec<(String, i32, i64)> {
            partitions
                .iter()
                .map(|(t, p)| (t.clone(), *p, ts))
                .collect()
        };
        (
            list_offsets(client, &query(EARLIEST_TIMESTAMP)).await?,
            list_offsets(client, &query(LATEST_TIMESTAMP)).await?,
        )
    } else {
        (Vec::new(), Vec::new())
    };
    let stop_times = match spec.stop {
        Stop::Time(ts) => {
            let q: Vec<_> = partitions
                .iter()
                .map(|(t, p)| (t.clone(), *p, ts))
                .collect();
            list_offsets(client, &q).await?
        }
        _ => Vec::new(),
    };
    let mut out = Vec::with_capacity(partitions.len());
    for i in 0..partitions.len() {
        let log_start = log_starts.get(i).copied().unwrap_or(0);
        let high_watermark = high_watermarks.get(i).copied().unwrap_or(0);
        let start = match spec.start {
            Start::Beginning => Offset::Earliest,
            Start::End => Offset::Latest,
            Start::Stored => Offset::Committed,
            Start::At(n) => Offset::At(n),
            Start::Time(ts) => Offset::Timestamp(ts),
            Start::AfterBeginning(n) => Offset::At(log_start.saturating_add(n).min(high_watermark)),
            Start::BeforeEnd(n) => Offset::At(high_watermark.saturating_sub(n).max(log_start)),
        };
        let end = match spec.stop {
            Stop::Never => None,
            Stop::CurrentEnd => Some(high_watermark),
            Stop::At(n) => Some(n.min(high_watermark)),
            // -1: no record that late, so everything up to the end.
            Stop::Time(_) => Some(match stop_times.get(i).copied() {
                Some(o) if o >= 0 => o.min(high_watermark),
                _ => high_watermark,
            }),
        };
        out.push(Bounds { start, end });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(s: &str) -> OffsetSpec {
        parse_offset_spec(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn single_offsets_take_kcat_and_rpk_words() {
        assert_eq!(spec("beginning"), OffsetSpec::from(Start::Beginning));
        assert_eq!(spec("start"), OffsetSpec::from(Start::Beginning));
        assert_eq!(spec("end"), OffsetSpec::from(Start::End));
        assert_eq!(spec("stored"), OffsetSpec::from(Start::Stored));
        assert_eq!(spec("42"), OffsetSpec::from(Start::At(42)));
        assert_eq!(spec("-3"), OffsetSpec::from(Start::BeforeEnd(3)));
        assert_eq!(spec("+3"), OffsetSpec::from(Start::AfterBeginning(3)));
    }

    #[test]
    fn ranges_have_an_exclusive_end() {
        assert_eq!(
            spec("2:5"),
            OffsetSpec {
                start: Start::At(2),
                stop: Stop::At(5)
            }
        );
        assert_eq!(spec(":5").start, Start::Beginning);
        assert_eq!(spec("2:"), OffsetSpec::from(Start::At(2)));
        assert_eq!(spec(":end").stop, Stop::CurrentEnd);
        assert_eq!(spec("start:end").stop, Stop::CurrentEnd);
        assert!(parse_offset_spec("5:5").is_err(), "empty range");
        assert!(parse_offset_spec("5:2").is_err(), "backwards range");
        assert!(parse_offset_spec("end:9").is_err());
        assert!(parse_offset_spec("x").is_err());
        assert!(parse_offset_spec("-x").is_err());
    }

    #[test]
    fn timestamps_may_hold_colons() {
        assert_eq!(spec("@1000"), OffsetSpec::from(Start::Time(1000)));
        assert_eq!(
            spec("@1970-01-01T00:00:01Z:@1970-01-01T00:00:02Z"),
            OffsetSpec {
                start: Start::Time(1000),
                stop: Stop::Time(2000)
            }
        );
        assert_eq!(spec("@1000:end").stop, Stop::CurrentEnd);
        assert_eq!(
            spec(":@5"),
            OffsetSpec {
                start: Start::Beginning,
                stop: Stop::Time(5)
            }
        );
        assert_eq!(spec("s@1000"), OffsetSpec::from(Start::Time(1000)));
        assert_eq!(spec("e@5"), spec(":@5"));
        assert!(parse_offset_spec("@2000:@1000").is_err());
        assert!(parse_offset_spec("@soon").is_err());
    }
}
