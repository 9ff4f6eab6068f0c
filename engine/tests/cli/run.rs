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

#[test]
fn run_dispatches_refuses_a_second_instance_and_drains_on_sigterm() {
    let redis = RedisProcess::start();
    let dir = TempDir::new("run");
    let config = dir.file("tickgate.toml", CONFIG);
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
