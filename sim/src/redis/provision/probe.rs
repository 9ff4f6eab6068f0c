//! Probes of the host: is a Docker daemon answering, where is `redis-server`, which
//! address does a Redis URL name — all bounded, none needing a client library.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};

use super::DOCKER_PING_TIMEOUT;

/// `host:port` of a `redis://` URL when the host is a literal address or `localhost`;
/// other hosts are left to the client (no DNS here).
pub(super) fn url_socket_addr(url: &str) -> Option<SocketAddr> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let host_port = host_port.replace("localhost", "127.0.0.1");
    if host_port.parse::<SocketAddr>().is_ok() {
        return host_port.parse().ok();
    }
    format!("{host_port}:6379").parse().ok()
}

/// Where the Docker daemon listens: `DOCKER_HOST` (unix:// or tcp://) or the default socket.
pub(super) enum DockerEndpoint {
    Unix(PathBuf),
    Tcp(String),
}

impl DockerEndpoint {
    pub(super) fn describe(&self) -> String {
        match self {
            DockerEndpoint::Unix(p) => format!("unix://{}", p.display()),
            DockerEndpoint::Tcp(a) => format!("tcp://{a}"),
        }
    }
}

pub(super) fn docker_endpoint() -> DockerEndpoint {
    match std::env::var("DOCKER_HOST") {
        Ok(h) if h.starts_with("tcp://") => DockerEndpoint::Tcp(h["tcp://".len()..].to_owned()),
        Ok(h) if h.starts_with("unix://") => {
            DockerEndpoint::Unix(PathBuf::from(&h["unix://".len()..]))
        }
        _ => DockerEndpoint::Unix(PathBuf::from("/var/run/docker.sock")),
    }
}

/// Whether a Docker daemon answers `GET /_ping` within [`DOCKER_PING_TIMEOUT`].
pub fn docker_answers() -> bool {
    fn exchange(mut s: impl Read + Write) -> std::io::Result<bool> {
        s.write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")?;
        let mut reply = Vec::new();
        s.read_to_end(&mut reply)?;
        Ok(reply.starts_with(b"HTTP/1.") && reply.windows(3).any(|w| w == b"200"))
    }
    let result = match docker_endpoint() {
        DockerEndpoint::Unix(path) => {
            std::os::unix::net::UnixStream::connect(&path).and_then(|s| {
                s.set_read_timeout(Some(DOCKER_PING_TIMEOUT))?;
                s.set_write_timeout(Some(DOCKER_PING_TIMEOUT))?;
                exchange(s)
            })
        }
        DockerEndpoint::Tcp(addr) => addr
            .parse::<SocketAddr>()
            .map_err(std::io::Error::other)
            .and_then(|a| TcpStream::connect_timeout(&a, DOCKER_PING_TIMEOUT))
            .and_then(|s| {
                s.set_read_timeout(Some(DOCKER_PING_TIMEOUT))?;
                exchange(s)
            }),
    };
    result.unwrap_or(false)
}

/// The first executable `redis-server` on `PATH`.
pub fn find_redis_server() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("redis-server"))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}
