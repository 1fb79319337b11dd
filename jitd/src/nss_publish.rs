//! The NSS cache: what the server says about this host's shared accounts, turned into the file
//! nss_jit reads (`jit_nss_cache`), published to the run path (`nss_cache`, tmpfs) and to
//! `state_dir/nss.cache` (survives a reboot), each only when its contents changed.
//!
//! - users: the virtual accounts (those with a POSIX identity);
//! - groups: each virtual account's primary group, named after the account, plus the
//!   supplementary `unix_groups` with the accounts in them as members, plus `jit-guarded` with
//!   every guarded name as a member (what the sshd drop-in matches);
//! - guarded: every shared account (virtual or in the host's own files, such as root) with its
//!   uid, and every other name of /etc/passwd that has one of those uids (toor), with the account
//!   it stands for. This is the host's one list: pam_jit, nss_jit and jitd all read it;
//! - generation: one more than the highest generation found in either file.
//!
//! Public account data only. Every publish also updates jitd's own [`GuardList`].

use std::collections::{BTreeMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use jit_nss_cache::{
    self as nss_cache, CacheContents, CacheGroup, CacheGuarded, CacheUser, CacheView,
};
use jit_proto::api::HostAccounts;

use crate::config::GUARDED_GROUP;
use crate::guarded::GuardList;
use crate::host_files::HostFiles;
use crate::upstream::Server;

/// Builds the cache contents (generation 0) in the order a published file reads back: users,
/// groups and guarded names sorted by name, members sorted. A supplementary group that clashes
/// with an earlier one (same name, another gid) is left out with a warning. `files` are the
/// host's own accounts; `guarded_gid` is the gid of `jit-guarded`.
pub fn contents_from(
    accounts: &HostAccounts,
    files: &HostFiles,
    guarded_gid: u32,
) -> CacheContents {
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
    let guarded = guarded_names(&list, files);
    add_guarded_group(&mut groups, &guarded, files, guarded_gid);
    let mut groups: Vec<CacheGroup> = groups.into_values().collect();
    for g in &mut groups {
        g.members.sort();
        g.members.dedup();
    }
    CacheContents {
        generation: 0,
        users,
        groups,
        guarded,
    }
}

/// Every shared account with its uid, then every other name of the host's files that has one of
/// those uids, with the account it stands for (the first by name with that uid). Sorted by name.
fn guarded_names(list: &[&jit_proto::api::HostAccount], files: &HostFiles) -> Vec<CacheGuarded> {
    let mut guarded: Vec<CacheGuarded> = list
        .iter()
        .map(|a| {
            let name = a.name.as_str();
            // The host's files come first in nsswitch.conf: a name they hold gets their uid.
            let uid = match (files.uid_of(name), &a.posix) {
                (Some(local), Some(p)) if local != p.uid => {
                    tracing::warn!(
                        "{name} is in /etc/passwd with uid {local}, which hides the virtual \
                         account's uid {}; logins get uid {local}",
                        p.uid
                    );
                    Some(local)
                }
                (Some(local), _) => Some(local),
                (None, Some(p)) => Some(p.uid),
                (None, None) => {
                    tracing::warn!(
                        "shared account {name} is not in /etc/passwd: guarded by its name only"
                    );
                    None
                }
            };
            CacheGuarded::account(name, uid)
        })
        .collect();
    let mut owners: BTreeMap<u32, String> = BTreeMap::new();
    for g in &guarded {
        if let Some(uid) = g.uid {
            owners.entry(uid).or_insert_with(|| g.account.clone());
        }
    }
    let mut seen: HashSet<String> = guarded.iter().map(|g| g.name.clone()).collect();
    for (name, uid) in &files.users {
        let Some(account) = owners.get(uid) else {
            continue;
        };
        // Such a name cannot be served (nor typed at a login prompt): leave it to the uid check.
        if name.contains([',', ':', '\n', '\0']) || !seen.insert(name.clone()) {
            continue;
        }
        guarded.push(CacheGuarded {
            name: name.clone(),
            account: account.clone(),
            uid: Some(*uid),
        });
    }
    guarded.sort_by(|a, b| a.name.cmp(&b.name));
    guarded
}

/// `jit-guarded`, with every guarded name as a member. It takes the place of a server group of
/// the same name or gid; a local group with its name or gid is reported, since sshd would then
/// see that group instead.
fn add_guarded_group(
    groups: &mut BTreeMap<String, CacheGroup>,
    guarded: &[CacheGuarded],
    files: &HostFiles,
    gid: u32,
) {
    groups.retain(|name, g| {
        let clash = name == GUARDED_GROUP || g.gid == gid;
        if clash {
            tracing::warn!(
                "group {name} (gid {}) clashes with {GUARDED_GROUP} (gid {gid}, guarded_gid in \
                 jitd.toml); left out",
                g.gid
            );
        }
        !clash
    });
    if let Some((name, local)) = files
        .groups
        .iter()
        .find(|(n, g)| n == GUARDED_GROUP || *g == gid)
    {
        tracing::warn!(
            "/etc/group has {name} with gid {local}, which clashes with {GUARDED_GROUP} (gid \
             {gid}): sshd's `Match Group {GUARDED_GROUP}` may not see the shared accounts; set \
             another guarded_gid in jitd.toml"
        );
    }
    groups.insert(
        GUARDED_GROUP.to_owned(),
        CacheGroup {
            name: GUARDED_GROUP.to_owned(),
            gid,
            members: guarded.iter().map(|g| g.name.clone()).collect(),
        },
    );
}

fn same(a: &CacheContents, b: &CacheContents) -> bool {
    a.users == b.users && a.groups == b.groups && a.guarded == b.guarded
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

/// Where the host's own account files come from (tests substitute their own).
type FilesSource = Box<dyn Fn() -> HostFiles + Send + Sync>;

/// Publishes to both paths, remembering what each holds.
pub struct Publisher {
    run: PathBuf,
    state: PathBuf,
    on_run: Option<CacheContents>,
    on_state: Option<CacheContents>,
    generation: u64,
    guarded_gid: u32,
    files: FilesSource,
}

impl Publisher {
    /// Reads what both paths hold now. `guarded_gid` is the gid of `jit-guarded`.
    pub fn open(run: &Path, state: &Path, guarded_gid: u32) -> Self {
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
            guarded_gid,
            files: Box::new(HostFiles::read),
        }
    }

    /// Reads the host's own accounts from `files` instead of /etc/passwd and /etc/group.
    #[cfg(test)]
    pub fn with_files(mut self, files: impl Fn() -> HostFiles + Send + Sync + 'static) -> Self {
        self.files = Box::new(files);
        self
    }

    /// At startup, before the server answered: if the run path has no valid cache but the
    /// state copy does (after a reboot), publish the state copy to the run path, so NSS works
    /// while the server is down.
    pub fn restore(&mut self) -> io::Result<()> {
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
        Ok(())
    }

    /// What the run path holds (else the state copy): the list readers see.
    pub fn current(&self) -> Option<&CacheContents> {
        self.on_run.as_ref().or(self.on_state.as_ref())
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

    /// Hands what readers now see to jitd's own list.
    pub fn share(&self, list: &GuardList) {
        if let Some(c) = self.current()
            && let Err(e) = list.set(nss_cache::encode(c))
        {
            tracing::error!("the published NSS cache does not read back: {e}");
        }
    }
}

/// One refresh: fetch, publish what changed, update jitd's list.
pub async fn refresh_once<S: Server>(
    server: &S,
    publisher: &mut Publisher,
    list: &GuardList,
) -> Result<bool, String> {
    let accounts = server.host_accounts().await.map_err(|e| e.to_string())?;
    let files = (publisher.files)();
    let contents = contents_from(&accounts, &files, publisher.guarded_gid);
    let changed = publisher
        .update(contents)
        .map_err(|e| format!("cannot publish the NSS cache: {e}"))?;
    publisher.share(list);
    if changed {
        tracing::info!(
            generation = publisher.generation(),
            accounts = accounts.accounts.len(),
            "published the NSS cache"
        );
    }
    Ok(changed)
}

/// Refreshes every `interval` and when `wake` is notified (the server's watch), forever. Logs
/// when refreshing starts failing and when it recovers, not on every attempt.
pub async fn run<S: Server>(
    server: Arc<S>,
    mut publisher: Publisher,
    list: Arc<GuardList>,
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
        match refresh_once(&*server, &mut publisher, &list).await {
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

    /// The host's own files: root and a second uid-0 name, alice, and a local user who has a
    /// virtual account's uid.
    fn files() -> HostFiles {
        HostFiles {
            users: vec![
                ("root".into(), 0),
                ("toor".into(), 0),
                ("alice".into(), 1000),
                ("admin2".into(), 60001),
            ],
            groups: vec![("root".into(), 0), ("alice".into(), 1000)],
        }
    }

    fn guarded(c: &CacheContents) -> Vec<(&str, &str, Option<u32>)> {
        c.guarded
            .iter()
            .map(|g| (g.name.as_str(), g.account.as_str(), g.uid))
            .collect()
    }

    #[test]
    fn contents_follow_the_server() {
        let c = contents_from(
            &answer(vec![
                virt("deploy", 60002, &[("jitweb", 60010), ("admin", 60001)]),
                existing("root"),
                virt("admin", 60001, &[("jitweb", 60010), ("clash", 1)]),
                virt("other", 60003, &[("clash", 2)]),
            ]),
            &files(),
            60999,
        );
        let names: Vec<&str> = c.users.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["admin", "deploy", "other"]);
        assert_eq!(c.users[0].home, "/home/admin");
        assert_eq!(
            guarded(&c),
            [
                ("admin", "admin", Some(60001)),
                ("admin2", "admin", Some(60001)),
                ("deploy", "deploy", Some(60002)),
                ("other", "other", Some(60003)),
                ("root", "root", Some(0)),
                ("toor", "root", Some(0)),
            ]
        );
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
                (
                    "jit-guarded",
                    60999,
                    vec!["admin", "admin2", "deploy", "other", "root", "toor"]
                ),
                ("jitweb", 60010, vec!["admin", "deploy"]),
                ("other", 60003, vec![]),
            ]
        );
    }

    #[test]
    fn uids_come_from_the_files_first_and_the_guarded_group_wins_clashes() {
        let mut f = files();
        // A local admin hides the virtual one; ldapacct is nowhere in the files.
        f.users.push(("admin".into(), 1500));
        let c = contents_from(
            &answer(vec![
                virt("admin", 60001, &[("jit-guarded", 7), ("web", 60999)]),
                existing("ldapacct"),
            ]),
            &f,
            60999,
        );
        assert_eq!(
            guarded(&c),
            [
                ("admin", "admin", Some(1500)),
                ("ldapacct", "ldapacct", None)
            ]
        );
        let groups: Vec<(&str, u32)> = c.groups.iter().map(|g| (g.name.as_str(), g.gid)).collect();
        assert_eq!(groups, [("admin", 60001), ("jit-guarded", 60999)]);
        // Nothing shared: the group is there, empty, and so is the list.
        let c = contents_from(&answer(vec![]), &files(), 42);
        assert!(c.guarded.is_empty());
        assert_eq!(c.groups.len(), 1);
        assert_eq!((c.groups[0].gid, c.groups[0].members.len()), (42, 0));
    }

    fn publisher(run: &Path, state: &Path) -> Publisher {
        Publisher::open(run, state, 60999).with_files(files)
    }

    #[test]
    fn publishes_only_changes_and_reads_back_equal() {
        let d = tempfile::tempdir().unwrap();
        let (run, state) = (
            d.path().join("run/nss.cache"),
            d.path().join("state/nss.cache"),
        );
        let mut p = publisher(&run, &state);
        p.restore().unwrap();
        assert!(p.current().is_none());
        let one = contents_from(
            &answer(vec![
                virt("admin", 60001, &[("jitweb", 60010)]),
                existing("root"),
            ]),
            &files(),
            60999,
        );
        assert!(p.update(one.clone()).unwrap());
        assert_eq!(p.generation(), 1);
        assert!(
            !p.update(one.clone()).unwrap(),
            "unchanged contents are not published again"
        );
        // A restart reads both files back as equal: nothing is rewritten.
        let mut p = publisher(&run, &state);
        p.restore().unwrap();
        assert_eq!(p.current().unwrap().guarded, one.guarded);
        assert!(!p.update(one.clone()).unwrap());
        let two = contents_from(
            &answer(vec![virt("admin", 60001, &[]), existing("root")]),
            &files(),
            60999,
        );
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
        let one = contents_from(&answer(vec![virt("admin", 60001, &[])]), &files(), 60999);
        publisher(&run, &state).update(one.clone()).unwrap();
        std::fs::remove_file(&run).unwrap();
        std::fs::remove_dir(run.parent().unwrap()).unwrap();
        let mut p = publisher(&run, &state);
        p.restore().unwrap();
        let list = GuardList::new(Default::default());
        p.share(&list);
        assert!(list.is_known());
        let on_run = std::fs::read(&run).unwrap();
        assert!(CacheView::parse(&on_run).unwrap().is_guarded(b"admin"));
        // A lost state copy is written again on the next update, even with unchanged contents.
        std::fs::remove_file(&state).unwrap();
        let mut p = publisher(&run, &state);
        assert!(p.update(one).unwrap());
        let on_state = std::fs::read(&state).unwrap();
        assert!(CacheView::parse(&on_state).unwrap().is_guarded(b"admin2"));
    }

    #[tokio::test]
    async fn refresh_updates_the_list_and_keeps_it_when_the_server_is_down() {
        let d = tempfile::tempdir().unwrap();
        let mut p = publisher(&d.path().join("run"), &d.path().join("state"));
        let server = FakeServer::new();
        server.on_accounts(Answer::Ok(answer(vec![
            virt("admin", 60001, &[]),
            existing("root"),
        ])));
        server.on_accounts(Answer::Unreachable);
        let list = GuardList::new(Default::default());
        assert!(refresh_once(&server, &mut p, &list).await.unwrap());
        let admin = crate::guarded::Guard::Guarded {
            account: AccountName::new("admin").unwrap(),
        };
        assert_eq!(list.decide("admin", None), admin);
        assert_eq!(list.decide("admin2", Some(60001)), admin);
        assert_eq!(list.len(), 4);
        assert_eq!(
            list.decide("alice", Some(1000)),
            crate::guarded::Guard::NotGuarded
        );
        let err = refresh_once(&server, &mut p, &list).await.unwrap_err();
        assert!(err.contains("cannot reach"), "{err}");
        assert_eq!(list.decide("admin", None), admin);
    }
}
