//! The byte order of `mining.notify`'s prevhash.
//!
//! A block header holds the previous block's hash as 32 bytes in "internal" order (the reverse of
//! the hex a block explorer shows). SV1 sends those same 32 bytes with **each 4-byte word
//! byte-swapped**: the hex of `prevhash` is the header's bytes read as eight big-endian `u32`s,
//! words kept in header order. Equivalently: take the explorer hex, split it into eight 8-digit
//! groups and reverse the order of the groups.
//!
//! ```text
//! explorer hash  00000000440b921e 1b77c6c0487ae561 6de67f788f44ae2a 5af6e2194d16b6f8
//! header bytes   f8b6164d 19e2f65a 2aae448f 787fe66d 61e57a48 c0c6771b 1e920b44 00000000
//! notify hex     4d16b6f8 5af6e219 8f44ae2a 6de67f78 487ae561 1b77c6c0 440b921e 00000000
//! ```
//!
//! [`Notify::prev_hash`](crate::Notify::prev_hash) holds header order; the encoder and parser
//! apply the swap, so users of the typed message never see wire order. These helpers are for code
//! that handles the hex itself.

/// Swaps the bytes within each 4-byte word. Its own inverse: it turns header order into SV1 wire
/// order and back.
pub fn swap_prevhash_words(hash: [u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (o, i) in out.chunks_exact_mut(4).zip(hash.chunks_exact(4)) {
        o.copy_from_slice(&[i[3], i[2], i[1], i[0]]);
    }
    out
}

/// The SV1 wire bytes (whose lower-case hex is `mining.notify`'s prevhash) for a header's
/// `prev_hash`.
pub fn sv1_prevhash_from_header(header_prev_hash: [u8; 32]) -> [u8; 32] {
    swap_prevhash_words(header_prev_hash)
}

/// The header's `prev_hash` for the SV1 wire bytes of `mining.notify`'s prevhash.
pub fn header_prevhash_from_sv1(sv1_prevhash: [u8; 32]) -> [u8; 32] {
    swap_prevhash_words(sv1_prevhash)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex32(s: &str) -> [u8; 32] {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    /// The example of the original Stratum documentation (slush pool): block 00000000440b921e...
    #[test]
    fn matches_the_documented_example() {
        let mut explorer =
            unhex32("00000000440b921e1b77c6c0487ae5616de67f788f44ae2a5af6e2194d16b6f8");
        explorer.reverse(); // header (internal) order
        let wire = sv1_prevhash_from_header(explorer);
        assert_eq!(
            hex::encode(wire),
            "4d16b6f85af6e2198f44ae2a6de67f78487ae5611b77c6c0440b921e00000000"
        );
        assert_eq!(header_prevhash_from_sv1(wire), explorer);
    }
}
