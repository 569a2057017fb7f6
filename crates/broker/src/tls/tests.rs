//! TLS unit tests: principal mapping (Kafka's examples), subjects in RFC
//! 2253 form, PEM errors, reload, and mTLS principals over real
//! handshakes with certificates from a throwaway rcgen CA.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::principal_map::java_replacement;

/// Bound on waits for handshakes that take milliseconds.
const DEADLINE: Duration = Duration::from_secs(10);

const KAFKA_RULES: &str = "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,\
     RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L,\
     RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L,\
     DEFAULT";

#[test]
fn kafkas_documented_mapping_rules_map_as_kafka_does() {
    let mapper = PrincipalMapper::parse(KAFKA_RULES).expect("rules");
    for (dn, name) in [
        ("CN=Duke,OU=ServiceUsers,O=Org,C=US", "Duke"),
        ("CN=Duke,OU=SME,O=mycp,L=Fulton,ST=MD,C=US", "duke@sme"),
        ("cn=duke,ou=JavaSoft,o=Sun Microsystems", "duke"),
        (
            "OU=JavaSoft,O=Sun Microsystems,C=US",
            "OU=JavaSoft,O=Sun Microsystems,C=US",
        ),
    ] {
        assert_eq!(mapper.map(dn).expect(dn), name, "{dn}");
    }
    let upper =
        PrincipalMapper::parse("RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/U")
            .expect("rules");
    assert_eq!(
        upper
            .map("CN=Duke,OU=JavaSoft,O=Sun Microsystems,L=Santa Clara,ST=CA,C=US")
            .expect("maps"),
        "DUKE@JAVASOFT"
    );
    // An escaped comma inside a value, and whitespace around the comma
    // between rules.
    let comma =
        PrincipalMapper::parse(r"RULE:^CN=((\\, *|\w)+)(,.*|$)/$1/ ,  DEFAULT").expect("rules");
    assert_eq!(
        comma
            .map(r"CN=Tkac\, Adam,OU=ITZ,DC=geodis,DC=cz")
            .expect("maps"),
        r"Tkac\, Adam"
    );
    // An escaped slash inside the pattern.
    let slash = PrincipalMapper::parse(r"RULE:^CN=a\/(.*)$/$1/").expect("rules");
    assert_eq!(slash.map("CN=a/b").expect("maps"), "b");
}

#[test]
fn a_subject_no_rule_applies_to_is_refused() {
    let mapper = PrincipalMapper::parse("RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/").expect("rules");
    assert!(matches!(
        mapper.map("CN=Duke,OU=Other"),
        Err(MappingError::NoMatchingRule(dn)) if dn == "CN=Duke,OU=Other"
    ));
    // A rule applies only when its pattern covers the whole subject.
    let partial = PrincipalMapper::parse("RULE:CN=([a-z]+)/$1/").expect("rules");
    assert!(partial.map("CN=duke,OU=x").is_err());
    assert_eq!(partial.map("CN=duke").expect("whole"), "duke");
}

#[test]
fn malformed_rules_are_refused_as_kafka_refuses_them() {
    for rules in [
        "default",
        "DEFAUL",
        "DEFAULT/L",
        "DEFAULT/U",
        "RULE:CN=(.*?),OU=ServiceUsers.*/$1",
        "rule:^CN=(.*?),OU=ServiceUsers.*$/$1/",
        "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L/U",
        "RULE:^CN=(.*?),OU=ServiceUsers.*$/L",
        "RULE:^CN=(.*?),OU=ServiceUsers.*$/U",
        "RULE:^CN=(.*?),OU=ServiceUsers.*$/LU",
        "RULE:^CN=(.*$/$1/",
        "DEFAULT,",
        "",
    ] {
        assert!(
            matches!(
                PrincipalMapper::parse(rules),
                Err(MappingError::Rule { .. })
            ),
            "{rules:?} must be refused"
        );
    }
}

#[test]
fn java_replacements_translate_group_references() {
    // `$1` followed by a digit that is not a group stays group 1.
    assert_eq!(java_replacement("$12", 2), "${1}2");
    assert_eq!(java_replacement("$12", 13), "${12}");
    assert_eq!(java_replacement(r"\$1", 2), "$$1");
    assert_eq!(java_replacement("a$", 2), "a$$");
    assert_eq!(java_replacement("${name}", 2), "${name}");
}

