//! A `redis-server` speaking only TLS, with a throwaway CA made for it by the `openssl` CLI:
//! the CA, a server certificate for `localhost` and `127.0.0.1`, and a client certificate
//! for mutual TLS, all in a temporary directory. The process is killed and the directory
//! removed when the [`TlsRedis`] drops (also while a failing test unwinds).
//!
//! Not [`crate::redis`]'s provisioning: a container's Redis is not started with TLS, so
//! these tests start their own `redis-server` whatever `TICKGATE_REDIS` says (CI installs
//! one on the host). The `openssl` CLI rather than a certificate crate: it is there wherever
//! a TLS-capable `redis-server` is (both come with OpenSSL), and it costs the build nothing.

use std::hash::{BuildHasher, RandomState};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use redis::{ClientTlsConfig, TlsCertificates};
use tickgate_sim::provision::{PROCESS_READY_TIMEOUT, PROCESS_START_ATTEMPTS, find_redis_server};

/// Interval between readiness polls of the starting server (it starts in milliseconds).
const READY_POLL_INTERVAL: Duration = Duration::from_millis(20);

/// The certificates' lifetime: the tests last seconds; a day leaves room for clock skew.
const CERT_DAYS: &str = "1";

/// What the server asks of clients (`--tls-auth-clients`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// No client certificate asked.
    No,
    /// A client certificate is required (mutual TLS).
    Yes,
}

impl ClientAuth {
    fn arg(self) -> &'static str {
        match self {
            ClientAuth::No => "no",
            ClientAuth::Yes => "yes",
        }
    }
}

/// A temporary directory, removed with everything in it on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        // Unique without global state: the pid, and a salt random per call.
        let salt = RandomState::new().hash_one(std::process::id());
        let path =
            std::env::temp_dir().join(format!("tickgate-tls-{}-{salt:x}", std::process::id()));
        std::fs::create_dir(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // Nothing else can be done if removal fails; the path is unique, nobody reuses it.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Kills and reaps the server when dropped.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        // Errors mean the child already exited; nothing is left to clean up.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A TLS-only `redis-server` on a loopback port, with its CA and a client certificate.
pub struct TlsRedis {
    // Declared first, so dropped first: the server is gone before its directory.
    _child: ChildGuard,
    port: u16,
    dir: TempDir,
}

impl TlsRedis {
    /// Makes the CA and certificates, starts the server and waits (bounded) for a PING over
    /// TLS. Panics with the reason and the server's log.
    pub async fn start(auth: ClientAuth) -> TlsRedis {
        let path = find_redis_server().expect("the TLS tests need redis-server on PATH");
        let dir = TempDir::new();
        make_certificates(&dir.0);
        let mut last = String::new();
        for _ in 0..PROCESS_START_ATTEMPTS {
            let port = TcpListener::bind(("127.0.0.1", 0))
                .and_then(|l| l.local_addr())
                .expect("a free loopback port")
                .port();
            let mut child = ChildGuard(spawn(&path, &dir.0, port, auth));
            match wait_ready(&mut child.0, port, &dir.0).await {
                Ok(()) => {
                    return TlsRedis {
                        _child: child,
                        port,
                        dir,
                    };
                }
                // Most likely the port was taken in the meantime: try another one.
                Err(reason) => last = reason,
            }
        }
        let log = std::fs::read_to_string(dir.0.join("redis.log")).unwrap_or_default();
        panic!("TLS redis-server did not start: {last}\nits log:\n{log}");
    }

    /// `rediss://localhost:<port>` (the server certificate names `localhost`).
    pub fn url(&self) -> String {
        format!("rediss://localhost:{}", self.port)
    }

    /// The port the server listens on (TLS only).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The throwaway CA's certificate (PEM).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.0.join("ca.pem")
    }

    /// A client certificate (PEM) signed by the CA, and its key.
    pub fn client_files(&self) -> (PathBuf, PathBuf) {
        (self.dir.0.join("client.pem"), self.dir.0.join("client.key"))
    }

    /// The temporary directory (for the tests' own bad files).
    pub fn dir(&self) -> &Path {
        &self.dir.0
    }
}

