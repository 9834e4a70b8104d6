//! Where a fleet's Redis runs: one server, a primary that Redis Sentinel
//! watches over, or a Redis Cluster; parsed from a URL or built.
//!
//! | URL | what |
//! |---|---|
//! | `redis://[[user]:password@]host[:port][/db]` | one server (`rediss://`: TLS, feature `redis-tls`) |
//! | `redis+sentinel://[[user]:password@]host[:port][,host[:port]…]/primary[/db]` | the primary the sentinels name `primary`; sentinels' default port 26379; credentials and database are the Redis servers' |
//! | `redis+cluster://[[user]:password@]host[:port][,host[:port]…]` | a Redis Cluster, found through any of the nodes (default port 6379) |
//!
//! `rediss+sentinel://` and `rediss+cluster://` connect to the Redis servers
//! with TLS (feature `redis-tls`).

use std::fmt;
use std::str::FromStr;

use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{ConnectionInfo, IntoConnectionInfo, RedisConnectionInfo};

use super::redact::redact;
use super::FleetError;

/// The sentinels' default port.
const SENTINEL_PORT: u16 = 26379;
/// Redis's default port.
const REDIS_PORT: u16 = 6379;

/// Where a fleet's Redis runs: one server, a primary watched by Redis
/// Sentinel, or a Redis Cluster. Anything that takes a target
/// ([`Registry::share_via_redis`](crate::Registry::share_via_redis)) takes
/// its URL too:
///
/// | URL | what |
/// |---|---|
/// | `redis://[[user]:password@]host[:port][/db]` | one server (`rediss://`: TLS, feature `redis-tls`) |
/// | `redis+sentinel://[[user]:password@]host[:port][,host[:port]…]/primary[/db]` | the primary the sentinels call `primary`, found anew on every (re)connection, so a failover moves the fleet to the new primary; the sentinels' default port is 26379; credentials and database are the Redis servers' ([`with_sentinel_auth`](Self::with_sentinel_auth) for the sentinels') |
/// | `redis+cluster://[[user]:password@]host[:port][,host[:port]…]` | a Redis Cluster, discovered through any of the nodes listed (default port 6379) |
///
/// `rediss+sentinel://` and `rediss+cluster://` reach the Redis servers
/// over TLS (feature `redis-tls`). A target never shows its credentials:
/// `Display` and `Debug` print `***` in their place.
///
/// ```
/// use resilience::{RedisTarget, RedisTargetKind};
///
/// let target: RedisTarget = "redis+sentinel://:s3cret@10.0.0.1,10.0.0.2:26380/cache".parse()?;
/// assert_eq!(target.kind(), RedisTargetKind::Sentinel);
/// assert_eq!(target.to_string(), "redis+sentinel://***@10.0.0.1,10.0.0.2:26380/cache");
///
/// let built = RedisTarget::cluster(["10.0.1.1:7000", "10.0.1.2:7000"])?;
/// assert_eq!(built.kind(), RedisTargetKind::Cluster);
/// # Ok::<(), resilience::FleetError>(())
/// ```
#[derive(Clone)]
pub struct RedisTarget {
    pub(crate) kind: Kind,
    /// The URL without credentials, for logs and errors.
    shown: String,
    /// What must never appear in a log or an error.
    secrets: Vec<String>,
}

/// The three shapes of a [`RedisTarget`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RedisTargetKind {
    /// One Redis server.
    Server,
    /// The primary that Redis Sentinel names.
    Sentinel,
    /// A Redis Cluster.
    Cluster,
}

#[derive(Clone)]
pub(crate) enum Kind {
    Server(redis::Client),
    Sentinel {
        sentinels: Vec<ConnectionInfo>,
        primary: String,
        /// The Redis servers' credentials and database.
        redis: RedisConnectionInfo,
        /// Whether the Redis servers are reached over TLS.
        tls: bool,
    },
    Cluster(Vec<ConnectionInfo>),
}

