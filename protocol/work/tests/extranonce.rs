//! Extranonce prefix allocation and the splitting of an upstream channel among SV1 miners.

use std::collections::{HashMap, HashSet};

use proptest::prelude::*;
use strata_protocol::B0_32;
use strata_work::extranonce::{
    Extranonce, ExtranonceError, ExtranonceSplitter, MinerId, PrefixAllocator, PrefixId,
    SplitConfig,
};

#[test]
fn prefixes_are_fixed_then_counter() {
    let mut a = PrefixAllocator::new(&[0xaa], 4, 32).expect("valid");
    assert_eq!(a.downstream_len(), 28);
    assert_eq!(a.capacity(), 1 << 24);
    let p0 = a.allocate().expect("room");
    let p1 = a.allocate().expect("room");
    assert_eq!(p0.prefix.as_slice(), &[0xaa, 0, 0, 0]);
    assert_eq!(p1.prefix.as_slice(), &[0xaa, 0, 0, 1]);
    assert_eq!(a.prefix(p1.id), p1.prefix);
    // standard channels: padded to the full size, like every member of a group (spec 5.2.3)
    let std = a.standard_prefix(p1.id);
    assert_eq!(std.len(), 32);
    assert_eq!(&std.as_slice()[..4], p1.prefix.as_slice());
    // routing a share's full extranonce back to its channel
    let full = Extranonce::concat(p1.prefix.as_slice(), &[7; 28]).expect("32 bytes");
    assert_eq!(a.id_of(full.as_slice()), Some(p1.id));
    assert_eq!(a.id_of(&[0xab, 0, 0, 1]), None, "wrong fixed part");
    assert_eq!(a.id_of(&[0xaa, 0, 0]), None, "too short");
    a.release(p1.id).expect("live");
    assert_eq!(a.id_of(full.as_slice()), None, "released");
    assert_eq!(
        a.release(p1.id),
        Err(ExtranonceError::NotAllocated { id: 1 })
    );
    assert_eq!(a.live(), 1);
}

#[test]
fn extranonce_size_negotiation() {
    let a = PrefixAllocator::new(&[], 8, 24).expect("valid");
    assert_eq!(a.extranonce_size_for(0), Ok(16));
    assert_eq!(a.extranonce_size_for(16), Ok(16));
    assert_eq!(
        a.extranonce_size_for(17),
        Err(ExtranonceError::ExtranonceSizeTooLarge {
            requested: 17,
            available: 16
        })
    );
}

#[test]
fn invalid_allocator_layouts() {
    assert_eq!(
        PrefixAllocator::new(&[], 4, 33).err(),
        Some(ExtranonceError::TooLong { len: 33 })
    );
    assert!(matches!(
        PrefixAllocator::new(&[1, 2, 3], 2, 32),
        Err(ExtranonceError::InvalidPrefixLength { .. })
    ));
    assert!(matches!(
        PrefixAllocator::new(&[], 9, 8),
        Err(ExtranonceError::InvalidPrefixLength { .. })
    ));
}

#[test]
fn exhaustion_then_reuse() {
    // one counter byte: 256 prefixes
    let mut a = PrefixAllocator::new(&[0x01], 2, 16).expect("valid");
    let ids: Vec<PrefixId> = (0..256).map(|_| a.allocate().expect("room").id).collect();
    assert_eq!(
        a.allocate(),
        Err(ExtranonceError::Exhausted { capacity: 256 })
    );
    a.release(ids[17]).expect("live");
    a.release(ids[3]).expect("live");
    // the longest-released first
    assert_eq!(a.allocate().expect("reused").id, ids[17]);
    assert_eq!(a.allocate().expect("reused").id, ids[3]);
    assert!(a.allocate().is_err());
    // a zero-width counter: exactly one channel
    let mut one = PrefixAllocator::new(&[9, 9], 2, 8).expect("valid");
    assert_eq!(one.capacity(), 1);
    assert_eq!(one.allocate().expect("room").prefix.as_slice(), &[9, 9]);
    assert!(one.allocate().is_err());
}

