//! The NSS cache: what the server says about this host's shared accounts, turned into the file
//! nss_jit maps (`jit_nss_cache`), published to the run path (`nss_cache`, tmpfs) and to
//! `state_dir/nss.cache` (survives a reboot), each only when its contents changed.
//!
//! - users: the virtual accounts (those with a POSIX identity);
//! - groups: each virtual account's primary group, named after the account, plus the
//!   supplementary `unix_groups` with the accounts in them as members;
//! - shared: every shared account name, including ones in the host's own files (root), so that
//!   pam_jit can fail closed for them when jitd is down;
//! - generation: one more than the highest generation found in either file.
//!
//! Public account data only. The same fetch also updates the in-memory shared set the
//! conversation driver uses.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use jit_nss_cache::{self as nss_cache, CacheContents, CacheGroup, CacheUser, CacheView};
use jit_proto::api::HostAccounts;

use crate::driver::SharedAccounts;
use crate::upstream::Server;

/// Builds the cache contents (generation 0) in the order a published file reads back: users,
/// groups and shared names sorted by name, members sorted. A supplementary group that clashes
/// with an earlier one (same name, another gid) is left out with a warning.
pub fn contents_from(accounts: &HostAccounts) -> CacheContents {
    let mut users = Vec::new();
    let mut groups: BTreeMap<String, CacheGroup> = BTreeMap::new();
    let mut list: Vec<_> = accounts.accounts.iter().collect();
    list.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
    for a in &list {
        let Some(p) = &a.posix else { continue };
        users.push(CacheUser {
            name: a.name.to_string(),
            uid: p.uid,
            gid: p.gid,
            gecos: p.gecos.clone(),
            home: p.home.clone(),
            shell: p.shell.clone(),
        });
        groups
            .entry(a.name.to_string())
            .or_insert_with(|| CacheGroup {
                name: a.name.to_string(),
                gid: p.gid,
                members: Vec::new(),
            });
    }
    for a in &list {
        let Some(p) = &a.posix else { continue };
        for g in &p.unix_groups {
            let entry = groups
                .entry(g.name.to_string())
                .or_insert_with(|| CacheGroup {
                    name: g.name.to_string(),
                    gid: g.gid,
                    members: Vec::new(),
                });
            if entry.gid == g.gid {
                entry.members.push(a.name.to_string());
            } else {
                tracing::warn!(
                    "account {}: group {} with gid {} clashes with gid {} given elsewhere; left out",
                    a.name,
                    g.name,
                    g.gid,
                    entry.gid
                );
            }
        }
    }
    let mut groups: Vec<CacheGroup> = groups.into_values().collect();
    for g in &mut groups {
        g.members.sort();
        g.members.dedup();
    }
    let mut shared: Vec<String> = list.iter().map(|a| a.name.to_string()).collect();
    shared.dedup();
    CacheContents {
        generation: 0,
        users,
        groups,
        shared,
    }
}

fn same(a: &CacheContents, b: &CacheContents) -> bool {
    a.users == b.users && a.groups == b.groups && a.shared == b.shared
}

/// Reads a published file back; `None` if it is missing or not a valid cache.
fn read(path: &Path) -> Option<CacheContents> {
    let bytes = std::fs::read(path).ok()?;
    match CacheView::parse(&bytes) {
        Ok(v) => Some(v.to_contents()),
        Err(e) => {
            tracing::warn!(path = %path.display(), "ignoring the existing NSS cache: {e}");
            None
        }
    }
}

/// Publishes to both paths, remembering what each holds.
pub struct Publisher {
    run: PathBuf,
    state: PathBuf,
    on_run: Option<CacheContents>,
    on_state: Option<CacheContents>,
    generation: u64,
}

impl Publisher {
    /// Reads what both paths hold now.
    pub fn open(run: &Path, state: &Path) -> Self {
        let on_run = read(run);
        let on_state = read(state);
        let generation = on_run
            .iter()
            .chain(on_state.iter())
            .map(|c| c.generation)
            .max()
            .unwrap_or(0);
        Self {
            run: run.to_owned(),
            state: state.to_owned(),
            on_run,
            on_state,
            generation,
        }
    }

