//! Extranonce space: unique prefixes for the channels of one server, and the carving of an
//! upstream extended channel's space among the miners behind a proxy.
//!
//! The *full extended extranonce* of a share
//! ([spec 5.1.2.1](https://github.com/stratum-mining/sv2-spec/blob/main/05-Mining-Protocol.md#5121-extended-extranonce))
//! is split into the bytes fixed upstream (`extranonce_prefix`), the bytes this layer assigns
//! uniquely to each of its downstreams, and the bytes the downstream rolls
//! (`extranonce_size`):
//!
//! ```text
//!  |<------------------------- full extranonce (<= 32 bytes) ------------------------->|
//!  | upstream prefix / fixed id | unique per channel (counter) | rolled by the downstream |
//!  |<---------- extranonce_prefix given to the channel ------->|<--- extranonce_size --->|
//! ```
//!
//! * [`PrefixAllocator`] (pool, or any server that owns its space): hands out unique
//!   `extranonce_prefix`es of one fixed length, so that every channel, and every member of a
//!   group channel, has the same full extranonce size (spec 5.2.3).
//! * [`ExtranonceSplitter`] (SV1 → SV2 proxy): carves an upstream extended channel's
//!   `extranonce_prefix` + `extranonce_size` into one SV1 `extranonce1` per miner
//!   (`upstream_prefix ‖ miner_id`) and an `extranonce2_size` within the firmware limits, and
//!   re-carves when the upstream prefix changes (`SetExtranoncePrefix`, failover).
//! * [`Extranonce`]: up to 32 bytes inline (`Copy`, no heap), used for prefixes and for the
//!   assembly of a share's full extranonce ([`Extranonce::concat`]).
//!
//! Both allocators hand out ids from the same pool: a counter, a FIFO free list of released
//! ids (the longest-released id is reused first, which keeps a reused prefix away from work a
//! previous owner may still have in flight) and a bitmap of live ids. Allocation and release
//! are O(1) amortized. Memory is bounded by the *peak* number of simultaneously live ids `P`
//! (released ids are reused before the counter advances): at most `P / 8` bytes of bitmap plus
//! `4 * P` bytes of free list, i.e. ≤ 4.125 bytes per peak channel or miner, plus a fixed
//! ~150 bytes per allocator. Ids are `u32`, so at most `2^32` prefixes are live at once even
//! when the unique part is wider than 4 bytes (its high bytes are then zero).

use std::collections::VecDeque;
use std::fmt;

use strata_protocol::B0_32;

/// The longest full extranonce: the SV2 `B0_32` of `SubmitSharesExtended.extranonce` and
/// `extranonce_prefix`.
pub const MAX_EXTRANONCE_LEN: usize = 32;