#[test]
fn hundred_thousand_allocations() {
    // a farm proxy restart: 100,000 connects, churn, reconnects
    let mut a = PrefixAllocator::new(&[0x42], 5, 32).expect("valid");
    let ids: Vec<PrefixId> = (0..100_000)
        .map(|_| a.allocate().expect("room").id)
        .collect();
    assert_eq!(a.live(), 100_000);
    for id in ids.iter().step_by(2) {
        a.release(*id).expect("live");
    }
    for _ in 0..50_000 {
        a.allocate().expect("room");
    }
    assert_eq!(a.live(), 100_000);
    let prefixes: HashSet<Extranonce> = (0..100_000u32).map(|i| a.prefix(PrefixId(i))).collect();
    assert_eq!(prefixes.len(), 100_000);
    // the counter never went past the peak
    assert_eq!(a.allocate().expect("room").id, PrefixId(100_000));
}

#[test]
fn split_default_limits() {
    // SRI-style upstream: 8-byte prefix, 8 bytes to roll; 65,536 miners need 2 id bytes
    let s = ExtranonceSplitter::new(SplitConfig::default(), &[1; 8], 8).expect("fits");
    assert_eq!(s.id_width(), 2);
    assert_eq!(s.extranonce2_size(), 6);
    // plenty of room: extranonce2 capped at 8 (cgminer), the rest widens the id
    let mut s = ExtranonceSplitter::new(SplitConfig::default(), &[1; 4], 14).expect("fits");
    assert_eq!(s.extranonce2_size(), 8);
    assert_eq!(s.id_width(), 6);
    let (id, e1) = s.allocate().expect("room");
    assert_eq!(e1.len(), 10);
    assert!(e1.len() <= 16);
    assert_eq!(e1.as_slice(), &[1, 1, 1, 1, 0, 0, 0, 0, 0, 0]);
    let up = s.upstream_extranonce(id, &[5; 8]).expect("right size");
    assert_eq!(up.len(), 14, "exactly the upstream extranonce_size");
    assert_eq!(s.miner_of_upstream_extranonce(up.as_slice()), Some(id));
}

#[test]
fn split_extranonce2_size_4_and_8() {
    for size in [4usize, 8] {
        let cfg = SplitConfig {
            max_miners: 1000,
            min_extranonce2_size: size,
            max_extranonce2_size: size,
            max_extranonce1_len: 16,
        };
        let mut s = ExtranonceSplitter::new(cfg, &[0xee; 4], 12).expect("fits");
        assert_eq!(s.extranonce2_size(), size);
        assert_eq!(s.id_width(), 12 - size);
        let (id, e1) = s.allocate().expect("room");
        assert_eq!(e1.len(), 4 + 12 - size);
        let en2 = vec![0x5a; size];
        let full = s.full_extranonce(id, &en2).expect("right size");
        assert_eq!(full.len(), 16);
        assert_eq!(
            full,
            Extranonce::concat(e1.as_slice(), &en2).expect("fits"),
            "extranonce1 ‖ extranonce2"
        );
        assert_eq!(
            s.full_extranonce(id, &[0; 3]),
            Err(ExtranonceError::LengthMismatch {
                expected: size,
                got: 3
            })
        );
    }
}

#[test]
fn split_constraint_errors() {
    let cfg = SplitConfig::default(); // 65,536 miners: 2 id bytes, extranonce2 4..=8
    assert_eq!(
        ExtranonceSplitter::new(cfg, &[0; 4], 5).err(),
        Some(ExtranonceError::UpstreamTooSmall {
            extranonce_size: 5,
            id_width: 2,
            max_miners: 65_536,
            min_extranonce2_size: 4
        })
    );
    // 24 rollable bytes minus 8 of extranonce2 leave a 16-byte id: with the 8-byte upstream
    // prefix, extranonce1 would be 24 bytes
    assert_eq!(
        ExtranonceSplitter::new(cfg, &[0; 8], 24).err(),
        Some(ExtranonceError::Extranonce1TooLong { len: 24, max: 16 })
    );
    // a device without the cap takes it
    let uncapped = SplitConfig {
        max_extranonce1_len: 32,
        ..cfg
    };
    assert!(ExtranonceSplitter::new(uncapped, &[0; 8], 24).is_ok());
    assert_eq!(
        ExtranonceSplitter::new(cfg, &[0; 20], 13).err(),
        Some(ExtranonceError::TooLong { len: 33 })
    );
    assert!(matches!(
        ExtranonceSplitter::new(
            SplitConfig {
                max_miners: 0,
                ..cfg
            },
            &[0; 4],
            8
        ),
        Err(ExtranonceError::InvalidSplitConfig { .. })
    ));
    // one miner: no id at all, the miner gets the whole space
    let solo = SplitConfig {
        max_miners: 1,
        ..cfg
    };
    let mut s = ExtranonceSplitter::new(solo, &[3; 4], 8).expect("fits");
    assert_eq!(s.id_width(), 0);
    assert_eq!(s.allocate().expect("room").1.as_slice(), &[3; 4]);
    assert!(matches!(
        s.allocate(),
        Err(ExtranonceError::Exhausted { capacity: 1 })
    ));
}

