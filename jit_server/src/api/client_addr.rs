//! The network address of the client whose call is being served, for the audit rows the call
//! writes and for per-address limits.
//!
//! The listener knows the peer of each connection; it serves each request inside [`scope`], so
//! the many places that audit need not pass the address down. Work outside a call (the expiry
//! sweep) has none. The address is the TCP peer: a proxy in front of the server would appear
//! as itself.

use std::future::Future;
use std::net::IpAddr;

tokio::task_local! {
    static CLIENT: IpAddr;
}

/// Runs `f` (one request) as a call from `addr`.
pub async fn scope<F: Future>(addr: IpAddr, f: F) -> F::Output {
    CLIENT.scope(addr, f).await
}

/// The address of the call being served, if any.
pub fn current() -> Option<IpAddr> {
    CLIENT.try_with(|a| *a).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn known_inside_a_call_only() {
        assert_eq!(current(), None);
        let addr: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(scope(addr, async { current() }).await, Some(addr));
        assert_eq!(current(), None);
    }
}