/// Why an extranonce layout, allocation or assembly failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExtranonceError {
    /// The bytes would exceed the 32 bytes of a full extranonce.
    #[error("extranonce of {len} bytes exceeds the maximum of 32")]
    TooLong {
        /// The length that was asked for.
        len: usize,
    },
    /// The prefix length of a [`PrefixAllocator`] is shorter than its fixed part or longer than
    /// the full extranonce.
    #[error(
        "prefix length {prefix_len} must be between the fixed part ({fixed_len}) and the full \
         extranonce length ({full_len})"
    )]
    InvalidPrefixLength {
        /// The requested prefix length.
        prefix_len: usize,
        /// Length of the fixed (server / instance id) part.
        fixed_len: usize,
        /// The full extranonce length.
        full_len: usize,
    },
    /// Every id is in use.
    #[error("extranonce space exhausted: all {capacity} ids are in use")]
    Exhausted {
        /// How many ids the space holds.
        capacity: u64,
    },
    /// A release (or lookup) named an id that is not live.
    #[error("extranonce id {id} is not allocated")]
    NotAllocated {
        /// The id.
        id: u32,
    },
    /// An extended channel asked for more rollable bytes than the layout leaves it.
    #[error("requested extranonce size {requested} exceeds the {available} bytes available")]
    ExtranonceSizeTooLarge {
        /// `min_extranonce_size` of `OpenExtendedMiningChannel`.
        requested: usize,
        /// Bytes this server leaves to downstreams.
        available: usize,
    },
    /// The upstream channel's `extranonce_size` cannot hold a miner id wide enough for the
    /// configured number of miners plus the minimum `extranonce2_size`.
    #[error(
        "upstream extranonce size {extranonce_size} is too small: {id_width} id bytes for \
         {max_miners} miners plus {min_extranonce2_size} extranonce2 bytes are needed"
    )]
    UpstreamTooSmall {
        /// The upstream channel's `extranonce_size`.
        extranonce_size: usize,
        /// Bytes needed to number `max_miners` miners.
        id_width: usize,
        /// The configured number of miners.
        max_miners: u32,
        /// The configured minimum `extranonce2_size`.
        min_extranonce2_size: usize,
    },
    /// The per-miner `extranonce1` would be longer than the devices accept.
    #[error("extranonce1 of {len} bytes exceeds the device limit of {max}")]
    Extranonce1TooLong {
        /// `upstream prefix + miner id` bytes.
        len: usize,
        /// The configured `max_extranonce1_len`.
        max: usize,
    },
    /// A share's miner part does not have the negotiated length.
    #[error("extranonce part of {got} bytes, expected {expected}")]
    LengthMismatch {
        /// The negotiated length.
        expected: usize,
        /// The length received.
        got: usize,
    },
    /// The split configuration is inconsistent (zero miners, or minimum above maximum
    /// `extranonce2_size`).
    #[error(
        "invalid split configuration: max_miners {max_miners}, extranonce2 size \
         {min_extranonce2_size}..={max_extranonce2_size}"
    )]
    InvalidSplitConfig {
        /// The configured number of miners.
        max_miners: u32,
        /// The configured minimum `extranonce2_size`.
        min_extranonce2_size: usize,
        /// The configured maximum `extranonce2_size`.
        max_extranonce2_size: usize,
    },
}

/// Up to 32 extranonce bytes stored inline (`Copy`, never allocates): prefixes, SV1
/// `extranonce1`s and full extranonces of shares.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Extranonce {
    len: u8,
    buf: [u8; MAX_EXTRANONCE_LEN],
}

impl Extranonce {
    /// The empty extranonce.
    pub const EMPTY: Extranonce = Extranonce {
        len: 0,
        buf: [0; MAX_EXTRANONCE_LEN],
    };

    /// Copy `bytes` in, or fail if there are more than 32.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, ExtranonceError> {
        let mut e = Self::EMPTY;
        e.push(bytes)?;
        Ok(e)
    }

    /// `a ‖ b`: e.g. a share's full extranonce from the channel's `extranonce_prefix` and the
    /// `extranonce` of `SubmitSharesExtended` (spec 5.3.12: the coinbase is
    /// `coinbase_tx_prefix ‖ extranonce_prefix ‖ extranonce ‖ coinbase_tx_suffix`), or SV1's
    /// `extranonce1 ‖ extranonce2`. No allocation.
    #[inline]
    pub fn concat(a: &[u8], b: &[u8]) -> Result<Self, ExtranonceError> {
        let mut e = Self::EMPTY;
        e.push(a)?;
        e.push(b)?;
        Ok(e)
    }

    /// Append `bytes`, or fail (leaving `self` unchanged) if the result would exceed 32 bytes.
    #[inline]
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), ExtranonceError> {
        let start = self.len as usize;
        let end = start + bytes.len();
        if end > MAX_EXTRANONCE_LEN {
            return Err(ExtranonceError::TooLong { len: end });
        }
        self.buf[start..end].copy_from_slice(bytes);
        self.len = end as u8;
        Ok(())
    }

    /// Append the low `width` bytes of `value`, big-endian (zero bytes first when `width > 4`).
    fn push_be(&mut self, value: u32, width: usize) -> Result<(), ExtranonceError> {
        let start = self.len as usize;
        let end = start + width;
        if end > MAX_EXTRANONCE_LEN {
            return Err(ExtranonceError::TooLong { len: end });
        }
        let be = value.to_be_bytes();
        for (i, b) in self.buf[start..end].iter_mut().rev().enumerate() {
            *b = if i < 4 { be[3 - i] } else { 0 };
        }
        self.len = end as u8;
        Ok(())
    }

    /// The bytes.
    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        &self.buf[..self.len as usize]
    }

    /// Number of bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether there are no bytes.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// As the wire type of `extranonce_prefix` / `extranonce` fields.
    pub fn to_b0_32(&self) -> B0_32 {
        // at most 32 bytes by construction, so `new` cannot fail
        B0_32::new(self.as_slice()).unwrap_or_default()
    }
}

