//! Reading the facts of a login step from the database, inside the transaction that will apply
//! the decision.

use jit_proto::api::LoginOrigin;
use sqlx::AnyConnection;

use super::decision::{
    AccountFacts, AttemptFacts, ChallengeFacts, Facts, GrantFacts, GuessPolicy, HostFacts,
    Lifecycle, LockoutPolicy, PersonFacts, PushPolicy, ReservationFacts, SourceFacts,
};
use crate::rules;
use crate::store::accounts::{self, AccountRow};
use crate::store::hosts::{self, HostRow};
use crate::store::persons::{self, PersonRow};
use crate::store::push::{self, ChallengeRow};
use crate::store::reservations::{self, AttemptRow, ReservationRow};
use crate::store::{StoreResult, login_failures, offline, ssh_keys};

/// Which login step the facts are for.
pub enum Subject<'a> {
    /// A login to `account` begins on the calling host.
    Begin {
        account: &'a str,
        origin: &'a LoginOrigin,
    },
    /// The calling host answers login attempt `attempt` (with a code, or by waiting for its
    /// push to be approved).
    Verify { attempt: &'a str },
    /// The calling host reports an offline login with this reservation.
    Offline { reservation_id: Option<i64> },
}

/// The facts, and what applying the decision needs besides them.
pub struct Gathered {
    pub facts: Facts,
    pub account: Option<AccountRow>,
    pub reservation: Option<ReservationRow>,
    pub holder: Option<PersonRow>,
    pub attempt: Option<AttemptRow>,
    /// The attempt's push challenge.
    pub challenge: Option<ChallengeRow>,
    /// Where the login came from, as the audit log keeps it.
    pub origin: serde_json::Value,
}

/// The policies the decision applies, from server.toml.
#[derive(Debug, Clone, Copy)]
pub struct Policies {
    pub lockout: LockoutPolicy,
    pub push: PushPolicy,
    pub guessing: GuessPolicy,
}

/// The facts of push challenge `id` (for its approval or report), with the host its login runs
/// on; `None` if there is no such challenge.
pub async fn read_challenge(
    conn: &mut AnyConnection,
    id: &str,
    policies: Policies,
    now: i64,
) -> StoreResult<Option<(HostRow, Gathered)>> {
    let Some(c) = push::challenge(conn, id).await? else {
        return Ok(None);
    };
    let Some(host) = hosts::by_id(conn, c.host_id).await? else {
        return Ok(None);
    };
    let subject = Subject::Verify {
        attempt: &c.attempt_id,
    };
    let g = read(conn, &host, subject, policies, now).await?;
    Ok(Some((host, g)))
}

