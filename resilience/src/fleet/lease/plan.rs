//! What the lease task does for one limiter, without the network: when to
//! ask the fleet for tokens, how many, when to give unused ones back, and
//! what to do with the answer.
//!
//! The rules, for a lease of at most `L` tokens
//! ([`lease_size`](crate::rate_limit::fleet::lease_size)):
//!
//! - One request at a time, and one reservation: a request asks for `L -
//!   stock`, so the stock plus the tokens on their way never exceed `L`
//!   (the bound "one lease per instance" rests on this).
//! - A request is sent when a call took the stock below half a lease, or
//!   found it empty (the calls wake the task), and at once when the limiter
//!   is off leases (attached, or Redis back).
//! - A grant usable later (the fleet's schedule is ahead: others hold its
//!   near future) is a reservation: the tokens go into the stock when due.
//! - Tokens unused for `ttl` after they arrived are given back, but one
//!   (so that an idle instance's next call passes at once, and asks for
//!   more); an instance that sent nothing for `ttl` sends a heartbeat, so
//!   the fleet keeps counting it and a lost Redis is noticed.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::script::{Ask, Limits, Reply};
use crate::rate_limit::fleet::{lease_size, low_water};
use crate::RateLimiter;

/// Tokens an idle instance keeps when it gives its lease back.
pub(crate) const KEEP: u64 = 1;

/// The shortest wait before asking again after the fleet had nothing.
const MIN_RETRY: Duration = Duration::from_millis(1);

/// The lease task's state for one fleet limiter.
#[derive(Debug)]
pub(crate) struct Tracked {
    pub(crate) limiter: Arc<RateLimiter>,
    /// The limit's schedule key, `{ns:resilience:rate:NAME}`.
    pub(crate) schedule_key: String,
    /// The key of the instances sharing it.
    pub(crate) instances_key: String,
    /// Tokens the fleet granted, usable from the instant.
    pending: Option<(u64, Instant)>,
    /// The fleet had nothing within the horizon: not before this instant.
    not_before: Option<Instant>,
    /// When tokens last went into the stock.
    leased_at: Instant,
    /// When a command for this limiter was last sent.
    last_sent: Option<Instant>,
}

impl Tracked {
    pub(crate) fn new(limiter: Arc<RateLimiter>, namespace: &str, now: Instant) -> Self {
        let schedule_key = format!("{{{namespace}:resilience:rate:{}}}", limiter.name());
        let instances_key = format!("{schedule_key}:instances");
        Tracked {
            limiter,
            schedule_key,
            instances_key,
            pending: None,
            not_before: None,
            leased_at: now,
            last_sent: None,
        }
    }

    /// The limits of the configuration in force, grants usable within `ttl`.
    pub(crate) fn limits(&self, ttl: Duration) -> Limits {
        let c = self.limiter.config();
        Limits::new(c.rate().get(), c.per(), c.burst().get(), ttl)
    }

    /// Puts a reservation that is due into the stock, takes back the
    /// unused tokens of a lease older than `ttl`, and says what to ask the
    /// fleet now, if anything. Tokens taken back are out of the stock
    /// already: if the request fails, they are lost, never used twice.
    pub(crate) fn plan(&mut self, now: Instant, ttl: Duration) -> Option<Ask> {
        let l = &self.limiter;
        let size = lease_size(&l.config());
        let low = low_water(size);
        if let Some((tokens, at)) = self.pending {
            if at <= now {
                l.fleet_refill(tokens);
                self.pending = None;
                self.leased_at = now;
            }
        }
        let leasing = l.fleet_leasing();
        let mut back = 0;
        if leasing && self.pending.is_none() && now >= self.leased_at + ttl {
            back = l.fleet_take_back(KEEP);
            self.leased_at = now;
        }
        let stock = l.fleet_stock();
        let may_ask = self.pending.is_none() && self.not_before.is_none_or(|t| now >= t);
        let needed = !leasing || (stock < low && l.fleet_wanted());
        let want = if may_ask && needed && back == 0 {
            size.saturating_sub(stock)
        } else {
            0
        };
        // Acted on: a call that takes the stock below the mark again wakes
        // the task again. Left set while tokens are on their way, so that
        // the calls that find the stock empty meanwhile do not.
        l.fleet_prepare(low, want > 0 || stock >= low);
        let heartbeat = self.last_sent.is_none_or(|at| now >= at + ttl);
        (want > 0 || back > 0 || heartbeat).then_some(Ask {
            want,
            back,
            leaving: false,
        })
    }

    /// Applies the fleet's answer to `ask`, sent at `now`, for the fleet `hub`
    /// (its waits are at most a day and the ttl an hour: the instants below
    /// never overflow).
    pub(crate) fn on_reply(&mut self, ask: &Ask, reply: Reply, now: Instant, hub: u64) {
        let l = &self.limiter;
        self.last_sent = Some(now);
        l.fleet_set_instances(reply.instances);
        if !l.fleet_leasing() && l.fleet_start_leasing(hub, reply.wait) {
            tracing::debug!(
                target: "resilience",
                rate_limit = l.name(),
                instances = reply.instances,
                "rate limit `{}` takes its calls from fleet leases",
                l.name()
            );
        }
        if reply.granted > 0 {
            if reply.wait.is_zero() {
                l.fleet_refill(reply.granted);
                self.leased_at = now;
            } else {
                self.pending = Some((reply.granted, now + reply.wait));
            }
            self.not_before = None;
        } else if ask.want > 0 {
            self.not_before = Some(now + reply.wait.max(MIN_RETRY));
        }
        l.fleet_due(self.due(now));
    }

    /// A request sent at `now` failed: nothing was granted.
    pub(crate) fn on_failure(&mut self, now: Instant, retry: Duration) {
        self.last_sent = Some(now);
        self.not_before = Some(now + retry);
        self.limiter.fleet_due(self.due(now));
    }

    /// Redis is lost: the limiter runs on its local share; tokens on their
    /// way are dropped. Whether it was on leases.
    pub(crate) fn on_lost(&mut self, hub: u64) -> bool {
        self.pending = None;
        self.not_before = None;
        self.last_sent = None;
        self.limiter.fleet_fall_back(hub)
    }

    /// The tokens granted and not due yet (the instance leaves: they go back).
    pub(crate) fn take_pending(&mut self) -> u64 {
        self.pending.take().map_or(0, |(tokens, _)| tokens)
    }

    /// How long from `now` until the next tokens are expected here.
    fn due(&self, now: Instant) -> Duration {
        match (self.pending, self.not_before) {
            (Some((_, at)), _) | (None, Some(at)) => at.saturating_duration_since(now),
            // A request goes out as soon as a call asks: about one
            // emission interval of the whole limit.
            (None, None) => {
                let c = self.limiter.config();
                c.per() / c.rate().get()
            }
        }
    }

    /// When the task must look at this limiter again, at the latest.
    pub(crate) fn next_wake(&self, now: Instant, ttl: Duration) -> Instant {
        let mut next = self.last_sent.map_or(now, |at| at + ttl);
        if let Some((_, at)) = self.pending {
            next = next.min(at);
        }
        if let Some(at) = self.not_before {
            next = next.min(at);
        }
        if self.limiter.fleet_leasing() && self.limiter.fleet_stock() > KEEP {
            next = next.min(self.leased_at + ttl);
        }
        next
    }
}