impl AsRef<[u8]> for Extranonce {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl From<&B0_32> for Extranonce {
    fn from(b: &B0_32) -> Self {
        // a B0_32 holds at most 32 bytes
        Extranonce::from_slice(b.as_slice()).unwrap_or_default()
    }
}

impl From<Extranonce> for B0_32 {
    fn from(e: Extranonce) -> Self {
        e.to_b0_32()
    }
}

/// Lower-case hex (as SV1 sends `extranonce1`).
impl fmt::Display for Extranonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.as_slice() {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Extranonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Extranonce({self})")
    }
}

/// Number of bytes needed to write every id below `count` (0 for `count <= 1`).
fn width_for(count: u64) -> usize {
    let max = count.saturating_sub(1);
    (64 - max.leading_zeros() as usize).div_ceil(8)
}

/// `min(256^width, limit)`.
fn capacity_of(width: usize, limit: u64) -> u64 {
    if width >= 8 {
        limit
    } else {
        (1u64 << (8 * width)).min(limit)
    }
}

/// Unique `u32` ids with reuse: counter + FIFO free list + live bitmap (see the module docs
/// for the memory bound).
#[derive(Debug, Clone)]
struct IdPool {
    capacity: u64,
    next: u64,
    free: VecDeque<u32>,
    live: Vec<u64>,
    live_count: u32,
}

impl IdPool {
    fn new(capacity: u64) -> Self {
        IdPool {
            capacity: capacity.min(1 << 32),
            next: 0,
            free: VecDeque::new(),
            live: Vec::new(),
            live_count: 0,
        }
    }

    fn is_live(&self, id: u32) -> bool {
        self.live
            .get(id as usize / 64)
            .is_some_and(|w| w & (1 << (id % 64)) != 0)
    }

    fn allocate(&mut self) -> Result<u32, ExtranonceError> {
        let id = if let Some(id) = self.free.pop_front() {
            id
        } else if self.next < self.capacity {
            let id = self.next as u32;
            self.next += 1;
            if id as usize / 64 >= self.live.len() {
                self.live.push(0);
            }
            id
        } else {
            return Err(ExtranonceError::Exhausted {
                capacity: self.capacity,
            });
        };
        self.live[id as usize / 64] |= 1 << (id % 64);
        self.live_count += 1;
        Ok(id)
    }

    fn release(&mut self, id: u32) -> Result<(), ExtranonceError> {
        if !self.is_live(id) {
            return Err(ExtranonceError::NotAllocated { id });
        }
        self.live[id as usize / 64] &= !(1 << (id % 64));
        self.live_count -= 1;
        self.free.push_back(id);
        Ok(())
    }

    /// Live ids in increasing order.
    fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.live.iter().enumerate().flat_map(|(i, &w)| {
            (0..64u32)
                .filter(move |b| w & (1 << b) != 0)
                .map(move |b| i as u32 * 64 + b)
        })
    }
}

/// A channel's handle on its prefix in a [`PrefixAllocator`]; give it back with
/// [`PrefixAllocator::release`] when the channel closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PrefixId(pub u32);