/// A throwaway CA.
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

    /// A certificate for `dn` (in encoding order) signed by this CA.
    fn issue(&self, dn: &[(DnType, &str)], server: bool) -> (String, String) {
        let sans = if server {
            vec!["localhost".to_owned()]
        } else {
            Vec::new()
        };
        let mut params = CertificateParams::new(sans).expect("params");
        let mut name = DistinguishedName::new();
        for (t, v) in dn {
            name.push(t.clone(), *v);
        }
        params.distinguished_name = name;
        // A broker's certificate is also its client certificate towards
        // other brokers.
        params.extended_key_usages = if server {
            vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ]
        } else {
            vec![ExtendedKeyUsagePurpose::ClientAuth]
        };
        let key = KeyPair::generate().expect("key");
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("signed");
        (cert.pem(), key.serialize_pem())
    }

    fn write(&self, dir: &Path) -> std::path::PathBuf {
        let path = dir.join("ca.pem");
        std::fs::write(&path, self.cert.pem()).expect("write ca");
        path
    }
}

fn der_of(pem: &str) -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(pem.as_bytes()).expect("pem")
}

#[test]
fn subjects_are_written_in_rfc_2253_form_last_rdn_first() {
    let ca = Ca::new("ca");
    let (pem, _) = ca.issue(
        &[
            (DnType::CountryName, "US"),
            (DnType::OrganizationName, "Acme, Inc."),
            (DnType::OrganizationalUnitName, "eng"),
            (DnType::CommonName, "alice+bob"),
        ],
        false,
    );
    assert_eq!(
        rfc2253_subject(&der_of(&pem)).expect("subject"),
        r"CN=alice\+bob,OU=eng,O=Acme\, Inc.,C=US"
    );
    // An attribute without an RFC 2253 keyword is its OID and hex DER.
    let (pem, _) = ca.issue(
        &[
            (
                DnType::CustomDnType(vec![1, 2, 840, 113549, 1, 9, 1]),
                "a@b",
            ),
            (DnType::CommonName, "x"),
        ],
        false,
    );
    let subject = rfc2253_subject(&der_of(&pem)).expect("subject");
    assert!(
        subject.starts_with("CN=x,1.2.840.113549.1.9.1=#"),
        "{subject}"
    );
    assert!(matches!(
        rfc2253_subject(&CertificateDer::from(vec![0x30, 0x03, 1, 2, 3])),
        Err(TlsError::Certificate(_))
    ));
}

/// Writes a server certificate for `cn` (and its key) into `dir`, and a
/// `[tls]` section naming them.
fn server_files(dir: &Path, ca: &Ca, cn: &str) -> TlsSection {
    let (cert, key) = ca.issue(&[(DnType::CommonName, cn)], true);
    let cert_file = dir.join("server.pem");
    let key_file = dir.join("server.key");
    std::fs::write(&cert_file, cert).expect("cert");
    std::fs::write(&key_file, key).expect("key");
    TlsSection {
        cert_file: Some(cert_file),
        key_file: Some(key_file),
        ..TlsSection::default()
    }
}

#[test]
fn pem_problems_name_the_file_and_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = Ca::new("ca");
    let good = server_files(dir.path(), &ca, "broker");
    ServerTls::load(&good).expect("good files load");

    let missing = TlsSection {
        cert_file: Some(dir.path().join("nope.pem")),
        ..good.clone()
    };
    let err = ServerTls::load(&missing).expect_err("missing file");
    assert!(
        matches!(
            &err,
            TlsError::File {
                key: "tls.cert_file",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("nope.pem"), "{err}");

    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").expect("write");
    let err = ServerTls::load(&TlsSection {
        cert_file: Some(garbage.clone()),
        ..good.clone()
    })
    .expect_err("no PEM");
    assert!(
        matches!(&err, TlsError::File { key: "tls.cert_file", message, .. } if message.contains("no PEM")),
        "{err}"
    );
    let err = ServerTls::load(&TlsSection {
        key_file: Some(garbage.clone()),
        ..good.clone()
    })
    .expect_err("no key");
    assert!(
        matches!(
            &err,
            TlsError::File {
                key: "tls.key_file",
                ..
            }
        ),
        "{err}"
    );

    // A key that is not the certificate's.
    let (_, other_key) = ca.issue(&[(DnType::CommonName, "other")], true);
    let other = dir.path().join("other.key");
    std::fs::write(&other, other_key).expect("write");
    let err = ServerTls::load(&TlsSection {
        key_file: Some(other),
        ..good.clone()
    })
    .expect_err("mismatched key");
    assert!(matches!(err, TlsError::Config(_)), "{err}");

    let err = ServerTls::load(&TlsSection {
        client_ca_file: Some(garbage),
        ..good.clone()
    })
    .expect_err("bad CA");
    assert!(
        matches!(
            &err,
            TlsError::File {
                key: "tls.client_ca_file",
                ..
            }
        ),
        "{err}"
    );
    assert!(matches!(
        ServerTls::load(&TlsSection {
            cert_file: None,
            ..good
        }),
        Err(TlsError::Missing("tls.cert_file"))
    ));
}

/// A client config trusting `ca_file`, with an optional client
/// certificate (PEM cert and key).
fn client_config(ca_file: &Path, identity: Option<(&str, &str)>) -> Arc<rustls::ClientConfig> {
    let roots = load_roots("ca", ca_file).expect("roots");
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
    let config = match identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                vec![der_of(cert)],
                PrivateKeyDer::from_pem_slice(key.as_bytes()).expect("key"),
            )
            .expect("client cert"),
        None => builder.with_no_client_auth(),
    };
    Arc::new(config)
}

