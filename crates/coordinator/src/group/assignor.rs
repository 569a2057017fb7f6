//! Server-side assignors for KIP-848 consumer groups.
//!
//! Pure functions from (members' subscriptions, topic metadata, previous
//! target) to a new target assignment. They must not know about epochs or
//! reconciliation; [`super::consumer`] does that.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

/// Partitions by topic id.
pub type Assignment = BTreeMap<Uuid, BTreeSet<i32>>;

/// Topic metadata the assignors see: name -> (topic id, partition count).
pub type TopicsView = BTreeMap<String, (Uuid, i32)>;

/// The assignors we offer, by KIP-848 name.
pub const ASSIGNORS: &[&str] = &["uniform", "range"];

/// Upper bound on balancing moves, so a pathological subscription pattern
/// cannot spin the coordinator: each move strictly narrows the imbalance,
/// and there can be no more useful moves than partitions times members.
const MAX_BALANCE_ROUNDS: usize = 100_000;

/// Computes a target assignment with `assignor` ("uniform" or "range").
/// `members` maps member id to its subscribed topic names.
pub fn assign(
    assignor: &str,
    members: &BTreeMap<String, Vec<String>>,
    topics: &TopicsView,
    previous: &BTreeMap<String, Assignment>,
) -> BTreeMap<String, Assignment> {
    match assignor {
        "range" => range(members, topics),
        _ => uniform(members, topics, previous),
    }
}

/// Per topic, sorted members subscribed to it get contiguous ranges; the
/// first `partitions % members` get one more (Kafka's RangeAssignor).
pub fn range(
    members: &BTreeMap<String, Vec<String>>,
    topics: &TopicsView,
) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> = members
        .keys()
        .map(|m| (m.clone(), Assignment::new()))
        .collect();
    for (name, (id, count)) in topics {
        let subs: Vec<&String> = members
            .iter()
            .filter(|(_, t)| t.contains(name))
            .map(|(m, _)| m)
            .collect();
        if subs.is_empty() || *count <= 0 {
            continue;
        }
        let n = subs.len() as i32;
        let (base, extra) = (count / n, count % n);
        let mut next = 0;
        for (i, m) in subs.iter().enumerate() {
            let take = base + i32::from((i as i32) < extra);
            if take > 0 {
                let set = out.entry((*m).clone()).or_default().entry(*id).or_default();
                set.extend(next..next + take);
            }
            next += take;
        }
    }
    out
}

