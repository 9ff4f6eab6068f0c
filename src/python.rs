//! The Python reference worker (`examples/worker.py`) as a child process of a test.
//!
//! Nothing is skipped: without a Python that can `import redis`, [`PythonWorker::spawn`]
//! panics with what to install.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The reference worker's script.
pub const WORKER_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/worker.py");

/// Names the interpreter to use instead of searching (`TICKGATE_PYTHON=/usr/bin/python3`).
pub const PYTHON_ENV: &str = "TICKGATE_PYTHON";

/// Interpreters tried in order when [`PYTHON_ENV`] is unset: the one on `PATH`, then the
/// system's, where Debian's `python3-redis` installs (a pyenv or venv `python3` on `PATH`
/// may not see it).
const CANDIDATES: &[&str] = &["python3", "/usr/bin/python3"];

/// How often a wait re-checks the child: short against the bounds it serves.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// A Python interpreter that can `import redis`; panics naming every interpreter tried,
/// what each answered, and what to install.
pub fn python() -> String {
    let tried: Vec<String> = match std::env::var(PYTHON_ENV) {
        Ok(named) => vec![named],
        Err(_) => CANDIDATES.iter().map(|c| (*c).to_owned()).collect(),
    };
    let mut answers = Vec::new();
    for python in &tried {
        let probe = Command::new(python)
            .args(["-c", "import redis, sys; print(redis.__version__)"])
            .output();
        match probe {
            Ok(out) if out.status.success() => return python.clone(),
            Ok(out) => {
                let said = String::from_utf8_lossy(&out.stderr);
                let last = said.lines().last().unwrap_or("no output").to_owned();
                answers.push(format!("{python}: {last}"));
            }
            Err(e) => answers.push(format!("{python}: cannot run it ({e})")),
        }
    }
    panic!(
        "the reference worker needs Python 3 with redis-py, and none was found ({}). Install \
         them (Debian: `apt-get install -y python3 python3-redis`; elsewhere `pip install \
         redis`), or name an interpreter that has them with {PYTHON_ENV}=/path/to/python3",
        answers.join("; ")
    );
}

/// A running `examples/worker.py`; killed when dropped.
pub struct PythonWorker {
    child: Child,
    /// Everything the worker printed (stdout and stderr), line by line.
    log: Arc<Mutex<Vec<String>>>,
    readers: Vec<JoinHandle<()>>,
}

impl PythonWorker {
    /// Starts the worker on `redis_url` with the given arguments (`--prefix`, `--fail-once`…).
    pub fn spawn(redis_url: &str, args: &[String]) -> PythonWorker {
        let python = python();
        let mut child = Command::new(&python)
            .arg("-u")
            .arg(WORKER_SCRIPT)
            .arg("--redis-url")
            .arg(redis_url)
            .args(args)
            .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")))
            // A test never dirties the checkout (no `__pycache__` beside the script).
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {python} {WORKER_SCRIPT}: {e}"));
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut readers = Vec::new();
        let stdout = child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>);
        let stderr = child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>);
        for stream in [stdout, stderr].into_iter().flatten() {
            let log = log.clone();
            // Ends when the child closes the pipe (it exits or is killed); joined on drop.
            readers.push(std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if let Ok(mut log) = log.lock() {
                        log.push(line);
                    }
                }
            }));
        }
        PythonWorker {
            child,
            log,
            readers,
        }
    }

    /// What the worker printed so far, one line each.
    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.join("\n")).unwrap_or_default()
    }

    /// Whether the worker exited (with its status).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Sends SIGTERM and waits up to `bound` for the worker to exit; its status, or `None`
    /// if it did not exit in time.
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

impl Drop for PythonWorker {
    fn drop(&mut self) {
        if self.exited().is_none() {
            // Already gone is fine: nothing else to stop.
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
    }
}
