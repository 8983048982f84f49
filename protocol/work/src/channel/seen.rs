//! The duplicate set of a channel and the id hashing of its maps.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher as StdHasher};

/// Entries a channel's duplicate set keeps allocated across a prevhash.
pub(crate) const RECYCLE_SEEN_CAPACITY: usize = 4096;

/// Entries reserved at a channel's first accepted share by default (instead of growing 3,
/// 7, 14...): [`super::ChannelConfig::initial_seen_capacity`].
pub const INITIAL_SEEN_CAPACITY: usize = 64;

/// What [`Recent::insert`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seen {
    /// New; recorded.
    Inserted,
    /// Recorded before.
    Duplicate,
    /// New, but the set holds `limit` entries already; not recorded.
    Full,
}

/// A `u64` taken from a share hash hashes to itself: its bits are uniform already.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct PassThrough(u64);

impl StdHasher for PassThrough {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.0 = i;
    }
}

/// Duplicate set of a channel under one prevhash: 64 bits of each accepted share's hash.
///
/// Equal headers have equal hashes, so a duplicate is always caught, also when two jobs share
/// a merkle root (a template re-sent as a new job): the set is per channel and prevhash, not
/// per job. Two different shares collide with probability about `n² / 2^65` (below 2^-33 at
/// 65 536 shares), and a collision only refuses an honest share, it never accepts a replay.
///
/// When the set is full it is [renewed](Recent::renew): emptied, with an nTime floor above
/// every share it held, so that none of them can come back (their headers all have a lower
/// nTime) while newer shares are checked against a fresh set. Block candidates are kept
/// apart (`blocks`), with a budget and a floor of their own: a header is a block or not
/// whatever job it is submitted under, so the two never meet, and a block is never refused
/// for the shares' floor. The blocks' budget (twice the shares') only fills where blocks are
/// nearly free, on regtest; there, full, it is renewed the same way.
///
/// A `HashSet` (hashbrown) measured faster here than a plain open-addressing table of `u64`:
/// a new key is rejected as a match from the 1-byte control array, which stays in cache
/// across channels, and the 8-byte slot is only written (a store, which does not stall).
#[derive(Debug, Clone, Default)]
pub(crate) struct SeenSet {
    /// Shares that are not blocks.
    pub(crate) shares: Recent,
    /// Block candidates (rare on a real chain; on regtest about every other share).
    pub(crate) blocks: Recent,
}

impl SeenSet {
    /// Entries held (blocks included).
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.shares.set.len() + self.blocks.set.len()
    }

    /// Entries allocated (blocks included).
    pub(crate) fn capacity(&self) -> usize {
        self.shares.set.capacity() + self.blocks.set.capacity()
    }

    /// Forgets every entry and floor (a new prevhash), keeping up to
    /// [`RECYCLE_SEEN_CAPACITY`] share entries allocated (the blocks' allocation is released).
    pub(crate) fn clear(&mut self) {
        self.shares.clear();
        if self.shares.set.capacity() > RECYCLE_SEEN_CAPACITY {
            self.shares.set.shrink_to(RECYCLE_SEEN_CAPACITY);
        }
        self.blocks = Recent::default();
    }
}

/// One bounded, renewable part of a [`SeenSet`].
#[derive(Debug, Clone, Default)]
pub(crate) struct Recent {
    pub(crate) set: HashSet<u64, BuildHasherDefault<PassThrough>>,
    /// The highest nTime recorded since the last [`clear`](Self::clear).
    pub(crate) max_ntime: u32,
    /// Entries with a lower nTime are refused (0 until a [`renew`](Self::renew)).
    pub(crate) floor: u32,
}

impl Recent {
    /// The nTime floor: entries below it are refused (0: none).
    #[inline]
    pub(crate) fn floor(&self) -> u32 {
        self.floor
    }

    /// Records `hash_bits` (uniformly distributed bits of a share hash) of a share with
    /// `ntime` unless present or `limit` entries are held; the first insertion reserves
    /// `initial` entries.
    #[inline]
    pub(crate) fn insert(
        &mut self,
        hash_bits: u64,
        ntime: u32,
        limit: usize,
        initial: usize,
    ) -> Seen {
        if self.set.capacity() == 0 && initial > 0 {
            self.set.reserve(initial);
        }
        let seen = if self.set.len() >= limit {
            if self.set.contains(&hash_bits) {
                Seen::Duplicate
            } else {
                Seen::Full
            }
        } else if self.set.insert(hash_bits) {
            Seen::Inserted
        } else {
            Seen::Duplicate
        };
        if seen == Seen::Inserted {
            self.max_ntime = self.max_ntime.max(ntime);
        }
        seen
    }

    /// Empties the set (keeping its allocation) and raises the nTime floor above every
    /// recorded entry; returns the floor. `None` (nothing changed) if a recorded nTime is
    /// `u32::MAX`, above which no floor fits.
    pub(crate) fn renew(&mut self) -> Option<u32> {
        let floor = self.max_ntime.checked_add(1)?;
        self.set.clear();
        self.floor = floor;
        Some(floor)
    }

    /// Forgets every entry and the floor, keeping the allocation.
    pub(crate) fn clear(&mut self) {
        self.set.clear();
        self.max_ntime = 0;
        self.floor = 0;
    }
}

/// Hashes a channel id (a `u32` the server assigned) with one multiplication (Fibonacci
/// hashing): lookups by peer-supplied ids cannot degrade a map whose keys the server chose.
#[derive(Debug, Default, Clone, Copy)]
pub struct ChannelIdHasher(u64);

impl StdHasher for ChannelIdHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.0 = u64::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

pub(crate) type IdMap<V> = HashMap<u32, V, BuildHasherDefault<ChannelIdHasher>>;
