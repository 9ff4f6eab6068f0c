//! The `tickgate` binary as a child process of a test: `tickgate run --config FILE` as an
//! operator starts it, stopped with SIGTERM as systemd stops it.
//!
//! The binary belongs to the engine package, so this package cannot name it with
//! `CARGO_BIN_EXE_tickgate`; it is found beside the test executable's directory (`cargo
//! test` at the root builds it, for the engine's own CLI tests), or where `TICKGATE_BIN`
//! says. A missing binary is a panic saying how to build it, never a silent substitute.

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Names the binary to run instead of looking beside the tests (`TICKGATE_BIN=…/tickgate`).
pub const BIN_ENV: &str = "TICKGATE_BIN";

/// How often a wait re-checks the child: short against the bounds it serves.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// The `tickgate` binary: `TICKGATE_BIN`, else `target/<profile>/tickgate` beside this
/// test executable's `deps/` directory.
pub fn tickgate_binary() -> PathBuf {
    if let Ok(path) = std::env::var(BIN_ENV) {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the test executable's path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test executable sits in target/<profile>/deps");
    let binary = profile_dir.join("tickgate");
    assert!(
        binary.is_file(),
        "{} not found: build it with `cargo build -p tickgate` (a root `cargo test` does), or name it with {BIN_ENV}",
        binary.display()
    );
    binary
}

/// A running `tickgate run`; killed when dropped, its config and log removed.
pub struct EngineProcess {
    child: Child,
    dir: PathBuf,
}

impl EngineProcess {
    /// Writes `config` (TOML) to a file of its own and runs `tickgate run --config` on it,
    /// logging to a file (read with [`EngineProcess::log`]).
    pub fn start(name: &str, config: &str) -> EngineProcess {
        let dir = std::env::temp_dir().join(format!("tickgate-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temp directory");
        let config_path = dir.join("tickgate.toml");
        std::fs::write(&config_path, config).expect("config written");
        let log = std::fs::File::create(dir.join("run.log")).expect("log file");
        let child = Command::new(tickgate_binary())
            .arg("--config")
            .arg(&config_path)
            .arg("run")
            // The config names everything: no REDIS_URL or TICKGATE_* of the test's
            // environment may override it.
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", tickgate_binary().display()));
        EngineProcess { child, dir }
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("run.log")).unwrap_or_default()
    }

    /// Whether it exited (with its status).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Sends SIGTERM and waits up to `bound` for it to exit; its status, or `None` if it
    /// did not exit in time.
    pub async fn terminate(&mut self, bound: Duration) -> Option<ExitStatus> {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(
            matches!(sent, Ok(s) if s.success()),
            "kill -TERM {pid}: {sent:?}"
        );
        let deadline = Instant::now() + bound;
        while Instant::now() < deadline {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
        None
    }
}

impl Drop for EngineProcess {
    fn drop(&mut self) {
        if self.exited().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
