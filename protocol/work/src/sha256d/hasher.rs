//! [`Hasher`]: SHA-256d on one chosen engine, with batch remainders sent to a second one.

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
use super::shani;
use super::{
    batch, meets_target, pad_block, with_fields, Backend, Engine, Midstate, PrefixMidstate, IV,
    REST_BLOCKS,
};

/// SHA-256d on one chosen backend.
///
/// [`Hasher::new`] picks the fastest batch backend of the running CPU (and sends batch
/// remainders too small to fill the SIMD lanes to SHA-NI when present);
/// [`Hasher::with_backend`] forces one, for tests and benchmarks. The free functions of this
/// module use a shared, lazily built `Hasher`.
#[derive(Clone, Copy, Debug)]
pub struct Hasher {
    pub(super) engine: Engine,
    /// Engine for batch remainders of at most `small_max` messages.
    small: Option<Engine>,
    small_max: usize,
}

impl Default for Hasher {
    fn default() -> Self {
        Self::new()
    }
}

impl Hasher {
    /// The fastest batch configuration for the running CPU (chosen once per process).
    pub fn new() -> Self {
        *batch()
    }

    /// Exactly `backend` for every message, or `None` if the CPU lacks it.
    pub fn with_backend(backend: Backend) -> Option<Self> {
        Engine::new(backend).map(|engine| Hasher {
            engine,
            small: None,
            small_max: 0,
        })
    }

    pub(super) fn best_batch() -> Self {
        for b in BATCH_PREFERENCE {
            if let Some(mut h) = Hasher::with_backend(b) {
                if matches!(b, Backend::Avx2 | Backend::Avx512) {
                    // A padded SIMD step costs as much as a full one; SHA-NI is cheaper for
                    // remainders up to about half the lanes.
                    h.small = Engine::new(Backend::ShaNi);
                    h.small_max = b.lanes() / 2;
                }
                return h;
            }
        }
        Hasher {
            engine: Engine::Portable,
            small: None,
            small_max: 0,
        }
    }

    pub(super) fn best_single() -> Self {
        let b = if Backend::ShaNi.is_available() {
            Backend::ShaNi
        } else {
            Backend::Portable
        };
        Hasher::with_backend(b).unwrap_or(Hasher {
            engine: Engine::Portable,
            small: None,
            small_max: 0,
        })
    }

    /// The backend that hashes full batches.
    pub fn backend(&self) -> Backend {
        self.engine.backend()
    }

    /// How many of `n` messages go to the main engine; the rest go to `small`.
    fn split(&self, n: usize) -> usize {
        let lanes = self.engine.backend().lanes();
        match self.small {
            Some(_) if n % lanes <= self.small_max => n - n % lanes,
            _ => n,
        }
    }

    /// SHA-256d of an 80-byte header.
    pub fn hash_header(&self, header: &[u8; 80]) -> [u8; 32] {
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        if let Engine::ShaNi(tok) = self.engine {
            return shani::headers::<1>(tok, [header])[0];
        }
        let mut out = [[0u8; 32]];
        self.hash_headers(core::slice::from_ref(header), &mut out);
        out[0]
    }

    /// SHA-256d of the header with midstate `mid` and last 16 bytes `tail`.
    pub fn hash_tail(&self, mid: &Midstate, tail: &[u8; 16]) -> [u8; 32] {
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        if let Engine::ShaNi(tok) = self.engine {
            return shani::tails::<1>(tok, [&mid.0], [tail])[0];
        }
        let mut out = [[0u8; 32]];
        self.hash_tails(mid, core::slice::from_ref(tail), &mut out);
        out[0]
    }

    /// SHA-256d of an 80-byte header and the [`Midstate`] of its first 64 bytes (for a
    /// cache: the next header with the same first 64 bytes hashes only its tail).
    pub fn hash_header_with_midstate(&self, header: &[u8; 80]) -> ([u8; 32], Midstate) {
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        if let Engine::ShaNi(tok) = self.engine {
            let (h, m) = shani::header_and_mid(tok, header);
            return (h, Midstate(m));
        }
        let mid = Midstate::of_header(header);
        (self.hash_tail(&mid, &Midstate::tail_of(header)), mid)
    }

    /// SHA-256d of the header `template` with `version` (bytes 0..4), `ntime` (68..72) and
    /// `nonce` (76..80) put in, little-endian as in the header: a share's header from its
    /// job's template, without writing the fields into a copy first. With `want_midstate`,
    /// also the [`Midstate`] of the first 64 bytes.
    #[inline]
    pub fn hash_header_fields(
        &self,
        template: &[u8; 80],
        version: u32,
        ntime: u32,
        nonce: u32,
        want_midstate: bool,
    ) -> ([u8; 32], Option<Midstate>) {
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        if let Engine::ShaNi(tok) = self.engine {
            let (h, m) = shani::header_fields(tok, template, version, ntime, nonce, want_midstate);
            return (h, want_midstate.then_some(Midstate(m)));
        }
        let header = with_fields(template, version, ntime, nonce);
        if want_midstate {
            let (h, m) = self.hash_header_with_midstate(&header);
            (h, Some(m))
        } else {
            (self.hash_header(&header), None)
        }
    }

