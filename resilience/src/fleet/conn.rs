//! One connection to the fleet's Redis, whatever its shape: commands (and
//! scripts) through [`Conn`], announcements through [`Subscription`].
//!
//! - One server, or the primary the sentinels name: a multiplexed
//!   connection for commands and a pub/sub connection (RESP2, which every
//!   Redis speaks) for the partitions' channels.
//! - A cluster: one cluster connection (RESP3) that routes each command to
//!   the node owning its key's slot and carries the sharded subscriptions
//!   (`SSUBSCRIBE`, Redis 7) — or plain ones on an older cluster.
//!
//! A subscription that loses a node (a cluster node's connection dropped)
//! reports [`Event::Lost`]: the sync reconnects and resyncs, since
//! announcements may have been missed meanwhile.

use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection, PubSubStream};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{AsyncConnectionConfig, Cmd, Pipeline, PushInfo, PushKind, RedisFuture, Value};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

use super::target::{Kind, RedisTarget};
use futures_util::StreamExt;

/// How long to wait for a connection, and for an answer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    pub(crate) connect: Duration,
    pub(crate) response: Duration,
}

/// Commands to the fleet's Redis; a clone shares the connection (requests
/// sent from clones at once travel pipelined).
#[derive(Clone)]
pub(crate) enum Conn {
    Server(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Server(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Server(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Server(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// What a subscription delivers.
pub(crate) enum Event {
    /// A message's payload.
    Message(Vec<u8>),
    /// Messages may have been missed: reconnect and resync.
    Lost(&'static str),
}

/// The partitions' channels, subscribed.
pub(crate) enum Subscription {
    Server(PubSubStream),
    Cluster(UnboundedReceiver<PushInfo>),
}

impl Subscription {
    /// The next message, or the news that some may have been lost.
    pub(crate) async fn next(&mut self) -> Event {
        match self {
            Subscription::Server(stream) => match stream.next().await {
                Some(msg) => Event::Message(msg.get_payload_bytes().to_vec()),
                None => Event::Lost("subscription closed"),
            },
            Subscription::Cluster(pushes) => loop {
                let Some(push) = pushes.recv().await else {
                    return Event::Lost("subscription closed");
                };
                match push.kind {
                    PushKind::Message | PushKind::SMessage => {
                        if let Some(Value::BulkString(payload)) = push.data.into_iter().nth(1) {
                            return Event::Message(payload);
                        }
                    }
                    PushKind::Disconnection => {
                        return Event::Lost("a cluster node's connection dropped")
                    }
                    _ => {} // subscription confirmations
                }
            },
        }
    }
}

/// A connection, and what it knows of the server.
pub(crate) struct Connected {
    pub(crate) conn: Conn,
    pub(crate) subscription: Option<Subscription>,
    /// Announcements go through sharded pub/sub (`SPUBLISH`): a cluster
    /// whose servers have it.
    pub(crate) sharded: bool,
}

impl RedisTarget {
    /// Connects; subscribes to `channels` when given. Every step is bounded
    /// by the timeouts, so a hung server (or sentinel) fails the attempt
    /// instead of stalling it.
    pub(crate) async fn connect(
        &self,
        timeouts: Timeouts,
        channels: Option<&[String]>,
    ) -> redis::RedisResult<Connected> {
        let bound = timeouts.connect + timeouts.response;
        match tokio::time::timeout(bound, self.connect_unbounded(timeouts, channels)).await {
            Ok(connected) => connected,
            Err(_) => Err(redis::RedisError::from((
                redis::ErrorKind::Io,
                "timed out connecting",
            ))),
        }
    }

    async fn connect_unbounded(
        &self,
        timeouts: Timeouts,
        channels: Option<&[String]>,
    ) -> redis::RedisResult<Connected> {
        if let Kind::Cluster(nodes) = &self.kind {
            return cluster(nodes, timeouts, channels).await;
        }
        let Some(client) = self.server_client().await? else {
            unreachable!("a server or sentinel target has a server");
        };
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeouts.connect))
            .set_response_timeout(Some(timeouts.response));
        let conn = client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        let subscription = match channels {
            None => None,
            Some(channels) => {
                let mut pubsub = client.get_async_pubsub().await?;
                pubsub.subscribe(channels).await?;
                Some(Subscription::Server(pubsub.into_on_message()))
            }
        };
        Ok(Connected {
            conn: Conn::Server(conn),
            subscription,
            sharded: false,
        })
    }
}

async fn cluster(
    nodes: &[redis::ConnectionInfo],
    timeouts: Timeouts,
    channels: Option<&[String]>,
) -> redis::RedisResult<Connected> {
    // A few retries: a slot moved (MOVED, ASK) or a node being replaced;
    // each attempt is bounded by the response timeout.
    let builder = ClusterClientBuilder::new(nodes.to_vec())
        .connection_timeout(timeouts.connect)
        .response_timeout(timeouts.response)
        .retries(3);
    let (builder, pushes) = match channels {
        None => (builder, None),
        Some(_) => {
            let (tx, rx) = unbounded_channel();
            let builder = builder
                .use_protocol(redis::ProtocolVersion::RESP3)
                .push_sender(tx);
            (builder, Some(rx))
        }
    };
    let mut conn = builder.build()?.get_async_connection().await?;
    let mut sharded = false;
    if let Some(channels) = channels {
        // One channel at a time: the partitions' channels live in different
        // slots, and a sharded subscription names one slot's channels.
        sharded = true;
        for channel in channels {
            if sharded {
                match conn.ssubscribe(channel).await {
                    Ok(()) => continue,
                    // Before Redis 7: plain pub/sub, which a cluster broadcasts.
                    Err(e) if is_unknown_command(&e) => sharded = false,
                    Err(e) => return Err(e),
                }
            }
            conn.subscribe(channel).await?;
        }
    }
    Ok(Connected {
        conn: Conn::Cluster(conn),
        subscription: pushes.map(Subscription::Cluster),
        sharded,
    })
}

fn is_unknown_command(e: &redis::RedisError) -> bool {
    e.to_string()
        .to_ascii_lowercase()
        .contains("unknown command")
}
