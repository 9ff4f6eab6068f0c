//! The Redis client, with the operator's TLS files (`[redis] tls_ca_file`, `tls_cert_file`,
//! `tls_key_file`) when there are any, and its connection failures typed.
//!
//! Files are read and parsed here, before any connection, so a missing or malformed file
//! is an error naming its path rather than a handshake that fails later for an unclear
//! reason (an empty trust store rejects every server as "unknown issuer").

use std::path::Path;

use redis::{ClientTlsConfig, ErrorKind, RedisError, TlsCertificates};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::RedisStoreConfig;
use crate::redact::{redact_url, url_user};
use crate::store::StoreError;

impl RedisStoreConfig {
    /// The TLS files, read and checked: `None` when none is configured (a `rediss://` URL
    /// then trusts the system's root store). Errors name the file and what is wrong with it;
    /// `check-config` can call this to report them before a start.
    pub fn tls_certificates(&self) -> Result<Option<TlsCertificates>, StoreError> {
        let client_tls = match (&self.tls_cert_file, &self.tls_key_file) {
            (None, None) => None,
            (Some(cert), Some(key)) => Some(ClientTlsConfig {
                client_cert: read_certificates(cert)?,
                client_key: read_key(key)?,
            }),
            (Some(path), None) | (None, Some(path)) => {
                return Err(StoreError::TlsFile {
                    path: path.clone(),
                    reason: "tls_cert_file and tls_key_file go together (mutual TLS)".into(),
                });
            }
        };
        let root_cert = self.tls_ca_file.as_deref().map(read_certificates);
        let root_cert = root_cert.transpose()?;
        if client_tls.is_none() && root_cert.is_none() {
            return Ok(None);
        }
        if !self.url.starts_with("rediss://") {
            let path = self.tls_ca_file.as_ref().or(self.tls_cert_file.as_ref());
            return Err(StoreError::TlsFile {
                path: path.cloned().unwrap_or_default(),
                reason: format!(
                    "TLS files need a rediss:// URL, not {}",
                    redact_url(&self.url)
                ),
            });
        }
        Ok(Some(TlsCertificates {
            client_tls,
            root_cert,
        }))
    }

    /// The redis-rs client for this configuration (nothing is connected yet).
    pub(super) fn client(&self) -> Result<redis::Client, StoreError> {
        let client = match self.tls_certificates()? {
            Some(certificates) => redis::Client::build_with_tls(self.url.as_str(), certificates),
            None => redis::Client::open(self.url.as_str()),
        };
        client.map_err(|e| self.connection_error(&e))
    }

    pub(super) fn timed_out(&self) -> StoreError {
        StoreError::Connection {
            url: redact_url(&self.url),
            reason: format!("no connection within {:?}", self.connect_timeout),
        }
    }

    /// A failure to connect, typed: credentials refused, or anything else.
    pub(super) fn connection_error(&self, e: &RedisError) -> StoreError {
        let url = redact_url(&self.url);
        if e.kind() == ErrorKind::AuthenticationFailed {
            // No user in the URL: Redis authenticates a lone password as `default`.
            let user = url_user(&self.url).unwrap_or_else(|| "default".to_owned());
            return StoreError::Auth { url, user };
        }
        StoreError::Connection {
            url,
            reason: redact_url(&e.to_string()),
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>, StoreError> {
    std::fs::read(path).map_err(|e| StoreError::TlsFile {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

/// PEM certificates (one or more); at least one must be there.
fn read_certificates(path: &Path) -> Result<Vec<u8>, StoreError> {
    let pem = read(path)?;
    let fail = |reason: String| StoreError::TlsFile {
        path: path.to_owned(),
        reason,
    };
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(format!("not PEM certificates: {e}")))?;
    if certificates.is_empty() {
        return Err(fail("holds no PEM certificate (BEGIN CERTIFICATE)".into()));
    }
    Ok(pem)
}

/// A PEM private key (PKCS#8, PKCS#1 or SEC1).
fn read_key(path: &Path) -> Result<Vec<u8>, StoreError> {
    let pem = read(path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| StoreError::TlsFile {
        path: path.to_owned(),
        reason: format!("holds no PEM private key: {e}"),
    })?;
    Ok(pem)
}