    /// SHA-256d of the header whose first 64 bytes left `mid` and whose last 16 bytes are
    /// those of `template` with `ntime` and `nonce` put in (see
    /// [`hash_header_fields`](Self::hash_header_fields)).
    #[inline]
    pub fn hash_tail_fields(
        &self,
        mid: &Midstate,
        template: &[u8; 80],
        ntime: u32,
        nonce: u32,
    ) -> [u8; 32] {
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        if let Engine::ShaNi(tok) = self.engine {
            return shani::tail_fields(tok, &mid.0, template, ntime, nonce);
        }
        let header = with_fields(template, 0, ntime, nonce);
        self.hash_tail(mid, &Midstate::tail_of(&header))
    }

    /// SHA-256d of one 64-byte message (a merkle node: two hashes side by side).
    pub fn sha256d_64(&self, msg: &[u8; 64]) -> [u8; 32] {
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        if let Engine::ShaNi(tok) = self.engine {
            return shani::sha256d_64::<1>(tok, [msg])[0];
        }
        let mut s = IV;
        self.engine.compress_block(&mut s, msg);
        self.engine.compress_block(&mut s, &pad_block(msg, 1));
        self.engine.finish_state(&s)
    }

    /// SHA-256d of a message whose first `consumed` bytes (a multiple of 64) left the first
    /// SHA-256 in `state` and whose remaining bytes are the concatenation of `rest`.
    pub(super) fn resume(&self, state: &[u32; 8], consumed: usize, rest: &[&[u8]]) -> [u8; 32] {
        debug_assert_eq!(consumed % 64, 0);
        let total = consumed + rest.iter().map(|r| r.len()).sum::<usize>();
        let mut s = *state;
        let mut buf = [[0u8; 64]; REST_BLOCKS];
        let mut fill = 0; // bytes in `buf`
        let flat_len = 64 * REST_BLOCKS;
        for part in rest {
            let mut part: &[u8] = part;
            while !part.is_empty() {
                let n = part.len().min(flat_len - fill);
                buf.as_flattened_mut()[fill..fill + n].copy_from_slice(&part[..n]);
                fill += n;
                part = &part[n..];
                if fill == flat_len {
                    for b in &buf {
                        self.engine.compress_block(&mut s, b);
                    }
                    fill = 0;
                }
            }
        }
        // padding: 0x80, zeros, the bit length in the last 8 bytes of the last block
        let pad_len = (fill + 9).div_ceil(64) * 64;
        let mut tail = [[0u8; 64]; 2];
        let flat = tail.as_flattened_mut();
        let whole = fill / 64;
        let part_len = fill % 64;
        flat[..part_len].copy_from_slice(&buf.as_flattened()[64 * whole..fill]);
        flat[part_len] = 0x80;
        let tail_blocks = (pad_len - 64 * whole) / 64;
        let bits = (total as u64).wrapping_mul(8);
        flat[64 * tail_blocks - 8..64 * tail_blocks].copy_from_slice(&bits.to_be_bytes());
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        if let Engine::ShaNi(tok) = self.engine {
            for b in &buf[..whole] {
                self.engine.compress_block(&mut s, b);
            }
            return shani::resume(tok, &s, &tail[..tail_blocks]);
        }
        for b in buf[..whole].iter().chain(&tail[..tail_blocks]) {
            self.engine.compress_block(&mut s, b);
        }
        self.engine.finish_state(&s)
    }

    ///
    /// # Panics
    ///
    /// If `out.len() != headers.len()`.
    pub fn hash_headers(&self, headers: &[[u8; 80]], out: &mut [[u8; 32]]) {
        assert_eq!(headers.len(), out.len(), "one output per header");
        let k = self.split(headers.len());
        let (h0, h1) = headers.split_at(k);
        let (o0, o1) = out.split_at_mut(k);
        self.engine.headers(h0, o0);
        if let Some(small) = self.small {
            small.headers(h1, o1);
        }
    }

    /// SHA-256d of the headers sharing midstate `mid` whose last 16 bytes are `tails`.
    ///
    /// # Panics
    ///
    /// If `out.len() != tails.len()`.
    pub fn hash_tails(&self, mid: &Midstate, tails: &[[u8; 16]], out: &mut [[u8; 32]]) {
        assert_eq!(tails.len(), out.len(), "one output per tail");
        let k = self.split(tails.len());
        let (t0, t1) = tails.split_at(k);
        let (o0, o1) = out.split_at_mut(k);
        self.engine.tails(|i| (&mid.0, &t0[i]), true, o0);
        if let Some(small) = self.small {
            small.tails(|i| (&mid.0, &t1[i]), true, o1);
        }
    }

