//! The multi-buffer SHA-256 shared by the AVX2 (8 lanes) and AVX-512 (16 lanes) backends
//! (and, with `u32` as the vector, by the portable one):
//! one independent message per 32-bit lane, the message schedule held in lanes too.
//!
//! The macros expand inside the backend module, which supplies the vector type `V`, the lane
//! count `L`, a `Token` proving CPU support, and `#[target_feature]` helpers `add`, `splat`,
//! `bsig0`, `bsig1`, `ssig0`, `ssig1`, `ch`, `maj`, `load` and `store`. Every data layout is
//! word-major: `x[j][lane]` is word `j` of the message or state in `lane`.

/// One SHA-256 round on lanes; `$t` is the round number (a constant after expansion).
macro_rules! lane_round {
    ($w:ident, $t:expr, $a:ident, $b:ident, $c:ident, $d:ident,
     $e:ident, $f:ident, $g:ident, $h:ident) => {{
        let t: usize = $t;
        if t >= 16 {
            $w[t & 15] = add(
                add($w[t & 15], ssig0($w[(t + 1) & 15])),
                add($w[(t + 9) & 15], ssig1($w[(t + 14) & 15])),
            );
        }
        let t1 = add(
            add($h, bsig1($e)),
            add(ch($e, $f, $g), add(splat(K[t]), $w[t & 15])),
        );
        let t2 = add(bsig0($a), maj($a, $b, $c));
        $d = add($d, t1);
        $h = add(t1, t2);
    }};
}

/// Eight rounds starting at `$t`, rotating the working variables by name.
macro_rules! lane_rounds8 {
    ($w:ident, $t:expr, $a:ident, $b:ident, $c:ident, $d:ident,
     $e:ident, $f:ident, $g:ident, $h:ident) => {{
        lane_round!($w, $t, $a, $b, $c, $d, $e, $f, $g, $h);
        lane_round!($w, $t + 1, $h, $a, $b, $c, $d, $e, $f, $g);
        lane_round!($w, $t + 2, $g, $h, $a, $b, $c, $d, $e, $f);
        lane_round!($w, $t + 3, $f, $g, $h, $a, $b, $c, $d, $e);
        lane_round!($w, $t + 4, $e, $f, $g, $h, $a, $b, $c, $d);
        lane_round!($w, $t + 5, $d, $e, $f, $g, $h, $a, $b, $c);
        lane_round!($w, $t + 6, $c, $d, $e, $f, $g, $h, $a, $b);
        lane_round!($w, $t + 7, $b, $c, $d, $e, $f, $g, $h, $a);
    }};
}

/// One compression per lane of the words `$w` (`[V; 16]`) into `$state` (`&mut [V; 8]`),
/// feed-forward included. A macro rather than a function so that it is always inlined into
/// the kernels (`#[inline(always)]` cannot be combined with `#[target_feature]`) and the
/// constant padding words fold into the round constants.
macro_rules! lane_compress {
    ($state:expr, $w:expr) => {{
        let state: &mut [V; 8] = $state;
        let mut w: [V; 16] = $w;
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = *state;
        lane_rounds8!(w, 0, a, b, c, d, e, f, g, h);
        lane_rounds8!(w, 8, a, b, c, d, e, f, g, h);
        lane_rounds8!(w, 16, a, b, c, d, e, f, g, h);
        lane_rounds8!(w, 24, a, b, c, d, e, f, g, h);
        lane_rounds8!(w, 32, a, b, c, d, e, f, g, h);
        lane_rounds8!(w, 40, a, b, c, d, e, f, g, h);
        lane_rounds8!(w, 48, a, b, c, d, e, f, g, h);
        lane_rounds8!(w, 56, a, b, c, d, e, f, g, h);
        for (s, v) in state.iter_mut().zip([a, b, c, d, e, f, g, h]) {
            *s = add(*s, v);
        }
    }};
}

