//! Records the ledger's tests write: shares, blocks, addresses (`ledger.rs`,
//! `ledger_reads.rs`).
#![allow(dead_code, unreachable_pub)]

use bitcoin::{Address, Network, ScriptBuf};
use strata_pool::ledger::{BlockRecord, BlockStatus, ShareRecord};

pub fn share(worker: &str, difficulty: f64, n: u32) -> ShareRecord {
    let mut hash = [0u8; 32];
    hash[..4].copy_from_slice(&n.to_le_bytes());
    hash[31] = 0x5a;
    ShareRecord {
        worker: worker.to_owned(),
        channel_identity: worker.to_owned(),
        connection_id: u64::from(n % 7) + (1 << 63),
        channel_id: n % 5,
        job_id: n / 3,
        sequence_number: n,
        height: 100 + n / 10,
        difficulty,
        hash,
        time_ms: 1_700_000_000_000 + u64::from(n),
        block: n.is_multiple_of(97),
    }
}

pub fn block(hash: &str, height: u32, status: BlockStatus) -> BlockRecord {
    BlockRecord {
        height,
        hash: hash.to_owned(),
        template_id: u64::MAX - u64::from(height),
        worker: "finder.rig".to_owned(),
        time_ms: 1_700_000_000_000 + u64::from(height),
        reward_sats: 5_000_000_000,
        outputs: vec![strata_pool::ledger::Payout {
            owner: "pool".to_owned(),
            script_hex: "0014".to_owned() + &"ab".repeat(20),
            sats: 5_000_000_000,
        }],
        window: None,
        mode: "solo".to_owned(),
        status,
        // the rules column round-trips, and blocks without it (older ones) read back so
        payout_rules: height
            .is_multiple_of(2)
            .then(|| format!(r#"{{"network":"regtest","height":{height}}}"#)),
    }
}

pub fn regtest_address(i: u32) -> String {
    Address::p2wsh(&ScriptBuf::from(i.to_le_bytes().to_vec()), Network::Regtest).to_string()
}