impl RedisTarget {
    /// Parses a target's URL (see the [type's documentation](Self)).
    ///
    /// # Errors
    ///
    /// [`FleetError::InvalidUrl`] (without the credentials) saying what is
    /// wrong: an unknown scheme, no host, a bad port, a missing primary
    /// name, a database on a cluster, a TLS scheme without `redis-tls`.
    pub fn parse(url: &str) -> Result<Self, FleetError> {
        let invalid = |reason: String| FleetError::InvalidUrl {
            url: redact(url),
            reason,
        };
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(invalid("expected `scheme://…`".to_owned()));
        };
        let (tls, shape) = match scheme {
            "redis+sentinel" => (false, RedisTargetKind::Sentinel),
            "rediss+sentinel" => (true, RedisTargetKind::Sentinel),
            "redis+cluster" => (false, RedisTargetKind::Cluster),
            "rediss+cluster" => (true, RedisTargetKind::Cluster),
            _ => return Self::server(url),
        };
        if tls && !cfg!(feature = "redis-tls") {
            return Err(invalid(format!(
                "`{scheme}://` needs the `redis-tls` feature"
            )));
        }
        let (authority, path) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
        if path.starts_with(['?', '#']) || path.contains(['?', '#']) {
            return Err(invalid(
                "query parameters and fragments are not supported here".to_owned(),
            ));
        }
        let (userinfo, hosts) = match authority.rsplit_once('@') {
            Some((userinfo, hosts)) => (Some(userinfo), hosts),
            None => (None, authority),
        };
        let default_port = match shape {
            RedisTargetKind::Sentinel => SENTINEL_PORT,
            _ => REDIS_PORT,
        };
        let hosts = parse_hosts(hosts, default_port).map_err(invalid)?;
        let redis_scheme = if tls { "rediss" } else { "redis" };
        let userinfo = userinfo.map(|u| format!("{u}@")).unwrap_or_default();
        let kind = match shape {
            RedisTargetKind::Sentinel => {
                let mut parts = path.trim_start_matches('/').splitn(2, '/');
                let primary = parts.next().unwrap_or_default();
                if primary.is_empty() {
                    return Err(invalid(
                        "name the primary after the hosts: `redis+sentinel://host:26379/primary`"
                            .to_owned(),
                    ));
                }
                let db = match parts.next().filter(|d| !d.is_empty()) {
                    None => 0,
                    Some(db) => db.parse::<i64>().map_err(|_| {
                        invalid(format!("the database must be a number, not {db:?}"))
                    })?,
                };
                // The servers' credentials and database, decoded by the driver.
                let info = format!("{redis_scheme}://{userinfo}localhost/{db}")
                    .into_connection_info()
                    .map_err(|e| invalid(e.to_string()))?;
                let sentinels = hosts
                    .iter()
                    .map(|(host, port)| node_info("redis", "", host, *port))
                    .collect::<Result<_, _>>()
                    .map_err(invalid)?;
                Kind::Sentinel {
                    sentinels,
                    primary: primary.to_owned(),
                    redis: info.redis_settings().clone(),
                    tls,
                }
            }
            _ => {
                if !path.trim_start_matches('/').is_empty() && path != "/0" {
                    return Err(invalid(
                        "a Redis Cluster has only database 0: nothing goes after the hosts"
                            .to_owned(),
                    ));
                }
                let nodes = hosts
                    .iter()
                    .map(|(host, port)| node_info(redis_scheme, &userinfo, host, *port))
                    .collect::<Result<_, _>>()
                    .map_err(invalid)?;
                Kind::Cluster(nodes)
            }
        };
        Ok(RedisTarget {
            kind,
            shown: redact(url),
            secrets: secrets_of(url),
        })
    }

    /// One Redis server (`redis://`, `rediss://`, `redis+unix://`, `unix://`).
    fn server(url: &str) -> Result<Self, FleetError> {
        let client = redis::Client::open(url).map_err(|e| FleetError::InvalidUrl {
            url: redact(url),
            reason: scrub_with(&e.to_string(), &secrets_of(url)),
        })?;
        Ok(RedisTarget {
            kind: Kind::Server(client),
            shown: redact(url),
            secrets: secrets_of(url),
        })
    }

    /// The primary that the given sentinels (`"host:port"`, port 26379 when
    /// left out) name `primary`.
    ///
    /// # Errors
    ///
    /// [`FleetError::InvalidUrl`] for no sentinel, an empty host or a bad
    /// port, or an empty primary name.
    pub fn sentinel<I, S>(sentinels: I, primary: &str) -> Result<Self, FleetError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let hosts: Vec<String> = sentinels
            .into_iter()
            .map(|s| s.as_ref().to_owned())
            .collect();
        Self::parse(&format!("redis+sentinel://{}/{primary}", hosts.join(",")))
    }

    /// A Redis Cluster, discovered through any of `nodes` (`"host:port"`,
    /// port 6379 when left out).
    ///
    /// # Errors
    ///
    /// [`FleetError::InvalidUrl`] for no node, an empty host or a bad port.
    pub fn cluster<I, S>(nodes: I) -> Result<Self, FleetError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let hosts: Vec<String> = nodes.into_iter().map(|s| s.as_ref().to_owned()).collect();
        Self::parse(&format!("redis+cluster://{}", hosts.join(",")))
    }

    /// The Redis servers' credentials (not the sentinels'): a target built
    /// with [`sentinel`](Self::sentinel) or [`cluster`](Self::cluster) has
    /// none until given.
    #[must_use]
    pub fn with_auth(mut self, username: Option<&str>, password: &str) -> Self {
        self.remember(username, password);
        let settings = |info: &redis::RedisConnectionInfo| {
            let info = info.clone().set_password(password);
            match username {
                Some(user) => info.set_username(user),
                None => info,
            }
        };
        match &mut self.kind {
            Kind::Server(client) => {
                let info = client.get_connection_info().clone();
                let redis = settings(info.redis_settings());
                if let Ok(c) = redis::Client::open(info.set_redis_settings(redis)) {
                    *client = c;
                }
            }
            Kind::Sentinel { redis, .. } => *redis = settings(redis),
            Kind::Cluster(nodes) => {
                for info in nodes {
                    let redis = settings(info.redis_settings());
                    *info = info.clone().set_redis_settings(redis);
                }
            }
        }
        self
    }

    /// The sentinels' own credentials, when they require them (`requirepass`
    /// in `sentinel.conf`); only for a Sentinel target.
    #[must_use]
    pub fn with_sentinel_auth(mut self, username: Option<&str>, password: &str) -> Self {
        self.remember(username, password);
        if let Kind::Sentinel { sentinels, .. } = &mut self.kind {
            for info in sentinels {
                let mut redis = info.redis_settings().clone().set_password(password);
                if let Some(user) = username {
                    redis = redis.set_username(user);
                }
                *info = info.clone().set_redis_settings(redis);
            }
        }
        self
    }

    fn remember(&mut self, username: Option<&str>, password: &str) {
        for secret in [Some(password), username].into_iter().flatten() {
            if secret.len() >= 3 {
                self.secrets.push(secret.to_owned());
            }
        }
    }

    /// Which of the three shapes this is.
    pub fn kind(&self) -> RedisTargetKind {
        match self.kind {
            Kind::Server(_) => RedisTargetKind::Server,
            Kind::Sentinel { .. } => RedisTargetKind::Sentinel,
            Kind::Cluster(_) => RedisTargetKind::Cluster,
        }
    }

    /// A driver's error message with every secret of this target removed.
    pub(crate) fn scrub(&self, message: &str) -> String {
        scrub_with(message, &self.secrets)
    }

    /// A client of the Redis server to talk to now: the server itself, or
    /// the primary the sentinels name at this moment (the driver checks
    /// that it answers `ROLE` as a primary). `None` for a cluster.
    pub(crate) async fn server_client(&self) -> redis::RedisResult<Option<redis::Client>> {
        match &self.kind {
            Kind::Server(client) => Ok(Some(client.clone())),
            Kind::Sentinel {
                sentinels,
                primary,
                redis,
                tls,
            } => {
                let node =
                    SentinelNodeConnectionInfo::default().set_redis_connection_info(redis.clone());
                let node = if *tls {
                    node.set_tls_mode(redis::TlsMode::Secure)
                } else {
                    node
                };
                let mut sentinel = SentinelClient::build(
                    sentinels.clone(),
                    primary.clone(),
                    Some(node),
                    SentinelServerType::Master,
                )?;
                sentinel.async_get_client().await.map(Some)
            }
            Kind::Cluster(_) => Ok(None),
        }
    }
}