    /// SHA-256d of headers given as (midstate, last 16 bytes), each with its own midstate
    /// (shares of different channels, jobs or versions).
    ///
    /// # Panics
    ///
    /// If `out.len() != items.len()`.
    pub fn hash_tail_pairs(&self, items: &[(Midstate, [u8; 16])], out: &mut [[u8; 32]]) {
        assert_eq!(items.len(), out.len(), "one output per item");
        let k = self.split(items.len());
        let (i0, i1) = items.split_at(k);
        let (o0, o1) = out.split_at_mut(k);
        self.engine.tails(|i| (&i0[i].0 .0, &i0[i].1), false, o0);
        if let Some(small) = self.small {
            small.tails(|i| (&i1[i].0 .0, &i1[i].1), false, o1);
        }
    }

    /// Pushes to `hits` the index of every header whose SHA-256d meets `target` (a 256-bit
    /// little-endian number; see [`meets_target`]). Does not clear `hits` and does not
    /// allocate unless `hits` must grow.
    pub fn check_headers(&self, headers: &[[u8; 80]], target: &[u8; 32], hits: &mut Vec<usize>) {
        const CHUNK: usize = 64;
        let mut buf = [[0u8; 32]; CHUNK];
        for (c, h) in headers.chunks(CHUNK).enumerate() {
            let out = &mut buf[..h.len()];
            self.hash_headers(h, out);
            for (i, hash) in out.iter().enumerate() {
                if meets_target(hash, target) {
                    hits.push(c * CHUNK + i);
                }
            }
        }
    }

    /// SHA-256d of each input into `out`; all inputs must have the same length (merkle nodes
    /// of 64 bytes, coinbases of one template across shares, ...).
    ///
    /// # Panics
    ///
    /// If `out.len() != inputs.len()` or the inputs differ in length.
    pub fn sha256d_many(&self, inputs: &[&[u8]], out: &mut [[u8; 32]]) {
        assert_eq!(inputs.len(), out.len(), "one output per input");
        let Some(first) = inputs.first() else {
            return;
        };
        let len = first.len();
        assert!(
            inputs.iter().all(|m| m.len() == len),
            "sha256d_many needs inputs of equal length"
        );
        let k = self.split(inputs.len());
        let (i0, i1) = inputs.split_at(k);
        let (o0, o1) = out.split_at_mut(k);
        self.engine.many(i0, None, len, o0);
        if let Some(small) = self.small {
            small.many(i1, None, len, o1);
        }
    }

    /// SHA-256d of each 64-byte message into `out` (merkle nodes, many at once; the constant
    /// padding block is not rebuilt per message).
    ///
    /// # Panics
    ///
    /// If `out.len() != msgs.len()`.
    pub fn sha256d_64_many(&self, msgs: &[[u8; 64]], out: &mut [[u8; 32]]) {
        assert_eq!(msgs.len(), out.len(), "one output per message");
        let k = self.split(msgs.len());
        let (m0, m1) = msgs.split_at(k);
        let (o0, o1) = out.split_at_mut(k);
        self.engine.many64(m0, o0);
        if let Some(small) = self.small {
            small.many64(m1, o1);
        }
    }

    /// SHA-256d of messages that share a start: message `i` is the start that left
    /// `mids[i]` followed by `rests[i]` (see [`PrefixMidstate::sha256d_rest`]), hashed in
    /// SIMD lanes. Every midstate must cover the same number of bytes and every rest have
    /// the same length (shares of one coinbase prefix).
    ///
    /// # Panics
    ///
    /// If the lengths of `mids`, `rests` and `out` differ, or the midstates or the rests
    /// differ in length.
    pub fn sha256d_rest_many(
        &self,
        mids: &[PrefixMidstate],
        rests: &[&[u8]],
        out: &mut [[u8; 32]],
    ) {
        assert_eq!(mids.len(), rests.len(), "one midstate per message");
        assert_eq!(rests.len(), out.len(), "one output per message");
        let (Some(m0), Some(r0)) = (mids.first(), rests.first()) else {
            return;
        };
        let (consumed, len) = (m0.consumed, r0.len());
        assert!(
            mids.iter().all(|m| m.consumed == consumed) && rests.iter().all(|r| r.len() == len),
            "sha256d_rest_many needs midstates and rests of equal lengths"
        );
        const CHUNK: usize = 64;
        let mut states = [[0u32; 8]; CHUNK];
        for ((m, r), o) in mids
            .chunks(CHUNK)
            .zip(rests.chunks(CHUNK))
            .zip(out.chunks_mut(CHUNK))
        {
            for (s, m) in states.iter_mut().zip(m) {
                *s = m.state.0;
            }
            let states = &states[..m.len()];
            let k = self.split(r.len());
            let (r0, r1) = r.split_at(k);
            let (s0, s1) = states.split_at(k);
            let (o0, o1) = o.split_at_mut(k);
            self.engine.many(r0, Some((s0, consumed)), len, o0);
            if let Some(small) = self.small {
                small.many(r1, Some((s1, consumed)), len, o1);
            }
        }
    }
}

/// Batch backends from fastest to slowest, as measured on AMD EPYC (see the module docs).
const BATCH_PREFERENCE: [Backend; 4] = [
    Backend::Avx512,
    Backend::ShaNi,
    Backend::Avx2,
    Backend::Portable,
];
