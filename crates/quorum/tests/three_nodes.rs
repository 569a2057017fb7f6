//! Three quorum members in one process, on loopback: election, commits on
//! the leader reaching every image, failover, and a learner catching up
//! from a snapshot.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_metadata::{MetadataImage, MetadataLog, MetadataRecord};
use sluice_quorum::{Quorum, QuorumConfig, Voter};
use uuid::Uuid;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn topic(name: &str, partitions: i32) -> Vec<MetadataRecord> {
    let topic_id = Uuid::new_v4();
    let mut records = vec![MetadataRecord::Topic {
        name: name.to_owned(),
        topic_id,
    }];
    for p in 0..partitions {
        records.push(MetadataRecord::Partition {
            topic_id,
            partition: p,
            leader: 1,
            replicas: vec![1],
            isr: vec![1],
            leader_epoch: 0,
            partition_epoch: 0,
            adding_replicas: Vec::new(),
            removing_replicas: Vec::new(),
        });
    }
    records
}

async fn wait_for<T>(what: &str, deadline: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + deadline;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

struct Cluster {
    dirs: Vec<tempfile::TempDir>,
    voters: Vec<Voter>,
    nodes: Vec<Option<Arc<Quorum>>>,
}

impl Cluster {
    async fn start(n: usize) -> Cluster {
        let voters: Vec<Voter> = (1..=n as i32)
            .map(|id| Voter {
                id,
                addr: format!("127.0.0.1:{}", free_port()),
            })
            .collect();
        let mut cluster = Cluster {
            dirs: (0..n)
                .map(|_| tempfile::tempdir().expect("tempdir"))
                .collect(),
            voters,
            nodes: vec![None; n],
        };
        for i in 0..n {
            cluster.restart(i).await;
        }
        cluster
    }

    fn config(&self, i: usize) -> QuorumConfig {
        let mut config = QuorumConfig::new(
            self.voters[i].id,
            self.dirs[i].path().to_owned(),
            self.voters[i].addr.clone(),
            self.voters.clone(),
        );
        config.snapshot_every_entries = 5;
        config
    }

    async fn restart(&mut self, i: usize) {
        let q = Quorum::start(self.config(i)).await.expect("start");
        self.nodes[i] = Some(q);
    }

    async fn stop(&mut self, i: usize) {
        if let Some(q) = self.nodes[i].take() {
            q.shutdown().await;
        }
    }

    async fn leader(&self) -> Arc<Quorum> {
        wait_for("a leader", Duration::from_secs(10), || {
            self.nodes.iter().flatten().find(|q| q.is_leader()).cloned()
        })
        .await
    }

    async fn images_agree(&self) -> Arc<MetadataImage> {
        wait_for("images to agree", Duration::from_secs(10), || {
            let images: Vec<_> = self.nodes.iter().flatten().map(|q| q.image()).collect();
            let first = images.first()?.clone();
            images.iter().all(|i| *i == first).then_some(first)
        })
        .await
    }
}

/// Creates a topic through the leader `cluster` knows, retrying while
/// leadership settles (NOT_CONTROLLER is retriable, as clients treat it).
async fn create(cluster: &Cluster, name: &str, partitions: i32) {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let leader = cluster.leader().await;
        let records = topic(name, partitions);
        match leader
            .commit(Box::new(move |_| Ok(records)))
            .await
            .expect("log")
        {
            Ok(_) => return,
            Err(e) if e.code == 41 && Instant::now() < end => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("create {name}: {e:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_voters_agree_fail_over_and_a_learner_catches_up() {
    let mut cluster = Cluster::start(3).await;
    create(&cluster, "a", 3).await;
    create(&cluster, "b", 1).await;
    let leader = cluster.leader().await;
    let image = cluster.images_agree().await;
    assert_eq!(image.topics.len(), 2);
    assert_eq!(image.topics["a"].partitions.len(), 3);

    // A follower refuses to commit: only the active controller writes.
    let follower = cluster
        .nodes
        .iter()
        .flatten()
        .find(|q| !q.is_leader())
        .cloned()
        .expect("a follower");
    let refused = follower
        .commit(Box::new(|_| Ok(topic("nope", 1))))
        .await
        .expect("log");
    assert_eq!(refused.err().map(|e| e.code), Some(41), "NOT_CONTROLLER");

    // Stop the leader: another is elected and changes work again.
    let old = cluster
        .nodes
        .iter()
        .position(|q| q.as_ref().is_some_and(|q| Arc::ptr_eq(q, &leader)))
        .expect("leader index");
    drop(leader);
    drop(follower);
    cluster.stop(old).await;
    let started = Instant::now();
    create(&cluster, "c", 2).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "failover took {:?}",
        started.elapsed()
    );
    // Enough changes to take a snapshot and purge the log behind it.
    for i in 0..8 {
        create(&cluster, &format!("t{i}"), 1).await;
    }

    // The old leader comes back and catches up.
    cluster.restart(old).await;
    let image = cluster.images_agree().await;
    assert_eq!(image.topics.len(), 11);

    // A new node joins as a learner and catches up (from a snapshot: the
    // log before it is purged).
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = QuorumConfig::new(
        4,
        dir.path().to_owned(),
        format!("127.0.0.1:{}", free_port()),
        cluster.voters.clone(),
    );
    config.snapshot_every_entries = 5;
    let learner = Quorum::start(config).await.expect("learner");
    let want = cluster.images_agree().await;
    wait_for("the learner to catch up", Duration::from_secs(10), || {
        (*learner.image() == *want).then_some(())
    })
    .await;
    let status = cluster.leader().await.status();
    let roles: Vec<(i32, &str)> = status
        .nodes
        .iter()
        .map(|n| (n.id, n.role.as_str()))
        .collect();
    assert_eq!(
        roles,
        vec![(1, "voter"), (2, "voter"), (3, "voter"), (4, "learner")]
    );
    assert!(
        learner.status().snapshot_index.is_some(),
        "caught up from a snapshot"
    );
    learner.shutdown().await;
    for i in 0..3 {
        cluster.stop(i).await;
    }
}