/// One allocation of a [`PrefixAllocator`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllocatedPrefix {
    /// The handle to release.
    pub id: PrefixId,
    /// The channel's `extranonce_prefix` ([`PrefixAllocator::prefix_len`] bytes).
    pub prefix: Extranonce,
}

/// Unique `extranonce_prefix`es of one fixed length for the channels of one server.
///
/// The prefix is `fixed ‖ counter`: `fixed` is a server / instance id (may be empty) shared by
/// every prefix, `counter` a big-endian id of `prefix_len - fixed.len()` bytes unique among
/// live channels. Extended channels get `extranonce_size = full_len - prefix_len`
/// ([`PrefixAllocator::downstream_len`]); standard channels, which roll no extranonce, get the
/// prefix zero-padded to `full_len` ([`PrefixAllocator::standard_prefix`]), so that all
/// channels of a group have the same full extranonce size (spec 5.2.3).
///
/// ```
/// use strata_work::extranonce::PrefixAllocator;
/// // 32-byte extranonce: 2-byte instance id + 4-byte channel counter, 26 bytes for the channel
/// let mut alloc = PrefixAllocator::new(&[0xab, 0xcd], 6, 32)?;
/// let a = alloc.allocate()?;
/// assert_eq!(a.prefix.as_slice(), &[0xab, 0xcd, 0, 0, 0, 0]);
/// assert_eq!(alloc.downstream_len(), 26);
/// alloc.release(a.id)?;
/// # Ok::<(), strata_work::extranonce::ExtranonceError>(())
/// ```
#[derive(Debug, Clone)]
pub struct PrefixAllocator {
    fixed: Extranonce,
    prefix_len: usize,
    full_len: usize,
    ids: IdPool,
}

impl PrefixAllocator {
    /// Prefixes `fixed ‖ counter` of `prefix_len` bytes within a full extranonce of `full_len`
    /// bytes. Capacity: `256^(prefix_len - fixed.len())` live prefixes, at most `2^32`.
    pub fn new(fixed: &[u8], prefix_len: usize, full_len: usize) -> Result<Self, ExtranonceError> {
        if full_len > MAX_EXTRANONCE_LEN {
            return Err(ExtranonceError::TooLong { len: full_len });
        }
        if prefix_len < fixed.len() || prefix_len > full_len {
            return Err(ExtranonceError::InvalidPrefixLength {
                prefix_len,
                fixed_len: fixed.len(),
                full_len,
            });
        }
        let width = prefix_len - fixed.len();
        Ok(PrefixAllocator {
            fixed: Extranonce::from_slice(fixed)?,
            prefix_len,
            full_len,
            ids: IdPool::new(capacity_of(width, u64::MAX)),
        })
    }

    /// Length of every prefix.
    pub fn prefix_len(&self) -> usize {
        self.prefix_len
    }

    /// The full extranonce length shared by every channel.
    pub fn full_len(&self) -> usize {
        self.full_len
    }

    /// Bytes left to each extended channel: its `extranonce_size`.
    pub fn downstream_len(&self) -> usize {
        self.full_len - self.prefix_len
    }

    /// How many prefixes can be live at once.
    pub fn capacity(&self) -> u64 {
        self.ids.capacity
    }

    /// How many prefixes are live.
    pub fn live(&self) -> u32 {
        self.ids.live_count
    }

    /// The `extranonce_size` to grant an `OpenExtendedMiningChannel` asking for at least
    /// `min_extranonce_size` bytes: always [`Self::downstream_len`], or
    /// [`ExtranonceError::ExtranonceSizeTooLarge`] when that is not enough (answer
    /// `OpenMiningChannel.Error` with `min-extranonce-size-too-large`).
    pub fn extranonce_size_for(&self, min_extranonce_size: u16) -> Result<u16, ExtranonceError> {
        let available = self.downstream_len();
        if usize::from(min_extranonce_size) > available {
            return Err(ExtranonceError::ExtranonceSizeTooLarge {
                requested: usize::from(min_extranonce_size),
                available,
            });
        }
        Ok(available as u16)
    }

