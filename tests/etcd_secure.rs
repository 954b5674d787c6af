//! Secure etcd clusters: TLS with client certificates, and user/password
//! authentication, each against a one-member etcd this test starts itself
//! (certificates generated here with rcgen; ports from
//! `PROCREG_ETCD_PORT_BASE`, default 25790; killed by pid when the test ends,
//! even when it fails). Credentials never show in errors or `Debug`.
#![cfg(feature = "etcd")]

use procreg::etcd::{EtcdBackend, EtcdConfig};
use procreg::{BackendHealth, Error, EventKind, Registry};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// First port of this test's range (client port, peer port = +1, ...).
fn port_base() -> u16 {
    std::env::var("PROCREG_ETCD_PORT_BASE")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(25790)
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> TempDir {
        let d =
            std::env::temp_dir().join(format!("procreg-etcd-secure-{what}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A CA and what it signed, as PEM files in a directory.
struct Pki {
    ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
    /// PEM of the client key: must never show in a message.
    client_key_pem: String,
    /// A CA that signed nothing the member uses.
    other_ca: PathBuf,
}

fn ca(name: &str) -> (CertificateParams, KeyPair, String) {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    let pem = p.self_signed(&key).unwrap().pem();
    (p, key, pem)
}

fn leaf(
    cn: &str,
    sans: &[&str],
    usage: ExtendedKeyUsagePurpose,
    issuer: &Issuer<'_, KeyPair>,
) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
    let mut p = CertificateParams::new(sans).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.extended_key_usages = vec![usage];
    let cert = p.signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn pki(dir: &TempDir) -> Pki {
    let started = Instant::now();
    let (ca_params, ca_key, ca_pem) = ca("procreg test CA");
    let issuer = Issuer::new(ca_params, ca_key);
    let (server_pem, server_key_pem) = leaf(
        "etcd member",
        &["127.0.0.1", "localhost"],
        ExtendedKeyUsagePurpose::ServerAuth,
        &issuer,
    );
    let (client_pem, client_key_pem) =
        leaf("root", &[], ExtendedKeyUsagePurpose::ClientAuth, &issuer);
    let (_, _, other_pem) = ca("some other CA");
    let write = |name: &str, pem: &str| {
        let p = dir.path(name);
        std::fs::write(&p, pem).unwrap();
        p
    };
    let pki = Pki {
        ca: write("ca.pem", &ca_pem),
        server_cert: write("server.pem", &server_pem),
        server_key: write("server-key.pem", &server_key_pem),
        client_cert: write("client.pem", &client_pem),
        client_key: write("client-key.pem", &client_key_pem),
        other_ca: write("other-ca.pem", &other_pem),
        client_key_pem,
    };
    eprintln!(
        "generated a CA, server and client certificates in {:?}",
        started.elapsed()
    );
    pki
}

/// One etcd member started by this test; killed by pid on drop.
struct Member {
    child: Child,
    client: String,
    log: PathBuf,
}

impl Member {
    /// Starts a member on `port` (peer on `port + 1`), data under `dir`,
    /// with the extra flags `extra`; waits (bounded) until it is healthy.
    fn start(dir: &TempDir, port: u16, tls: Option<&Pki>, extra: &[&str]) -> Member {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let client = format!("{scheme}://127.0.0.1:{port}");
        let peer = format!("http://127.0.0.1:{}", port + 1);
        let log = dir.path("etcd.log");
        let mut cmd = Command::new("etcd");
        cmd.arg("--name=m1")
            .arg(format!("--data-dir={}", dir.path("data").display()))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=m1={peer}"))
            .arg("--initial-cluster-state=new")
            .args(extra);
        if let Some(p) = tls {
            cmd.arg(format!("--cert-file={}", p.server_cert.display()))
                .arg(format!("--key-file={}", p.server_key.display()))
                .arg(format!("--trusted-ca-file={}", p.ca.display()))
                .arg("--client-cert-auth");
        }
        let out = std::fs::File::create(&log).unwrap();
        let child = cmd
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .stdin(Stdio::null())
            .spawn()
            .expect("start etcd (apt-get install etcd-server, or scripts/etcd-cluster start once)");
        let m = Member { child, client, log };
        let started = Instant::now();
        while m.ctl(tls, &["endpoint", "health"]).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "etcd on {} not healthy within 30 s; log:\n{}",
                m.client,
                std::fs::read_to_string(&m.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("etcd member {} ready in {:?}", m.client, started.elapsed());
        m
    }

    /// Runs etcdctl against this member.
    fn ctl(&self, tls: Option<&Pki>, args: &[&str]) -> Result<String, String> {
        let mut cmd = Command::new("etcdctl");
        cmd.env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", self.client))
            .arg("--dial-timeout=2s")
            .arg("--command-timeout=3s");
        if let Some(p) = tls {
            cmd.arg(format!("--cacert={}", p.ca.display()))
                .arg(format!("--cert={}", p.client_cert.display()))
                .arg(format!("--key={}", p.client_key.display()));
        }
        let out = cmd.args(args).output().map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Opens with `b`, returning the result and how long it took.
fn timed_open(what: &str, b: &procreg::Builder, url: &str) -> procreg::Result<Registry> {
    let t = Instant::now();
    let r = b.open(url);
    match &r {
        Ok(_) => eprintln!("{what}: opened in {:?}", t.elapsed()),
        Err(e) => eprintln!("{what}: failed in {:?}: {e}", t.elapsed()),
    }
    r
}

/// Asserts that none of `secrets` is in `text`.
fn no_secret(what: &str, text: &str, secrets: &[&str]) {
    for s in secrets {
        assert!(!text.contains(s), "{what} shows a secret: {text}");
    }
}

/// The PEM body lines of a key (what would leak its contents).
fn pem_lines(pem: &str) -> Vec<&str> {
    pem.lines()
        .filter(|l| !l.starts_with("-----") && l.len() > 16)
        .collect()
}

#[test]
fn tls_member_with_client_cert_auth_serves_a_registry_and_refuses_bad_tls_clearly() {
    let dir = TempDir::new("tls");
    let pki = pki(&dir);
    let port = port_base();
    let member = Member::start(&dir, port, Some(&pki), &[]);
    let hostport = format!("127.0.0.1:{port}");
    let key_lines = pem_lines(&pki.client_key_pem);

    // 1. TLS given in the url.
    let url = format!(
        "etcd://{hostport}/esecure-tls?ttl=3s&timeout=5s&ca={}&cert={}&key={}",
        pki.ca.display(),
        pki.client_cert.display(),
        pki.client_key.display()
    );
    let by_url = timed_open("TLS from the url", &Registry::builder(), &url).unwrap();

    // 2. TLS given with builder options, which override the url's: the url
    //    names a CA file that does not exist.
    let plain = format!("etcd://{hostport}/esecure-tls?ca=/nonexistent/ca.pem");
    let builder = Registry::builder()
        .etcd_tls(&pki.ca, &pki.client_cert, &pki.client_key)
        .etcd_session_ttl(Duration::from_secs(3))
        .etcd_timeout(Duration::from_secs(5));
    let by_builder = timed_open("TLS from builder options", &builder, &plain).unwrap();

    // register / lookup / watch across the two handles.
    let mut w = by_url
        .watch(Some("svc"), by_url.revision().unwrap())
        .unwrap();
    let v = by_builder
        .register_self("svc", "api", b"port=8080")
        .unwrap();
    assert!(v > 0);
    let e = by_url
        .lookup("svc", "api")
        .unwrap()
        .expect("entry seen over TLS");
    assert_eq!(e.pid, std::process::id());
    assert_eq!(e.metadata, b"port=8080");
    let ev = w.next(Duration::from_secs(5)).unwrap();
    assert_eq!((ev.kind, ev.name.as_str()), (EventKind::Registered, "api"));
    assert!(by_builder.unregister("svc", "api").unwrap());
    let ev = w.next(Duration::from_secs(5)).unwrap();
    assert_eq!(ev.kind, EventKind::Unregistered);
    let h = by_builder.health_check().unwrap();
    let BackendHealth::Etcd(eh) = &h.detail else {
        panic!("{h:?}")
    };
    assert_eq!(eh.endpoints, [(hostport.clone(), true)], "{h:?}");

    // Debug of the builder, registries and the engine's config.
    let engine = EtcdBackend::open(&url).unwrap();
    for (what, d) in [
        ("Builder", format!("{builder:?}")),
        ("Registry", format!("{by_url:?}")),
        ("Registry::url", by_url.url().to_owned()),
        ("EtcdBackend", format!("{engine:?}")),
        ("EtcdConfig", format!("{:?}", engine.config())),
        ("Health", format!("{h:?}")),
    ] {
        no_secret(what, &d, &key_lines);
    }
    drop(engine);

    // 3. No client certificate: the member (--client-cert-auth) refuses.
    let fast = Duration::from_secs(2);
    let b = Registry::builder().etcd_ca(&pki.ca).etcd_timeout(fast);
    let t = Instant::now();
    let err = timed_open("TLS without a client certificate", &b, &plain).unwrap_err();
    let m = err.to_string();
    assert!(
        t.elapsed() < fast + Duration::from_secs(1),
        "{:?}",
        t.elapsed()
    );
    assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
    assert!(m.contains(&hostport), "{m}");
    assert!(
        m.contains("client certificate") && m.contains("cert=FILE&key=FILE"),
        "{m}"
    );

    // 4. A CA that did not sign the member's certificate.
    let b = Registry::builder()
        .etcd_tls(&pki.other_ca, &pki.client_cert, &pki.client_key)
        .etcd_timeout(fast);
    let t = Instant::now();
    let err = timed_open("TLS with the wrong CA", &b, &plain).unwrap_err();
    let m = err.to_string();
    assert!(
        t.elapsed() < fast + Duration::from_secs(1),
        "{:?}",
        t.elapsed()
    );
    assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
    assert!(m.contains(&hostport), "{m}");
    assert!(m.contains("certificate"), "{m}");
    assert!(m.contains("ca="), "says which option to check: {m}");
    no_secret("wrong-CA error", &m, &key_lines);

    // 5. A missing certificate file: InvalidArgument naming it, at once.
    let b = Registry::builder().etcd_tls(&pki.ca, dir.path("missing.pem"), &pki.client_key);
    let err = timed_open("TLS with a missing cert file", &b, &plain).unwrap_err();
    let m = err.to_string();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    assert!(m.contains("cert file") && m.contains("missing.pem"), "{m}");
    no_secret("missing-cert error", &m, &key_lines);

    // 6. Certificate and key swapped: refused, and the key's contents (now
    //    read as a certificate) are not echoed.
    let b = Registry::builder()
        .etcd_tls(&pki.ca, &pki.client_key, &pki.client_cert)
        .etcd_timeout(fast);
    let err = timed_open("TLS with cert and key swapped", &b, &plain).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    assert!(
        err.to_string().contains("holds no PEM certificate"),
        "{err}"
    );
    no_secret("swapped cert/key error", &err.to_string(), &key_lines);
    no_secret("swapped cert/key error", &format!("{err:?}"), &key_lines);

    // 7. Plain HTTP to a TLS member: refused, naming the endpoint.
    let b = Registry::builder().etcd_timeout(fast);
    let err = timed_open(
        "plain HTTP to a TLS member",
        &b,
        &format!("etcd://{hostport}/esecure-tls"),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
    assert!(err.to_string().contains(&hostport), "{err}");
    assert!(err.to_string().contains("may serve TLS"), "{err}");

    // Destroy with the same builder options: the prefix is emptied.
    by_builder.register_self("svc", "gone", b"").unwrap();
    builder.destroy(&plain).unwrap();
    assert_eq!(by_url.list_all().unwrap().len(), 0);

    drop((w, by_url, by_builder));
    drop(member);
}

#[test]
fn password_auth_serves_a_registry_beyond_its_ttl_and_refuses_a_wrong_password_clearly() {
    const PW: &str = "s3cr3t-Pa55+w0rd";
    const WRONG: &str = "not-the-Pa55w0rd";
    let dir = TempDir::new("auth");
    let port = port_base() + 2;
    // Auth tokens expire after 1 s unused: the handle must renew its own.
    let member = Member::start(&dir, port, None, &["--auth-token-ttl=1"]);
    member
        .ctl(None, &["user", "add", &format!("root:{PW}")])
        .expect("etcdctl user add");
    member
        .ctl(None, &["auth", "enable"])
        .expect("etcdctl auth enable");
    let hostport = format!("127.0.0.1:{port}");
    let url = format!("etcd://{hostport}/esecure-auth");
    let ttl = Duration::from_secs(2);

    // The right password, as builder options.
    let builder = Registry::builder()
        .etcd_auth("root", PW)
        .etcd_session_ttl(ttl)
        .etcd_timeout(Duration::from_secs(3));
    let reg = timed_open("user/password from builder options", &builder, &url).unwrap();
    let mut w = reg.watch(Some("svc"), reg.revision().unwrap()).unwrap();
    reg.register_self("svc", "auth", b"x").unwrap();
    let ev = w.next(Duration::from_secs(5)).unwrap();
    assert_eq!((ev.kind, ev.name.as_str()), (EventKind::Registered, "auth"));

    // Its session lease lives on through keep-alives for well over one TTL.
    std::thread::sleep(ttl * 5 / 2);
    let h = reg.health_check().unwrap();
    let BackendHealth::Etcd(eh) = &h.detail else {
        panic!("{h:?}")
    };
    assert_eq!(eh.session_lost, None, "{h:?}");
    assert!(eh.lease_left > Duration::ZERO, "{h:?}");
    // Another handle, password in the url (percent-encoded '+'), still sees
    // the entry: the server did not expire the lease either.
    let url_pw = format!("{url}?user=root&password={}", PW.replace('+', "%2B"));
    let other = timed_open("user/password from the url", &Registry::builder(), &url_pw).unwrap();
    let e = other
        .lookup("svc", "auth")
        .unwrap()
        .expect("entry alive after 2.5 TTLs");
    assert_eq!(e.pid, std::process::id());
    // Writes under the kept-alive lease still pass its fence, although the
    // auth token of that handle expired meanwhile (renewed on the way).
    reg.update_metadata("svc", "auth", b"y").unwrap();
    assert_eq!(other.lookup("svc", "auth").unwrap().unwrap().metadata, b"y");
    // The watch opened before the wait still delivers.
    let ev = w.next(Duration::from_secs(5)).unwrap();
    assert_eq!((ev.kind, ev.name.as_str()), (EventKind::Updated, "auth"));

    let engine = EtcdBackend::open(&url_pw).unwrap();
    let cfg = EtcdConfig::parse(&url_pw).unwrap();
    for (what, d) in [
        ("Builder", format!("{builder:?}")),
        ("Registry", format!("{reg:?}")),
        ("Registry (url with password)", format!("{other:?}")),
        ("Registry::url", other.url().to_owned()),
        ("EtcdBackend", format!("{engine:?}")),
        ("EtcdConfig", format!("{cfg:?}")),
        ("Health", format!("{h:?}")),
    ] {
        no_secret(what, &d, &[PW, &PW.replace('+', "%2B")]);
    }
    assert!(format!("{builder:?}").contains("root"));
    drop(engine);

    // A wrong password, by builder and by url: refused at once and clearly.
    for (what, b, u) in [
        (
            "wrong password (builder)",
            Registry::builder().etcd_auth("root", WRONG),
            url.clone(),
        ),
        (
            "wrong password (url)",
            Registry::builder(),
            format!("{url}?user=root&password={WRONG}"),
        ),
    ] {
        let t = Instant::now();
        let err = timed_open(what, &b, &u).unwrap_err();
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "{what}: {:?}",
            t.elapsed()
        );
        let m = err.to_string();
        assert!(matches!(err, Error::PermissionDenied(_)), "{what}: {err:?}");
        assert!(m.contains("authentication failed"), "{what}: {m}");
        assert!(m.contains("\"root\""), "{what} names the user: {m}");
        no_secret(what, &m, &[PW, WRONG]);
        no_secret(what, &format!("{err:?}"), &[PW, WRONG]);
        no_secret(what, &format!("{b:?}"), &[PW, WRONG]);
    }

    // No credentials at all on an auth-enabled cluster: etcd 3.4 grants the
    // session lease without a user, so the open may pass, but no entry can
    // be read or written, and the error says what to give.
    let anon = Registry::builder().open(&url);
    let err = match anon {
        Ok(r) => r.register_self("svc", "anon", b"").unwrap_err(),
        Err(e) => e,
    };
    eprintln!("no credentials: {err}");
    assert!(matches!(err, Error::PermissionDenied(_)), "{err:?}");
    assert!(err.to_string().contains("etcd_auth"), "{err}");

    assert!(reg.unregister("svc", "auth").unwrap());
    drop((w, reg, other));
    drop(member);
}

#[test]
fn etcd_options_for_another_backend_are_refused_by_name() {
    let err = Registry::builder()
        .etcd_auth("u", "hunter2")
        .open_or_create("mem:")
        .unwrap_err();
    let m = err.to_string();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    assert!(
        m.contains("etcd_auth apply to etcd:// registries only"),
        "{m}"
    );
    assert!(!m.contains("hunter2"), "{m}");

    // Refused before any connection (nothing listens on this port).
    let url = format!(
        "etcd://127.0.0.1:{}/p?password=hunter2&user=u",
        port_base() + 9
    );
    let err = Registry::builder().capacity(64).open(&url).unwrap_err();
    let m = err.to_string();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    assert!(
        m.contains("capacity apply to the hash-table backends"),
        "{m}"
    );
    assert!(!m.contains("hunter2"), "{m}");

    // Builder values win over the url's: a ttl below the minimum given by
    // the builder is refused although the url's is fine.
    let err = Registry::builder()
        .etcd_session_ttl(Duration::from_secs(1))
        .open(&format!("etcd://127.0.0.1:{}/p?ttl=5s", port_base() + 9))
        .unwrap_err();
    assert!(err.to_string().contains("at least 2s"), "{err}");
}
