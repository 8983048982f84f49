//! Tests of the SHA-256d backends against each other and the reference.

use super::*;

fn rng(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

fn bytes<const N: usize>(seed: &mut u64) -> [u8; N] {
    let mut b = [0u8; N];
    for x in &mut b {
        *x = rng(seed) as u8;
    }
    b
}

#[test]
fn portable_matches_sha2_across_padding_boundaries() {
    let data: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
    for len in 0..data.len() {
        assert_eq!(
            portable::sha256d(&data[..len]),
            sha256d(&data[..len]),
            "len {len}"
        );
    }
}

#[test]
fn every_backend_matches_portable() {
    let mut seed = 0x9e37_79b9_7f4a_7c15;
    let headers: Vec<[u8; 80]> = (0..37).map(|_| bytes(&mut seed)).collect();
    let want: Vec<[u8; 32]> = headers.iter().map(|h| portable::sha256d(h)).collect();
    for b in Backend::available() {
        let h = Hasher::with_backend(b).expect("available");
        let mut out = vec![[0u8; 32]; headers.len()];
        h.hash_headers(&headers, &mut out);
        assert_eq!(out, want, "{b} headers");
        let pairs: Vec<(Midstate, [u8; 16])> = headers
            .iter()
            .map(|h| (Midstate::of_header(h), Midstate::tail_of(h)))
            .collect();
        h.hash_tail_pairs(&pairs, &mut out);
        assert_eq!(out, want, "{b} pairs");
        for (p, w) in pairs.iter().zip(&want) {
            assert_eq!(&h.hash_tail(&p.0, &p.1), w, "{b} single tail");
        }
        let inputs: Vec<&[u8]> = headers.iter().map(|h| &h[..]).collect();
        h.sha256d_many(&inputs, &mut out);
        assert_eq!(out, want, "{b} many");
    }
}

#[test]
fn header_with_midstate_and_64_byte_messages_match_portable() {
    let mut seed = 0x1234_5678_9abc_def1;
    for _ in 0..50 {
        let h: [u8; 80] = bytes(&mut seed);
        let m: [u8; 64] = bytes(&mut seed);
        for b in Backend::available() {
            let hs = Hasher::with_backend(b).expect("available");
            let (hash, mid) = hs.hash_header_with_midstate(&h);
            assert_eq!(hash, portable::sha256d(&h), "{b}");
            assert_eq!(mid, Midstate::of_header(&h), "{b}");
            assert_eq!(hs.hash_tail(&mid, &Midstate::tail_of(&h)), hash, "{b}");
            assert_eq!(hs.sha256d_64(&m), portable::sha256d(&m), "{b}");
        }
        assert_eq!(hash_header_with_midstate(&h).0, hash_header(&h));
        assert_eq!(sha256d_64(&m), sha256d(&m));
    }
}

#[test]
fn resumed_hash_matches_portable_for_every_split() {
    let data: Vec<u8> = (0..1300u32).map(|i| (i * 31 + 7) as u8).collect();
    for len in (0..300).chain([511, 512, 513, 575, 576, 577, 1024, 1299]) {
        let msg = &data[..len];
        let want = portable::sha256d(msg);
        for prefix_len in [0, 1, 63, 64, 65, 127, 128, 200, 299] {
            let prefix_len = prefix_len.min(len);
            let pm = PrefixMidstate::new(&msg[..prefix_len]);
            assert_eq!(pm.consumed(), prefix_len / 64 * 64);
            let rest = &msg[pm.consumed()..];
            // the rest in one piece, and cut in three
            assert_eq!(
                pm.sha256d_rest(&[rest]),
                want,
                "len {len} prefix {prefix_len}"
            );
            let (a, bc) = rest.split_at(rest.len() / 3);
            let (b, c) = bc.split_at(bc.len() / 2);
            assert_eq!(pm.sha256d_rest(&[a, b, c]), want, "len {len} cut");
            for bk in Backend::available() {
                let h = Hasher::with_backend(bk).expect("available");
                let s = pm.midstate().words();
                assert_eq!(h.resume(&s, pm.consumed(), &[rest]), want, "{bk} len {len}");
            }
        }
    }
}

#[test]
fn header_fields_match_the_assembled_header() {
    let mut seed = 99;
    for _ in 0..50 {
        let template: [u8; 80] = bytes(&mut seed);
        let (v, t, n) = (
            rng(&mut seed) as u32,
            rng(&mut seed) as u32,
            rng(&mut seed) as u32,
        );
        let header = with_fields(&template, v, t, n);
        let want = portable::sha256d(&header);
        for b in Backend::available() {
            let h = Hasher::with_backend(b).expect("available");
            let (hash, mid) = h.hash_header_fields(&template, v, t, n, true);
            assert_eq!(hash, want, "{b}");
            let mid = mid.expect("asked for");
            assert_eq!(mid, Midstate::of_header(&header), "{b}");
            assert_eq!(
                h.hash_header_fields(&template, v, t, n, false),
                (want, None)
            );
            // the tail path reads only bytes 64.. of the template
            let mut other = template;
            other[..64].fill(0);
            assert_eq!(h.hash_tail_fields(&mid, &other, t, n), want, "{b} tail");
        }
        assert_eq!(hash_header_fields(&template, v, t, n, false).0, want);
        let mid = Midstate::of_header(&header);
        assert_eq!(hash_tail_fields(&mid, &template, t, n), want);
    }
}

#[test]
fn batches_of_64_byte_messages_match_portable() {
    let mut seed = 77;
    for n in [0usize, 1, 3, 4, 5, 16, 17, 37, 100] {
        let msgs: Vec<[u8; 64]> = (0..n).map(|_| bytes(&mut seed)).collect();
        let want: Vec<[u8; 32]> = msgs.iter().map(|m| portable::sha256d(m)).collect();
        let mut out = vec![[0u8; 32]; n];
        Hasher::new().sha256d_64_many(&msgs, &mut out);
        assert_eq!(out, want, "best, {n}");
        for b in Backend::available() {
            let h = Hasher::with_backend(b).expect("available");
            let mut out = vec![[0u8; 32]; n];
            h.sha256d_64_many(&msgs, &mut out);
            assert_eq!(out, want, "{b}, {n}");
        }
    }
}

#[test]
fn resumed_batches_match_portable_on_every_backend() {
    let mut seed = 0xfeed_beef_u64;
    for prefix_len in [0usize, 10, 64, 100, 130] {
        for rest_len in [0usize, 1, 20, 55, 56, 64, 119, 200] {
            // 37 messages: full SIMD steps and a remainder
            let msgs: Vec<Vec<u8>> = (0..37)
                .map(|i| {
                    // two different prefixes, so the lanes carry different midstates
                    let mut m = vec![(i % 2) as u8; prefix_len];
                    m.extend((0..rest_len).map(|_| rng(&mut seed) as u8));
                    m
                })
                .collect();
            let want: Vec<[u8; 32]> = msgs.iter().map(|m| portable::sha256d(m)).collect();
            let mids: Vec<PrefixMidstate> = msgs
                .iter()
                .map(|m| PrefixMidstate::new(&m[..prefix_len]))
                .collect();
            let rests: Vec<&[u8]> = msgs
                .iter()
                .zip(&mids)
                .map(|(m, p)| &m[p.consumed()..])
                .collect();
            let mut best = vec![[0u8; 32]; msgs.len()];
            Hasher::new().sha256d_rest_many(&mids, &rests, &mut best);
            assert_eq!(best, want, "best prefix {prefix_len} rest {rest_len}");
            for b in Backend::available() {
                let h = Hasher::with_backend(b).expect("available");
                let mut out = vec![[0u8; 32]; msgs.len()];
                h.sha256d_rest_many(&mids, &rests, &mut out);
                assert_eq!(out, want, "{b} prefix {prefix_len} rest {rest_len}");
            }
        }
    }
}

#[test]
fn midstate_matches_portable() {
    let mut seed = 42;
    let block: [u8; 64] = bytes(&mut seed);
    let mut s = IV;
    portable::compress_block(&mut s, &block);
    assert_eq!(Midstate::new(&block).words(), s);
}

#[test]
fn target_comparison_is_little_endian() {
    let mut t = [0u8; 32];
    t[31] = 1;
    let mut h = [0xffu8; 32];
    h[31] = 0;
    assert!(meets_target(&h, &t));
    h[31] = 1;
    assert!(!meets_target(&h, &t));
    assert!(meets_target(&t, &t));
}
