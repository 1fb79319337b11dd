//! The session loop against a scripted server, with recorded hands and a passed-in clock: the
//! warning a minute before the end, the end at expiry, an extension, an early end, a server that
//! went away, a policy that keeps sessions open, and processes that vanished.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jit_proto::api::{EndCause, HostReservation, HostReservations};
use jit_proto::{AccountName, PersonName};

use super::*;
use crate::peer::ProcId;
use crate::sessions::{Sessions, Tracked};
use crate::testing::{Answer, Call, FakeServer, Recorded};

const NOW: i64 = 1_800_000_000;
/// The server's clock runs this far ahead of the host's: end times must be moved, not copied.
const SKEW: i64 = 1000;

#[derive(Default)]
struct FakeHands {
    /// No terminal to write on (yet).
    no_terminal: std::sync::atomic::AtomicBool,
    told: Mutex<Vec<String>>,
    ended: Mutex<Vec<String>>,
    gone: Mutex<HashSet<String>>,
}

impl FakeHands {
    fn told(&self) -> Vec<String> {
        self.told.lock().unwrap().clone()
    }

    fn ended(&self) -> Vec<String> {
        self.ended.lock().unwrap().clone()
    }
}

impl Hands for FakeHands {
    fn alive(&self, s: &Tracked) -> bool {
        !self.gone.lock().unwrap().contains(&s.attempt)
    }

    fn tell(&self, _s: &Tracked, text: &str) -> Vec<String> {
        if self.no_terminal.load(std::sync::atomic::Ordering::SeqCst) {
            return Vec::new();
        }
        self.told.lock().unwrap().push(text.to_owned());
        vec!["/dev/pts/9".into()]
    }

    fn end(&self, s: &Tracked) -> Result<String, String> {
        self.ended.lock().unwrap().push(s.attempt.clone());
        Ok("2 process(es) of the session were signalled".into())
    }
}

struct Rig {
    server: Arc<FakeServer>,
    sessions: Arc<Sessions>,
    record: Arc<Recorded>,
    hands: Arc<FakeHands>,
    control: Control<FakeServer, Arc<Recorded>, FakeHands>,
}

fn rig() -> Rig {
    let server = Arc::new(FakeServer::new());
    let sessions = Arc::new(Sessions::default());
    let record = Arc::new(Recorded::default());
    let hands = Arc::new(FakeHands::default());
    let control = Control::new(
        server.clone(),
        sessions.clone(),
        record.clone(),
        hands.clone(),
        "web01".into(),
        Duration::from_secs(10),
    );
    Rig {
        server,
        sessions,
        record,
        hands,
        control,
    }
}

/// alice's ssh session as admin, on reservation 7, ending `ends_in` seconds from NOW.
fn session(ends_in: i64, end_session: bool) -> Tracked {
    Tracked {
        attempt: "att-1".into(),
        login: "admin".into(),
        account: "admin".into(),
        person: "alice".into(),
        reservation_id: 7,
        service: "sshd".into(),
        rhost: Some("192.0.2.7".into()),
        tty: Some("ssh".into()),
        ruser: None,
        leader: Some(ProcId {
            pid: 4242,
            start: 99,
        }),
        opened_at: NOW,
        ends_at: Some(NOW + ends_in),
        end_session,
        ended_early: None,
        warned_for: None,
        ended: None,
    }
}

/// The server's word on reservation 7 at host time `at`: ends at host time `ends_at`.
fn stands(at: i64, ends_at: i64, ended: Option<EndCause>, end_session: bool) -> HostReservations {
    HostReservations {
        reservations: vec![HostReservation {
            id: 7,
            account: AccountName::new("admin").unwrap(),
            person: PersonName::new("alice").unwrap(),
            ends_at: ends_at + SKEW,
            ended,
            ended_by: ended.map(|_| "root-admin".to_owned()),
            end_session_at_expiry: end_session,
        }],
        now: at + SKEW,
    }
}