/// `host[:port][,host[:port]…]`, with `[v6]` hosts.
fn parse_hosts(list: &str, default_port: u16) -> Result<Vec<(String, u16)>, String> {
    if list.is_empty() {
        return Err("no host: list at least one `host:port`".to_owned());
    }
    list.split(',')
        .map(|entry| {
            let (host, port) = if let Some(v6) = entry.strip_prefix('[') {
                let (host, after) = v6
                    .split_once(']')
                    .ok_or_else(|| format!("unclosed `[` in {entry:?}"))?;
                match after.strip_prefix(':') {
                    Some(port) => (host, Some(port)),
                    None if after.is_empty() => (host, None),
                    None => return Err(format!("unexpected {after:?} after `]` in {entry:?}")),
                }
            } else {
                match entry.rsplit_once(':') {
                    Some((host, port)) => (host, Some(port)),
                    None => (entry, None),
                }
            };
            if host.is_empty() {
                return Err(format!("an empty host in {list:?}"));
            }
            let port =
                match port {
                    None => default_port,
                    Some(p) => p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
                        format!("bad port {p:?} in {entry:?}: expected 1 to 65535")
                    })?,
                };
            Ok((host.to_owned(), port))
        })
        .collect()
}

/// One node's connection information, through the driver's URL parser (so
/// percent-encoded credentials are decoded as in a `redis://` URL).
fn node_info(
    scheme: &str,
    userinfo: &str,
    host: &str,
    port: u16,
) -> Result<ConnectionInfo, String> {
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    format!("{scheme}://{userinfo}{host}:{port}")
        .into_connection_info()
        .map_err(|e| format!("bad host {host:?}: {e}"))
}