    /// At startup, before the server answered: if the run path has no valid cache but the
    /// state copy does (after a reboot), publish the state copy to the run path, so NSS works
    /// while the server is down. Returns the shared names known from either copy.
    pub fn restore(&mut self) -> io::Result<Option<Vec<String>>> {
        if self.on_run.is_none()
            && let Some(saved) = self.on_state.clone()
        {
            nss_cache::publish(&self.run, &saved)?;
            tracing::info!(
                from = %self.state.display(),
                to = %self.run.display(),
                "restored the NSS cache from the persisted copy"
            );
            self.on_run = Some(saved);
        }
        Ok(self
            .on_run
            .as_ref()
            .or(self.on_state.as_ref())
            .map(|c| c.shared.clone()))
    }

    /// Publishes `new` to each path whose contents differ. True if anything was written.
    pub fn update(&mut self, mut new: CacheContents) -> io::Result<bool> {
        let run_differs = self.on_run.as_ref().is_none_or(|c| !same(c, &new));
        let state_differs = self.on_state.as_ref().is_none_or(|c| !same(c, &new));
        if !run_differs && !state_differs {
            return Ok(false);
        }
        new.generation = self.generation + 1;
        // Run path first, then the state copy (see `nss_cache::publish`).
        if run_differs {
            nss_cache::publish(&self.run, &new)?;
            self.generation = new.generation;
            self.on_run = Some(new.clone());
        }
        if state_differs {
            nss_cache::publish(&self.state, &new)?;
            self.generation = new.generation;
            self.on_state = Some(new);
        }
        Ok(true)
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }
}

/// One refresh: fetch, update the shared set, publish what changed.
pub async fn refresh_once<S: Server>(
    server: &S,
    publisher: &mut Publisher,
    shared: &SharedAccounts,
) -> Result<bool, String> {
    let accounts = server.host_accounts().await.map_err(|e| e.to_string())?;
    let contents = contents_from(&accounts);
    shared.set(contents.shared.iter().cloned());
    let changed = publisher
        .update(contents)
        .map_err(|e| format!("cannot publish the NSS cache: {e}"))?;
    if changed {
        tracing::info!(
            generation = publisher.generation(),
            accounts = accounts.accounts.len(),
            "published the NSS cache"
        );
    }
    Ok(changed)
}