#[test]
fn recarve_keeps_miner_ids() {
    let cfg = SplitConfig {
        max_miners: 300,
        ..SplitConfig::default()
    };
    let mut s = ExtranonceSplitter::new(cfg, &[0xa0, 0xa1], 8).expect("fits");
    let miners: Vec<MinerId> = (0..300).map(|_| s.allocate().expect("room").0).collect();
    for m in miners.iter().step_by(3) {
        s.release(*m).expect("live");
    }
    let before: HashMap<MinerId, Extranonce> = s.miners().map(|m| (m, s.extranonce1(m))).collect();
    // SetExtranoncePrefix: a new 4-byte prefix and a smaller space
    let updated = s.set_upstream(&[0xb0, 0xb1, 0xb2, 0xb3], 6).expect("fits");
    assert_eq!(updated.len(), before.len());
    assert_eq!(s.extranonce2_size(), 4);
    let mut seen = HashSet::new();
    for (m, e1) in &updated {
        assert!(before.contains_key(m), "same miners");
        assert_eq!(&e1.as_slice()[..4], &[0xb0, 0xb1, 0xb2, 0xb3]);
        assert_eq!(*e1, s.extranonce1(*m));
        assert!(seen.insert(*e1), "still unique");
        // the id keeps its value, in the new width
        let id_bytes = &e1.as_slice()[4..];
        let id = id_bytes.iter().fold(0u32, |a, &b| (a << 8) | u32::from(b));
        assert_eq!(MinerId(id), *m);
    }
    // a failover to a pool that leaves too little room changes nothing
    let prefix_before = *s.upstream_prefix();
    assert!(s.set_upstream(&[1; 4], 3).is_err());
    assert_eq!(*s.upstream_prefix(), prefix_before);
    assert_eq!(s.extranonce2_size(), 4);
}

#[test]
fn full_extranonce_assembly() {
    let prefix = [1u8, 2, 3, 4, 5, 6, 7, 8];
    let part = [9u8; 24];
    let e = Extranonce::concat(&prefix, &part).expect("32 bytes");
    assert_eq!(e.len(), 32);
    assert_eq!(&e.as_slice()[..8], &prefix);
    let b: B0_32 = e.into();
    assert_eq!(b.as_slice(), e.as_slice());
    assert_eq!(Extranonce::from(&b), e);
    assert_eq!(
        Extranonce::concat(&prefix, &[0; 25]),
        Err(ExtranonceError::TooLong { len: 33 })
    );
    assert_eq!(
        Extranonce::from_slice(&[0xab, 0x01])
            .expect("ok")
            .to_string(),
        "ab01"
    );
    assert!(Extranonce::EMPTY.is_empty());
}

#[derive(Debug, Clone)]
enum Op {
    Allocate,
    Release(usize),
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        prop_oneof![3 => Just(Op::Allocate), 2 => any::<usize>().prop_map(Op::Release)],
        0..600,
    )
}