/// The password and user name of a URL (both as written and decoded).
fn secrets_of(url: &str) -> Vec<String> {
    let Some((_, rest)) = url.split_once("://") else {
        return Vec::new();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let Some((userinfo, _)) = authority.rsplit_once('@') else {
        return Vec::new();
    };
    let mut secrets = Vec::new();
    for part in userinfo.split(':').filter(|s| s.len() >= 3) {
        secrets.push(part.to_owned());
        let decoded = percent_encoding::percent_decode_str(part)
            .decode_utf8_lossy()
            .into_owned();
        if decoded != part {
            secrets.push(decoded);
        }
    }
    secrets
}

fn scrub_with(message: &str, secrets: &[String]) -> String {
    let mut out = message.to_owned();
    for secret in secrets {
        out = out.replace(secret.as_str(), "***");
    }
    out
}

impl FromStr for RedisTarget {
    type Err = FleetError;

    fn from_str(url: &str) -> Result<Self, FleetError> {
        Self::parse(url)
    }
}

impl fmt::Display for RedisTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisTarget")
            .field("kind", &self.kind())
            .field("url", &self.shown)
            .finish()
    }
}

/// What [`Registry::share_via_redis`](crate::Registry::share_via_redis)
/// takes: a [`RedisTarget`] or its URL (`&str`, `String`).
pub trait IntoRedisTarget: sealed::Sealed {
    /// The target, or why the URL is not one.
    ///
    /// # Errors
    ///
    /// As [`RedisTarget::parse`].
    fn into_redis_target(self) -> Result<RedisTarget, FleetError>;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::RedisTarget {}
    impl Sealed for &super::RedisTarget {}
    impl Sealed for &str {}
    impl Sealed for String {}
    impl Sealed for &String {}
}

impl IntoRedisTarget for RedisTarget {
    fn into_redis_target(self) -> Result<RedisTarget, FleetError> {
        Ok(self)
    }
}

impl IntoRedisTarget for &RedisTarget {
    fn into_redis_target(self) -> Result<RedisTarget, FleetError> {
        Ok(self.clone())
    }
}

impl IntoRedisTarget for &str {
    fn into_redis_target(self) -> Result<RedisTarget, FleetError> {
        RedisTarget::parse(self)
    }
}

impl IntoRedisTarget for String {
    fn into_redis_target(self) -> Result<RedisTarget, FleetError> {
        RedisTarget::parse(&self)
    }
}