#[tokio::test]
async fn warned_a_minute_before_then_ended_at_expiry_with_the_cause_recorded() {
    let r = rig();
    r.sessions.opened(session(300, true));
    let end = NOW + 300;
    r.server
        .on_reservations(Answer::Ok(stands(NOW, end, None, true)));
    // Nothing to say yet: the next look is the next refresh.
    assert_eq!(r.control.tick(NOW).await, Some(NOW + 10));
    assert!(r.hands.told().is_empty());
    // A minute before: the server is asked once more (an extension would count), then warned.
    r.server
        .on_reservations(Answer::Ok(stands(end - 60, end, None, true)));
    assert_eq!(r.control.tick(end - 60).await, Some(end - 50));
    let told = r.hands.told();
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(told[0].contains("will be ended in 1m (at "), "{}", told[0]);
    assert!(
        told[0].contains("jitctl extend admin --host web01"),
        "{}",
        told[0]
    );
    // Warned once only.
    r.control.tick(end - 30).await;
    assert_eq!(r.hands.told().len(), 1);
    assert!(r.hands.ended().is_empty());
    // At the end (the server unreachable now: its last word stands): ended, and said why.
    r.control.tick(end).await;
    assert_eq!(r.hands.ended(), ["att-1"]);
    let told = r.hands.told();
    assert_eq!(
        told.last().unwrap(),
        "jit: the reservation of admin on web01 ran out; this session is being ended."
    );
    let events = r.record.events();
    let ev = events.last().unwrap();
    assert_eq!(ev.action, "session.ended");
    assert_eq!(ev.ended, Some(EndCause::Expired));
    assert_eq!(ev.attempt.as_deref(), Some("att-1"));
    assert_eq!(ev.reservation_id, Some(7));
    assert_eq!(ev.person.as_ref().unwrap().as_str(), "alice");
    assert!(
        ev.reason.as_deref().unwrap().contains("were signalled"),
        "{ev:?}"
    );
    let d = r.record.decisions();
    assert_eq!(
        (d.last().unwrap().stage, d.last().unwrap().result),
        ("session_end", "ended")
    );
    // Ended once: the next look does nothing more, and once its processes are gone it is
    // forgotten without another event.
    r.control.tick(end + 5).await;
    assert_eq!(r.hands.ended().len(), 1);
    r.hands.gone.lock().unwrap().insert("att-1".into());
    assert_eq!(r.control.tick(end + 6).await, None);
    assert_eq!(r.record.events().len(), events.len());
}

/// sshd opens the PAM session before it starts the shell: a session warned at once finds no
/// terminal yet, and is warned again a second later, when it has one. One that still has none
/// after its first seconds (`ssh host command`) is not asked again.
#[tokio::test]
async fn a_warning_waits_for_the_sessions_terminal() {
    use std::sync::atomic::Ordering::SeqCst;
    let r = rig();
    r.sessions.opened(session(50, true));
    r.hands.no_terminal.store(true, SeqCst);
    assert_eq!(r.control.tick(NOW).await, Some(NOW + 1));
    r.hands.no_terminal.store(false, SeqCst);
    // (The server, unreachable here, is asked again before the warning: the next look is its
    // next refresh.)
    assert_eq!(r.control.tick(NOW + 1).await, Some(NOW + 11));
    assert_eq!(r.hands.told().len(), 1);
    assert!(r.hands.told()[0].contains("will be ended in 49s"));

    let r = rig();
    r.sessions.opened(session(50, true));
    r.hands.no_terminal.store(true, SeqCst);
    r.control.tick(NOW + 10).await;
    let next = r.control.tick(NOW + 11).await;
    assert_eq!(next, Some(NOW + 20), "no retry once the session is older");
    assert_eq!(r.sessions.all()[0].warned_for, Some(NOW + 50));
}

#[tokio::test]
async fn an_extension_seen_before_acting_keeps_the_session_open() {
    let r = rig();
    r.sessions.opened(session(300, true));
    let old = NOW + 300;
    let new = old + 600;
    // The holder extended a moment before the warning was due: the look before warning sees it.
    r.server
        .on_reservations(Answer::Ok(stands(old - 60, new, None, true)));
    assert_eq!(r.control.tick(old - 60).await, Some(old - 50));
    assert!(r.hands.told().is_empty());
    r.server
        .on_reservations(Answer::Ok(stands(old, new, None, true)));
    r.control.tick(old).await;
    assert!(r.hands.ended().is_empty(), "not ended at the old end");
    assert_eq!(
        r.server.calls(),
        vec![Call::Reservations(vec![7]), Call::Reservations(vec![7])]
    );
    // Warned a minute before the new end.
    r.server
        .on_reservations(Answer::Ok(stands(new - 60, new, None, true)));
    r.control.tick(new - 60).await;
    assert_eq!(r.hands.told().len(), 1);
}