    /// A prefix no live channel has (reusing the longest-released one first), or
    /// [`ExtranonceError::Exhausted`]. O(1) amortized.
    pub fn allocate(&mut self) -> Result<AllocatedPrefix, ExtranonceError> {
        let id = PrefixId(self.ids.allocate()?);
        Ok(AllocatedPrefix {
            id,
            prefix: self.prefix(id),
        })
    }

    /// Give a prefix back; [`ExtranonceError::NotAllocated`] if it is not live (double release).
    pub fn release(&mut self, id: PrefixId) -> Result<(), ExtranonceError> {
        self.ids.release(id.0)
    }

    /// Whether `id` is live.
    pub fn is_live(&self, id: PrefixId) -> bool {
        self.ids.is_live(id.0)
    }

    /// The prefix of `id` (computed, whether or not it is live).
    pub fn prefix(&self, id: PrefixId) -> Extranonce {
        let mut e = self.fixed;
        // fixed.len() + width == prefix_len <= 32
        let _ = e.push_be(id.0, self.prefix_len - self.fixed.len());
        e
    }

    /// The `extranonce_prefix` for a standard channel: the prefix zero-padded to the full
    /// extranonce length, so that standard and extended members of a group channel share one
    /// full extranonce size (spec 5.2.3).
    pub fn standard_prefix(&self, id: PrefixId) -> Extranonce {
        let mut e = self.prefix(id);
        let _ = e.push(&[0u8; MAX_EXTRANONCE_LEN][..self.downstream_len()]);
        e
    }

    /// The live channel whose prefix starts `extranonce` (a prefix or a full extranonce), if
    /// any: routes a share by its extranonce.
    pub fn id_of(&self, extranonce: &[u8]) -> Option<PrefixId> {
        let fixed = self.fixed.as_slice();
        let counter = extranonce.get(fixed.len()..self.prefix_len)?;
        if !extranonce.starts_with(fixed) {
            return None;
        }
        let (high, low) = counter.split_at(counter.len().saturating_sub(4));
        if high.iter().any(|&b| b != 0) {
            return None;
        }
        let id = low.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b));
        self.ids.is_live(id).then_some(PrefixId(id))
    }
}

/// A miner's handle in an [`ExtranonceSplitter`]; stable across re-carves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MinerId(pub u32);

/// Limits for carving an upstream channel among SV1 miners.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitConfig {
    /// How many miners must fit at once (the id width is chosen from it).
    pub max_miners: u32,
    /// Smallest `extranonce2_size` a miner may get (default 4).
    pub min_extranonce2_size: usize,
    /// Largest `extranonce2_size` a miner may get (default 8: cgminer-based firmware, e.g.
    /// Antminer S9 and WhatsMiner, breaks above 8).
    pub max_extranonce2_size: usize,
    /// Longest `extranonce1` the devices accept (default 16 bytes).
    pub max_extranonce1_len: usize,
}

impl SplitConfig {
    /// Bytes of miner id needed to number `max_miners` miners.
    pub fn id_width(&self) -> usize {
        width_for(u64::from(self.max_miners))
    }

    /// The smallest upstream `extranonce_size` a carve accepts: the id bytes of `max_miners`
    /// miners plus [`SplitConfig::min_extranonce2_size`]. What a proxy needs to ask for as
    /// `OpenExtendedMiningChannel.min_extranonce_size`; it uses whatever more it is granted
    /// (miners roll up to [`SplitConfig::max_extranonce2_size`], the rest widens the id).
    ///
    /// ```
    /// use strata_work::extranonce::SplitConfig;
    /// // 65,536 miners: 2 id bytes, plus at least 4 bytes of extranonce2
    /// assert_eq!(SplitConfig::default().min_extranonce_size(), 6);
    /// ```
    pub fn min_extranonce_size(&self) -> usize {
        self.id_width() + self.min_extranonce2_size
    }

