//! Is a Redis there? A raw `PING` on a socket for the servers we start (no client library,
//! polled while they come up), and a real client's `PING` for a server the user named —
//! any host name, TLS and credentials included.

use std::net::SocketAddr;
use std::time::Duration;

use tickgate::redact::redact_url;

use super::{PROCESS_READY_TIMEOUT, ProvisionError, URL_READY_TIMEOUT};

/// Interval between readiness polls of a starting `redis-server`.
const READY_POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Interval between attempts on a named server that did not answer: a server still coming
/// up answers within a few of them; polling faster would only add log noise on its side.
const URL_POLL_INTERVAL: Duration = Duration::from_millis(200);

/// Bound on one connection attempt or `PING` to a named server: a live server answers in
/// milliseconds, so a second means the address is wrong or the server stalled.
const URL_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(1);

pub(super) fn not_ready(url: &str, reason: String) -> ProvisionError {
    ProvisionError::NotReady {
        url: redact_url(url),
        waited: PROCESS_READY_TIMEOUT,
        reason,
    }
}

/// Connects to `url` with redis-rs (DNS, TLS and `user:password@` as the engine will use
/// them) and sends `PING`, retrying until [`URL_READY_TIMEOUT`]; a URL that does not parse
/// fails at once. Errors name the redacted URL.
pub(super) async fn ping_url(url: &str) -> Result<(), ProvisionError> {
    let client = redis::Client::open(url).map_err(|e| ProvisionError::BadUrl {
        url: redact_url(url),
        reason: e.to_string(),
    })?;
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(URL_ATTEMPT_TIMEOUT))
        .set_response_timeout(Some(URL_ATTEMPT_TIMEOUT));
    let deadline = tokio::time::Instant::now() + URL_READY_TIMEOUT;
    loop {
        let attempt = async {
            let mut con = client
                .get_multiplexed_async_connection_with_config(&config)
                .await?;
            redis::cmd("PING").query_async::<String>(&mut con).await
        };
        let reason = match tokio::time::timeout(URL_ATTEMPT_TIMEOUT * 2, attempt).await {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {:?}", URL_ATTEMPT_TIMEOUT * 2),
        };
        if tokio::time::Instant::now() + URL_POLL_INTERVAL >= deadline {
            return Err(ProvisionError::UrlUnreachable {
                url: redact_url(url),
                waited: URL_READY_TIMEOUT,
                reason,
            });
        }
        tokio::time::sleep(URL_POLL_INTERVAL).await;
    }
}

/// Polls `PING` until `+PONG`, the deadline, or `alive()` turning false.
pub(super) async fn wait_ready(
    addr: SocketAddr,
    timeout: Duration,
    mut alive: impl FnMut() -> bool,
) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last = String::from("not polled");
    while tokio::time::Instant::now() < deadline {
        if !alive() {
            return Err(format!("exited before answering ({last})"));
        }
        match ping(addr).await {
            Ok(()) => return Ok(()),
            Err(e) => last = e,
        }
        tokio::time::sleep(READY_POLL_INTERVAL).await;
    }
    Err(last)
}

async fn ping(addr: SocketAddr) -> Result<(), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream.write_all(b"PING\r\n").await?;
        let mut buf = [0u8; 64];
        let n = stream.read(&mut buf).await?;
        Ok::<_, std::io::Error>(buf[..n].to_vec())
    };
    match tokio::time::timeout(Duration::from_secs(1), attempt).await {
        Ok(Ok(reply)) if reply.starts_with(b"+PONG") => Ok(()),
        // `-NOAUTH` means a live server that wants credentials: ready as far as we can tell.
        Ok(Ok(reply)) if reply.starts_with(b"-NOAUTH") => Ok(()),
        Ok(Ok(reply)) => Err(format!(
            "unexpected reply {:?}",
            String::from_utf8_lossy(&reply)
        )),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("PING timed out".to_owned()),
    }
}
