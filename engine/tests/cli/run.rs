//! `tickgate run`: the service works, a second instance with its consumer name is refused,
//! and SIGTERM stops it gracefully (exit 0, the step finished, the name released).

use std::fs::File;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::{CONSUMER_TAKEN, RedisProcess, TempDir, assert_code, run_tickgate, stderr, tickgate};

/// Hang guard on everything this test waits for: far above what any of it takes, so it
/// only ends a test that would otherwise never end.
const HANG_GUARD: Duration = Duration::from_secs(60);
/// Pause between polls.
const POLL_EVERY: Duration = Duration::from_millis(20);

/// Polls `done` until it holds; panics naming `what` after [`HANG_GUARD`].
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let began = Instant::now();
    while !done() {
        assert!(began.elapsed() < HANG_GUARD, "never happened: {what}");
        std::thread::sleep(POLL_EVERY);
    }
}

/// A `tickgate run` process, killed on drop if still running (a failing test must not
/// leave it behind).
struct Service(Child);

impl Drop for Service {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn wait_exit(child: &mut Child) -> ExitStatus {
    let mut status = None;
    wait_for("tickgate run exits", || {
        status = child.try_wait().expect("try_wait");
        status.is_some()
    });
    status.expect("exited")
}

fn signal(child: &Child, name: &str) {
    let sent = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success(), "kill -{name} failed");
}

const CONFIG: &str = r#"
[engine]
tick_interval_ms = 100
consumer = "cli-run"
shutdown_deadline_ms = 5000
"#;

/// A loopback port free a moment ago (the OS picks it), for the service's endpoints.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

/// `GET path` over plain HTTP/1.1: the status code and the body.
fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(HANG_GUARD)).ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).ok()?;
    let status = reply.split(' ').nth(1)?.parse().ok()?;
    let body = reply.split_once("\r\n\r\n")?.1.to_owned();
    Some((status, body))
}

#[test]
fn run_dispatches_refuses_a_second_instance_and_drains_on_sigterm() {
    let redis = RedisProcess::start();
    let dir = TempDir::new("run");
    let port = free_port();
    let config = dir.file(
        "tickgate.toml",
        &format!("{CONFIG}\n[http]\nlisten_addr = \"127.0.0.1:{port}\"\n"),
    );
    let strategy = dir.file(
        "s.json",
        r#"{"id": 1, "user_id": 2, "name": "one", "timeframe": "1h", "universe": ["AAPL"]}"#,
    );
    assert_code(&run_tickgate(&redis, &["strategy", "put", &strategy]), 0);
    let log_path = dir.file("run.log", "");
    let mut service = Service(
        tickgate(&redis)
            .args(["--config", &config, "run"])
            .stdout(Stdio::null())
            .stderr(File::create(&log_path).expect("log file"))
            .spawn()
            .expect("tickgate run starts"),
    );
    let lease = "TICKGATE:CONSUMER:cli-run";
    // The results group exists once the first step has loaded the catalog.
    wait_for("the first step", || {
        redis.exists(lease) && redis.exists("ALERT:RESULTS")
    });
    assert_code(&run_tickgate(&redis, &["update", "AAPL"]), 0);
    wait_for("a job for AAPL", || redis.xlen("ALERT:JOBS") >= 1);
    // The endpoints, on the address the file names: ready, and the job counted.
    wait_for("/readyz answers 200", || {
        http_get(port, "/readyz").is_some_and(|(status, _)| status == 200)
    });
    let (status, metrics) = http_get(port, "/metrics").expect("/metrics answers");
    assert_eq!(status, 200);
    assert!(
        metrics.contains("tickgate_jobs_enqueued_total 1\n"),
        "{metrics}"
    );

    let second = run_tickgate(&redis, &["--config", &config, "run"]);
    assert_code(&second, CONSUMER_TAKEN);
    let err = stderr(&second);
    assert!(
        err.contains("consumer name \"cli-run\" is held by another live instance"),
        "{err}"
    );
    assert!(
        err.contains(&format!("pid {}", service.0.id())),
        "the holder is named: {err}"
    );
    assert!(redis.exists(lease), "the refused instance touched the hold");

    signal(&service.0, "TERM");
    let status = wait_exit(&mut service.0);
    let log = std::fs::read_to_string(&log_path).expect("log");
    assert_eq!(status.code(), Some(0), "log:\n{log}");
    for needle in [
        "tickgate running",
        "signal=\"SIGTERM\"",
        "finishing the step in progress",
        "tickgate stopped",
    ] {
        assert!(log.contains(needle), "{needle} missing in:\n{log}");
    }
    assert!(!log.contains("aborting"), "a step was aborted:\n{log}");
    assert!(!redis.exists(lease), "the consumer name was not released");
    // The name is free: a new instance takes it at once (and SIGINT stops it too).
    let mut again = Service(
        tickgate(&redis)
            .args(["--config", &config, "run"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starts"),
    );
    wait_for("the restarted instance holds the name", || {
        redis.exists(lease)
    });
    signal(&again.0, "INT");
    assert_eq!(wait_exit(&mut again.0).code(), Some(0));
}