/// Balanced and sticky: partitions stay with their previous owner when it
/// is still subscribed, the rest go to the least-loaded eligible member,
/// then partitions move from the most to the least loaded eligible member
/// until no member has two more than another that could take one.
pub fn uniform(
    members: &BTreeMap<String, Vec<String>>,
    topics: &TopicsView,
    previous: &BTreeMap<String, Assignment>,
) -> BTreeMap<String, Assignment> {
    // Every (topic id, partition) with the members that may own it.
    let mut owner: BTreeMap<(Uuid, i32), Option<String>> = BTreeMap::new();
    let mut eligible: BTreeMap<(Uuid, i32), Vec<String>> = BTreeMap::new();
    for (name, (id, count)) in topics {
        let subs: Vec<String> = members
            .iter()
            .filter(|(_, t)| t.contains(name))
            .map(|(m, _)| m.clone())
            .collect();
        if subs.is_empty() {
            continue;
        }
        for p in 0..*count {
            owner.insert((*id, p), None);
            eligible.insert((*id, p), subs.clone());
        }
    }
    let mut load: BTreeMap<String, usize> = members.keys().map(|m| (m.clone(), 0)).collect();
    // Stickiness first.
    for (m, assignment) in previous {
        if !members.contains_key(m) {
            continue;
        }
        for (id, parts) in assignment {
            for p in parts {
                let key = (*id, *p);
                if eligible.get(&key).is_some_and(|e| e.contains(m))
                    && owner.get(&key).is_some_and(Option::is_none)
                {
                    owner.insert(key, Some(m.clone()));
                    *load.entry(m.clone()).or_default() += 1;
                }
            }
        }
    }
    // Unowned partitions to the least-loaded eligible member.
    let keys: Vec<(Uuid, i32)> = owner.keys().copied().collect();
    for key in &keys {
        if owner.get(key).is_some_and(Option::is_some) {
            continue;
        }
        let Some(best) = eligible
            .get(key)
            .and_then(|e| {
                e.iter()
                    .min_by_key(|m| (load.get(*m).copied().unwrap_or(0), *m))
            })
            .cloned()
        else {
            continue;
        };
        *load.entry(best.clone()).or_default() += 1;
        owner.insert(*key, Some(best));
    }
    // Balance.
    for _ in 0..MAX_BALANCE_ROUNDS {
        let mut moved = false;
        for key in &keys {
            let Some(Some(current)) = owner.get(key).cloned() else {
                continue;
            };
            let current_load = load.get(&current).copied().unwrap_or(0);
            let target = eligible.get(key).and_then(|e| {
                e.iter()
                    .filter(|m| load.get(*m).copied().unwrap_or(0) + 1 < current_load)
                    .min_by_key(|m| (load.get(*m).copied().unwrap_or(0), *m))
                    .cloned()
            });
            if let Some(target) = target {
                *load.entry(current).or_default() -= 1;
                *load.entry(target.clone()).or_default() += 1;
                owner.insert(*key, Some(target));
                moved = true;
            }
        }
        if !moved {
            break;
        }
    }
    let mut out: BTreeMap<String, Assignment> = members
        .keys()
        .map(|m| (m.clone(), Assignment::new()))
        .collect();
    for ((id, p), m) in owner {
        if let Some(m) = m {
            out.entry(m).or_default().entry(id).or_default().insert(p);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topics(list: &[(&str, i32)]) -> TopicsView {
        list.iter()
            .enumerate()
            .map(|(i, (n, c))| ((*n).to_owned(), (Uuid::from_u128(i as u128 + 1), *c)))
            .collect()
    }

    fn members(list: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        list.iter()
            .map(|(m, t)| ((*m).to_owned(), t.iter().map(|s| (*s).to_owned()).collect()))
            .collect()
    }

    fn count(a: &Assignment) -> usize {
        a.values().map(BTreeSet::len).sum()
    }

    fn every_partition_once(out: &BTreeMap<String, Assignment>, total: usize) {
        let mut seen = BTreeSet::new();
        for a in out.values() {
            for (id, parts) in a {
                for p in parts {
                    assert!(seen.insert((*id, *p)), "partition {id}-{p} assigned twice");
                }
            }
        }
        assert_eq!(seen.len(), total);
    }

    #[test]
    fn uniform_balances_and_covers_every_partition() {
        let t = topics(&[("a", 6)]);
        let m = members(&[("m1", &["a"]), ("m2", &["a"]), ("m3", &["a"])]);
        let out = uniform(&m, &t, &BTreeMap::new());
        every_partition_once(&out, 6);
        assert!(out.values().all(|a| count(a) == 2), "{out:?}");
    }

    #[test]
    fn uniform_is_sticky_when_a_member_leaves() {
        let t = topics(&[("a", 6)]);
        let m3 = members(&[("m1", &["a"]), ("m2", &["a"]), ("m3", &["a"])]);
        let before = uniform(&m3, &t, &BTreeMap::new());
        let m2 = members(&[("m1", &["a"]), ("m2", &["a"])]);
        let after = uniform(&m2, &t, &before);
        every_partition_once(&after, 6);
        for m in ["m1", "m2"] {
            let kept = &before[m];
            for (id, parts) in kept {
                assert!(
                    parts.is_subset(&after[m][id]),
                    "{m} lost a partition it kept"
                );
            }
            assert_eq!(count(&after[m]), 3);
        }
    }

    #[test]
    fn uniform_respects_subscriptions() {
        let t = topics(&[("a", 4), ("b", 2)]);
        let m = members(&[("m1", &["a"]), ("m2", &["a", "b"])]);
        let out = uniform(&m, &t, &BTreeMap::new());
        every_partition_once(&out, 6);
        let b = t["b"].0;
        assert!(!out["m1"].contains_key(&b));
        assert_eq!(count(&out["m1"]), 3);
    }

    #[test]
    fn range_gives_contiguous_ranges_extra_to_first() {
        let t = topics(&[("a", 5)]);
        let m = members(&[("m1", &["a"]), ("m2", &["a"])]);
        let out = range(&m, &t);
        let a = t["a"].0;
        assert_eq!(out["m1"][&a], (0..3).collect());
        assert_eq!(out["m2"][&a], (3..5).collect());
    }
}