/// Connects to `addr` over TLS; returns the server certificate's subject.
async fn connect(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> std::io::Result<(String, tokio_rustls::client::TlsStream<TcpStream>)> {
    let tcp = TcpStream::connect(addr).await?;
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let stream = tokio::time::timeout(
        DEADLINE,
        tokio_rustls::TlsConnector::from(config).connect(name, tcp),
    )
    .await
    .expect("handshake in time")?;
    let subject = {
        let certs = stream.get_ref().1.peer_certificates().expect("server cert");
        rfc2253_subject(&certs[0]).expect("subject")
    };
    Ok((subject, stream))
}

/// Accepts one connection on `acceptor` and runs its handshake; returns
/// the principal, or the handshake's error.
async fn accept_one(acceptor: &TlsAcceptor) -> std::io::Result<Principal> {
    let (connection, _) = acceptor.accept().await?;
    let established = connection.handshake().await?;
    Ok(established.principal)
}

async fn listen(tls: &Arc<ServerTls>) -> (TlsAcceptor, SocketAddr) {
    let tcp = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = tcp.local_addr().expect("addr");
    (TlsAcceptor::new(tcp, Arc::clone(tls)), addr)
}

#[tokio::test]
async fn reload_serves_a_replaced_certificate_to_new_connections_and_keeps_it_on_a_bad_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = Ca::new("ca");
    let ca_file = ca.write(dir.path());
    let section = server_files(dir.path(), &ca, "first");
    let tls = Arc::new(ServerTls::load(&section).expect("load"));
    let (acceptor, addr) = listen(&tls).await;
    let client = client_config(&ca_file, None);

    let served = async {
        let (subject, _stream) = connect(addr, Arc::clone(&client)).await.expect("connect");
        subject
    };
    let (subject, accepted) = tokio::join!(served, accept_one(&acceptor));
    accepted.expect("handshake");
    assert_eq!(subject, "CN=first");
    assert!(
        !tls.reload_if_changed().expect("unchanged"),
        "nothing changed yet"
    );

    // Replace both files; the stamp differs even within one mtime tick
    // because the length or the time moves.
    let (cert, key) = ca.issue(&[(DnType::CommonName, "second-certificate")], true);
    std::fs::write(section.cert_file.as_ref().expect("cert"), cert).expect("cert");
    std::fs::write(section.key_file.as_ref().expect("key"), key).expect("key");
    assert!(
        tls.reload_if_changed().expect("reloads"),
        "a change is seen"
    );
    let served = async { connect(addr, Arc::clone(&client)).await.expect("connect").0 };
    let (subject, accepted) = tokio::join!(served, accept_one(&acceptor));
    accepted.expect("handshake");
    assert_eq!(subject, "CN=second-certificate");

    // A broken replacement is refused and the last good certificate stays.
    std::fs::write(section.cert_file.as_ref().expect("cert"), "garbage").expect("write");
    assert!(tls.reload_if_changed().is_err(), "a bad file is an error");
    let served = async { connect(addr, Arc::clone(&client)).await.expect("connect").0 };
    let (subject, accepted) = tokio::join!(served, accept_one(&acceptor));
    accepted.expect("handshake");
    assert_eq!(subject, "CN=second-certificate");
}

