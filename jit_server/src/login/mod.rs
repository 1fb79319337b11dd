//! Login decisions: gather the facts, decide, apply; one transaction, one pure function.
//!
//! Every login step a host asks about (begin, verify, and a login it decided offline) goes the
//! same way, and the HTTP handlers in `api/host.rs` only carry it:
//!
//! 1. [`facts::read`] reads everything the decision may depend on (the host, the account, the
//!    reservation, its holder with their last used TOTP step and the wrong codes typed for them,
//!    the prompt's source with its wrong codes on this host, the attempt, the offline grant,
//!    the owner of the ssh key sshd accepted) inside the write transaction;
//! 2. [`decision::decide`] decides from those facts and `now` alone: no database, no clock, no
//!    network. It is table-tested with a fixed clock, one row per rule;
//! 3. [`apply`] writes the outcome in that same transaction (attempt, consumption, used step,
//!    the wrong code against its source, audit rows) and builds the answer for the host.
//!
//! TOTP matching stays outside the decision but is pure as well: [`crate::totp::check`] turns
//! secret, code and `now` into the matched step or none; replay (a step not newer than the last
//! one used), the source's wait and the guessing alert are the decision's, from the facts.
//!
//! **Push with number matching** is rows of the same table: the holder's factors and the
//! account's required factor are facts; `Begin` carries the challenge number the caller drew at
//! random, so `decide` stays pure; the attempt's challenge (its number and state) is a fact of
//! `Verify`, `Wait` (the host waits for the approval), `Approve` (the number typed on the approval
//! page or in `jitctl approve`) and `Report` ("This was not me"). A wrong number is a `Deny`
//! row that does not count as a wrong code, and the one-push-a-minute limit is a fact
//! (`last_push_at`) with its own rows.
//!
//! **Wrong codes count against their source**, not against the holder: the source (the local
//! uid behind su, the remote address behind ssh, the tty at a console, as the host read it from
//! the kernel) and its wrong codes on this host are facts ([`decision::SourceFacts`]), and so
//! are the holder's wrong codes from every source. A source past `[guessing] free_failures`
//! waits, longer with each wrong code ([`decision::GuessPolicy::next_try`]); the holder, typing
//! from their own source, is never held back by it. [`decision::Guess`] says what to record and
//! when the holder's total raises `login.guessing_alert` for the admins.
//!
//! How the next features plug in, without new handlers:
//! - **Session policies**: the account's policy joins [`decision::AccountFacts`]; `Grant`
//!   carries what the host must enforce (end the session at expiry, warn a minute before), and
//!   session steps (`Step::SessionOpen`, `Step::Extend`) are new rows of the same table.

pub mod apply;
pub mod approval;
pub mod decision;
pub mod facts;

pub use decision::{
    CodeMatch, Decision, Facts, GuessPolicy, LockoutPolicy, PushPolicy, Step, decide,
};
pub use facts::Policies;

/// The lockout policy of the running server.
pub fn lockout_policy(s: &crate::config::Settings) -> LockoutPolicy {
    LockoutPolicy {
        max_failures: s.lockout.max_failures,
        window_secs: s.lockout.window.secs(),
        duration_secs: s.lockout.duration.secs(),
    }
}

/// Every policy the login decision applies, of the running server.
pub fn policies(s: &crate::config::Settings) -> Policies {
    Policies {
        lockout: lockout_policy(s),
        push: PushPolicy {
            rate_secs: s.push.rate_limit.secs(),
            ttl_secs: s.push.challenge_ttl.secs(),
        },
        guessing: GuessPolicy {
            free_failures: s.guessing.free_failures,
            first_delay_secs: s.guessing.first_delay.secs(),
            max_delay_secs: s.guessing.max_delay.secs(),
            window_secs: s.guessing.window.secs(),
            alert_failures: s.guessing.alert_failures,
        },
    }
}
