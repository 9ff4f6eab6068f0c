//! Process mode: a `redis-server` from `PATH` on a free loopback port, persistence off,
//! killed and reaped when its guard drops.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::ready::wait_ready;
use super::{Backend, PROCESS_READY_TIMEOUT, PROCESS_START_ATTEMPTS, ProvisionError, RedisServer};

/// Kills and reaps the `redis-server` child when dropped.
pub(super) struct ProcessGuard {
    pub(super) path: PathBuf,
    pub(super) port: u16,
    pub(super) child: Child,
}

pub(super) fn spawn_redis(path: &Path, port: u16) -> std::io::Result<Child> {
    Command::new(path)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .args(["--daemonize", "no", "--logfile", ""])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
}

/// Sends `signal` (e.g. `-STOP`) to a process with the system's `kill`.
pub(super) fn signal(pid: u32, signal: &str) -> Result<(), String> {
    let status = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .map_err(|e| e.to_string())?;
    status
        .success()
        .then_some(())
        .ok_or_else(|| format!("kill {signal} {pid}: {status}"))
}

impl Drop for ProcessGuard {
    fn drop(&mut self) {
        // Errors mean the child already exited; nothing is left to clean up.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(super) async fn start_process(path: PathBuf) -> Result<RedisServer, ProvisionError> {
    let mut last_reason = String::new();
    for _ in 0..PROCESS_START_ATTEMPTS {
        let port = free_port().map_err(|e| ProvisionError::Process {
            path: path.clone(),
            reason: format!("no free loopback port: {e}"),
        })?;
        let child = spawn_redis(&path, port).map_err(|e| ProvisionError::Process {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let mut guard = ProcessGuard {
            path: path.clone(),
            port,
            child,
        };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let alive = || matches!(guard.child.try_wait(), Ok(None));
        match wait_ready(addr, PROCESS_READY_TIMEOUT, alive).await {
            Ok(()) => {
                return Ok(RedisServer::new(
                    format!("redis://{addr}"),
                    String::new(),
                    Backend::Process(guard),
                ));
            }
            // Most likely the port was taken in the meantime: try another one.
            Err(reason) => last_reason = reason,
        }
    }
    Err(ProvisionError::Process {
        path,
        reason: format!("{PROCESS_START_ATTEMPTS} attempts failed; last: {last_reason}"),
    })
}

pub(super) fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}