pub async fn read(
    conn: &mut AnyConnection,
    host: &HostRow,
    subject: Subject<'_>,
    policies: Policies,
    now: i64,
) -> StoreResult<Gathered> {
    let lockout = policies.lockout;
    let is_offline = matches!(subject, Subject::Offline { .. });
    let is_begin = matches!(subject, Subject::Begin { .. });
    let (account, reservation, attempt, origin) = match subject {
        Subject::Begin { account, origin } => {
            let account = accounts::by_name(conn, account).await?;
            let reservation = match &account {
                Some(a) => reservations::active_for(conn, a.id, host.id, now).await?,
                None => None,
            };
            let origin = serde_json::to_value(origin).unwrap_or_default();
            (account, reservation, None, origin)
        }
        Subject::Verify { attempt } => {
            let attempt = reservations::attempt(conn, attempt, host.id).await?;
            let reservation = match &attempt {
                Some(a) => reservations::by_id(conn, a.reservation_id).await?,
                None => None,
            };
            let origin = attempt
                .as_ref()
                .and_then(|a| serde_json::from_str(&a.origin).ok())
                .unwrap_or_default();
            let account = match &reservation {
                Some(r) => accounts::by_id(conn, r.account_id).await?,
                None => None,
            };
            (account, reservation, attempt, origin)
        }
        Subject::Offline { reservation_id } => {
            let reservation = match reservation_id {
                Some(id) => reservations::by_id(conn, id).await?,
                None => None,
            };
            let account = match &reservation {
                Some(r) => accounts::by_id(conn, r.account_id).await?,
                None => None,
            };
            (account, reservation, None, serde_json::Value::Null)
        }
    };
    let holder = match &reservation {
        Some(r) => persons::by_id(conn, r.person_id).await?,
        None => None,
    };
    let guessing = policies.guessing;
    let since = now - guessing.window_secs;
    let holder_facts = match &holder {
        Some(p) => {
            let mut facts = person(conn, p, &lockout, now).await?;
            let n = login_failures::of_person(conn, p.id, since).await?;
            facts.guesses = u32::try_from(n).unwrap_or(u32::MAX);
            Some(facts)
        }
        None => None,
    };
    let source = match is_offline {
        true => SourceFacts::default(),
        false => {
            let name = source_of(&origin);
            let (n, last) = login_failures::of_source(conn, host.id, &name, since).await?;
            SourceFacts {
                name,
                failures: u32::try_from(n).unwrap_or(u32::MAX),
                last_failure_at: last,
            }
        }
    };
    let grant = match (is_offline, &reservation) {
        (true, Some(r)) => offline::issued(conn, r.id).await?.map(|g| GrantFacts {
            served_at: g.served_at,
            steps: match (g.served_first_step, g.served_last_step) {
                (Some(first), Some(last)) => (first..=last).collect(),
                _ => Vec::new(),
            },
        }),
        _ => None,
    };
    let challenge = match &attempt {
        Some(a) => push::challenge_of_attempt(conn, &a.id).await?,
        None => None,
    };
    // The rate limit: only a login about to begin can send a push.
    let last_push_at = match (is_begin, &reservation) {
        (true, Some(r)) => push::last_push_at(conn, r.person_id, r.account_id).await?,
        _ => None,
    };
    let key_owner = match origin.get("ssh_key").and_then(|k| k.as_str()) {
        Some(fp) => ssh_keys::by_fingerprint(conn, fp).await?.map(|k| k.person),
        None => None,
    };
    let host_name = host.host_name()?;
    let host_labels = host.labels()?;
    let account_facts = match &account {
        Some(a) => Some(AccountFacts {
            name: a.name.clone(),
            active: a.is_active(),
            on_host: rules::host_allowed(&host_name, &host_labels, &a.patterns()?, &a.labels()?),
            offline: a.offline(),
            factor: a.factor(),
        }),
        None => None,
    };
    let facts = Facts {
        host: HostFacts {
            name: host.name.clone(),
            active: host.is_active(),
        },
        account: account_facts,
        reservation: reservation.as_ref().map(|r| ReservationFacts {
            id: r.id,
            account: r.account.clone(),
            person: r.person.clone(),
            on_this_host: r.host_id == host.id,
            state: match r.state.as_str() {
                "active" => Lifecycle::Active,
                "consumed" => Lifecycle::Consumed,
                "expired" => Lifecycle::Expired,
                _ => Lifecycle::Released,
            },
            created_at: r.created_at,
            expires_at: r.expires_at,
            ended_at: r.ended_at,
        }),
        holder: holder_facts,
        attempt: attempt.as_ref().map(|a| AttemptFacts {
            answered: a.state != "pending",
            expires_at: a.expires_at,
        }),
        grant,
        key_owner,
        lockout,
        challenge: challenge.as_ref().map(|c| ChallengeFacts {
            number: u8::try_from(c.number).unwrap_or(0),
            state: c.state(),
            expires_at: c.expires_at,
        }),
        last_push_at,
        push: policies.push,
        source,
        guessing,
    };
    Ok(Gathered {
        facts,
        account,
        reservation,
        holder,
        attempt,
        challenge,
        origin,
    })
}

/// A person's facts for judging a code: lockout, last used step, recent wrong codes.
pub async fn person(
    conn: &mut AnyConnection,
    p: &PersonRow,
    lockout: &LockoutPolicy,
    now: i64,
) -> StoreResult<PersonFacts> {
    let recent = persons::recent_failures(conn, p.id, now - lockout.window_secs).await?;
    let push = push::factor(conn, p.id).await?.is_some();
    Ok(PersonFacts {
        name: p.name.clone(),
        active: p.is_active(),
        enrolled: p.is_enrolled(),
        push,
        locked_until: p.locked_until,
        last_step: p.totp_last_step,
        recent_failures: u32::try_from(recent).unwrap_or(u32::MAX),
        guesses: 0,
    })
}

/// The source wrong codes count against: what the host says the kernel told it, else (a host
/// that does not say) the remote address or terminal the login names.
pub fn source_of(origin: &serde_json::Value) -> String {
    let field = |k: &str| {
        origin
            .get(k)
            .and_then(|v| v.as_str())
            .filter(|v| !v.is_empty())
    };
    if let Some(s) = field("source") {
        s.to_owned()
    } else if let Some(r) = field("rhost") {
        format!("addr:{r}")
    } else if let Some(t) = field("tty") {
        format!("tty:{}", t.strip_prefix("/dev/").unwrap_or(t))
    } else {
        "unknown".to_owned()
    }
}
