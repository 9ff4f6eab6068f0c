//! Credential redaction: a Redis URL may carry `user:password@`, and no `Display`, `Debug`
//! or log line of tickgate may repeat it (DESIGN §9).

/// `url` with any password (or lone user-info token) replaced by `***`.
///
/// `redis://alice:s3cret@host:6379/0` → `redis://alice:***@host:6379/0`;
/// `redis://:s3cret@host` → `redis://:***@host`; `redis://tok@host` → `redis://***@host`.
/// Strings without `scheme://` are returned whole only if they contain no `@`.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return if url.contains('@') {
            "***".to_owned()
        } else {
            url.to_owned()
        };
    };
    let authority_start = scheme_end + 3;
    let rest = &url[authority_start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let user_info = &authority[..at];
    let redacted = match user_info.split_once(':') {
        Some((user, _password)) => format!("{user}:***"),
        None => "***".to_owned(),
    };
    format!(
        "{}{}{}",
        &url[..authority_start],
        redacted,
        &url[authority_start + at..]
    )
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_never_survive() {
        let cases = [
            (
                "redis://alice:s3cret@host:6379/0",
                "redis://alice:***@host:6379/0",
            ),
            ("rediss://:s3cret@host", "rediss://:***@host"),
            ("redis://tok3n@host", "redis://***@host"),
            ("redis://127.0.0.1:6379", "redis://127.0.0.1:6379"),
            ("redis://u:p@ss@host/1", "redis://u:***@host/1"),
            ("u:p@host", "***"),
        ];
        for (input, want) in cases {
            assert_eq!(redact_url(input), want, "{input}");
            assert!(!redact_url(input).contains("s3cret"));
        }
    }
}