/// Polls PING over TLS (client certificate included) until it answers, the server exits,
/// or [`PROCESS_READY_TIMEOUT`].
async fn wait_ready(child: &mut Child, port: u16, dir: &Path) -> Result<(), String> {
    let read = |name: &str| std::fs::read(dir.join(name)).expect("certificate file");
    let certificates = TlsCertificates {
        client_tls: Some(ClientTlsConfig {
            client_cert: read("client.pem"),
            client_key: read("client.key"),
        }),
        root_cert: Some(read("ca.pem")),
    };
    let url = format!("rediss://localhost:{port}");
    let client =
        redis::Client::build_with_tls(url, certificates).map_err(|e| format!("TLS client: {e}"))?;
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(Duration::from_secs(1)));
    let deadline = tokio::time::Instant::now() + PROCESS_READY_TIMEOUT;
    let mut last = String::from("not polled");
    while tokio::time::Instant::now() < deadline {
        if !matches!(child.try_wait(), Ok(None)) {
            return Err(format!("exited before answering ({last})"));
        }
        let attempt = client.get_multiplexed_async_connection_with_config(&config);
        match attempt.await {
            Ok(mut con) => match redis::cmd("PING").query_async::<String>(&mut con).await {
                Ok(_) => return Ok(()),
                Err(e) => last = e.to_string(),
            },
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(READY_POLL_INTERVAL).await;
    }
    Err(format!(
        "no PING answer within {PROCESS_READY_TIMEOUT:?}: {last}"
    ))
}

fn spawn(path: &Path, dir: &Path, port: u16, auth: ClientAuth) -> Child {
    let file = |name: &str| dir.join(name).into_os_string();
    Command::new(path)
        .args(["--port", "0", "--bind", "127.0.0.1"])
        .arg("--tls-port")
        .arg(port.to_string())
        .arg("--tls-cert-file")
        .arg(file("server.pem"))
        .arg("--tls-key-file")
        .arg(file("server.key"))
        .arg("--tls-ca-cert-file")
        .arg(file("ca.pem"))
        .args(["--tls-auth-clients", auth.arg()])
        .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
        .arg("--dir")
        .arg(dir)
        .arg("--logfile")
        .arg(file("redis.log"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", path.display()))
}

/// `openssl` configuration: a CA that may sign, leaves that may not, each leaf for its role.
const OPENSSL_CONFIG: &str = "\
[req]
distinguished_name = dn
x509_extensions = ca
prompt = no
[dn]
CN = tickgate throwaway test CA
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
";

/// The CA, then a server and a client certificate it signs (P-256 keys: fast to make).
fn make_certificates(dir: &Path) {
    std::fs::write(dir.join("openssl.cnf"), OPENSSL_CONFIG).expect("write openssl.cnf");
    let new_key = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        dir,
        &["req", "-x509", "-config", "openssl.cnf"],
        &new_key,
        &["-keyout", "ca.key", "-out", "ca.pem", "-days", CERT_DAYS],
    );
    for (name, cn, serial) in [("server", "localhost", "2"), ("client", "tickgate", "3")] {
        let subject = format!("/CN={cn}");
        let (key, csr, pem) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
        );
        openssl(
            dir,
            &["req", "-new", "-config", "openssl.cnf"],
            &new_key,
            &["-subj", &subject, "-keyout", &key, "-out", &csr],
        );
        openssl(
            dir,
            &[
                "x509", "-req", "-in", &csr, "-CA", "ca.pem", "-CAkey", "ca.key",
            ],
            &[],
            &[
                "-set_serial",
                serial,
                "-days",
                CERT_DAYS,
                "-extfile",
                "openssl.cnf",
                "-extensions",
                name,
                "-out",
                &pem,
            ],
        );
    }
}

/// Runs `openssl` in `dir`; panics with its stderr, or a clear word when it is missing.
fn openssl(dir: &Path, a: &[&str], b: &[&str], c: &[&str]) {
    let output = Command::new("openssl")
        .args(a)
        .args(b)
        .args(c)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!("the TLS tests make their CA with the openssl CLI, which did not run ({e}); install it (apt-get install openssl)")
        });
    assert!(
        output.status.success(),
        "openssl {} failed: {}",
        a.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
}
