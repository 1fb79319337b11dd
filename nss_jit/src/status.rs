//! What an NSS lookup answers, and how glibc is told: `enum nss_status` plus `*errnop`.

use libc::c_int;

/// glibc's `enum nss_status` (`<nss.h>`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NssStatus {
    TryAgain = -2,
    Unavail = -1,
    NotFound = 0,
    Success = 1,
}

/// The result of one call, before it is translated for glibc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Found,
    /// Not in the cache (or the end of an enumeration).
    NotFound,
    /// The caller's buffer is too small; glibc retries with a larger one.
    TooSmall,
    /// `initgroups` could not grow glibc's array.
    NoMemory,
    /// No usable cache file; the errno says why. glibc moves on to the next service.
    Unavailable(c_int),
}

impl Outcome {
    /// The status to return and the errno to store (none on success, as glibc's own modules do).
    pub fn to_nss(self) -> (NssStatus, Option<c_int>) {
        match self {
            Outcome::Found => (NssStatus::Success, None),
            Outcome::NotFound => (NssStatus::NotFound, Some(libc::ENOENT)),
            Outcome::TooSmall => (NssStatus::TryAgain, Some(libc::ERANGE)),
            Outcome::NoMemory => (NssStatus::TryAgain, Some(libc::ENOMEM)),
            Outcome::Unavailable(errno) => (NssStatus::Unavail, Some(errno)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_glibc_values_and_conventions() {
        // <nss.h>: NSS_STATUS_TRYAGAIN = -2, UNAVAIL, NOTFOUND, SUCCESS, RETURN.
        assert_eq!(NssStatus::TryAgain as i32, -2);
        assert_eq!(NssStatus::Unavail as i32, -1);
        assert_eq!(NssStatus::NotFound as i32, 0);
        assert_eq!(NssStatus::Success as i32, 1);
        assert_eq!(size_of::<NssStatus>(), size_of::<c_int>());
        // glibc only reports ERANGE to the caller (and so retries) when paired with TRYAGAIN.
        assert_eq!(
            Outcome::TooSmall.to_nss(),
            (NssStatus::TryAgain, Some(libc::ERANGE))
        );
        assert_eq!(
            Outcome::NotFound.to_nss(),
            (NssStatus::NotFound, Some(libc::ENOENT))
        );
        assert_eq!(Outcome::Found.to_nss(), (NssStatus::Success, None));
    }
}