proptest! {
    #[test]
    fn prop_allocator_never_duplicates_live_prefixes(ops in ops(), width in 1usize..3) {
        let mut a = PrefixAllocator::new(&[0x77], 1 + width, 32).expect("valid");
        let capacity = a.capacity();
        let mut live: HashMap<PrefixId, Extranonce> = HashMap::new();
        for op in ops {
            match op {
                Op::Allocate => match a.allocate() {
                    Ok(p) => {
                        prop_assert!(!live.values().any(|e| *e == p.prefix), "duplicate prefix");
                        prop_assert!(live.insert(p.id, p.prefix).is_none(), "duplicate id");
                        prop_assert_eq!(p.prefix.len(), 1 + width);
                    }
                    Err(e) => {
                        prop_assert_eq!(e, ExtranonceError::Exhausted { capacity });
                        prop_assert_eq!(live.len() as u64, capacity);
                    }
                },
                Op::Release(i) if !live.is_empty() => {
                    let mut ids: Vec<PrefixId> = live.keys().copied().collect();
                    ids.sort();
                    let id = ids[i % ids.len()];
                    a.release(id).expect("live");
                    live.remove(&id);
                    prop_assert!(a.release(id).is_err(), "double release");
                }
                Op::Release(_) => {}
            }
            prop_assert_eq!(a.live() as usize, live.len());
        }
        for (id, prefix) in &live {
            prop_assert_eq!(a.id_of(prefix.as_slice()), Some(*id));
        }
    }

    #[test]
    fn prop_splitter_unique_extranonce1(ops in ops(), recarve_at in 0usize..600) {
        let cfg = SplitConfig { max_miners: 200, ..SplitConfig::default() };
        let mut s = ExtranonceSplitter::new(cfg, &[1, 2, 3, 4], 8).expect("fits");
        let mut live: HashSet<MinerId> = HashSet::new();
        for (step, op) in ops.into_iter().enumerate() {
            if step == recarve_at {
                let updated = s.set_upstream(&[9, 9, 9, 9, 9, 9], 5).expect("fits");
                let ids: HashSet<MinerId> = updated.iter().map(|(m, _)| *m).collect();
                prop_assert_eq!(&ids, &live);
            }
            match op {
                Op::Allocate => {
                    if let Ok((m, _)) = s.allocate() {
                        prop_assert!(live.insert(m));
                    } else {
                        prop_assert_eq!(live.len(), 200);
                    }
                }
                Op::Release(i) if !live.is_empty() => {
                    let mut ids: Vec<MinerId> = live.iter().copied().collect();
                    ids.sort();
                    let m = ids[i % ids.len()];
                    s.release(m).expect("live");
                    live.remove(&m);
                }
                Op::Release(_) => {}
            }
            let all: HashSet<Extranonce> = live.iter().map(|m| s.extranonce1(*m)).collect();
            prop_assert_eq!(all.len(), live.len(), "unique extranonce1");
        }
    }
}

#[test]
fn the_minimum_extranonce_size_is_the_smallest_a_carve_accepts() {
    for max_miners in [1, 2, 256, 257, 65_536, 65_537, 1 << 24] {
        for (min_e2, max_e2) in [(4, 8), (1, 1), (2, 6)] {
            let cfg = SplitConfig {
                max_miners,
                min_extranonce2_size: min_e2,
                max_extranonce2_size: max_e2,
                max_extranonce1_len: 32,
            };
            let min = cfg.min_extranonce_size();
            let size = u16::try_from(min).expect("small");
            let s = ExtranonceSplitter::new(cfg, &[1; 4], size).expect("the minimum carves");
            assert_eq!(s.extranonce2_size(), min_e2);
            assert_eq!(s.id_width(), cfg.id_width());
            if min > 0 {
                assert!(ExtranonceSplitter::new(cfg, &[1; 4], size - 1).is_err());
            }
            // at the full size every miner rolls the maximum with the narrowest id
            let full = u16::try_from(cfg.full_extranonce_size()).expect("small");
            let s = ExtranonceSplitter::new(cfg, &[1; 4], full).expect("the full size carves");
            assert_eq!(s.extranonce2_size(), max_e2);
            assert_eq!(s.id_width(), cfg.id_width());
        }
    }
    // the proxy's defaults: 65,536 miners, 4..=8 bytes of extranonce2
    assert_eq!(SplitConfig::default().min_extranonce_size(), 6);
    assert_eq!(SplitConfig::default().full_extranonce_size(), 10);
}