/// Refreshes every `interval`, forever. Logs when refreshing starts failing and when it recovers,
/// not on every attempt.
pub async fn run<S: Server>(
    server: Arc<S>,
    mut publisher: Publisher,
    shared: Arc<SharedAccounts>,
    interval: Duration,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tick.tick().await;
        match refresh_once(&*server, &mut publisher, &shared).await {
            Ok(_) if failing => {
                tracing::info!("the shared accounts are up to date again");
                failing = false;
            }
            Ok(_) => {}
            Err(e) if !failing => {
                tracing::warn!("cannot refresh the shared accounts (keeping the last known): {e}");
                failing = true;
            }
            Err(e) => tracing::debug!("refresh still failing: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use jit_proto::api::{HostAccount, OfflinePolicy, PosixIdentity, UnixGroup};
    use jit_proto::{AccountName, GroupName, HostName};

    use super::*;
    use crate::testing::{Answer, FakeServer};

    fn virt(name: &str, id: u32, groups: &[(&str, u32)]) -> HostAccount {
        HostAccount {
            name: AccountName::new(name).unwrap(),
            posix: Some(PosixIdentity {
                uid: id,
                gid: id,
                gecos: format!("{name} (shared)"),
                home: format!("/home/{name}"),
                shell: "/bin/bash".into(),
                unix_groups: groups
                    .iter()
                    .map(|(g, gid)| UnixGroup {
                        name: GroupName::new(g).unwrap(),
                        gid: *gid,
                    })
                    .collect(),
            }),
            offline: OfflinePolicy::Deny,
            active: true,
        }
    }

    fn existing(name: &str) -> HostAccount {
        HostAccount {
            name: AccountName::new(name).unwrap(),
            posix: None,
            offline: OfflinePolicy::Deny,
            active: true,
        }
    }

    fn answer(accounts: Vec<HostAccount>) -> HostAccounts {
        HostAccounts {
            host: HostName::new("web01").unwrap(),
            accounts,
            now: 0,
        }
    }

    #[test]
    fn contents_follow_the_server() {
        let c = contents_from(&answer(vec![
            virt("deploy", 60002, &[("jitweb", 60010), ("admin", 60001)]),
            existing("root"),
            virt("admin", 60001, &[("jitweb", 60010), ("clash", 1)]),
            virt("other", 60003, &[("clash", 2)]),
        ]));
        let names: Vec<&str> = c.users.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["admin", "deploy", "other"]);
        assert_eq!(c.users[0].home, "/home/admin");
        assert_eq!(c.shared, ["admin", "deploy", "other", "root"]);
        let groups: Vec<(&str, u32, Vec<&str>)> = c
            .groups
            .iter()
            .map(|g| {
                (
                    g.name.as_str(),
                    g.gid,
                    g.members.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            groups,
            [
                ("admin", 60001, vec!["deploy"]),
                ("clash", 1, vec!["admin"]),
                ("deploy", 60002, vec![]),
                ("jitweb", 60010, vec!["admin", "deploy"]),
                ("other", 60003, vec![]),
            ]
        );
    }

    #[test]
    fn publishes_only_changes_and_reads_back_equal() {
        let d = tempfile::tempdir().unwrap();
        let (run, state) = (
            d.path().join("run/nss.cache"),
            d.path().join("state/nss.cache"),
        );
        let mut p = Publisher::open(&run, &state);
        assert_eq!(p.restore().unwrap(), None);
        let one = contents_from(&answer(vec![
            virt("admin", 60001, &[("jitweb", 60010)]),
            existing("root"),
        ]));
        assert!(p.update(one.clone()).unwrap());
        assert_eq!(p.generation(), 1);
        assert!(
            !p.update(one.clone()).unwrap(),
            "unchanged contents are not published again"
        );
        // A restart reads both files back as equal: nothing is rewritten.
        let mut p = Publisher::open(&run, &state);
        assert_eq!(
            p.restore().unwrap(),
            Some(vec!["admin".into(), "root".into()])
        );
        assert!(!p.update(one.clone()).unwrap());
        let two = contents_from(&answer(vec![virt("admin", 60001, &[]), existing("root")]));
        assert!(p.update(two.clone()).unwrap());
        for path in [&run, &state] {
            let bytes = std::fs::read(path).unwrap();
            let back = CacheView::parse(&bytes).unwrap().to_contents();
            assert_eq!(
                back,
                CacheContents {
                    generation: 2,
                    ..two.clone()
                }
            );
        }
    }

    #[test]
    fn after_a_reboot_the_state_copy_is_restored_to_the_run_path() {
        let d = tempfile::tempdir().unwrap();
        let (run, state) = (
            d.path().join("run/nss.cache"),
            d.path().join("state/nss.cache"),
        );
        let one = contents_from(&answer(vec![virt("admin", 60001, &[])]));
        Publisher::open(&run, &state).update(one.clone()).unwrap();
        std::fs::remove_file(&run).unwrap();
        std::fs::remove_dir(run.parent().unwrap()).unwrap();
        let mut p = Publisher::open(&run, &state);
        assert_eq!(p.restore().unwrap(), Some(vec!["admin".into()]));
        assert!(nss_cache::is_shared_in_file(&run, b"admin").unwrap());
        // A lost state copy is written again on the next update, even with unchanged contents.
        std::fs::remove_file(&state).unwrap();
        let mut p = Publisher::open(&run, &state);
        assert!(p.update(one).unwrap());
        assert!(nss_cache::is_shared_in_file(&state, b"admin").unwrap());
    }

    #[tokio::test]
    async fn refresh_updates_the_shared_set_and_keeps_it_when_the_server_is_down() {
        let d = tempfile::tempdir().unwrap();
        let mut p = Publisher::open(&d.path().join("run"), &d.path().join("state"));
        let server = FakeServer::new();
        server.on_accounts(Answer::Ok(answer(vec![
            virt("admin", 60001, &[]),
            existing("root"),
        ])));
        server.on_accounts(Answer::Unreachable);
        let shared = SharedAccounts::default();
        assert!(refresh_once(&server, &mut p, &shared).await.unwrap());
        assert!(shared.contains("root") && shared.contains("admin") && !shared.contains("alice"));
        let err = refresh_once(&server, &mut p, &shared).await.unwrap_err();
        assert!(err.contains("cannot reach"), "{err}");
        assert!(shared.contains("admin"));
    }
}
