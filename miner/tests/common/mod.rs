//! Shared test fixtures: easy targets, hand-built SV2 jobs, and drivers for the sans-IO cores.
#![allow(dead_code, unreachable_pub)]

use strata_miner::sv2::{Sv2Miner, Sv2Output};
use strata_miner::{Event, Now};
use strata_protocol::mining::{NewExtendedMiningJob, NewMiningJob, SetNewPrevHash};
use strata_protocol::{Message, Seq0_255, B0_64K, U256};
use strata_work::target::Target;

/// About 256 hashes per share.
pub fn easy_target() -> Target {
    Target::from_difficulty(1.0 / 16_777_216.0).expect("difficulty")
}

/// About 32 hashes per share.
pub fn easier_target() -> Target {
    Target::from_difficulty(1.0 / 134_217_728.0).expect("difficulty")
}

pub const MIN_NTIME: u32 = 1_700_000_000;

/// An SV1 line as a server sends it, rendered by `msg`, without its newline.
pub fn line(msg: impl FnOnce(&mut Vec<u8>)) -> bytes::Bytes {
    let mut v = Vec::new();
    msg(&mut v);
    while v.last() == Some(&b'\n') {
        v.pop();
    }
    bytes::Bytes::from(v)
}
/// A regtest-like nBits (target 0x7fffff << 232: half of all hashes are blocks).
pub const REGTEST_NBITS: u32 = 0x207f_ffff;
/// A mainnet-like nBits (no share of ours is a block).
pub const HARD_NBITS: u32 = 0x1703_a30c;

pub fn now() -> Now {
    Now::at_unix(MIN_NTIME)
}

pub fn now_ms() -> u64 {
    u64::from(MIN_NTIME) * 1000
}

pub fn standard_job(channel_id: u32, job_id: u32, future: bool, root_byte: u8) -> NewMiningJob {
    NewMiningJob {
        channel_id,
        job_id,
        min_ntime: if future { None } else { Some(MIN_NTIME) },
        version: 0x2000_0000,
        merkle_root: U256([root_byte; 32]),
    }
}

pub fn extended_job(
    channel_id: u32,
    job_id: u32,
    future: bool,
    rolling: bool,
) -> NewExtendedMiningJob {
    NewExtendedMiningJob {
        channel_id,
        job_id,
        min_ntime: if future { None } else { Some(MIN_NTIME) },
        version: 0x2000_0000,
        version_rolling_allowed: rolling,
        merkle_path: Seq0_255::new(vec![U256([0xaa; 32]), U256([0xbb; 32])]).expect("path"),
        coinbase_tx_prefix: B0_64K::new(vec![1u8, 0, 0, 0, 1, 0x11, 0x22, 0x33]).expect("prefix"),
        coinbase_tx_suffix: B0_64K::new(vec![0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0])
            .expect("suffix"),
    }
}

pub fn prevhash(channel_id: u32, job_id: u32, byte: u8, nbits: u32) -> SetNewPrevHash {
    SetNewPrevHash {
        channel_id,
        job_id,
        prev_hash: U256([byte; 32]),
        min_ntime: MIN_NTIME,
        nbits,
    }
}

/// Drains the core's outputs into (messages sent, events).
pub fn drain(m: &mut Sv2Miner) -> (Vec<Message>, Vec<Event>, Vec<Sv2Output>) {
    let (mut sent, mut events, mut other) = (vec![], vec![], vec![]);
    while let Some(o) = m.poll_output() {
        match o {
            Sv2Output::Send(msg) => sent.push(msg),
            Sv2Output::Event(e) => events.push(e),
            o => other.push(o),
        }
    }
    (sent, events, other)
}

/// Hashes until a share comes out; returns the submit message.
pub fn mine_share(m: &mut Sv2Miner) -> Message {
    for _ in 0..10_000 {
        let r = m.mine(4096, now());
        if r.share {
            let (sent, _, _) = drain(m);
            return sent.into_iter().last().expect("a submit");
        }
    }
    panic!("no share after 40M hashes");
}

pub mod sv2_server;
