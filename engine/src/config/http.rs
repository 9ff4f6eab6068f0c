//! The `[http]` section: where `/metrics`, `/healthz` and `/readyz` listen.

use std::net::SocketAddr;

use super::Reader;
use crate::limits::DEFAULT_HTTP_LISTEN_ADDR;

/// Settings of the HTTP endpoints (the `[http]` section); every field has a default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// Address and port of the endpoints: loopback unless set (DESIGN §9), since
    /// `/metrics` tells anyone who can reach it how the engine runs.
    pub listen_addr: SocketAddr,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen_addr: DEFAULT_HTTP_LISTEN_ADDR,
        }
    }
}

/// Reads `[http]`.
pub(super) fn read_http(mut r: Reader<'_, '_>) -> HttpConfig {
    let mut http = HttpConfig::default();
    let mut addr = http.listen_addr.to_string();
    r.string("listen_addr", &mut addr);
    match addr.parse() {
        Ok(parsed) => http.listen_addr = parsed,
        Err(_) => r.out_of_range(
            "listen_addr",
            format!("{addr:?}"),
            "must be an IP address and a port, e.g. \"127.0.0.1:9464\" or \"[::1]:9464\"".into(),
        ),
    }
    r.finish();
    http
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn loopback_by_default_and_a_bad_address_is_named() {
        let config = Config::parse("", |_| None).expect("defaults");
        assert_eq!(config.http.listen_addr.to_string(), "127.0.0.1:9464");
        assert!(config.http.listen_addr.ip().is_loopback());
        let text = "[http]\nlisten_addr = \"0.0.0.0:9100\"\n";
        let config = Config::parse(text, |_| None).expect("valid");
        assert_eq!(config.http.listen_addr.to_string(), "0.0.0.0:9100");
        let text = "[http]\nlisten_addr = \"localhost\"\nport = 1\n";
        let error = Config::parse(text, |_| None).unwrap_err().to_string();
        for needle in [
            "http.listen_addr = \"localhost\": must be an IP address and a port",
            "http.port: unknown",
        ] {
            assert!(error.contains(needle), "{needle} missing in:\n{error}");
        }
    }
}
