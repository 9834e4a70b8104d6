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
        assert_eq!(
            redact("redis+sentinel://:pw@s1,s2:26380/primary"),
            "redis+sentinel://***@s1,s2:26380/primary"
        );
    }
}
