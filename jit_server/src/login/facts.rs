//! Reading the facts of a login step from the database, inside the transaction that will apply
//! the decision.

use jit_proto::api::LoginOrigin;
use sqlx::AnyConnection;

use super::decision::{
    AccountFacts, AttemptFacts, Facts, GrantFacts, HostFacts, Lifecycle, LockoutPolicy,
    PersonFacts, ReservationFacts,
};
use crate::rules;
use crate::store::accounts::{self, AccountRow};
use crate::store::hosts::HostRow;
use crate::store::persons::{self, PersonRow};
use crate::store::reservations::{self, AttemptRow, ReservationRow};
use crate::store::{StoreResult, from_json, offline, ssh_keys};

/// Which login step the facts are for.
pub enum Subject<'a> {
    /// A login to `account` begins on the calling host.
    Begin {
        account: &'a str,
        origin: &'a LoginOrigin,
    },
    /// The calling host answers login attempt `attempt`.
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
    /// Where the login came from, as the audit log keeps it.
    pub origin: serde_json::Value,
}

pub async fn read(
    conn: &mut AnyConnection,
    host: &HostRow,
    subject: Subject<'_>,
    lockout: LockoutPolicy,
    now: i64,
) -> StoreResult<Gathered> {
    let is_offline = matches!(subject, Subject::Offline { .. });
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
    let holder_facts = match &holder {
        Some(p) => Some(person(conn, p, &lockout, now).await?),
        None => None,
    };
    let grant = match (is_offline, &reservation) {
        (true, Some(r)) => match offline::issued(conn, r.id).await? {
            Some(g) => {
                let codes: Vec<jit_proto::api::StepHash> =
                    from_json("offline grant codes", &g.codes)?;
                Some(GrantFacts {
                    served_at: g.served_at,
                    steps: codes.iter().map(|c| c.step).collect(),
                })
            }
            None => None,
        },
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
    };
    Ok(Gathered {
        facts,
        account,
        reservation,
        holder,
        attempt,
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
    Ok(PersonFacts {
        name: p.name.clone(),
        active: p.is_active(),
        enrolled: p.is_enrolled(),
        locked_until: p.locked_until,
        last_step: p.totp_last_step,
        recent_failures: u32::try_from(recent).unwrap_or(u32::MAX),
    })
}
