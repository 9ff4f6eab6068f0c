//! Spawning the binary with a controlled environment, scratch directories, and a Redis.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// A small scenario that runs in about a second in a debug build: five minutes of a
/// 30-ticker market with ten one-minute strategies.
pub const TINY_SCENARIO: &str = r#"
description = "CLI test: five minutes of a small market"
start = "2024-06-04T10:00:00-04:00"
duration_ms = 300000
tick_interval_ms = 10000
seed_faithful_samples = 2

[tickers]
stocks = 30
crypto = 0
options_per_day = 0

[activity]
updates_per_minute_open = 120

[strategies]
count = 10
universe_median = 5
universe_max = 30

[strategies.timeframes]
"1m" = 1
"#;

/// The environment variables that choose a Redis: cleared for every spawn, so a test sees
/// only what it sets (CI sets `TICKGATE_REDIS=container`).
const REDIS_VARS: [&str; 4] = [
    "REDIS_URL",
    "TICKGATE_REDIS",
    "TICKGATE_REDIS_IMAGE",
    "DOCKER_HOST",
];

/// What a run of the binary left: exit code, stdout, stderr.
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    fn of(out: Output) -> Ran {
        Ran {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// The `redis: …` line both commands print, if any.
    pub fn redis_line(&self) -> Option<&str> {
        self.stdout.lines().find(|l| l.starts_with("redis: "))
    }
}

impl std::fmt::Display for Ran {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// `tickgate-sim` with `args`, the Redis variables cleared and `env` set, in `cwd`.
pub fn sim(args: &[&str], env: &[(&str, &str)], cwd: &Path) -> Ran {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tickgate-sim"));
    command.args(args).current_dir(cwd).stdin(Stdio::null());
    for var in REDIS_VARS {
        command.env_remove(var);
    }
    // Where reports go unless a test names a path: never the repository.
    command.env("CARGO_TARGET_DIR", scratch_root().join("target"));
    command.envs(env.iter().copied());
    Ran::of(command.output().expect("tickgate-sim runs"))
}

/// The workspace root (this crate is `sim/` in it).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("sim/ has a parent")
        .to_owned()
}

fn scratch_root() -> PathBuf {
    std::env::temp_dir().join(format!("tickgate-sim-cli-{}", std::process::id()))
}

/// A fresh, empty directory of this test process's own.
pub fn scratch() -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = scratch_root().join(N.fetch_add(1, Ordering::Relaxed).to_string());
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

/// [`TINY_SCENARIO`] written into `dir` as `tiny.toml`.
pub fn tiny_scenario(dir: &Path) -> PathBuf {
    let path = dir.join("tiny.toml");
    std::fs::write(&path, TINY_SCENARIO).expect("scenario written");
    path
}

/// A loopback port nothing listens on (bound, then released).
pub fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("bound").port()
}

/// A `PATH` without `redis-server` (the system's basic tools only).
pub const PATH_WITHOUT_REDIS: &str = "/nonexistent-tickgate-test";

/// A `redis-server` from `PATH` on a free loopback port, killed on drop.
pub struct LocalRedis {
    child: Child,
    pub port: u16,
}

impl LocalRedis {
    pub fn start() -> LocalRedis {
        let port = closed_port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("these tests need redis-server on PATH");
        let mut redis = LocalRedis { child, port };
        // Its log line, not a poll: the server says when it accepts connections, and its
        // output ends (the read returns) if it exits instead.
        let log = redis.child.stdout.take().expect("piped stdout");
        let ready = BufReader::new(log)
            .lines()
            .map_while(Result::ok)
            .any(|line| line.contains("Ready to accept connections"));
        assert!(
            ready,
            "redis-server on port {port} exited before it was ready"
        );
        redis
    }
}

impl Drop for LocalRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
