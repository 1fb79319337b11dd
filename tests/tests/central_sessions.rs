//! Sessions on the server, through the real API and jitctl: the records hosts report (open,
//! close, ended with its cause) and who sees them (`jitctl sessions`); the account policy
//! `--end-session-at-expiry`; what a grant tells the host; and how the reservation behind a
//! session stands (`POST /v1/host/reservations`) through release, force-release, the holder
//! disabled and expiry.

use jit_proto::api::{
    AuditResult, EndCause, HostEvent, HostEvents, HostReservationQuery, HostReservations,
    LoginBegin, LoginBegun, LoginOrigin, LoginVerified, LoginVerify,
};
use jit_proto::{AccountName, PersonName, Secret};
use jit_tests::{Person, World, join_host, runtime};

fn origin() -> LoginOrigin {
    LoginOrigin {
        service: "sshd".into(),
        rhost: Some("192.0.2.7".into()),
        tty: Some("ssh".into()),
        ..Default::default()
    }
}

/// A login of `p` to admin on web01 through the host API, as jitd makes it; the grant.
fn login(
    rt: &tokio::runtime::Runtime,
    host: &jit_client::Client,
    p: &Person,
) -> (String, i64, Option<i64>, bool) {
    let begun = rt
        .block_on(host.login_begin(&LoginBegin {
            account: AccountName::new("admin").unwrap(),
            origin: origin(),
        }))
        .unwrap();
    let LoginBegun::Challenge { attempt, .. } = begun else {
        panic!("expected a challenge, got {begun:?}");
    };
    let verified = rt
        .block_on(host.login_verify(
            &attempt,
            &LoginVerify {
                code: Secret::new(p.next_code()),
            },
        ))
        .unwrap();
    match verified {
        LoginVerified::Granted {
            reservation_id,
            ends_in_secs,
            end_session_at_expiry,
            ..
        } => (attempt, reservation_id, ends_in_secs, end_session_at_expiry),
        other => panic!("expected a grant, got {other:?}"),
    }
}

fn event(
    id: &str,
    action: &str,
    attempt: &str,
    reservation: i64,
    ended: Option<EndCause>,
) -> HostEvents {
    HostEvents {
        events: vec![HostEvent {
            id: id.into(),
            at: jit_tests::now(),
            action: action.into(),
            account: AccountName::new("admin").unwrap(),
            // A host naming someone else is not believed: the reservation says who.
            person: Some(PersonName::new("mallory").unwrap()),
            result: AuditResult::Ok,
            reason: Some(format!("{action} reported")),
            origin: origin(),
            reservation_id: Some(reservation),
            attempt: Some(attempt.into()),
            totp_step: None,
            ended,
        }],
    }
}

fn status(
    rt: &tokio::runtime::Runtime,
    host: &jit_client::Client,
    ids: &[i64],
) -> HostReservations {
    rt.block_on(host.host_reservations(&HostReservationQuery { ids: ids.to_vec() }))
        .unwrap()
}

