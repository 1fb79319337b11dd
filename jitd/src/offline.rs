//! Offline decisions for accounts with `offline = "cached"`.
//!
//! For each live reservation of such an account on this host, the server hands jitd an
//! [`OfflineGrant`]: the holder, the expiry and salted argon2id hashes of the holder's codes for
//! the next 15 minutes of the reservation (`jit_proto::offline`), issued anew while the server is
//! reachable. A grant of another format (the PBKDF2 grants of earlier versions) is dropped with a
//! warning, never used. jitd keeps the latest grants in
//! `state_dir/offline.json` (0600) so they survive a restart. When the server cannot be reached
//! at login, a grant lets jitd decide alone:
//!
//! - the code must match the hash of a step within one step of this host's clock;
//! - a reservation is used once: its id is appended (fsynced) to `state_dir/offline-used.jsonl`
//!   *before* the login is granted, so a crash or restart cannot let it be used twice;
//! - after [`MAX_FAILURES`] wrong codes a grant is no longer usable offline; the count is kept
//!   in `state_dir/offline-failures.json` (written atomically before the wrong code is
//!   answered), so restarting jitd does not give a guesser fresh tries;
//! - the login is queued as a `login.offline` audit event; when the server is back it consumes
//!   the reservation and burns the code's time step.
//!
//! Without a grant (policy `deny`, no reservation known, or it ran out) the login is refused, as
//! before. Never logs codes.

use std::collections::{HashMap, HashSet};
use std::fs::OpenOptions;
use std::io::{self, BufRead, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jit_proto::Secret;
use jit_proto::api::{OfflineGrant, OfflineGrants};
use jit_proto::offline::{Kdf, verify_code};

use crate::files;
use crate::upstream::Server;

/// Wrong codes after which a grant stops working offline (the server's lockout cannot be asked).
pub const MAX_FAILURES: u32 = 5;
const STEP: i64 = 30;

/// What an offline check decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offline {
    /// No live grant for this account: refuse as when the server is unreachable.
    NoGrant,
    /// A grant can admit a login: ask for the code.
    Ready,
    /// The grant's reservation was already used by an offline login on this host.
    Used,
    /// Too many wrong codes for this grant.
    Locked,
    /// The code matched no step near now.
    Wrong,
    /// The code matched: the reservation is now used on this host.
    Granted {
        person: String,
        reservation_id: i64,
        step: i64,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum OfflineError {
    #[error("cannot save the offline grants to {path}: {source}")]
    Save { path: PathBuf, source: io::Error },
    #[error(
        "cannot record a wrong offline code in {path}: {source}; offline logins are refused \
         until it can be written (check the permissions and free space of jitd's state_dir)"
    )]
    Failures { path: PathBuf, source: io::Error },
    #[error("cannot record the offline use of reservation {id} in {path}: {source}")]
    Use {
        id: i64,
        path: PathBuf,
        source: io::Error,
    },
}

#[derive(Default)]
struct Inner {
    /// By account name.
    grants: HashMap<String, OfflineGrant>,
    used: HashSet<i64>,
    failures: HashMap<i64, u32>,
}

pub struct OfflineStore {
    grants_path: PathBuf,
    used_path: PathBuf,
    failures_path: PathBuf,
    inner: Mutex<Inner>,
}

