//! jitd's view of the host's one list of guarded names: the bytes of the NSS cache it last
//! published (or restored from the saved copy), read with the same code and the same rule
//! ([`jit_nss_cache::decide`]) as pam_jit and nss_jit use. Until a list is known, jitd answers
//! as a joined host without a list: uid 0 and the always-guarded names are refused, nobody else
//! is affected.

use std::sync::{Arc, RwLock};

use jit_nss_cache::{CacheView, Joined, Verdict};
use jit_proto::AccountName;

/// What jitd does with a login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Guard {
    /// jit checks it: a login to `account` (the shared account the name or its uid stands for).
    Guarded { account: AccountName },
    /// uid 0 or an always-guarded name while no list is known: refuse.
    NoList,
    /// Not jit's.
    NotGuarded,
}

/// The published list, shared by the conversation driver, the refresher and `authorized-keys`.
#[derive(Debug)]
pub struct GuardList {
    bytes: RwLock<Option<Arc<Vec<u8>>>>,
    joined: Joined,
}

impl GuardList {
    /// No list yet; `joined` holds the always-guarded names from jitd.toml.
    pub fn new(joined: Joined) -> Self {
        GuardList {
            bytes: RwLock::new(None),
            joined,
        }
    }

    /// Replaces the list with `bytes`, a cache file as published. Bytes that do not parse are
    /// refused (the previous list stays), so the list is always one a reader accepts.
    pub fn set(&self, bytes: Vec<u8>) -> Result<(), jit_nss_cache::CacheError> {
        CacheView::parse(&bytes)?;
        *self.bytes.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(bytes));
        Ok(())
    }

    fn current(&self) -> Option<Arc<Vec<u8>>> {
        self.bytes.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn is_known(&self) -> bool {
        self.current().is_some()
    }

    /// How many names are guarded (0 while unknown).
    pub fn len(&self) -> usize {
        self.current()
            .and_then(|b| CacheView::parse(&b).ok().map(|v| v.guarded().len()))
            .unwrap_or(0)
    }

    /// The always-guarded names (jitd.toml).
    pub fn joined(&self) -> &Joined {
        &self.joined
    }

    /// The rule for a login to `name` whose uid (in the login's process) is `uid`.
    pub fn decide(&self, name: &str, uid: Option<u32>) -> Guard {
        let bytes = self.current();
        let view = bytes.as_deref().and_then(|b| CacheView::parse(b).ok());
        match jit_nss_cache::decide(view.as_ref(), Some(&self.joined), name.as_bytes(), uid) {
            Verdict::Guarded(g) => match AccountName::from_bytes(g.account) {
                Ok(account) => Guard::Guarded { account },
                Err(e) => {
                    // Only a server-issued account name can get into the list.
                    tracing::error!("the list names an account jit cannot use: {e}");
                    Guard::NoList
                }
            },
            Verdict::NoList => Guard::NoList,
            Verdict::NotGuarded => Guard::NotGuarded,
        }
    }
}

#[cfg(test)]
mod tests {
    use jit_nss_cache::{CacheContents, CacheGuarded, encode};

    use super::*;

    #[test]
    fn answers_by_name_and_uid_once_known_and_fails_closed_before() {
        let list = GuardList::new(Joined::default());
        assert!(!list.is_known());
        assert_eq!(list.decide("root", Some(0)), Guard::NoList);
        assert_eq!(list.decide("toor", Some(0)), Guard::NoList);
        assert_eq!(list.decide("admin", Some(60001)), Guard::NotGuarded);
        assert_eq!(list.decide("alice", Some(1000)), Guard::NotGuarded);

        assert!(list.set(b"not a cache".to_vec()).is_err());
        assert!(!list.is_known());
        list.set(encode(&CacheContents {
            guarded: vec![CacheGuarded::account("admin", Some(60001))],
            ..Default::default()
        }))
        .unwrap();
        assert_eq!(list.len(), 1);
        let admin = Guard::Guarded {
            account: AccountName::new("admin").unwrap(),
        };
        assert_eq!(list.decide("admin", None), admin);
        assert_eq!(list.decide("Admin", Some(60001)), admin);
        // Known, and root is not in it: root is the host's own business again.
        assert_eq!(list.decide("root", Some(0)), Guard::NotGuarded);
    }
}
