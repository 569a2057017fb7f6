//! `cluster.voters`: the initial voters, as `id@host:port` entries.

use std::collections::BTreeSet;

/// One initial voter: its node id and controller listener address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voter {
    /// Its `node_id`.
    pub id: i32,
    /// `host:port` of its controller listener.
    pub addr: String,
}

/// Why a `cluster.voters` value is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VotersError {
    /// The value names no voter.
    #[error("names no voter; expected entries like 1@host:9093")]
    Empty,
    /// An entry is not `id@host:port`.
    #[error("entry {0:?} is not id@host:port")]
    Malformed(String),
    /// An id is negative or not a number.
    #[error("entry {0:?}: the node id must be a number from 0 to 2147483647")]
    BadId(String),
    /// Two entries share an id.
    #[error("node id {0} is listed twice")]
    DuplicateId(i32),
}

/// Parses `"1@host1:9093,2@host2:9093,3@host3:9093"`.
pub fn parse_voters(value: &str) -> Result<Vec<Voter>, VotersError> {
    let mut voters = Vec::new();
    let mut seen = BTreeSet::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (id, addr) = entry
            .split_once('@')
            .ok_or_else(|| VotersError::Malformed(entry.to_owned()))?;
        let id: i32 = id
            .trim()
            .parse()
            .ok()
            .filter(|id| *id >= 0)
            .ok_or_else(|| VotersError::BadId(entry.to_owned()))?;
        let (host, port) = addr
            .rsplit_once(':')
            .ok_or_else(|| VotersError::Malformed(entry.to_owned()))?;
        if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(VotersError::Malformed(entry.to_owned()));
        }
        if !seen.insert(id) {
            return Err(VotersError::DuplicateId(id));
        }
        voters.push(Voter {
            id,
            addr: addr.to_owned(),
        });
    }
    if voters.is_empty() {
        return Err(VotersError::Empty);
    }
    Ok(voters)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn voters_parse_and_bad_entries_are_named() {
        let voters = parse_voters("1@a:9093, 2@b.example:19093,3@[::1]:9093").expect("parse");
        assert_eq!(
            voters,
            vec![
                Voter {
                    id: 1,
                    addr: "a:9093".into()
                },
                Voter {
                    id: 2,
                    addr: "b.example:19093".into()
                },
                Voter {
                    id: 3,
                    addr: "[::1]:9093".into()
                },
            ]
        );
        assert_eq!(parse_voters(""), Err(VotersError::Empty));
        assert_eq!(
            parse_voters("1@a:9093,1@b:9093"),
            Err(VotersError::DuplicateId(1))
        );
        assert!(matches!(
            parse_voters("a:9093"),
            Err(VotersError::Malformed(_))
        ));
        assert!(matches!(
            parse_voters("1@a"),
            Err(VotersError::Malformed(_))
        ));
        assert!(matches!(
            parse_voters("1@a:0"),
            Err(VotersError::Malformed(_))
        ));
        assert!(matches!(parse_voters("-1@a:1"), Err(VotersError::BadId(_))));
        assert!(matches!(parse_voters("x@a:1"), Err(VotersError::BadId(_))));
    }
}
