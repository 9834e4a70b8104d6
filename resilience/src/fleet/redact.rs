//! Redis URLs as they may appear in logs and errors: without credentials.

/// `rediss://user:secret@host:6380/2` -> `rediss://***@host:6380/2`.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<redis url>".to_owned();
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://***@{host}{path}"),
        None => url.to_owned(),
    }
}

/// An error message with every occurrence of the secret parts of `url`
/// removed (drivers sometimes echo the URL back).
pub(crate) fn scrub(message: &str, url: &str) -> String {
    let mut out = message.replace(url, &redact(url));
    if let Some((_, rest)) = url.split_once("://") {
        if let Some((userinfo, _)) = rest.split('/').next().unwrap_or("").rsplit_once('@') {
            for secret in userinfo.split(':').filter(|s| s.len() >= 3) {
                out = out.replace(secret, "***");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_survive() {
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(
            redact("rediss://user:s3cret@cache.internal:6380/2"),
            "rediss://***@cache.internal:6380/2"
        );
        assert_eq!(redact("redis://:pa@ss@h/0"), "redis://***@h/0");
        assert_eq!(redact("nonsense"), "<redis url>");
        let url = "redis://admin:hunter22@h:1";
        let msg = scrub(
            "failed to connect to redis://admin:hunter22@h:1 (auth hunter22)",
            url,
        );
        assert!(!msg.contains("hunter22"), "{msg}");
    }
}