#[test]
fn sessions_are_recorded_from_open_to_close_and_each_person_sees_their_own() {
    let w = World::new();
    let rt = runtime();
    let host = join_host(&rt, &w.join_token);
    w.alice
        .jitctl
        .ok(&["reserve", "admin", "--host", "web01", "--for", "10m"]);
    let (attempt, res, ends_in, ends_session) = login(&rt, &host, &w.alice);
    // The grant tells the host how long is left and the account's policy (off by default).
    assert!((590..=600).contains(&ends_in.unwrap()), "{ends_in:?}");
    assert!(!ends_session);
    rt.block_on(host.host_events(&event("e1", "session.open", &attempt, res, None)))
        .unwrap();
    // Delivered twice (a retry after a lost answer): one session.
    rt.block_on(host.host_events(&event("e1", "session.open", &attempt, res, None)))
        .unwrap();

    let mine = w.alice.jitctl.json(&["sessions"]);
    let list = mine["sessions"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{mine}");
    let s = &list[0];
    assert_eq!(s["account"], "admin");
    assert_eq!(s["host"], "web01");
    assert_eq!(
        s["person"], "alice",
        "the reservation's holder, not what the host said"
    );
    assert_eq!(s["service"], "sshd");
    assert_eq!(s["source"], "192.0.2.7");
    assert_eq!(s["reservation_id"], res);
    assert!(s["closed_at"].is_null());
    assert_eq!(s["end_session_at_expiry"], false);
    let text = w.alice.jitctl.ok(&["sessions"]);
    assert!(
        text.starts_with("ACCOUNT") && text.contains("admin") && text.contains("192.0.2.7"),
        "{text}"
    );
    // bob has none; the admin sees alice's.
    assert!(
        w.bob.jitctl.json(&["sessions"])["sessions"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(w.bob.jitctl.ok(&["sessions"]).trim(), "No open sessions.");
    let all = w.admin.json(&["sessions"]);
    assert_eq!(all["sessions"][0]["person"], "alice");

    rt.block_on(host.host_events(&event("e2", "session.close", &attempt, res, None)))
        .unwrap();
    assert!(
        w.alice.jitctl.json(&["sessions"])["sessions"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let closed = w.alice.jitctl.json(&["sessions", "--all"]);
    let s = &closed["sessions"][0];
    assert!(s["closed_at"].is_i64(), "{closed}");
    assert!(s["duration_secs"].as_i64().unwrap() >= 0);
    assert!(s["ended"].is_null());
    let text = w.alice.jitctl.ok(&["sessions", "--all"]);
    assert!(text.contains("STATE") && text.contains("closed"), "{text}");
    // Without a credential: refused.
    let (code, _) = w.server.curl("GET", "/v1/sessions", None, None);
    assert_eq!(code, 401);
}

#[test]
fn the_policy_is_set_by_jitctl_and_a_reservation_behind_a_session_can_end_four_ways() {
    let w = World::new();
    let rt = runtime();
    let host = join_host(&rt, &w.join_token);
    // Off by default; on with --end-session-at-expiry, off again with =false.
    let a = w.admin.json(&["account", "show", "admin"]);
    assert_eq!(a["end_session_at_expiry"], false);
    let a = w
        .admin
        .json(&["account", "set", "admin", "--end-session-at-expiry"]);
    assert_eq!(a["end_session_at_expiry"], true);
    let listed = w.admin.ok(&["account", "list"]);
    assert!(
        listed.contains("SESSIONS") && listed.contains(" end "),
        "{listed}"
    );
    let a = w
        .admin
        .json(&["account", "set", "admin", "--end-session-at-expiry=false"]);
    assert_eq!(a["end_session_at_expiry"], false);
    w.admin
        .ok(&["account", "set", "admin", "--end-session-at-expiry=true"]);
    let added = w.admin.json(&[
        "account",
        "add",
        "deploy",
        "--existing",
        "--group",
        "ops",
        "--hosts",
        "web*",
        "--end-session-at-expiry",
    ]);
    assert_eq!(added["end_session_at_expiry"], true);

    // 1. alice releases the reservation her login used: it ends, released by her.
    w.alice.jitctl.ok(&["reserve", "admin", "--host", "web01"]);
    let (_, r1, _, ends_session) = login(&rt, &host, &w.alice);
    assert!(ends_session);
    let s = status(&rt, &host, &[r1]);
    let st = &s.reservations[0];
    assert_eq!((st.ended, st.end_session_at_expiry), (None, true));
    assert!(st.ends_at > s.now);
    let out = w.alice.jitctl.ok(&["release", "admin"]);
    assert!(out.contains("Released admin on web01"), "{out}");
    let st = &status(&rt, &host, &[r1]).reservations[0];
    assert_eq!(st.ended, Some(EndCause::Released));
    assert_eq!(st.ended_by.as_deref(), Some("alice"));

    // 2. An admin force-releases bob's used reservation.
    w.bob.jitctl.ok(&["reserve", "admin", "--host", "web01"]);
    let (_, r2, _, _) = login(&rt, &host, &w.bob);
    w.admin.ok(&["release", "admin", "--host", "web01"]);
    let st = &status(&rt, &host, &[r2]).reservations[0];
    assert_eq!(st.ended, Some(EndCause::ForceReleased));
    assert_eq!(st.ended_by.as_deref(), Some("admin"));

    // 3. The holder is disabled.
    w.alice.jitctl.ok(&["reserve", "admin", "--host", "web01"]);
    let (_, r3, _, _) = login(&rt, &host, &w.alice);
    w.admin.ok(&["person", "disable", "alice"]);
    let st = &status(&rt, &host, &[r3]).reservations[0];
    assert_eq!(st.ended, Some(EndCause::HolderDisabled));
    w.admin.ok(&["person", "enable", "alice"]);

    // 4. It runs out (moved into the past rather than waited for).
    w.bob.jitctl.ok(&["reserve", "admin", "--host", "web01"]);
    let (attempt, r4, _, _) = login(&rt, &host, &w.bob);
    // The session opens while the reservation runs (a later open is refused: see central_audit).
    rt.block_on(host.host_events(&event("o4", "session.open", &attempt, r4, None)))
        .unwrap();
    w.server.sql(&format!(
        "UPDATE reservations SET expires_at = expires_at - 1000 WHERE id = {r4}"
    ));
    let st = &status(&rt, &host, &[r4]).reservations[0];
    assert_eq!(st.ended, Some(EndCause::Expired));
    assert!(st.ended_by.is_none());

    // The host ended that session: recorded with its cause, and audited as session.ended.
    rt.block_on(host.host_events(&event(
        "x4",
        "session.ended",
        &attempt,
        r4,
        Some(EndCause::Expired),
    )))
    .unwrap();
    let all = w.admin.json(&["sessions", "--all"]);
    let s = &all["sessions"][0];
    assert_eq!(s["ended"], "expired", "{all}");
    assert_eq!(s["person"], "bob");
    let text = w.admin.ok(&["sessions", "--all"]);
    assert!(text.contains("ended: reservation ran out"), "{text}");
    let audit = w.admin.json(&["audit", "--account", "admin"]);
    let ended = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "session.ended")
        .expect("a session.ended row");
    assert_eq!(ended["detail"]["ended"], "expired");
    assert_eq!(ended["actor"], "host:web01");

    // Several at once; an id that is not this host's (or does not exist) is left out.
    let s = status(&rt, &host, &[r1, r2, r3, r4, r4, 99_999]);
    let ids: Vec<i64> = s.reservations.iter().map(|r| r.id).collect();
    assert_eq!(ids, [r1, r2, r3, r4]);
    let too_many: Vec<i64> = (0..1001).collect();
    let err = rt
        .block_on(host.host_reservations(&HostReservationQuery { ids: too_many }))
        .unwrap_err()
        .to_string();
    assert!(err.contains("at most 1000"), "{err}");
}

/// An extension moves a used reservation's end, and the host reads the new end.
#[test]
fn an_extension_of_a_used_reservation_moves_the_end_the_host_reads() {
    let w = World::new();
    let rt = runtime();
    let host = join_host(&rt, &w.join_token);
    w.alice
        .jitctl
        .ok(&["reserve", "admin", "--host", "web01", "--for", "2m"]);
    let (_, res, _, _) = login(&rt, &host, &w.alice);
    let before = status(&rt, &host, &[res]).reservations[0].ends_at;
    w.alice.jitctl.ok(&["extend", "admin", "--for", "10m"]);
    let after = status(&rt, &host, &[res]).reservations[0].ends_at;
    assert_eq!(after, before + 600);
}
