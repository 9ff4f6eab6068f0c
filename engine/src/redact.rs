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

/// The user name of `url`'s user info (`redis://alice:pw@host` → `alice`), for errors
/// that must say whose credentials were refused without showing them. `None` when the URL
/// names no user (no user info, or a lone password `redis://:pw@host`).
pub fn url_user(url: &str) -> Option<String> {
    let rest = &url[url.find("://")? + 3..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let user_info = &authority[..authority.rfind('@')?];
    // A lone token (`redis://tok@host`) is a password to redis-rs, not a user.
    let (user, _password) = user_info.split_once(':')?;
    (!user.is_empty()).then(|| user.to_owned())
}

#[cfg(test)]
mod tests {
    use super::{redact_url, url_user};

    #[test]
    fn the_user_is_named_without_the_password() {
        assert_eq!(
            url_user("redis://alice:s3cret@host:6379/0").as_deref(),
            Some("alice")
        );
        assert_eq!(
            url_user("rediss://tickgate:p@ss@host").as_deref(),
            Some("tickgate")
        );
        assert_eq!(url_user("redis://:s3cret@host"), None);
        assert_eq!(url_user("redis://s3cret@host"), None);
        assert_eq!(url_user("redis://host:6379"), None);
        assert_eq!(url_user("not a url"), None);
    }

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
