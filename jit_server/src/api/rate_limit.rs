//! Limits on the endpoints anyone can call without a credential: join, enrollment start and
//! enrollment confirm. Each call takes a token from its client address's bucket and, once the
//! request names one, from that name's bucket (the host joining, the person enrolling); an empty
//! bucket answers 429 with `Retry-After`, before the database is touched. Refused joins are
//! counted in memory and written to the audit as one `host.join_refused` row per window, so a
//! flood of bad joins costs neither the write lock nor a row each.
//!
//! Everything here is in memory and bounded ([`RateLimitSettings::max_tracked`] keys per table):
//! a server restart forgets it, which only ever lets a client in sooner. Time is passed in
//! (Unix seconds). Never panics: a poisoned lock is taken over.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Mutex;

use jit_proto::api::AuditResult;

use crate::config::RateLimitSettings;
use crate::error::ApiError;
use crate::store::audit::Event;

/// One bucket per key: `burst` tokens at most, refilled at `per_minute`.
#[derive(Debug)]
pub struct Buckets {
    burst: f64,
    per_sec: f64,
    max_keys: usize,
    map: HashMap<String, Bucket>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: i64,
}

impl Buckets {
    pub fn new(burst: u32, per_minute: u32, max_keys: usize) -> Self {
        Self {
            burst: f64::from(burst.max(1)),
            per_sec: f64::from(per_minute.max(1)) / 60.0,
            max_keys: max_keys.max(1),
            map: HashMap::new(),
        }
    }

    fn level(&self, b: Bucket, now: i64) -> f64 {
        let elapsed = (now - b.at).max(0) as f64;
        (b.tokens + elapsed * self.per_sec).min(self.burst)
    }

    /// Takes one token for `key`; when there is none, the seconds until there is one.
    pub fn take(&mut self, key: &str, now: i64) -> Result<(), u64> {
        if !self.map.contains_key(key) && self.map.len() >= self.max_keys {
            self.make_room(now);
        }
        let fresh = Bucket {
            tokens: self.burst,
            at: now,
        };
        let b = self.map.get(key).copied().unwrap_or(fresh);
        let tokens = self.level(b, now);
        if tokens >= 1.0 {
            self.map.insert(
                key.to_owned(),
                Bucket {
                    tokens: tokens - 1.0,
                    at: now,
                },
            );
            Ok(())
        } else {
            self.map.insert(key.to_owned(), Bucket { tokens, at: now });
            // The epsilon keeps float noise (20.000001 s) from adding a second.
            Err(((1.0 - tokens) / self.per_sec - 1e-6).ceil().max(1.0) as u64)
        }
    }