/// Expands the compression and the SHA-256d kernels for one backend.
macro_rules! lane_kernels {
    ($feat:literal) => {
        #[inline]
        #[target_feature(enable = $feat)]
        fn iv() -> [V; 8] {
            let mut s = [splat(0); 8];
            for (s, v) in s.iter_mut().zip(IV) {
                *s = splat(v);
            }
            s
        }

        /// Second SHA-256 of SHA-256d over the first hash's state.
        #[inline]
        #[target_feature(enable = $feat)]
        fn finish_v(first: &[V; 8]) -> [V; 8] {
            let z = splat(0);
            let w = [
                first[0],
                first[1],
                first[2],
                first[3],
                first[4],
                first[5],
                first[6],
                first[7],
                splat(0x8000_0000),
                z,
                z,
                z,
                z,
                z,
                z,
                splat(256),
            ];
            let mut s = iv();
            lane_compress!(&mut s, w);
            s
        }

        /// Compression of the padded last block of an 80-byte message into `state`.
        #[inline]
        #[target_feature(enable = $feat)]
        fn tail_v(state: &mut [V; 8], tail: &[[u32; L]; 4]) {
            let z = splat(0);
            let w = [
                load(&tail[0]),
                load(&tail[1]),
                load(&tail[2]),
                load(&tail[3]),
                splat(0x8000_0000),
                z,
                z,
                z,
                z,
                z,
                z,
                z,
                z,
                z,
                z,
                splat(640),
            ];
            lane_compress!(state, w);
        }

        #[inline]
        #[target_feature(enable = $feat)]
        fn store_state(out: &mut [[u32; L]; 8], s: &[V; 8]) {
            for (o, v) in out.iter_mut().zip(s) {
                store(o, *v);
            }
        }

        #[inline]
        #[target_feature(enable = $feat)]
        fn load_state(x: &[[u32; L]; 8]) -> [V; 8] {
            let mut s = [splat(0); 8];
            for (s, x) in s.iter_mut().zip(x) {
                *s = load(x);
            }
            s
        }

        #[target_feature(enable = $feat)]
        fn tails_impl(mid: &[[u32; L]; 8], tail: &[[u32; L]; 4], out: &mut [[u32; L]; 8]) {
            let mut s = load_state(mid);
            tail_v(&mut s, tail);
            store_state(out, &finish_v(&s));
        }

        #[target_feature(enable = $feat)]
        fn headers_impl(block: &[[u32; L]; 16], tail: &[[u32; L]; 4], out: &mut [[u32; L]; 8]) {
            let mut w = [splat(0); 16];
            for (w, x) in w.iter_mut().zip(block) {
                *w = load(x);
            }
            let mut s = iv();
            lane_compress!(&mut s, w);
            tail_v(&mut s, tail);
            store_state(out, &finish_v(&s));
        }

        #[target_feature(enable = $feat)]
        fn compress_impl(state: &mut [[u32; L]; 8], block: &[[u32; L]; 16]) {
            let mut w = [splat(0); 16];
            for (w, x) in w.iter_mut().zip(block) {
                *w = load(x);
            }
            let mut s = load_state(state);
            lane_compress!(&mut s, w);
            store_state(state, &s);
        }

        #[target_feature(enable = $feat)]
        fn finish_impl(state: &[[u32; L]; 8], out: &mut [[u32; L]; 8]) {
            store_state(out, &finish_v(&load_state(state)));
        }

        /// SHA-256d of `L` 80-byte messages from their midstates and big-endian tail words;
        /// `out` receives the final state words (digest = their big-endian bytes).
        #[inline]
        pub(super) fn tails(
            _: Token,
            mid: &[[u32; L]; 8],
            tail: &[[u32; L]; 4],
            out: &mut [[u32; L]; 8],
        ) {
            // SAFETY: the token proves the CPU supports the enabled features.
            unsafe { tails_impl(mid, tail, out) }
        }

        /// SHA-256d of `L` 80-byte messages from their big-endian words (first block, tail).
        #[inline]
        pub(super) fn headers(
            _: Token,
            block: &[[u32; L]; 16],
            tail: &[[u32; L]; 4],
            out: &mut [[u32; L]; 8],
        ) {
            // SAFETY: the token proves the CPU supports the enabled features.
            unsafe { headers_impl(block, tail, out) }
        }

        /// One compression of a block per lane into `state`.
        #[inline]
        pub(super) fn compress_blocks(_: Token, state: &mut [[u32; L]; 8], block: &[[u32; L]; 16]) {
            // SAFETY: the token proves the CPU supports the enabled features.
            unsafe { compress_impl(state, block) }
        }

        /// The second SHA-256 of SHA-256d for the first-hash states in `state`.
        #[inline]
        pub(super) fn finish_states(_: Token, state: &[[u32; L]; 8], out: &mut [[u32; L]; 8]) {
            // SAFETY: the token proves the CPU supports the enabled features.
            unsafe { finish_impl(state, out) }
        }
    };
}
