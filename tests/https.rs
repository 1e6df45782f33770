//! The README's one-liner over `https://`: `reqwest_caching::cached_client()` with nothing but
//! this crate's default features must speak TLS (it once answered "invalid URL, scheme is not
//! http", the crate having turned reqwest's default TLS off).
//!
//! A local TLS origin on 127.0.0.1 serves a certificate signed by a CA made for this run. The
//! client under test is exactly the one-liner's, `reqwest::Client::new()` inside, so the CA can
//! only reach it the way it reaches any program: reqwest's default TLS verifies with
//! `rustls-platform-verifier`, which on Linux loads its roots through
//! `rustls_native_certs::load_native_certs`, and that reads only `SSL_CERT_FILE` (and
//! `SSL_CERT_DIR`) when set. Setting those for this process would race with other threads and
//! `cached_client()` writes `./http_cache.sqlite` in the current directory, so the client runs
//! in a child process (this same binary, `harness = false`) with `SSL_CERT_FILE` set to the CA
//! and a temporary directory as its current directory.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use reqwest_caching::CacheResponseExt;
use tokio::process::Command;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

/// Set in the child: the URL to fetch.
const CHILD_URL: &str = "REQWEST_CACHING_HTTPS_TEST_URL";

fn main() -> ExitCode {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    match std::env::var(CHILD_URL) {
        Ok(url) => runtime.block_on(child(&url)),
        Err(_) => {
            runtime.block_on(parent());
            // The plain closing line the test command's log is read for.
            println!("1 passed, 0 failed");
            ExitCode::SUCCESS
        }
    }
}

/// Two identical GETs through the one-liner: both succeed, the second from the cache.
async fn child(url: &str) -> ExitCode {
    let client = match reqwest_caching::cached_client() {
        Ok(client) => client,
        Err(error) => {
            eprintln!("cached_client() failed: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut bodies = Vec::new();
    for attempt in 1..=2 {
        let response = match client.get(url).send().await {
            Ok(response) => response,
            Err(error) => {
                eprintln!("GET {url} #{attempt} failed: {error:?}");
                return ExitCode::FAILURE;
            }
        };
        let from_cache = response.from_cache();
        let body = response.text().await.unwrap_or_default();
        println!("GET {url} #{attempt}: from_cache={from_cache} body={body:?}");
        if from_cache != (attempt == 2) {
            eprintln!("expected only the second response from the cache");
            return ExitCode::FAILURE;
        }
        bodies.push(body);
    }
    if bodies[0] != bodies[1] {
        eprintln!("the cached body differs: {bodies:?}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

async fn parent() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = Pki::generate();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &pki.ca_pem).expect("write the CA");
    let work = dir.path().join("work");
    std::fs::create_dir(&work).expect("work dir");

    let requests = Arc::new(AtomicUsize::new(0));
    let addr = serve_tls(pki.server_config(), Arc::clone(&requests)).await;
    let url = format!("https://{addr}/items");

    // The control: without the CA the handshake fails, so the trust below comes from
    // SSL_CERT_FILE and nothing else.
    let untrusted = run_child(&url, None, &work).await;
    assert!(
        !untrusted.status.success(),
        "a certificate of an unknown CA was accepted"
    );
    assert_eq!(
        requests.load(Ordering::SeqCst),
        0,
        "no request without trust"
    );

    let child = run_child(&url, Some(&ca_file), &work).await;
    let stdout = String::from_utf8_lossy(&child.stdout);
    let stderr = String::from_utf8_lossy(&child.stderr);
    assert!(
        child.status.success(),
        "the one-liner failed over https ({}):\n{stdout}\n{stderr}",
        child.status
    );
    assert_eq!(
        requests.load(Ordering::SeqCst),
        1,
        "two identical GETs reach the origin once:\n{stdout}"
    );
    assert!(
        work.join(reqwest_caching::DEFAULT_SQLITE_PATH).exists(),
        "cached in the child's ./http_cache.sqlite"
    );
}

/// Runs this binary as the child, in `dir`, trusting only `ca_file` when given.
async fn run_child(
    url: &str,
    ca_file: Option<&std::path::Path>,
    dir: &std::path::Path,
) -> std::process::Output {
    let mut child = Command::new(std::env::current_exe().expect("this test binary"));
    child
        .env(CHILD_URL, url)
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR")
        .current_dir(dir)
        .kill_on_drop(true);
    if let Some(ca_file) = ca_file {
        child.env("SSL_CERT_FILE", ca_file);
    }
    // Awaited, not blocking: the origin runs on this same thread. A deadline, not a timing
    // assertion: a hung child fails the test instead of hanging the run.
    tokio::time::timeout(Duration::from_secs(120), child.output())
        .await
        .expect("the child finished within 120 s")
        .expect("run the child")
}

/// A CA made for this run and a certificate it signed for 127.0.0.1.
struct Pki {
    ca_pem: String,
    server_cert: rustls::pki_types::CertificateDer<'static>,
    server_key: rustls::pki_types::PrivateKeyDer<'static>,
}

impl Pki {
    fn generate() -> Self {
        let ca_key = rcgen::KeyPair::generate().expect("CA key");
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "reqwest-caching test CA");
        ca.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
        let issuer = rcgen::Issuer::new(ca, ca_key);

        let server_key = rcgen::KeyPair::generate().expect("server key");
        let server =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("server params");
        let server_cert = server
            .signed_by(&server_key, &issuer)
            .expect("server certificate");
        Self {
            ca_pem: ca_cert.pem(),
            server_cert: server_cert.der().clone(),
            server_key: rustls::pki_types::PrivateKeyDer::Pkcs8(server_key.serialize_der().into()),
        }
    }

    fn server_config(&self) -> rustls::ServerConfig {
        // The provider named: with several in the dependency graph, rustls picks no default.
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(vec![self.server_cert.clone()], self.server_key.clone_key())
            .expect("server certificate and key")
    }
}

/// Serves `GET /items` over TLS on a free loopback port, counting requests.
async fn serve_tls(config: rustls::ServerConfig, requests: Arc<AtomicUsize>) -> SocketAddr {
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = tcp.local_addr().expect("local addr");
    let listener = TlsListener {
        tcp,
        acceptor: TlsAcceptor::from(Arc::new(config)),
    };
    let app = Router::new()
        .fallback(|State(requests): State<Arc<AtomicUsize>>| async move {
            let n = requests.fetch_add(1, Ordering::SeqCst) + 1;
            Ok::<_, Infallible>(format!("items #{n}"))
        })
        .with_state(requests);
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("TLS origin");
    });
    addr
}

/// TCP connections on 127.0.0.1 after their TLS handshake.
struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else {
                continue;
            };
            // A failed handshake (a client that does not trust the CA) drops the connection.
            if let Ok(tls) = self.acceptor.accept(tcp).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}