    /// Forgets buckets that have refilled (they behave as new ones); if none has, the one that
    /// was used longest ago, so the table never grows past its bound.
    fn make_room(&mut self, now: i64) {
        let burst = self.burst;
        let full: Vec<String> = self
            .map
            .iter()
            .filter(|(_, b)| self.level(**b, now) >= burst)
            .map(|(k, _)| k.clone())
            .collect();
        for k in &full {
            self.map.remove(k);
        }
        if self.map.len() >= self.max_keys
            && let Some(oldest) = self
                .map
                .iter()
                .min_by_key(|(_, b)| b.at)
                .map(|(k, _)| k.clone())
        {
            self.map.remove(&oldest);
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// Refused joins since the last audit row about them.
#[derive(Debug, Default)]
struct Refusals {
    since: Option<i64>,
    count: u64,
    reasons: BTreeMap<&'static str, u64>,
    addresses: HashMap<String, u64>,
    hosts: HashMap<String, u64>,
}

/// Most distinct addresses and host names one aggregate row counts separately (the rest are in
/// the total only).
const MAX_LISTED: usize = 1000;
/// How many of them the audit row names (the most frequent).
const TOP: usize = 20;

fn bump(map: &mut HashMap<String, u64>, key: String) {
    if map.len() < MAX_LISTED || map.contains_key(&key) {
        *map.entry(key).or_default() += 1;
    }
}

fn top(map: &HashMap<String, u64>) -> serde_json::Value {
    let mut v: Vec<(&String, &u64)> = map.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    v.truncate(TOP);
    serde_json::Value::Object(
        v.into_iter()
            .map(|(k, n)| (k.clone(), serde_json::json!(n)))
            .collect(),
    )
}

/// The limits of one server process.
#[derive(Debug)]
pub struct Limits {
    by_address: Mutex<Buckets>,
    by_name: Mutex<Buckets>,
    refused_joins: Mutex<Refusals>,
    window: i64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Limits {
    pub fn new(s: &RateLimitSettings) -> Self {
        Self {
            by_address: Mutex::new(Buckets::new(
                s.per_address_burst,
                s.per_address_per_minute,
                s.max_tracked,
            )),
            by_name: Mutex::new(Buckets::new(
                s.per_name_burst,
                s.per_name_per_minute,
                s.max_tracked,
            )),
            refused_joins: Mutex::new(Refusals::default()),
            window: s.refused_join_window.secs(),
        }
    }

    /// A call from `addr` (none: not over the network, e.g. a test router) to `what`.
    pub fn admit_address(
        &self,
        addr: Option<IpAddr>,
        what: &str,
        now: i64,
    ) -> Result<(), ApiError> {
        let Some(addr) = addr else { return Ok(()) };
        lock(&self.by_address)
            .take(&addr.to_string(), now)
            .map_err(|secs| {
                ApiError::rate_limited(
                    format!(
                        "too many {what} requests from {addr}; try again in {secs} s (the server \
                         limits unauthenticated requests per address)"
                    ),
                    secs,
                )
            })
    }

    /// A call about `name` (a host joining, a person enrolling), from any address.
    pub fn admit_name(&self, kind: &str, name: &str, what: &str, now: i64) -> Result<(), ApiError> {
        lock(&self.by_name)
            .take(&format!("{kind}:{name}"), now)
            .map_err(|secs| {
                ApiError::rate_limited(
                    format!(
                        "too many {what} requests for {kind} {name}; try again in {secs} s (the \
                         server limits unauthenticated requests per name)"
                    ),
                    secs,
                )
            })
    }

    /// Counts one refused join; the audit gets them together ([`Limits::refused_joins_due`]).
    pub fn note_refused_join(
        &self,
        reason: &'static str,
        addr: Option<IpAddr>,
        host: &str,
        now: i64,
    ) {
        let mut r = lock(&self.refused_joins);
        r.since.get_or_insert(now);
        r.count += 1;
        *r.reasons.entry(reason).or_default() += 1;
        bump(
            &mut r.addresses,
            addr.map_or_else(|| "-".to_owned(), |a| a.to_string()),
        );
        bump(&mut r.hosts, host.to_owned());
    }

    /// The audit row for the refused joins counted so far, once their window has passed (or at
    /// once with `flush`, when the server stops); the count starts again from zero.
    pub fn refused_joins_due(&self, now: i64, flush: bool) -> Option<Event> {
        let mut r = lock(&self.refused_joins);
        let since = r.since?;
        if !flush && now < since + self.window {
            return None;
        }
        let r = std::mem::take(&mut *r);
        let reason = format!(
            "{} join request(s) refused from {} to {} UTC",
            r.count,
            crate::rules::utc(since),
            crate::rules::utc(now)
        );
        Some(
            Event::new(now, "anonymous", "host.join_refused", AuditResult::Denied)
                .reason(reason)
                .detail(serde_json::json!({
                    "count": r.count,
                    "from": since,
                    "to": now,
                    "reasons": r.reasons,
                    "addresses": top(&r.addresses),
                    "hosts": top(&r.hosts),
                })),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let mut b = Buckets::new(3, 60, 100);
        for _ in 0..3 {
            assert_eq!(b.take("a", 1000), Ok(()));
        }
        assert_eq!(b.take("a", 1000), Err(1));
        // Another key has its own bucket.
        assert_eq!(b.take("b", 1000), Ok(()));
        // One per second comes back, never more than the burst.
        assert_eq!(b.take("a", 1001), Ok(()));
        assert_eq!(b.take("a", 1001), Err(1));
        for _ in 0..3 {
            assert_eq!(b.take("a", 5000), Ok(()));
        }
        assert!(b.take("a", 5000).is_err());
        let mut slow = Buckets::new(1, 2, 100);
        assert_eq!(slow.take("x", 0), Ok(()));
        assert_eq!(slow.take("x", 0), Err(30));
        assert_eq!(slow.take("x", 10), Err(20));
    }

    #[test]
    fn the_table_stays_bounded_and_forgets_refilled_buckets_first() {
        let mut b = Buckets::new(2, 60, 3);
        b.take("old", 0).unwrap();
        b.take("busy", 100).unwrap();
        b.take("busy", 100).unwrap();
        b.take("new", 100).unwrap();
        // "old" has refilled by now: it goes, and the busy one keeps its empty bucket.
        b.take("fourth", 100).unwrap();
        assert_eq!(b.len(), 3);
        assert!(b.take("busy", 100).is_err());
        // With no refilled bucket, the least recently used one goes.
        for i in 0..1000 {
            let _ = b.take(&format!("flood{i}"), 100);
            assert!(b.len() <= 3);
        }
    }

    #[test]
    fn refused_joins_become_one_row_per_window() {
        let s = RateLimitSettings::default();
        let l = Limits::new(&s);
        assert!(l.refused_joins_due(0, true).is_none());
        let addr: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..500 {
            l.note_refused_join("wrong secret", Some(addr), "web01", 1000);
        }
        l.note_refused_join("unknown host", None, "nope", 1010);
        assert!(
            l.refused_joins_due(1030, false).is_none(),
            "window not over"
        );
        let e = l.refused_joins_due(1060, false).expect("due");
        assert_eq!(e.action, "host.join_refused");
        let d = e.detail.unwrap();
        assert_eq!(d["count"], 501);
        assert_eq!(d["reasons"]["wrong secret"], 500);
        assert_eq!(d["addresses"]["192.0.2.1"], 500);
        assert_eq!(d["hosts"]["nope"], 1);
        assert!(e.reason.unwrap().starts_with("501 join request(s) refused"));
        assert!(l.refused_joins_due(5000, true).is_none(), "counted once");
    }
}