#[tokio::test]
async fn a_force_release_ends_the_session_at_once() {
    let r = rig();
    r.sessions.opened(session(300, true));
    r.server.on_reservations(Answer::Ok(stands(
        NOW + 5,
        NOW + 5,
        Some(EndCause::ForceReleased),
        true,
    )));
    r.control.tick(NOW + 5).await;
    assert_eq!(r.hands.ended(), ["att-1"]);
    assert_eq!(
        r.hands.told(),
        [
            "jit: the reservation of admin on web01 was force-released by root-admin; this \
          session is being ended."
        ]
    );
    let ev = r.record.events().pop().unwrap();
    assert_eq!(
        (ev.action.as_str(), ev.ended),
        ("session.ended", Some(EndCause::ForceReleased))
    );
}

#[tokio::test]
async fn without_the_policy_the_session_is_warned_and_stays_open() {
    let r = rig();
    r.sessions.opened(session(300, false));
    let end = NOW + 300;
    r.control.tick(end - 60).await;
    let told = r.hands.told();
    assert!(told[0].contains("This session stays open"), "{told:?}");
    r.server.on_reservations(Answer::Ok(stands(
        end + 1,
        end + 1,
        Some(EndCause::Released),
        false,
    )));
    r.control.tick(end + 1).await;
    r.control.tick(end + 60).await;
    assert!(r.hands.ended().is_empty());
    assert_eq!(r.hands.told().len(), 1);
    assert!(r.record.events().is_empty());
}

#[tokio::test]
async fn the_policy_learnt_later_applies() {
    // An offline login: the grant said when, not whether; the server tells the policy once it
    // answers, and a release it reports then ends the session.
    let r = rig();
    r.sessions.opened(session(300, false));
    r.server.on_reservations(Answer::Ok(stands(
        NOW + 20,
        NOW + 20,
        Some(EndCause::HolderDisabled),
        true,
    )));
    r.control.tick(NOW + 20).await;
    assert_eq!(r.hands.ended(), ["att-1"]);
    assert!(
        r.hands.told()[0].contains("ended: alice was disabled"),
        "{:?}",
        r.hands.told()
    );
}

#[tokio::test]
async fn a_session_whose_processes_vanished_is_closed() {
    let r = rig();
    r.sessions.opened(session(300, true));
    r.hands.gone.lock().unwrap().insert("att-1".into());
    assert_eq!(r.control.tick(NOW + 1).await, None);
    assert!(r.sessions.is_empty());
    let ev = r.record.events().pop().unwrap();
    assert_eq!(ev.action, "session.close");
    assert!(
        ev.reason
            .as_deref()
            .unwrap()
            .contains("without a PAM close"),
        "{ev:?}"
    );
    // Nothing open: nothing asked.
    assert!(r.server.calls().is_empty());
}

#[tokio::test]
async fn news_from_the_servers_watch_is_acted_on_before_the_next_refresh() {
    let r = rig();
    r.sessions.opened(session(300, true));
    r.server
        .on_reservations(Answer::Ok(stands(NOW, NOW + 300, None, true)));
    r.control.tick(NOW).await;
    let asked = || {
        r.server
            .calls()
            .iter()
            .filter(|c| matches!(c, Call::Reservations(_)))
            .count()
    };
    // Three seconds on, the next refresh (every 10 s) is not due: the server is not asked.
    r.control.tick(NOW + 3).await;
    assert_eq!(asked(), 1);
    // The watch reports a change of the host's reservations: asked at once, and it was a
    // force-release.
    r.server.on_reservations(Answer::Ok(stands(
        NOW + 4,
        NOW + 4,
        Some(EndCause::ForceReleased),
        true,
    )));
    r.sessions.news();
    r.control.tick(NOW + 4).await;
    assert_eq!(asked(), 2);
    assert_eq!(r.hands.ended(), ["att-1"]);
    // The news is taken once.
    r.control.tick(NOW + 5).await;
    assert_eq!(asked(), 2);
}
