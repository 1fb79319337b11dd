//! The ssh public keys of the shared accounts, for sshd's `AuthorizedKeysCommand`.
//!
//! jitd fetches `GET /v1/host/keys` with every refresh and keeps the answer in
//! `state_dir/ssh-keys.json` (mode 0644: public keys only), replaced atomically and only when it
//! changed. `jitd authorized-keys USER`, which sshd runs as an unprivileged user, answers from
//! that file alone, so it is fast, needs no privilege and keeps working while the server is
//! unreachable. The server already decides which keys count (the holder's while a reservation is
//! live, else those of everyone who may reserve the account here); the command applies the
//! holder rule again, so a file that names a holder never lets anybody else's key through.
//!
//! USER is mapped to its shared account by the host's one list and rule
//! (`jit_nss_cache::decide`): by name, else by the uid it resolves to. A name that is not guarded,
//! or any doubt (no list, no keys file, a damaged one), prints nothing: sshd then falls back to
//! nothing for a shared account (`AuthorizedKeysFile none` in the drop-in), and to the usual
//! files for everyone else.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use jit_nss_cache::{CacheView, Verdict};
use jit_proto::AccountName;
use jit_proto::api::HostKeys;

use crate::config::Config;
use crate::upstream::Server;

/// Writes `keys` to `path` (0644) unless the file already holds the same keys. True if written.
pub fn publish(path: &Path, keys: &HostKeys) -> Result<bool, String> {
    if read(path).is_ok_and(|old| old.accounts == keys.accounts) {
        return Ok(false);
    }
    let bytes = serde_json::to_vec_pretty(keys).map_err(|e| e.to_string())?;
    crate::files::replace(path, &bytes, 0o644)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(true)
}

/// The keys file as jitd last wrote it.
pub fn read(path: &Path) -> Result<HostKeys, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        format!(
            "{} is damaged ({}); jitd rewrites it at its next refresh",
            path.display(),
            jit_proto::json_error::describe(&e)
        )
    })
}

/// The `authorized_keys` lines for `account`: its keys, only the holder's when it has one.
pub fn lines_for(keys: &HostKeys, account: &AccountName) -> Vec<String> {
    let Some(entry) = keys.accounts.iter().find(|a| &a.account == account) else {
        return Vec::new();
    };
    entry
        .keys
        .iter()
        .filter(|k| entry.holder.as_ref().is_none_or(|h| &k.person == h))
        .map(|k| format!("{} jit:{}", k.public_key, k.person))
        .collect()
}

/// One refresh: fetch and publish. True if the file changed.
pub async fn refresh_once<S: Server>(server: &S, path: &Path) -> Result<bool, String> {
    let keys = server.host_keys().await.map_err(|e| e.to_string())?;
    let changed = publish(path, &keys)?;
    if changed {
        let count: usize = keys.accounts.iter().map(|a| a.keys.len()).sum();
        tracing::info!(keys = count, "published the shared accounts' ssh keys");
    }
    Ok(changed)
}

/// Refreshes every `interval` and when `wake` is notified (the server's watch), forever; logs
/// when refreshing starts and stops failing.
pub async fn run<S: Server>(
    server: Arc<S>,
    path: std::path::PathBuf,
    interval: Duration,
    wake: Arc<tokio::sync::Notify>,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = wake.notified() => {}
        }
        match refresh_once(&*server, &path).await {
            Ok(_) if failing => {
                tracing::info!("the ssh keys are up to date again");
                failing = false;
            }
            Ok(_) => {}
            Err(e) if !failing => {
                tracing::warn!("cannot refresh the ssh keys (keeping the last known): {e}");
                failing = true;
            }
            Err(e) => tracing::debug!("ssh keys refresh still failing: {e}"),
        }
    }
}

