//! The controller listener over mutual TLS: three voters with certificates
//! from one CA elect a leader and replicate, while a plain TCP client, a
//! TLS client without a certificate and one whose certificate another CA
//! signed are each refused, costing only their own connection.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use sluice_metadata::{MetadataLog, MetadataRecord};
use sluice_quorum::{ClientTransport, Peers, Quorum, QuorumConfig, ServerTlsSource, Voter};
use uuid::Uuid;

/// Bound on waits for an election and a commit on loopback.
const DEADLINE: Duration = Duration::from_secs(20);

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("self-signed");
        Ca { cert, key }
    }

    /// A node certificate for 127.0.0.1, good as server and as client.
    fn issue(&self, name: &str) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("params");
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        params.distinguished_name = dn;
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = KeyPair::generate().expect("key");
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("signed");
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        (vec![cert.der().clone()], der)
    }

    fn roots(&self) -> Arc<rustls::RootCertStore> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.cert.der().clone()).expect("root");
        Arc::new(roots)
    }

    /// A client config trusting this CA, presenting `identity` if any.
    fn client(
        &self,
        identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    ) -> ClientTransport {
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(self.roots());
        let config = match identity {
            Some((certs, key)) => builder.with_client_auth_cert(certs, key).expect("identity"),
            None => builder.with_no_client_auth(),
        };
        ClientTransport::Tls(Arc::new(config))
    }

    /// A server config presenting `identity` and requiring a client
    /// certificate from this CA.
    fn server(
        &self,
        identity: (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>),
        members: Vec<CertificateDer<'static>>,
    ) -> Source {
        let verifier = WebPkiClientVerifier::builder_with_provider(self.roots(), provider())
            .build()
            .expect("verifier");
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_client_cert_verifier(verifier)
            .with_single_cert(identity.0, identity.1)
            .expect("server config");
        Source(Arc::new(config), members)
    }
}

/// A server config and the leaf certificates of the cluster's members.
#[derive(Debug)]
struct Source(Arc<rustls::ServerConfig>, Vec<CertificateDer<'static>>);

impl ServerTlsSource for Source {
    fn server_config(&self) -> Arc<rustls::ServerConfig> {
        Arc::clone(&self.0)
    }

    fn admit(&self, certs: &[CertificateDer<'_>]) -> Result<(), String> {
        let leaf = certs.first().ok_or("no certificate")?;
        if self.1.iter().any(|m| m.as_ref() == leaf.as_ref()) {
            Ok(())
        } else {
            Err("not a member".into())
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn topic(name: &str) -> Vec<MetadataRecord> {
    vec![MetadataRecord::Topic {
        name: name.to_owned(),
        topic_id: Uuid::new_v4(),
    }]
}

async fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Commits a topic through whichever node leads, retrying while the
/// election settles (NOT_CONTROLLER, code 41).
async fn create(nodes: &[Arc<Quorum>], name: &str) {
    let end = Instant::now() + DEADLINE;
    loop {
        let leader = wait_for("a leader", || nodes.iter().find(|q| q.is_leader()).cloned()).await;
        let records = topic(name);
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
async fn voters_replicate_over_mutual_tls_and_peers_without_a_cluster_certificate_are_refused() {
    let ca = Ca::new("cluster CA");
    let stranger = Ca::new("stranger CA");
    let voters: Vec<Voter> = (1..=3)
        .map(|id| Voter {
            id,
            addr: format!("127.0.0.1:{}", free_port()),
        })
        .collect();
    let dirs: Vec<_> = (0..3)
        .map(|_| tempfile::tempdir().expect("tempdir"))
        .collect();
    let identities: Vec<_> = voters
        .iter()
        .map(|v| ca.issue(&format!("node{}", v.id)))
        .collect();
    let operator = ca.issue("operator");
    let members: Vec<_> = identities
        .iter()
        .chain([&operator])
        .map(|(certs, _)| certs[0].clone())
        .collect();
    let mut nodes = Vec::new();
    for ((voter, dir), identity) in voters.iter().zip(&dirs).zip(&identities) {
        let mut config = QuorumConfig::new(
            voter.id,
            dir.path().to_owned(),
            voter.addr.clone(),
            voters.clone(),
        );
        let own = (identity.0.clone(), identity.1.clone_key());
        config.client_transport = ca.client(Some((identity.0.clone(), identity.1.clone_key())));
        config.server_tls = Some(Arc::new(ca.server(own, members.clone())));
        nodes.push(Quorum::start(config).await.expect("start"));
    }
    create(&nodes, "before").await;

    let target = &voters[0].addr;
    let refused = [
        ("plain TCP", ClientTransport::Plain),
        ("TLS without a certificate", ca.client(None)),
        (
            "a certificate from another CA",
            ca.client(Some(stranger.issue("mallory"))),
        ),
        (
            "a certificate from the cluster's CA that is no member's",
            ca.client(Some(ca.issue("intruder"))),
        ),
    ];
    for (what, transport) in refused {
        let answer = Quorum::remote_status(&Peers::new(transport), target).await;
        assert!(answer.is_err(), "{what} was served: {answer:?}");
    }
    // A client that does not trust the cluster's CA refuses the node.
    let distrust = stranger.client(Some(stranger.issue("mallory")));
    assert!(
        Quorum::remote_status(&Peers::new(distrust), target)
            .await
            .is_err()
    );
    // A member's certificate is served, and the quorum kept working.
    let member = Peers::new(ca.client(Some(operator)));
    let status = Quorum::remote_status(&member, target)
        .await
        .expect("a cluster certificate is served");
    assert_eq!(status.node_id, 1);
    create(&nodes, "after").await;
    wait_for("every image to hold both topics", || {
        nodes
            .iter()
            .all(|q| {
                let image = q.image();
                image.topics.contains_key("before") && image.topics.contains_key("after")
            })
            .then_some(())
    })
    .await;
    for q in nodes {
        q.shutdown().await;
    }
}