#[tokio::test]
async fn the_reload_task_picks_up_a_new_certificate_on_its_interval() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = Ca::new("ca");
    let mut section = server_files(dir.path(), &ca, "before");
    section.reload_interval_ms = 20;
    let tls = Arc::new(ServerTls::load(&section).expect("load"));
    let stop = CancellationToken::new();
    let task = tokio::spawn(Arc::clone(&tls).run_reload(stop.clone()));
    let old = tls.config();
    let (cert, key) = ca.issue(&[(DnType::CommonName, "after-the-change")], true);
    std::fs::write(section.cert_file.as_ref().expect("cert"), cert).expect("cert");
    std::fs::write(section.key_file.as_ref().expect("key"), key).expect("key");
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while Arc::ptr_eq(&old, &tls.config()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no reload within {DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.cancel();
    tokio::time::timeout(DEADLINE, task)
        .await
        .expect("stops")
        .expect("task");
}

#[tokio::test]
async fn mtls_principals_come_from_the_client_certificate_subject() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = Ca::new("ca");
    let ca_file = ca.write(dir.path());
    let mut section = server_files(dir.path(), &ca, "broker");
    section.client_ca_file = Some(ca_file.clone());
    section.principal_mapping_rules = "RULE:^CN=(.*?),OU=ServiceUsers$/$1/L,DEFAULT".to_owned();
    let tls = Arc::new(ServerTls::load(&section).expect("load"));
    let (acceptor, addr) = listen(&tls).await;

    for (dn, expected) in [
        (
            vec![
                (DnType::OrganizationalUnitName, "ServiceUsers"),
                (DnType::CommonName, "Svc"),
            ],
            "svc",
        ),
        (vec![(DnType::CommonName, "alice")], "CN=alice"),
    ] {
        let (cert, key) = ca.issue(&dn, false);
        let client = client_config(&ca_file, Some((&cert, &key)));
        let connecting = async {
            let (_, mut stream) = connect(addr, client).await.expect("connect");
            // The client sees the handshake done before the server has
            // checked its certificate; a byte round trip waits for it.
            stream.write_all(b"x").await.expect("write");
            stream.flush().await.expect("flush");
        };
        let (_, principal) = tokio::join!(connecting, accept_one(&acceptor));
        let principal = principal.expect("handshake");
        assert_eq!(
            (principal.principal_type.as_str(), principal.name.as_str()),
            ("User", expected)
        );
    }

    // Required: no client certificate, no connection.
    let client = client_config(&ca_file, None);
    let connecting = async {
        if let Ok((_, mut stream)) = connect(addr, client).await {
            let _ = stream.write_all(b"x").await;
            let mut buf = [0u8; 1];
            let _ = stream.read(&mut buf).await;
        }
    };
    let (_, principal) = tokio::join!(connecting, accept_one(&acceptor));
    assert!(
        principal.is_err(),
        "a client without a certificate is refused"
    );

    // A certificate from another CA is refused.
    let stranger = Ca::new("stranger");
    let (cert, key) = stranger.issue(&[(DnType::CommonName, "mallory")], false);
    let client = client_config(&ca_file, Some((&cert, &key)));
    let connecting = async {
        if let Ok((_, mut stream)) = connect(addr, client).await {
            let _ = stream.write_all(b"x").await;
            let mut buf = [0u8; 1];
            let _ = stream.read(&mut buf).await;
        }
    };
    let (_, principal) = tokio::join!(connecting, accept_one(&acceptor));
    assert!(
        principal.is_err(),
        "an untrusted client certificate is refused"
    );
}

#[tokio::test]
async fn requested_client_auth_lets_a_client_without_a_certificate_in_as_anonymous() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = Ca::new("ca");
    let ca_file = ca.write(dir.path());
    let mut section = server_files(dir.path(), &ca, "broker");
    section.client_ca_file = Some(ca_file.clone());
    section.client_auth = Some(ClientAuth::Requested);
    let tls = Arc::new(ServerTls::load(&section).expect("load"));
    let (acceptor, addr) = listen(&tls).await;
    let client = client_config(&ca_file, None);
    let connecting = async {
        let (_, mut stream) = connect(addr, client).await.expect("connect");
        stream.write_all(b"x").await.expect("write");
        stream.flush().await.expect("flush");
    };
    let (_, principal) = tokio::join!(connecting, accept_one(&acceptor));
    assert_eq!(principal.expect("handshake"), Principal::anonymous());
}

