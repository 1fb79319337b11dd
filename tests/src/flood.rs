//! Load for the unauthenticated endpoints and the login path, shared by the test that shows a
//! join flood does not stop logins and the example that measures it (docs/benchmarks.md).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use jit_proto::api::{ErrorCode, JoinRequest, LoginBegin, LoginBegun, LoginOrigin};
use jit_proto::join_token::JoinToken;
use jit_proto::{AccountName, Secret};

/// How a flood of bad joins was answered.
#[derive(Debug, Default)]
pub struct FloodAnswers {
    /// 429: refused by the rate limits before the database.
    pub rate_limited: u64,
    /// 401/410: the join token was checked (in a read snapshot) and refused.
    pub refused: u64,
    /// Anything else (a success, an error, a lost connection): none are expected.
    pub other: u64,
}

/// Sends `n` joins with a wrong secret for the host in `join_token`, `concurrency` at a time,
/// from one client (one address).
pub async fn bad_joins(join_token: &str, n: u64, concurrency: usize) -> FloodAnswers {
    let token = JoinToken::decode(join_token).expect("join token");
    let pin = jit_client::parse_fingerprint(&token.ca_fingerprint).expect("fingerprint");
    let client = Arc::new(
        jit_client::Client::new(
            &token.server,
            jit_client::Trust::Fingerprint(pin),
            None,
            Duration::from_secs(60),
        )
        .expect("client"),
    );
    let next = Arc::new(AtomicU64::new(0));
    let counts = Arc::new([AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)]);
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, next, counts, host) = (
            client.clone(),
            next.clone(),
            counts.clone(),
            token.host.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::SeqCst) < n {
                let req = JoinRequest {
                    host: host.clone(),
                    secret: Secret::new("jitj_this-is-not-the-secret"),
                };
                let slot = match client.join(&req).await {
                    Err(e) => match e.code() {
                        Some(ErrorCode::RateLimited) => 0,
                        Some(ErrorCode::Unauthorized | ErrorCode::Expired) => 1,
                        _ => 2,
                    },
                    Ok(_) => 2,
                };
                counts[slot].fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    for t in tasks {
        t.await.expect("flood task");
    }
    FloodAnswers {
        rate_limited: counts[0].load(Ordering::SeqCst),
        refused: counts[1].load(Ordering::SeqCst),
        other: counts[2].load(Ordering::SeqCst),
    }
}

/// A login's first step for `account`, as jitd sends it.
pub fn login_begin(account: &str) -> LoginBegin {
    LoginBegin {
        account: AccountName::new(account).expect("account"),
        origin: LoginOrigin {
            service: "sshd".into(),
            rhost: Some("192.0.2.10".into()),
            ..Default::default()
        },
    }
}

/// Asks the server to decide `n` logins of `account` (a reserved account: each must be answered
/// with a challenge) one after another; returns each decision's round-trip time.
pub async fn login_decisions(host: &jit_client::Client, account: &str, n: usize) -> Vec<Duration> {
    let mut took = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        let answer = host.login_begin(&login_begin(account)).await;
        took.push(start.elapsed());
        match answer {
            Ok(LoginBegun::Challenge { .. }) => {}
            other => panic!("a login was not decided as it should be: {other:?}"),
        }
    }
    took
}

/// The `p`th percentile (0..=100) of `samples`.
pub fn percentile(samples: &[Duration], p: f64) -> Duration {
    let mut s = samples.to_vec();
    s.sort();
    if s.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * s.len() as f64).ceil() as usize;
    s[rank.clamp(1, s.len()) - 1]
}
