//! The pool's connection state machine driven by hand: a miner built from the mining core's
//! client-side channels talks to a `Session` with no sockets and no clock but the one passed
//! in.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bitcoin::consensus::deserialize;
use bitcoin::hashes::Hash;
use bitcoin::{Amount, Block, ScriptBuf, TxOut};
use strata_pool::payout::Split;
use strata_pool::server::session::{Event, Now, Payouts, Session, SessionConfig, Work};
use strata_pool::template::Template;
use strata_protocol::common::{CommonMessage, SetupConnection};
use strata_protocol::mining::{
    MiningMessage, OpenExtendedMiningChannel, OpenStandardMiningChannel, SubmitSharesExtended,
    SubmitSharesStandard, UpdateChannel, REQUIRES_STANDARD_JOBS,
};
use strata_protocol::wire::{Str0_255, B0_32, U256};
use strata_protocol::Message;
use strata_work::channel::{Channel, ChannelConfig, Channels};
use strata_work::coinbase::bip34_height_push;
use strata_work::header::Header;
use strata_work::merkle::{witness_commitment, witness_commitment_script, witness_merkle_root};
use strata_work::target::Target;

mod extended;
mod group;
mod identity;
mod protocol;
mod standard;

const REGTEST_BITS: u32 = 0x207f_ffff;

fn pool_script() -> ScriptBuf {
    ScriptBuf::from_bytes(vec![0x51, 0x20].into_iter().chain([7u8; 32]).collect())
}

fn template(id: u64, height: u32, prev: u8) -> Template {
    let commitment = witness_commitment(&witness_merkle_root(&[]), &[0; 32]);
    Template {
        id,
        height,
        prev_hash: [prev; 32],
        version: 0x2000_0000,
        nbits: REGTEST_BITS,
        min_ntime: 1_700_000_000,
        coinbase_tx_version: 2,
        coinbase_prefix: bip34_height_push(height),
        coinbase_tx_input_sequence: u32::MAX,
        coinbase_tx_value_remaining: 50 * 100_000_000,
        coinbase_tx_outputs: vec![TxOut {
            value: Amount::ZERO,
            script_pubkey: ScriptBuf::from_bytes(witness_commitment_script(&commitment).to_vec()),
        }],
        coinbase_tx_locktime: 0,
        merkle_path: vec![],
        tx_count: 0,
    }
}

fn work(seq: u64, t: Template) -> Arc<Work> {
    let split = Split {
        outputs: vec![TxOut {
            value: Amount::from_sat(t.coinbase_tx_value_remaining),
            script_pubkey: pool_script(),
        }],
        ..Split::default()
    };
    Arc::new(Work {
        seq,
        template: Arc::new(t),
        payouts: Payouts::Shared(Arc::new(split)),
        window: None,
        shared_coinbase: Default::default(),
    })
}

struct Clock(Instant, u64);

impl Clock {
    fn new() -> Self {
        Clock(Instant::now(), 1_700_000_100_000)
    }
    fn now(&self) -> Now {
        Now {
            mono: self.0,
            unix_ms: self.1,
        }
    }
    fn advance(&mut self, d: Duration) {
        self.0 += d;
        self.1 += d.as_millis() as u64;
    }
}

fn sent(events: &[Event]) -> Vec<Message> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Send(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

fn names(events: &[Event]) -> Vec<&'static str> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Send(m) => Some(m.name()),
            _ => None,
        })
        .collect()
}

fn setup(flags: u32) -> Message {
    SetupConnection {
        protocol: 0,
        min_version: 2,
        max_version: 2,
        flags,
        endpoint_host: Str0_255::new("pool").unwrap(),
        endpoint_port: 34254,
        vendor: Str0_255::new("test").unwrap(),
        hardware_version: Str0_255::default(),
        firmware: Str0_255::default(),
        device_id: Str0_255::default(),
    }
    .into()
}

fn open_standard(request_id: u32, user: &str) -> Message {
    OpenStandardMiningChannel {
        request_id,
        user_identity: Str0_255::new(user).unwrap(),
        nominal_hash_rate: 0.0,
        max_target: U256([0xff; 32]),
    }
    .into()
}

/// A miner's view: the mining core's client-side channels fed with what the pool sent.
struct Miner {
    channels: Channels,
    seq: u32,
}

impl Miner {
    fn new() -> Self {
        Miner {
            channels: Channels::new(),
            seq: 0,
        }
    }

    fn feed(&mut self, msgs: &[Message]) {
        for m in msgs {
            let Message::Mining(mm) = m else { continue };
            match mm {
                MiningMessage::OpenStandardMiningChannelSuccess(s) => {
                    let c = Channel::new_standard(
                        s.channel_id,
                        s.extranonce_prefix.as_slice(),
                        Target::from_le_bytes(s.target.0),
                        ChannelConfig::default(),
                    )
                    .unwrap();
                    self.channels.insert(c).unwrap();
                    if self.channels.group(s.group_channel_id).is_none() {
                        self.channels
                            .create_group(s.group_channel_id, None)
                            .unwrap();
                    }
                    self.channels
                        .add_to_group(s.group_channel_id, s.channel_id)
                        .unwrap();
                }
                MiningMessage::OpenExtendedMiningChannelSuccess(s) => {
                    let c = Channel::new_extended(
                        s.channel_id,
                        s.extranonce_prefix.as_slice(),
                        s.extranonce_size as u8,
                        Target::from_le_bytes(s.target.0),
                        ChannelConfig::default(),
                    )
                    .unwrap();
                    self.channels.insert(c).unwrap();
                }
                MiningMessage::NewMiningJob(j) => self.channels.on_new_mining_job(j).unwrap(),
                MiningMessage::NewExtendedMiningJob(j) => {
                    self.channels.on_new_extended_mining_job(j).unwrap();
                }
                MiningMessage::SetNewPrevHash(p) => self.channels.on_set_new_prev_hash(p).unwrap(),
                MiningMessage::SetTarget(t) => self.channels.on_set_target(t).unwrap(),
                MiningMessage::SetGroupChannel(g) => self.channels.on_set_group_channel(g).unwrap(),
                _ => {}
            }
        }
    }

    /// A standard share on the active job meeting `want` (the channel target if None).
    fn standard_share(&mut self, channel_id: u32, want_block: bool) -> SubmitSharesStandard {
        let c = self.channels.get(channel_id).unwrap();
        let job = c.active_job().unwrap();
        let prev = *c.prev_hash().unwrap();
        let target = if want_block {
            prev.network_target.min(c.target())
        } else {
            c.target()
        };
        let mut h = Header {
            version: job.version(),
            prev_hash: prev.prev_hash,
            merkle_root: job.merkle_root(),
            ntime: prev.min_ntime,
            nbits: prev.nbits,
            nonce: 0,
        };
        while !h.meets(&target) {
            h.nonce += 1;
        }
        self.seq += 1;
        SubmitSharesStandard {
            channel_id,
            sequence_number: self.seq,
            job_id: job.id(),
            nonce: h.nonce,
            ntime: h.ntime,
            version: h.version,
        }
    }
}

fn session(solo: bool) -> Session {
    let mut cfg = SessionConfig::regtest(pool_script());
    cfg.solo = solo;
    Session::new(7, Arc::new(cfg))
}