/// `jitd authorized-keys USER`: the lines sshd may accept for `user`, from the files alone; `uid`
/// is what `user` resolves to. Empty for a name jit does not guard. An error names what is wrong
/// (for sshd's log); sshd then accepts no key.
pub fn authorized_keys(config: &Config, user: &str, uid: Option<u32>) -> Result<String, String> {
    let list = [config.nss_cache.clone(), config.state_cache()]
        .iter()
        .find_map(|p| {
            jit_nss_cache::read_file(p)
                .ok()
                .filter(|b| CacheView::parse(b).is_ok())
        });
    let Some(bytes) = list else {
        return Err(format!(
            "no readable list of shared accounts ({} or {}): no key is accepted",
            config.nss_cache.display(),
            config.state_cache().display()
        ));
    };
    let view = CacheView::parse(&bytes).map_err(|e| e.to_string())?;
    let account = match jit_nss_cache::decide(Some(&view), None, user.as_bytes(), uid) {
        Verdict::Guarded(g) => AccountName::from_bytes(g.account).map_err(|e| e.to_string())?,
        Verdict::NoList | Verdict::NotGuarded => return Ok(String::new()),
    };
    let keys = read(&config.ssh_keys())?;
    let mut out = String::new();
    for line in lines_for(&keys, &account) {
        out.push_str(&line);
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use jit_proto::PersonName;
    use jit_proto::api::{HostAccountKeys, HostSshKey};

    use super::*;
    use crate::testing::{Answer, FakeServer, guarded_contents};

    fn key(person: &str, n: u8) -> HostSshKey {
        HostSshKey {
            person: PersonName::new(person).unwrap(),
            fingerprint: format!("SHA256:{person}{n}"),
            public_key: format!("ssh-ed25519 AAAA{person}{n}"),
        }
    }

    fn keys(holder: Option<&str>) -> HostKeys {
        HostKeys {
            accounts: vec![
                HostAccountKeys {
                    account: AccountName::new("admin").unwrap(),
                    holder: holder.map(|h| PersonName::new(h).unwrap()),
                    keys: vec![key("alice", 1), key("bob", 1), key("alice", 2)],
                },
                HostAccountKeys {
                    account: AccountName::new("root").unwrap(),
                    holder: None,
                    keys: vec![key("carol", 1)],
                },
            ],
            now: 0,
        }
    }

    /// A host whose list guards admin (uid 60001), root and toor (uid 0).
    fn host() -> (tempfile::TempDir, Config) {
        let d = tempfile::tempdir().unwrap();
        let config = Config {
            nss_cache: d.path().join("run/nss.cache"),
            state_dir: d.path().join("state"),
            ..Config::default()
        };
        jit_nss_cache::publish(&config.state_cache(), &guarded_contents()).unwrap();
        (d, config)
    }

    #[test]
    fn only_the_holders_keys_while_there_is_one() {
        let admin = AccountName::new("admin").unwrap();
        assert_eq!(
            lines_for(&keys(None), &admin),
            [
                "ssh-ed25519 AAAAalice1 jit:alice",
                "ssh-ed25519 AAAAbob1 jit:bob",
                "ssh-ed25519 AAAAalice2 jit:alice"
            ]
        );
        // The server sends only the holder's; a file that names a holder never lets another in.
        assert_eq!(
            lines_for(&keys(Some("bob")), &admin),
            ["ssh-ed25519 AAAAbob1 jit:bob"]
        );
        let deploy = AccountName::new("deploy").unwrap();
        assert!(lines_for(&keys(None), &deploy).is_empty());
    }

    #[test]
    fn authorized_keys_maps_the_name_by_the_list_and_prints_nothing_for_others() {
        let (_d, config) = host();
        // No keys file yet: an error for a shared account, nothing for anybody else.
        let err = authorized_keys(&config, "admin", Some(60001)).unwrap_err();
        assert!(err.contains("ssh-keys.json"), "{err}");
        assert_eq!(authorized_keys(&config, "alice", Some(1000)).unwrap(), "");
        assert!(publish(&config.ssh_keys(), &keys(Some("alice"))).unwrap());
        assert!(!publish(&config.ssh_keys(), &keys(Some("alice"))).unwrap());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(config.ssh_keys())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o644);
        let cases = [
            ("admin", Some(60001), "AAAAalice1 jit:alice\n"),
            ("Admin", Some(60001), "AAAAalice1 jit:alice\n"),
            ("toor", Some(0), "AAAAcarol1 jit:carol\n"),
            ("root", None, "AAAAcarol1 jit:carol\n"),
            ("alice", Some(1000), ""),
            ("Admin", None, ""),
        ];
        for (user, uid, want) in cases {
            let got = authorized_keys(&config, user, uid).unwrap();
            assert!(
                if want.is_empty() {
                    got.is_empty()
                } else {
                    got.contains(want)
                },
                "{user}: {got:?}"
            );
        }
        assert!(
            !authorized_keys(&config, "admin", None)
                .unwrap()
                .contains("bob")
        );
        // A damaged keys file is an error, not a key.
        std::fs::write(config.ssh_keys(), b"{").unwrap();
        let err = authorized_keys(&config, "admin", None).unwrap_err();
        assert!(err.contains("damaged"), "{err}");
        // No list at all: no key for anybody.
        std::fs::remove_file(config.state_cache()).unwrap();
        assert!(authorized_keys(&config, "root", Some(0)).is_err());
    }

    #[tokio::test]
    async fn refresh_follows_the_server_and_keeps_the_file_while_it_is_down() {
        let (_d, config) = host();
        let server = FakeServer::new();
        server.on_keys(Answer::Ok(keys(None)));
        server.on_keys(Answer::Ok(keys(Some("bob"))));
        server.on_keys(Answer::Unreachable);
        let path = config.ssh_keys();
        assert!(refresh_once(&server, &path).await.unwrap());
        assert!(
            authorized_keys(&config, "admin", None)
                .unwrap()
                .contains("alice")
        );
        assert!(refresh_once(&server, &path).await.unwrap());
        let now = authorized_keys(&config, "admin", None).unwrap();
        assert!(now.contains("bob") && !now.contains("alice"), "{now}");
        let err = refresh_once(&server, &path).await.unwrap_err();
        assert!(err.contains("cannot reach"), "{err}");
        assert_eq!(authorized_keys(&config, "admin", None).unwrap(), now);
    }
}