impl OfflineStore {
    /// Loads what an earlier run kept; missing or damaged files mean "nothing known".
    pub fn open(state_dir: &Path) -> OfflineStore {
        let grants_path = state_dir.join("offline.json");
        let used_path = state_dir.join("offline-used.jsonl");
        let failures_path = state_dir.join("offline-failures.json");
        let mut inner = Inner::default();
        match std::fs::read(&grants_path) {
            Ok(bytes) => match serde_json::from_slice::<Vec<OfflineGrant>>(&bytes) {
                Ok(list) => {
                    inner.grants = usable(list).map(|g| (g.account.to_string(), g)).collect()
                }
                Err(e) => tracing::warn!("ignoring damaged {}: {e}", grants_path.display()),
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!("cannot read {}: {e}", grants_path.display()),
        }
        if let Ok(f) = std::fs::File::open(&used_path) {
            for line in io::BufReader::new(f).lines().map_while(Result::ok) {
                if let Ok(id) = line.trim().parse::<i64>() {
                    inner.used.insert(id);
                }
            }
        }
        match std::fs::read(&failures_path) {
            Ok(bytes) => match serde_json::from_slice::<HashMap<i64, u32>>(&bytes) {
                Ok(f) => inner.failures = f,
                // A damaged count must not hand out fresh tries: every kept grant is locked.
                Err(e) => {
                    tracing::warn!(
                        "{} is damaged ({e}); the offline grants it counted for are locked",
                        failures_path.display()
                    );
                    inner.failures = inner
                        .grants
                        .values()
                        .map(|g| (g.reservation_id, MAX_FAILURES))
                        .collect();
                }
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(
                    "cannot read {}: {e}; offline grants are locked",
                    failures_path.display()
                );
                inner.failures = inner
                    .grants
                    .values()
                    .map(|g| (g.reservation_id, MAX_FAILURES))
                    .collect();
            }
        }
        OfflineStore {
            grants_path,
            used_path,
            failures_path,
            inner: Mutex::new(inner),
        }
    }

    /// Writes the wrong-code counts (atomically: a crash leaves the old or the new file).
    fn save_failures(&self, failures: &HashMap<i64, u32>) -> Result<(), OfflineError> {
        let bytes = serde_json::to_vec(failures).unwrap_or_default();
        files::replace(&self.failures_path, &bytes, 0o600).map_err(|source| {
            OfflineError::Failures {
                path: self.failures_path.clone(),
                source,
            }
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces the grants with the server's latest answer (which lists only live reservations),
    /// persisting them when they changed. Returns whether they changed.
    pub fn update(&self, answer: &OfflineGrants) -> Result<bool, OfflineError> {
        let mut inner = self.lock();
        let new: HashMap<String, OfflineGrant> = usable(answer.grants.iter().cloned())
            .map(|g| (g.account.to_string(), g))
            .collect();
        if new == inner.grants {
            return Ok(false);
        }
        let mut list: Vec<&OfflineGrant> = new.values().collect();
        list.sort_by_key(|g| g.reservation_id);
        let bytes = serde_json::to_vec(&list).unwrap_or_default();
        files::replace(&self.grants_path, &bytes, 0o600).map_err(|source| OfflineError::Save {
            path: self.grants_path.clone(),
            source,
        })?;
        let live: HashSet<i64> = new.values().map(|g| g.reservation_id).collect();
        let before = inner.failures.len();
        inner.failures.retain(|id, _| live.contains(id));
        if inner.failures.len() != before {
            self.save_failures(&inner.failures)?;
        }
        inner.grants = new;
        Ok(true)
    }

    /// When the reservation of `account`'s grant ends (for a session it admitted).
    pub fn expires_at(&self, account: &str) -> Option<i64> {
        self.lock().grants.get(account).map(|g| g.expires_at)
    }

    /// What a login to `account` at `now` would meet, before any code is typed.
    pub fn precheck(&self, account: &str, now: i64) -> Offline {
        Self::precheck_locked(&self.lock(), account, now)
    }

    fn precheck_locked(inner: &Inner, account: &str, now: i64) -> Offline {
        match inner.grants.get(account) {
            None => Offline::NoGrant,
            Some(g) if g.expires_at <= now => Offline::NoGrant,
            Some(g) if inner.used.contains(&g.reservation_id) => Offline::Used,
            Some(g)
                if inner.failures.get(&g.reservation_id).copied().unwrap_or(0) >= MAX_FAILURES =>
            {
                Offline::Locked
            }
            Some(_) => Offline::Ready,
        }
    }

    /// Checks `code` for `account` at `now`, and on success records the reservation as used.
    pub fn check(&self, account: &str, code: &Secret, now: i64) -> Result<Offline, OfflineError> {
        let mut inner = self.lock();
        match Self::precheck_locked(&inner, account, now) {
            Offline::Ready => {}
            other => return Ok(other),
        }
        let Some(grant) = inner.grants.get(account).cloned() else {
            return Ok(Offline::NoGrant);
        };
        let id = grant.reservation_id;
        let Ok(kdf) = Kdf::parse(&grant.kdf) else {
            return Ok(Offline::NoGrant);
        };
        let salt = STANDARD.decode(&grant.salt).unwrap_or_default();
        let here = now.div_euclid(STEP);
        let matched = grant
            .codes
            .iter()
            .filter(|h| (h.step - here).abs() <= 1)
            .find(|h| verify_code(code.expose(), &salt, h, &kdf));
        let Some(h) = matched else {
            *inner.failures.entry(id).or_insert(0) += 1;
            // Counted on disk before the answer goes out: killing jitd then gains nothing.
            self.save_failures(&inner.failures)?;
            return Ok(Offline::Wrong);
        };
        self.record_use(id)?;
        inner.used.insert(id);
        Ok(Offline::Granted {
            person: grant.person.to_string(),
            reservation_id: id,
            step: h.step,
        })
    }

    /// Appends `id` to the used list and fsyncs it: after this returns, no restart of jitd can
    /// let the reservation be used offline again.
    fn record_use(&self, id: i64) -> Result<(), OfflineError> {
        let fail = |source| OfflineError::Use {
            id,
            path: self.used_path.clone(),
            source,
        };
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&self.used_path)
            .map_err(fail)?;
        writeln!(f, "{id}").and_then(|_| f.sync_all()).map_err(fail)
    }
}

/// The grants of a format this jitd can check; the others are dropped, said once in the log.
fn usable(grants: impl IntoIterator<Item = OfflineGrant>) -> impl Iterator<Item = OfflineGrant> {
    grants.into_iter().filter(|g| match Kdf::parse(&g.kdf) {
        Ok(_) => true,
        Err(e) => {
            tracing::warn!(reservation = g.reservation_id, "offline grant refused: {e}");
            false
        }
    })
}

/// One refresh: the server's grants for this host replace the kept ones.
pub async fn refresh_once<S: Server>(server: &S, store: &OfflineStore) -> Result<bool, String> {
    let answer = server.offline_grants().await.map_err(|e| e.to_string())?;
    store.update(&answer).map_err(|e| e.to_string())
}

/// Refreshes every `interval` and when `wake` is notified (the server's watch), forever. While
/// the server is unreachable the kept grants stay.
pub async fn run<S: Server>(
    server: std::sync::Arc<S>,
    store: std::sync::Arc<OfflineStore>,
    interval: std::time::Duration,
    wake: std::sync::Arc<tokio::sync::Notify>,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = wake.notified() => {}
        }
        match refresh_once(&*server, &store).await {
            Ok(true) => tracing::info!("offline grants updated"),
            Ok(false) => {}
            Err(e) => tracing::debug!("cannot refresh the offline grants (keeping them): {e}"),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use jit_proto::api::StepHash;
    use jit_proto::offline::hash_code;
    use jit_proto::{AccountName, PersonName};

    use super::*;

    const NOW: i64 = 1_800_000_000;

    /// Cheap argon2id: the tests check the logic, not the cost.
    pub(crate) const CHEAP: Kdf = Kdf {
        memory_kib: 64,
        passes: 1,
        lanes: 1,
    };

    /// A grant for alice with cheap hashes of `codes` (step, code).
    pub(crate) fn grant(
        id: i64,
        account: &str,
        codes: &[(i64, &str)],
        expires_at: i64,
    ) -> OfflineGrant {
        OfflineGrant {
            reservation_id: id,
            account: AccountName::new(account).unwrap(),
            person: PersonName::new("alice").unwrap(),
            expires_at,
            kdf: CHEAP.name(),
            iterations: CHEAP.passes,
            salt: STANDARD.encode(b"salt"),
            codes: codes
                .iter()
                .filter_map(|(step, code)| hash_code(code, b"salt", *step, &CHEAP))
                .collect::<Vec<StepHash>>(),
        }
    }

    fn store(dir: &Path, grants: Vec<OfflineGrant>) -> OfflineStore {
        let s = OfflineStore::open(dir);
        s.update(&OfflineGrants { grants, now: NOW }).unwrap();
        s
    }

    #[test]
    fn a_right_code_is_granted_once_even_across_a_restart() {
        let d = tempfile::tempdir().unwrap();
        let step = NOW / STEP;
        let s = store(
            d.path(),
            vec![grant(7, "root", &[(step, "123456")], NOW + 300)],
        );
        assert_eq!(s.precheck("root", NOW), Offline::Ready);
        assert_eq!(s.precheck("admin", NOW), Offline::NoGrant);
        assert_eq!(
            s.check("root", &Secret::new("123456"), NOW).unwrap(),
            Offline::Granted {
                person: "alice".into(),
                reservation_id: 7,
                step
            }
        );
        assert_eq!(
            s.check("root", &Secret::new("123456"), NOW).unwrap(),
            Offline::Used
        );
        // jitd restarts: the grants and the use are remembered.
        let again = OfflineStore::open(d.path());
        assert_eq!(again.precheck("root", NOW), Offline::Used);
        assert_eq!(
            again.check("root", &Secret::new("123456"), NOW).unwrap(),
            Offline::Used
        );
    }

    #[test]
    fn skew_expiry_and_wrong_codes() {
        let d = tempfile::tempdir().unwrap();
        let step = NOW / STEP;
        let s = store(
            d.path(),
            vec![grant(
                1,
                "root",
                &[(step - 1, "111111"), (step + 2, "222222")],
                NOW + 300,
            )],
        );
        // One step behind is fine; two ahead is not.
        assert_eq!(
            s.check("root", &Secret::new("222222"), NOW).unwrap(),
            Offline::Wrong
        );
        assert!(matches!(
            s.check("root", &Secret::new("111111"), NOW).unwrap(),
            Offline::Granted { .. }
        ));
        let s = store(d.path(), vec![grant(2, "root", &[(step, "333333")], NOW)]);
        assert_eq!(
            s.check("root", &Secret::new("333333"), NOW).unwrap(),
            Offline::NoGrant,
            "expired"
        );
    }

    #[test]
    fn too_many_wrong_codes_lock_the_grant() {
        let d = tempfile::tempdir().unwrap();
        let step = NOW / STEP;
        let s = store(
            d.path(),
            vec![grant(3, "root", &[(step, "123456")], NOW + 300)],
        );
        for _ in 0..MAX_FAILURES {
            assert_eq!(
                s.check("root", &Secret::new("000000"), NOW).unwrap(),
                Offline::Wrong
            );
        }
        assert_eq!(
            s.check("root", &Secret::new("123456"), NOW).unwrap(),
            Offline::Locked
        );
        assert_eq!(s.precheck("root", NOW), Offline::Locked);
    }

    #[test]
    fn grants_of_an_older_format_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let step = NOW / STEP;
        let mut old = grant(5, "root", &[(step, "123456")], NOW + 300);
        old.kdf = "pbkdf2-hmac-sha256".into();
        let s = store(d.path(), vec![old.clone()]);
        assert_eq!(s.precheck("root", NOW), Offline::NoGrant);
        assert_eq!(
            s.check("root", &Secret::new("123456"), NOW).unwrap(),
            Offline::NoGrant
        );
        // One kept from before an upgrade is dropped at start too.
        std::fs::write(
            d.path().join("offline.json"),
            serde_json::to_vec(&vec![old]).unwrap(),
        )
        .unwrap();
        assert_eq!(
            OfflineStore::open(d.path()).precheck("root", NOW),
            Offline::NoGrant
        );
    }

    #[test]
    fn wrong_codes_are_still_counted_after_a_restart() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let step = NOW / STEP;
        let grants = vec![grant(3, "root", &[(step, "123456")], NOW + 300)];
        let s = store(d.path(), grants.clone());
        for _ in 0..MAX_FAILURES - 1 {
            assert_eq!(
                s.check("root", &Secret::new("000000"), NOW).unwrap(),
                Offline::Wrong
            );
        }
        drop(s);
        // jitd restarts (and fetches the same grant again): one try is left, not five.
        let s = store(d.path(), grants.clone());
        assert_eq!(s.precheck("root", NOW), Offline::Ready);
        assert_eq!(
            s.check("root", &Secret::new("000000"), NOW).unwrap(),
            Offline::Wrong
        );
        drop(s);
        let s = OfflineStore::open(d.path());
        assert_eq!(s.precheck("root", NOW), Offline::Locked);
        assert_eq!(
            s.check("root", &Secret::new("123456"), NOW).unwrap(),
            Offline::Locked
        );
        let mode = std::fs::metadata(d.path().join("offline-failures.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // A damaged count locks the grants it might have counted for, rather than forgetting.
        std::fs::write(d.path().join("offline-failures.json"), b"{garbage").unwrap();
        assert_eq!(
            OfflineStore::open(d.path()).precheck("root", NOW),
            Offline::Locked
        );
        // The server dropping the grant forgets its count, on disk too.
        std::fs::remove_file(d.path().join("offline-failures.json")).unwrap();
        let s = store(d.path(), grants.clone());
        s.check("root", &Secret::new("000000"), NOW).unwrap();
        s.update(&OfflineGrants {
            grants: vec![],
            now: NOW,
        })
        .unwrap();
        let kept = std::fs::read_to_string(d.path().join("offline-failures.json")).unwrap();
        assert_eq!(kept, "{}");
    }

    #[test]
    fn grants_follow_the_server_and_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let step = NOW / STEP;
        let s = store(
            d.path(),
            vec![grant(4, "root", &[(step, "123456")], NOW + 300)],
        );
        let mode = std::fs::metadata(d.path().join("offline.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(
            !s.update(&OfflineGrants {
                grants: vec![grant(4, "root", &[(step, "123456")], NOW + 300)],
                now: NOW
            })
            .unwrap()
        );
        assert!(
            s.update(&OfflineGrants {
                grants: vec![],
                now: NOW
            })
            .unwrap()
        );
        assert_eq!(
            s.check("root", &Secret::new("123456"), NOW).unwrap(),
            Offline::NoGrant
        );
        std::fs::write(d.path().join("offline.json"), b"{garbage").unwrap();
        assert_eq!(
            OfflineStore::open(d.path()).precheck("root", NOW),
            Offline::NoGrant
        );
    }
}