impl IntoRedisTarget for &String {
    fn into_redis_target(self) -> Result<RedisTarget, FleetError> {
        RedisTarget::parse(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(url: &str) -> String {
        match RedisTarget::parse(url) {
            Err(FleetError::InvalidUrl { url, reason }) => format!("{url}: {reason}"),
            other => panic!("{url} must be refused, got {other:?}"),
        }
    }

    #[test]
    fn reads_each_shape() {
        let server = RedisTarget::parse("redis://127.0.0.1:6379/2").unwrap();
        assert_eq!(server.kind(), RedisTargetKind::Server);
        let sentinel = RedisTarget::parse("redis+sentinel://a,b:26380,[::1]:1/cache/3").unwrap();
        let Kind::Sentinel {
            sentinels,
            primary,
            redis,
            ..
        } = &sentinel.kind
        else {
            panic!("a sentinel target");
        };
        let addrs: Vec<String> = sentinels.iter().map(|s| s.addr().to_string()).collect();
        assert_eq!(addrs, ["a:26379", "b:26380", "::1:1"]);
        assert_eq!(primary, "cache");
        assert_eq!(redis.db(), 3);
        let cluster = RedisTarget::parse("redis+cluster://:pw%40x@n1:7000,n2").unwrap();
        let Kind::Cluster(nodes) = &cluster.kind else {
            panic!("a cluster target");
        };
        let addrs: Vec<String> = nodes.iter().map(|s| s.addr().to_string()).collect();
        assert_eq!(addrs, ["n1:7000", "n2:6379"]);
        assert_eq!(nodes[1].redis_settings().password(), Some("pw@x"));
    }

    #[test]
    fn builders_read_like_urls() {
        let t = RedisTarget::sentinel(["s1:1", "s2"], "p")
            .unwrap()
            .with_auth(Some("app"), "s3cret")
            .with_sentinel_auth(None, "watch");
        let Kind::Sentinel {
            sentinels, redis, ..
        } = &t.kind
        else {
            panic!("a sentinel target");
        };
        assert_eq!(redis.username(), Some("app"));
        assert_eq!(redis.password(), Some("s3cret"));
        assert_eq!(sentinels[1].redis_settings().password(), Some("watch"));
        assert!(!format!("{t} {t:?}").contains("s3cret"));
        assert_eq!(
            t.scrub("auth s3cret and watch failed"),
            "auth *** and *** failed"
        );
        let url = RedisTarget::parse("redis://admin:hunter%2322@h:1").unwrap();
        let msg = url.scrub("failed to connect to redis://admin:hunter%2322@h:1 (auth hunter#22)");
        assert!(!msg.contains("hunter") && !msg.contains("admin"), "{msg}");
        let c = RedisTarget::cluster(["n1:7000"])
            .unwrap()
            .with_auth(None, "pw1");
        let Kind::Cluster(nodes) = &c.kind else {
            panic!("a cluster target");
        };
        assert_eq!(nodes[0].redis_settings().password(), Some("pw1"));
    }

    #[test]
    fn bad_urls_say_what_is_wrong_without_credentials() {
        for (url, words) in [
            ("redis+sentinel://h:1", "name the primary"),
            ("redis+sentinel:///p", "no host"),
            ("redis+sentinel://h:99999/p", "bad port \"99999\""),
            ("redis+sentinel://h:0/p", "bad port \"0\""),
            ("redis+sentinel://,h/p", "an empty host"),
            ("redis+sentinel://h/p/x", "the database must be a number"),
            ("redis+sentinel://[::1/p", "unclosed `[`"),
            ("redis+cluster://h:1/3", "only database 0"),
            ("redis+cluster://h?x=1", "query parameters"),
            ("nonsense", "expected `scheme://…`"),
        ] {
            let e = err(url);
            assert!(e.contains(words), "{url}: {e}");
        }
        let e = err("redis+cluster://admin:hunter22@h:x");
        assert!(!e.contains("hunter22") && e.contains("***@"), "{e}");
        if !cfg!(feature = "redis-tls") {
            assert!(err("rediss+cluster://h").contains("`redis-tls` feature"));
        }
    }
}
