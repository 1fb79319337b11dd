//! The position of a `setpwent`/`getpwent`/`endpwent` (or group) enumeration.
//!
//! The cursor keeps the copy of the file it started on, so an enumeration sees one consistent file
//! even if jitd replaces it halfway; the old copy is released at `end*ent` or the next `set*ent`.

use std::sync::Arc;

use jit_nss_cache::CacheView;
use libc::c_int;

use crate::mapping::Mapping;
use crate::status::Outcome;

#[derive(Debug, Default)]
pub enum Cursor {
    #[default]
    Closed,
    Open {
        map: Result<Arc<Mapping>, c_int>,
        next: usize,
    },
}

impl Cursor {
    pub const fn new() -> Self {
        Cursor::Closed
    }

    /// Starts (or restarts) at the first entry of `map`, or fails every step with its errno.
    /// Returns what `set*ent` answers: found, or unavailable with that errno.
    pub fn open(&mut self, map: Result<Arc<Mapping>, c_int>) -> Outcome {
        let outcome = map
            .as_ref()
            .map_or_else(|e| Outcome::Unavailable(*e), |_| Outcome::Found);
        *self = Cursor::Open { map, next: 0 };
        outcome
    }

    pub fn close(&mut self) {
        *self = Cursor::Closed;
    }

    pub fn is_open(&self) -> bool {
        matches!(self, Cursor::Open { .. })
    }

    /// Fills the entry at the cursor with `at(view, index)` and moves on, except when the
    /// buffer was too small: glibc then asks again for the same entry with a larger one.
    pub fn step(&mut self, at: impl FnOnce(&CacheView<'_>, usize) -> Outcome) -> Outcome {
        match self {
            Cursor::Closed => Outcome::NotFound,
            Cursor::Open {
                map: Err(errno), ..
            } => Outcome::Unavailable(*errno),
            Cursor::Open { map: Ok(map), next } => {
                let outcome = at(map.view(), *next);
                if outcome == Outcome::Found {
                    *next = next.saturating_add(1);
                }
                outcome
            }
        }
    }
}