    /// The upstream `extranonce_size` at which every miner rolls
    /// [`SplitConfig::max_extranonce2_size`] bytes with the narrowest id (default 2 + 8 = 10);
    /// a larger size only widens the id.
    pub fn full_extranonce_size(&self) -> usize {
        self.id_width() + self.max_extranonce2_size
    }
}

impl Default for SplitConfig {
    fn default() -> Self {
        SplitConfig {
            max_miners: 65_536,
            min_extranonce2_size: 4,
            max_extranonce2_size: 8,
            max_extranonce1_len: 16,
        }
    }
}

/// The geometry of one carve: fixed by the upstream channel and the [`SplitConfig`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Carve {
    upstream_prefix: Extranonce,
    extranonce_size: usize,
    id_width: usize,
    extranonce2_size: usize,
}

impl Carve {
    fn new(
        config: &SplitConfig,
        upstream_prefix: &[u8],
        extranonce_size: usize,
    ) -> Result<Self, ExtranonceError> {
        if config.max_miners == 0 || config.min_extranonce2_size > config.max_extranonce2_size {
            return Err(ExtranonceError::InvalidSplitConfig {
                max_miners: config.max_miners,
                min_extranonce2_size: config.min_extranonce2_size,
                max_extranonce2_size: config.max_extranonce2_size,
            });
        }
        let full = upstream_prefix.len() + extranonce_size;
        if full > MAX_EXTRANONCE_LEN {
            return Err(ExtranonceError::TooLong { len: full });
        }
        let needed = config.id_width();
        if extranonce_size < config.min_extranonce_size() {
            return Err(ExtranonceError::UpstreamTooSmall {
                extranonce_size,
                id_width: needed,
                max_miners: config.max_miners,
                min_extranonce2_size: config.min_extranonce2_size,
            });
        }
        let extranonce2_size = (extranonce_size - needed).min(config.max_extranonce2_size);
        // every byte the miner does not roll is part of its (wider than needed) id
        let id_width = extranonce_size - extranonce2_size;
        let extranonce1_len = upstream_prefix.len() + id_width;
        if extranonce1_len > config.max_extranonce1_len {
            return Err(ExtranonceError::Extranonce1TooLong {
                len: extranonce1_len,
                max: config.max_extranonce1_len,
            });
        }
        Ok(Carve {
            upstream_prefix: Extranonce::from_slice(upstream_prefix)?,
            extranonce_size,
            id_width,
            extranonce2_size,
        })
    }

    fn extranonce1(&self, id: MinerId) -> Extranonce {
        let mut e = self.upstream_prefix;
        // checked in `new`: prefix + id_width <= max_extranonce1_len and <= 32
        let _ = e.push_be(id.0, self.id_width);
        e
    }
}

/// Splits one upstream extended channel's extranonce space among SV1 miners (the proxy's
/// job): miner `i` gets `extranonce1 = upstream_prefix ‖ i` (big-endian, `id_width` bytes) and
/// rolls `extranonce2_size` bytes.
///
/// `extranonce2_size = min(max_extranonce2_size, extranonce_size - width(max_miners))`, and
/// every remaining byte of the upstream `extranonce_size` widens the miner id, so that
/// `id_width + extranonce2_size == extranonce_size`: the `extranonce` the proxy submits
/// upstream ([`Self::upstream_extranonce`]) is then exactly the negotiated size (spec 5.3.12).
/// Errors when `extranonce2_size` would drop below the minimum or `extranonce1` would exceed
/// the device limit. At most `max_miners` miners are live at once.
///
/// ```
/// use strata_work::extranonce::{ExtranonceSplitter, SplitConfig};
/// // upstream gave us prefix 01 02 03 04 and 8 bytes to roll: 2-byte miner ids (65,536 miners)
/// // leave 6 bytes of extranonce2
/// let mut split = ExtranonceSplitter::new(SplitConfig::default(), &[1, 2, 3, 4], 8)?;
/// let (miner, extranonce1) = split.allocate()?;
/// assert_eq!(extranonce1.as_slice(), &[1, 2, 3, 4, 0, 0]);
/// assert_eq!(split.extranonce2_size(), 6);
/// let submit = split.upstream_extranonce(miner, &[9; 6])?; // SubmitSharesExtended.extranonce
/// assert_eq!(submit.as_slice(), &[0, 0, 9, 9, 9, 9, 9, 9]);
/// # Ok::<(), strata_work::extranonce::ExtranonceError>(())
/// ```
#[derive(Debug, Clone)]
pub struct ExtranonceSplitter {
    config: SplitConfig,
    carve: Carve,
    ids: IdPool,
}