#[tokio::test]
async fn a_plaintext_or_garbage_client_fails_its_handshake_within_the_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = Ca::new("ca");
    let section = server_files(dir.path(), &ca, "broker");
    let tls = Arc::new(ServerTls::load(&section).expect("load"));
    let (acceptor, addr) = listen(&tls).await;
    // A Kafka ApiVersions request sent in the clear.
    let plaintext = [0, 0, 0, 10, 0, 18, 0, 3, 0, 0, 0, 1, 0xff, 0xff];
    let sending = async {
        let mut tcp = TcpStream::connect(addr).await.expect("connect");
        tcp.write_all(&plaintext).await.expect("write");
        let mut buf = Vec::new();
        // The server answers with an alert or closes; either ends the read.
        let _ = tokio::time::timeout(DEADLINE, tcp.read_to_end(&mut buf)).await;
    };
    let (_, outcome) = tokio::join!(sending, accept_one(&acceptor));
    assert!(outcome.is_err(), "a plaintext request is not a TLS hello");
}

#[tokio::test]
async fn an_ssl_listener_serves_the_tls_client_with_the_broker_certificate_after_a_failed_handshake()
 {
    use sluice_client::conn::{ConnOptions, Connection};

    use crate::config::SecurityProtocol;
    use crate::server::{ListenerInfo, Server};

    let dir = tempfile::tempdir().expect("tempdir");
    let pki = dir.path().join("pki");
    std::fs::create_dir(&pki).expect("mkdir");
    let ca = Ca::new("ca");
    let ca_file = ca.write(&pki);
    let mut section = server_files(&pki, &ca, "broker");
    section.client_ca_file = Some(ca_file);
    let tls = Arc::new(ServerTls::load(&section).expect("load"));
    let data = dir.path().join("data");
    std::fs::create_dir(&data).expect("mkdir");
    let broker = crate::testing::broker_in(&data).await;
    let shutdown = CancellationToken::new();
    let server = Server::for_listener(
        broker,
        ListenerInfo::new("SECURE", SecurityProtocol::Ssl),
        shutdown.clone(),
    );
    assert_eq!(&*server.listener().name, "SECURE");
    let (acceptor, addr) = listen(&tls).await;
    let serving = tokio::spawn(async move { server.serve(acceptor).await });

    // A plaintext client costs only its own connection.
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(&[0, 0, 0, 10, 0, 18, 0, 3, 0, 0, 0, 1, 0xff, 0xff])
        .await
        .expect("write");
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(DEADLINE, tcp.read_to_end(&mut buf)).await;

    // The inter-broker client: trusts the CA and presents the broker's own
    // certificate, which the listener requires.
    let client = inter_broker_client_config(&section).expect("client config");
    let options = ConnOptions {
        tls: Some(Arc::new(client)),
        ..ConnOptions::default()
    };
    let conn = Connection::connect(&format!("localhost:{}", addr.port()), options)
        .await
        .expect("TLS connection negotiates ApiVersions");
    assert!(!conn.is_dead());
    // Without a certificate the same listener refuses the client.
    let anonymous = inter_broker_client_config(&TlsSection {
        cert_file: None,
        key_file: None,
        ..section.clone()
    })
    .expect("client config");
    let refused = Connection::connect(
        &format!("localhost:{}", addr.port()),
        ConnOptions {
            tls: Some(Arc::new(anonymous)),
            ..ConnOptions::default()
        },
    )
    .await;
    assert!(
        refused.is_err(),
        "a client without a certificate is refused"
    );
    shutdown.cancel();
    tokio::time::timeout(DEADLINE, serving)
        .await
        .expect("stops")
        .expect("task");
}

#[test]
fn the_controller_listener_admits_super_users_certificates_when_the_authorizer_is_on() {
    use sluice_quorum::ServerTlsSource;
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = Ca::new("cluster CA");
    let mut section = server_files(dir.path(), &ca, "broker1");
    section.client_ca_file = Some(ca.write(dir.path()));
    section.principal_mapping_rules = "RULE:^CN=([^,]*).*$/$1/,DEFAULT".to_owned();
    let server = Arc::new(ServerTls::load_with(&section, ClientAuth::Required).expect("tls"));
    let leaf = |cn: &str| der_of(&ca.issue(&[(DnType::CommonName, cn)], true).0);
    let broker = [leaf("broker1")];
    let carol = [leaf("carol")];

    let members = ControllerTls::new(Arc::clone(&server), Some(vec!["User:broker1".to_owned()]));
    assert!(members.admit(&broker).is_ok());
    let refused = members.admit(&carol).expect_err("carol is no super user");
    assert!(refused.contains("User:carol"), "{refused}");
    // Without the authorizer, every certificate the CA signed is a member.
    let anyone = ControllerTls::new(server, None);
    assert!(anyone.admit(&carol).is_ok());
}
