//! Connections per remote IP address, for listeners (the pool's SV2 port, the proxy's SV1 and
//! SV2 ports).
//!
//! An [`IpLimiter`] counts the open connections of each address; [`IpLimiter::acquire`] hands
//! out an [`IpSlot`] while the address is under the limit, and the slot gives its place back
//! when dropped, so a connection task that holds it frees it however it ends (return, error,
//! panic, cancellation). [`IpLimiter::admit`] is the same for an accept loop, logging a refusal
//! at debug with the peer and the limit.
//!
//! ```
//! use strata_net::limit::IpLimiter;
//!
//! let limiter = IpLimiter::new("sv2", 2);
//! let ip = "192.0.2.7".parse().unwrap();
//! let a = limiter.acquire(ip).expect("first");
//! let _b = limiter.acquire(ip).expect("second");
//! assert!(limiter.acquire(ip).is_err(), "the third is over the limit");
//! drop(a);
//! assert!(limiter.acquire(ip).is_ok(), "a closed connection frees its slot");
//! ```

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};

/// Counts open connections per IP address against one limit. Cheap to clone: clones share the
/// counts.
#[derive(Clone)]
pub struct IpLimiter {
    name: &'static str,
    max_per_ip: usize,
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One open connection of an address, counted by the [`IpLimiter`] it came from until dropped.
pub struct IpSlot {
    ip: IpAddr,
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// Why [`IpLimiter::acquire`] refused: the address already has `limit` connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{ip} already has {limit} connections, the most allowed per address")]
pub struct IpLimitReached {
    /// The address.
    pub ip: IpAddr,
    /// The limit it reached.
    pub limit: usize,
}

impl IpLimiter {
    /// A limiter of `max_per_ip` connections per address; 0 means no limit (connections are
    /// still counted). `name` says which listener it guards in the refusal log ("sv1", "sv2").
    pub fn new(name: &'static str, max_per_ip: usize) -> Self {
        IpLimiter {
            name,
            max_per_ip,
            counts: Arc::default(),
        }
    }

    /// The limit (0: none).
    pub fn max_per_ip(&self) -> usize {
        self.max_per_ip
    }

    /// One more connection from `ip`, unless it already has the limit.
    pub fn acquire(&self, ip: IpAddr) -> Result<IpSlot, IpLimitReached> {
        let mut counts = lock(&self.counts);
        let n = counts.entry(ip).or_insert(0);
        if self.max_per_ip != 0 && *n >= self.max_per_ip {
            return Err(IpLimitReached {
                ip,
                limit: self.max_per_ip,
            });
        }
        *n += 1;
        Ok(IpSlot {
            ip,
            counts: self.counts.clone(),
        })
    }

    /// [`acquire`](Self::acquire) for an accepted connection from `peer`; a refusal is logged
    /// at debug with the peer and the limit, and the caller drops the connection.
    pub fn admit(&self, peer: SocketAddr) -> Option<IpSlot> {
        match self.acquire(peer.ip()) {
            Ok(slot) => Some(slot),
            Err(e) => {
                tracing::debug!(
                    listener = self.name,
                    %peer,
                    max_per_ip = e.limit,
                    "connection refused: too many from this address"
                );
                None
            }
        }
    }

    /// Connections open from `ip`.
    pub fn connections(&self, ip: IpAddr) -> usize {
        lock(&self.counts).get(&ip).copied().unwrap_or(0)
    }

    /// Addresses with at least one open connection.
    pub fn addresses(&self) -> usize {
        lock(&self.counts).len()
    }
}

impl fmt::Debug for IpLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IpLimiter")
            .field("name", &self.name)
            .field("max_per_ip", &self.max_per_ip)
            .field("addresses", &self.addresses())
            .finish()
    }
}

impl IpSlot {
    /// The address this slot counts for.
    pub fn ip(&self) -> IpAddr {
        self.ip
    }
}

impl fmt::Debug for IpSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IpSlot").field("ip", &self.ip).finish()
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut counts = lock(&self.counts);
        if let Some(n) = counts.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// The counts, also after a panic elsewhere poisoned the lock (they stay consistent: every
/// update is a single step).
fn lock(counts: &Mutex<HashMap<IpAddr, usize>>) -> MutexGuard<'_, HashMap<IpAddr, usize>> {
    counts.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an IP address")
    }

    #[test]
    fn counts_each_address_against_the_limit_and_frees_on_drop() {
        let l = IpLimiter::new("test", 2);
        let (a, b) = (ip("192.0.2.1"), ip("2001:db8::1"));
        let a1 = l.acquire(a).expect("a 1");
        let a2 = l.acquire(a).expect("a 2");
        assert_eq!(
            l.acquire(a).unwrap_err(),
            IpLimitReached { ip: a, limit: 2 }
        );
        // another address has its own count
        let b1 = l.acquire(b).expect("b 1");
        assert_eq!(
            (l.connections(a), l.connections(b), l.addresses()),
            (2, 1, 2)
        );
        drop(a1);
        assert_eq!(l.connections(a), 1);
        let a3 = l.acquire(a).expect("a freed slot");
        drop((a2, a3, b1));
        // no entry is kept for an address without connections
        assert_eq!((l.connections(a), l.addresses()), (0, 0));
    }

    #[test]
    fn zero_is_no_limit() {
        let l = IpLimiter::new("test", 0);
        let a = ip("192.0.2.1");
        let slots: Vec<IpSlot> = (0..1000).map(|_| l.acquire(a).expect("no limit")).collect();
        assert_eq!(l.connections(a), 1000);
        drop(slots);
        assert_eq!(l.addresses(), 0);
    }

    #[test]
    fn clones_share_the_counts_and_admit_checks_the_peer_ip() {
        let l = IpLimiter::new("test", 1);
        let other = l.clone();
        let peer: SocketAddr = "192.0.2.9:4000".parse().expect("socket address");
        let slot = l.admit(peer).expect("first connection");
        assert_eq!(slot.ip(), peer.ip());
        // another port of the same address counts too
        assert!(other
            .admit("192.0.2.9:4001".parse().expect("addr"))
            .is_none());
        drop(slot);
        assert!(other.admit(peer).is_some());
        assert_eq!(l.max_per_ip(), 1);
    }

    #[test]
    fn a_slot_freed_on_another_thread_is_seen_by_all() {
        let l = IpLimiter::new("test", 8);
        let a = ip("192.0.2.1");
        let slots: Vec<IpSlot> = (0..8).map(|_| l.acquire(a).expect("slot")).collect();
        std::thread::scope(|s| {
            for slot in slots {
                s.spawn(move || drop(slot));
            }
        });
        assert_eq!(l.connections(a), 0);
    }
}