impl ExtranonceSplitter {
    /// Carve `upstream_prefix` (the upstream channel's `extranonce_prefix`) and
    /// `extranonce_size` (its rollable bytes) for up to `config.max_miners` miners.
    pub fn new(
        config: SplitConfig,
        upstream_prefix: &[u8],
        extranonce_size: u16,
    ) -> Result<Self, ExtranonceError> {
        let carve = Carve::new(&config, upstream_prefix, usize::from(extranonce_size))?;
        Ok(ExtranonceSplitter {
            config,
            carve,
            ids: IdPool::new(u64::from(config.max_miners)),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &SplitConfig {
        &self.config
    }

    /// The upstream channel's current `extranonce_prefix`.
    pub fn upstream_prefix(&self) -> &Extranonce {
        &self.carve.upstream_prefix
    }

    /// The upstream channel's `extranonce_size`.
    pub fn extranonce_size(&self) -> usize {
        self.carve.extranonce_size
    }

    /// Bytes each miner rolls (SV1 `extranonce2_size`).
    pub fn extranonce2_size(&self) -> usize {
        self.carve.extranonce2_size
    }

    /// Bytes of miner id after the upstream prefix.
    pub fn id_width(&self) -> usize {
        self.carve.id_width
    }

    /// How many miners are live.
    pub fn live(&self) -> u32 {
        self.ids.live_count
    }

    /// A new miner's id and `extranonce1` (for the `mining.subscribe` result), or
    /// [`ExtranonceError::Exhausted`] when `max_miners` are live. O(1) amortized.
    pub fn allocate(&mut self) -> Result<(MinerId, Extranonce), ExtranonceError> {
        let id = MinerId(self.ids.allocate()?);
        Ok((id, self.carve.extranonce1(id)))
    }

    /// Give a miner's id back when it disconnects.
    pub fn release(&mut self, id: MinerId) -> Result<(), ExtranonceError> {
        self.ids.release(id.0)
    }

    /// Whether `id` is live.
    pub fn is_live(&self, id: MinerId) -> bool {
        self.ids.is_live(id.0)
    }

    /// Live miners, in increasing id order.
    pub fn miners(&self) -> impl Iterator<Item = MinerId> + '_ {
        self.ids.iter().map(MinerId)
    }

    /// The `extranonce1` of `id` under the current upstream prefix.
    pub fn extranonce1(&self, id: MinerId) -> Extranonce {
        self.carve.extranonce1(id)
    }

    /// The `extranonce` of the `SubmitSharesExtended` the proxy sends upstream for miner
    /// `id`'s share: `miner_id ‖ extranonce2` (`extranonce_size` bytes; the upstream prefix is
    /// implicit). `extranonce2` must be `extranonce2_size` bytes. No allocation.
    pub fn upstream_extranonce(
        &self,
        id: MinerId,
        extranonce2: &[u8],
    ) -> Result<Extranonce, ExtranonceError> {
        self.check_extranonce2(extranonce2)?;
        let mut e = Extranonce::EMPTY;
        e.push_be(id.0, self.carve.id_width)?;
        e.push(extranonce2)?;
        Ok(e)
    }

    /// The full extranonce of miner `id`'s share: `upstream_prefix ‖ miner_id ‖ extranonce2`
    /// (what goes into the coinbase). No allocation.
    pub fn full_extranonce(
        &self,
        id: MinerId,
        extranonce2: &[u8],
    ) -> Result<Extranonce, ExtranonceError> {
        self.check_extranonce2(extranonce2)?;
        let mut e = self.carve.extranonce1(id);
        e.push(extranonce2)?;
        Ok(e)
    }

    fn check_extranonce2(&self, extranonce2: &[u8]) -> Result<(), ExtranonceError> {
        if extranonce2.len() != self.carve.extranonce2_size {
            return Err(ExtranonceError::LengthMismatch {
                expected: self.carve.extranonce2_size,
                got: extranonce2.len(),
            });
        }
        Ok(())
    }

    /// The miner whose share carries this upstream `extranonce` (`miner_id ‖ extranonce2`),
    /// if it is live.
    pub fn miner_of_upstream_extranonce(&self, extranonce: &[u8]) -> Option<MinerId> {
        let id_bytes = extranonce.get(..self.carve.id_width)?;
        let (high, low) = id_bytes.split_at(id_bytes.len().saturating_sub(4));
        if high.iter().any(|&b| b != 0) {
            return None;
        }
        let id = low.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b));
        self.ids.is_live(id).then_some(MinerId(id))
    }

    /// Re-carve for a new upstream prefix and size (`SetExtranoncePrefix`, or failover to
    /// another pool), keeping every live miner's id. Returns each live miner's new
    /// `extranonce1` (send `mining.set_extranonce(extranonce1, extranonce2_size())` to the
    /// ones that subscribed to it, reconnect the others). On error nothing changes.
    pub fn set_upstream(
        &mut self,
        upstream_prefix: &[u8],
        extranonce_size: u16,
    ) -> Result<Vec<(MinerId, Extranonce)>, ExtranonceError> {
        // ids are < max_miners, which the new carve is checked to hold
        self.carve = Carve::new(&self.config, upstream_prefix, usize::from(extranonce_size))?;
        Ok(self
            .miners()
            .map(|id| (id, self.carve.extranonce1(id)))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths() {
        assert_eq!(width_for(0), 0);
        assert_eq!(width_for(1), 0);
        assert_eq!(width_for(2), 1);
        assert_eq!(width_for(256), 1);
        assert_eq!(width_for(257), 2);
        assert_eq!(width_for(65_536), 2);
        assert_eq!(width_for(u64::from(u32::MAX) + 1), 4);
        assert_eq!(capacity_of(0, u64::MAX), 1);
        assert_eq!(capacity_of(2, u64::MAX), 65_536);
        assert_eq!(capacity_of(9, 7), 7);
    }

    #[test]
    fn push_be_pads_wide_ids() {
        let mut e = Extranonce::EMPTY;
        e.push_be(0x0102_0304, 6).expect("fits");
        assert_eq!(e.as_slice(), &[0, 0, 1, 2, 3, 4]);
        let mut e = Extranonce::EMPTY;
        e.push_be(0x0102_0304, 2).expect("fits");
        assert_eq!(e.as_slice(), &[3, 4]);
        let mut e = Extranonce::from_slice(&[0; 30]).expect("fits");
        assert_eq!(e.push_be(1, 3), Err(ExtranonceError::TooLong { len: 33 }));
        assert_eq!(e.len(), 30, "unchanged on error");
    }

    #[test]
    fn id_pool_fifo_reuse_and_iter() {
        let mut p = IdPool::new(200);
        let ids: Vec<u32> = (0..130).map(|_| p.allocate().expect("room")).collect();
        assert_eq!(ids, (0..130).collect::<Vec<_>>());
        p.release(5).expect("live");
        p.release(70).expect("live");
        assert_eq!(p.release(5), Err(ExtranonceError::NotAllocated { id: 5 }));
        assert_eq!(
            p.release(500),
            Err(ExtranonceError::NotAllocated { id: 500 })
        );
        assert_eq!(p.iter().count(), 128);
        assert!(!p.iter().any(|i| i == 5 || i == 70));
        assert_eq!(p.allocate(), Ok(5), "oldest released first");
        assert_eq!(p.allocate(), Ok(70));
        assert_eq!(p.allocate(), Ok(130));
    }
}
