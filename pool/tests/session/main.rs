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

#[test]
fn setup_then_standard_channel_gets_a_job_and_shares_are_acked_after_commit() {
    let clock = Clock::new();
    let mut s = session(false);
    let mut ev = vec![];
    s.on_work(work(1, template(1, 101, 0xaa)), clock.now(), &mut ev);
    assert!(ev.is_empty(), "no work before setup");
    s.on_message(setup(0), &[], clock.now(), &mut ev);
    assert_eq!(names(&ev), ["SetupConnection.Success"]);
    ev.clear();
    s.on_message(open_standard(1, "alice"), &[], clock.now(), &mut ev);
    assert_eq!(
        names(&ev),
        [
            "OpenStandardMiningChannel.Success",
            "NewMiningJob",
            "SetNewPrevHash"
        ]
    );
    let mut miner = Miner::new();
    miner.feed(&sent(&ev));
    ev.clear();

    // a share that is not a block on regtest is rare; ask for a block candidate
    let share = miner.standard_share(1, true);
    s.on_message(share.clone().into(), &[], clock.now(), &mut ev);
    let mut acks = vec![];
    let mut block = None;
    for e in &ev {
        match e {
            Event::Accepted(b) => acks.push(b.1.clone()),
            Event::Block(f) => block = Some(f.clone()),
            Event::Send(m) => panic!("nothing may be sent before the commit, got {}", m.name()),
            _ => {}
        }
    }
    assert_eq!(acks.len(), 1);
    let found = block.expect("the share meets the regtest target");
    // the block the pool would submit is valid per the bitcoin crate
    let mut raw = found.solution.header.to_vec();
    raw.push(1);
    raw.extend_from_slice(&found.solution.coinbase);
    let b: Block = deserialize(&raw).unwrap();
    assert!(b.check_merkle_root());
    assert!(b.check_witness_commitment());
    assert_eq!(b.bip34_block_height().unwrap(), 101);
    assert_eq!(b.txdata[0].output[0].script_pubkey, pool_script());
    assert_eq!(found.hash, b.block_hash().to_string());
    let _ = b.block_hash().to_byte_array();

    ev.clear();
    s.on_committed(&acks, &mut ev);
    let msgs = sent(&ev);
    assert_eq!(msgs.len(), 1);
    let Message::Mining(MiningMessage::SubmitSharesSuccess(ok)) = &msgs[0] else {
        panic!("expected SubmitShares.Success, got {}", msgs[0].name());
    };
    assert_eq!(
        (
            ok.channel_id,
            ok.last_sequence_number,
            ok.new_submits_accepted_count
        ),
        (1, share.sequence_number, 1)
    );

    // the same share again is a duplicate
    ev.clear();
    s.on_message(share.into(), &[], clock.now(), &mut ev);
    assert_eq!(names(&ev), ["SubmitShares.Error"]);
}

#[test]
fn new_tip_makes_old_shares_stale_and_same_tip_work_is_active_at_once() {
    let clock = Clock::new();
    let mut s = session(false);
    let mut ev = vec![];
    s.on_work(work(1, template(1, 101, 0xaa)), clock.now(), &mut ev);
    s.on_message(setup(REQUIRES_STANDARD_JOBS), &[], clock.now(), &mut ev);
    s.on_message(open_standard(1, "alice"), &[], clock.now(), &mut ev);
    let mut miner = Miner::new();
    miner.feed(&sent(&ev));
    let old = miner.standard_share(1, false);
    ev.clear();

    // same tip, new template: an active job, no SetNewPrevHash
    s.on_work(work(2, template(2, 101, 0xaa)), clock.now(), &mut ev);
    assert_eq!(names(&ev), ["NewMiningJob"]);
    miner.feed(&sent(&ev));
    ev.clear();

    // new tip: a future job then SetNewPrevHash; the old share is stale
    s.on_work(work(3, template(3, 102, 0xbb)), clock.now(), &mut ev);
    assert_eq!(names(&ev), ["NewMiningJob", "SetNewPrevHash"]);
    miner.feed(&sent(&ev));
    ev.clear();
    s.on_message(old.into(), &[], clock.now(), &mut ev);
    let msgs = sent(&ev);
    let Message::Mining(MiningMessage::SubmitSharesError(e)) = &msgs[0] else {
        panic!("expected an error");
    };
    assert_eq!(e.error_code.as_str(), "stale-share");
    assert!(ev.iter().any(|e| matches!(
        e,
        Event::Rejected {
            code: "stale-share",
            ..
        }
    )));
}

#[test]
fn group_channel_gets_one_extended_job_for_all_standard_channels() {
    let clock = Clock::new();
    let mut s = session(false);
    let mut ev = vec![];
    s.on_work(work(1, template(1, 101, 0xaa)), clock.now(), &mut ev);
    s.on_message(setup(0), &[], clock.now(), &mut ev);
    s.on_message(open_standard(1, "alice"), &[], clock.now(), &mut ev);
    s.on_message(open_standard(2, "alice"), &[], clock.now(), &mut ev);
    let mut miner = Miner::new();
    let ids: Vec<u32> = sent(&ev)
        .iter()
        .filter_map(|m| match m {
            Message::Mining(MiningMessage::OpenStandardMiningChannelSuccess(ok)) => {
                Some(ok.channel_id)
            }
            _ => None,
        })
        .collect();
    assert_eq!(ids.len(), 2);
    miner.feed(&sent(&ev));
    ev.clear();
    s.on_work(work(2, template(2, 102, 0xbb)), clock.now(), &mut ev);
    assert_eq!(names(&ev), ["NewExtendedMiningJob", "SetNewPrevHash"]);
    let msgs = sent(&ev);
    let Message::Mining(MiningMessage::SetNewPrevHash(p)) = &msgs[1] else {
        panic!()
    };
    assert!(!ids.contains(&p.channel_id), "addressed to the group");
    miner.feed(&msgs);
    ev.clear();
    // both members mine on the group job with their own merkle roots
    let share2 = miner.standard_share(ids[1], false);
    let share1 = miner.standard_share(ids[0], false);
    for sh in [share1, share2] {
        s.on_message(sh.into(), &[], clock.now(), &mut ev);
    }
    let accepted = ev
        .iter()
        .filter(|e| matches!(e, Event::Accepted(_)))
        .count();
    assert_eq!(accepted, 2, "events: {:?}", names(&ev));
}

/// Spec 5.2.3: extended channels whose full extranonce size is the group's join the
/// connection's group channel (`SetGroupChannel`) at the next work; one extended job then
/// reaches standard and extended members alike, and a block found on it by the extended
/// member is assembled from the group job's coinbase.
#[test]
fn extended_channels_join_the_group_and_mine_its_jobs() {
    let clock = Clock::new();
    let mut s = session(false);
    let mut ev = vec![];
    s.on_work(work(1, template(1, 101, 0xaa)), clock.now(), &mut ev);
    s.on_message(setup(0), &[], clock.now(), &mut ev);
    s.on_message(open_standard(1, "alice"), &[], clock.now(), &mut ev);
    s.on_message(
        OpenExtendedMiningChannel {
            request_id: 2,
            user_identity: Str0_255::new("proxy").unwrap(),
            nominal_hash_rate: 0.0,
            max_target: U256([0xff; 32]),
            min_extranonce_size: 8,
        }
        .into(),
        &[],
        clock.now(),
        &mut ev,
    );
    let mut miner = Miner::new();
    miner.feed(&sent(&ev));
    let msgs = sent(&ev);
    let (std_id, group_id) = msgs
        .iter()
        .find_map(|m| match m {
            Message::Mining(MiningMessage::OpenStandardMiningChannelSuccess(ok)) => {
                Some((ok.channel_id, ok.group_channel_id))
            }
            _ => None,
        })
        .unwrap();
    let ext = msgs
        .iter()
        .find_map(|m| match m {
            Message::Mining(MiningMessage::OpenExtendedMiningChannelSuccess(ok)) => {
                Some(ok.clone())
            }
            _ => None,
        })
        .unwrap();
    ev.clear();
    s.on_work(work(2, template(2, 102, 0xbb)), clock.now(), &mut ev);
    assert_eq!(
        names(&ev),
        ["SetGroupChannel", "NewExtendedMiningJob", "SetNewPrevHash"]
    );
    let msgs = sent(&ev);
    match &msgs[0] {
        Message::Mining(MiningMessage::SetGroupChannel(g)) => {
            assert_eq!(g.group_channel_id, group_id);
            assert_eq!(
                g.channel_ids.iter().copied().collect::<Vec<_>>(),
                [ext.channel_id]
            );
        }
        other => panic!("{other:?}"),
    }
    miner.feed(&msgs);
    // both members mine on the group's job
    ev.clear();
    s.on_message(
        miner.standard_share(std_id, false).into(),
        &[],
        clock.now(),
        &mut ev,
    );
    let c = miner.channels.get(ext.channel_id).unwrap();
    let job = c.active_job().unwrap();
    let prev = *c.prev_hash().unwrap();
    let extranonce = [3u8; 10];
    let parts = job.extended().unwrap();
    let txid = parts.txid(&[ext.extranonce_prefix.as_slice(), &extranonce]);
    let root = strata_work::merkle::merkle_root_from_path(txid, parts.merkle_path.iter());
    let mut h = Header {
        version: job.version(),
        prev_hash: prev.prev_hash,
        merkle_root: root,
        ntime: job.min_ntime().unwrap(),
        nbits: prev.nbits,
        nonce: 0,
    };
    // regtest: a share at the channel's target is a block
    while !h.meets(&Target::from_compact(REGTEST_BITS).unwrap()) {
        h.nonce += 1;
    }
    s.on_message(
        SubmitSharesExtended {
            channel_id: ext.channel_id,
            sequence_number: 1,
            job_id: job.id(),
            nonce: h.nonce,
            ntime: h.ntime,
            version: h.version,
            extranonce: B0_32::new(&extranonce).unwrap(),
        }
        .into(),
        &[],
        clock.now(),
        &mut ev,
    );
    let accepted: Vec<_> = ev
        .iter()
        .filter_map(|e| match e {
            Event::Accepted(b) => Some(b.0.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(accepted.len(), 2, "events: {:?}", names(&ev));
    assert_eq!(accepted[1].height, 102, "the group job's template");
    let found = ev
        .iter()
        .find_map(|e| match e {
            Event::Block(f) => Some(f.clone()),
            _ => None,
        })
        .expect("a block candidate");
    assert_eq!(found.height, 102);
    let mut raw = found.solution.header.to_vec();
    raw.push(1);
    raw.extend_from_slice(&found.solution.coinbase);
    let b: Block = deserialize(&raw).unwrap();
    assert!(b.check_merkle_root() && b.check_witness_commitment());

    // a later work: one group job, no per-channel job for either member
    ev.clear();
    s.on_work(work(3, template(3, 102, 0xbb)), clock.now(), &mut ev);
    assert_eq!(names(&ev), ["NewExtendedMiningJob"]);
}

#[test]
fn extended_channel_share_with_its_extranonce() {
    let clock = Clock::new();
    let mut s = session(false);
    let mut ev = vec![];
    s.on_work(work(1, template(1, 101, 0xaa)), clock.now(), &mut ev);
    s.on_message(setup(0), &[], clock.now(), &mut ev);
    s.on_message(
        OpenExtendedMiningChannel {
            request_id: 9,
            user_identity: Str0_255::new("proxy").unwrap(),
            nominal_hash_rate: 0.0,
            max_target: U256([0xff; 32]),
            min_extranonce_size: 8,
        }
        .into(),
        &[],
        clock.now(),
        &mut ev,
    );
    ev.drain(..1);
    assert_eq!(
        names(&ev),
        [
            "OpenExtendedMiningChannel.Success",
            "NewExtendedMiningJob",
            "SetNewPrevHash"
        ]
    );
    let msgs = sent(&ev);
    let Message::Mining(MiningMessage::OpenExtendedMiningChannelSuccess(ok)) = &msgs[0] else {
        panic!()
    };
    assert_eq!(ok.extranonce_size, 10, "16-byte extranonce, 6-byte prefix");
    let Message::Mining(MiningMessage::NewExtendedMiningJob(job)) = &msgs[1] else {
        panic!()
    };
    let Message::Mining(MiningMessage::SetNewPrevHash(prev)) = &msgs[2] else {
        panic!()
    };
    // the miner's side: coinbase prefix ‖ channel prefix ‖ its extranonce ‖ suffix
    let extranonce = [5u8; 10];
    let mut cb = job.coinbase_tx_prefix.as_slice().to_vec();
    cb.extend_from_slice(ok.extranonce_prefix.as_slice());
    cb.extend_from_slice(&extranonce);
    cb.extend_from_slice(job.coinbase_tx_suffix.as_slice());
    let txid = bitcoin::hashes::sha256d::Hash::hash(&cb).to_byte_array();
    let mut h = Header {
        version: job.version,
        prev_hash: prev.prev_hash.0,
        merkle_root: txid,
        ntime: prev.min_ntime,
        nbits: prev.nbits,
        nonce: 0,
    };
    let target = Target::from_compact(REGTEST_BITS).unwrap();
    while !h.meets(&target) {
        h.nonce += 1;
    }
    ev.clear();
    s.on_message(
        SubmitSharesExtended {
            channel_id: ok.channel_id,
            sequence_number: 1,
            job_id: job.job_id,
            nonce: h.nonce,
            ntime: h.ntime,
            version: h.version,
            extranonce: B0_32::new(&extranonce).unwrap(),
        }
        .into(),
        &[],
        clock.now(),
        &mut ev,
    );
    let found = ev
        .iter()
        .find_map(|e| match e {
            Event::Block(f) => Some(f.clone()),
            _ => None,
        })
        .expect("block candidate");
    let mut raw = found.solution.header.to_vec();
    raw.push(1);
    raw.extend_from_slice(&found.solution.coinbase);
    let b: Block = deserialize(&raw).unwrap();
    assert!(b.check_merkle_root() && b.check_witness_commitment());

    // a wrong extranonce size is refused with the spec's code
    ev.clear();
    s.on_message(
        SubmitSharesExtended {
            channel_id: ok.channel_id,
            sequence_number: 2,
            job_id: job.job_id,
            nonce: h.nonce,
            ntime: h.ntime,
            version: h.version,
            extranonce: B0_32::new(&[1, 2, 3]).unwrap(),
        }
        .into(),
        &[],
        clock.now(),
        &mut ev,
    );
    let msgs = sent(&ev);
    let Message::Mining(MiningMessage::SubmitSharesError(e)) = &msgs[0] else {
        panic!()
    };
    assert_eq!(e.error_code.as_str(), "bad-extranonce-size");
}

#[test]
fn solo_mode_requires_an_address_and_pays_it() {
    let clock = Clock::new();
    let mut s = session(true);
    let mut ev = vec![];
    let mut w = (*work(1, template(1, 101, 0xaa))).clone();
    w.payouts = Payouts::Solo;
    s.on_work(Arc::new(w), clock.now(), &mut ev);
    s.on_message(setup(0), &[], clock.now(), &mut ev);
    ev.clear();
    s.on_message(
        open_standard(1, "not-an-address"),
        &[],
        clock.now(),
        &mut ev,
    );
    let msgs = sent(&ev);
    let Message::Mining(MiningMessage::OpenMiningChannelError(e)) = &msgs[0] else {
        panic!("expected OpenMiningChannel.Error")
    };
    assert_eq!(e.error_code.as_str(), "invalid-user-identity");
    ev.clear();
    let addr = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";
    s.on_message(
        open_standard(2, &format!("{addr}.rig1")),
        &[],
        clock.now(),
        &mut ev,
    );
    let mut miner = Miner::new();
    miner.feed(&sent(&ev));
    let channel = match &sent(&ev)[0] {
        Message::Mining(MiningMessage::OpenStandardMiningChannelSuccess(ok)) => ok.channel_id,
        m => panic!("{}", m.name()),
    };
    ev.clear();
    let share = miner.standard_share(channel, true);
    s.on_message(share.into(), &[], clock.now(), &mut ev);
    let found = ev
        .iter()
        .find_map(|e| match e {
            Event::Block(f) => Some(f.clone()),
            _ => None,
        })
        .expect("block");
    let mut raw = found.solution.header.to_vec();
    raw.push(1);
    raw.extend_from_slice(&found.solution.coinbase);
    let b: Block = deserialize(&raw).unwrap();
    let paid = bitcoin::Address::from_script(
        &b.txdata[0].output[0].script_pubkey,
        bitcoin::Network::Regtest,
    )
    .unwrap();
    assert_eq!(paid.to_string(), addr);
}

#[test]
fn protocol_violations_close_the_session() {
    let clock = Clock::new();
    // a share before SetupConnection
    let mut s = session(false);
    let mut ev = vec![];
    s.on_message(
        SubmitSharesStandard {
            channel_id: 1,
            sequence_number: 1,
            job_id: 1,
            nonce: 0,
            ntime: 0,
            version: 0,
        }
        .into(),
        &[],
        clock.now(),
        &mut ev,
    );
    assert!(matches!(ev.last(), Some(Event::Close(_))));
    assert!(s.is_closed());

    // a pool-to-miner message from the miner
    let mut s = session(false);
    let mut ev = vec![];
    s.on_message(setup(0), &[], clock.now(), &mut ev);
    s.on_message(
        Message::Common(CommonMessage::Reconnect(
            strata_protocol::common::Reconnect {
                new_host: Str0_255::default(),
                new_port: 0,
            },
        )),
        &[],
        clock.now(),
        &mut ev,
    );
    assert!(matches!(ev.last(), Some(Event::Close(_))));

    // template distribution instead of mining
    let mut s = session(false);
    let mut ev = vec![];
    let Message::Common(CommonMessage::SetupConnection(mut bad)) = setup(0) else {
        panic!()
    };
    bad.protocol = 2;
    s.on_message(bad.into(), &[], clock.now(), &mut ev);
    assert_eq!(names(&ev), ["SetupConnection.Error"]);
    assert!(s.is_closed());
}

/// Every `SetupConnection.protocol` but Mining is refused with `unsupported-protocol`: the
/// other two sub-protocols, 3 (listed in the spec's table as "Job Distribution", defined
/// nowhere) and the values no table lists.
#[test]
fn setup_for_another_or_no_sub_protocol_is_unsupported_protocol() {
    let clock = Clock::new();
    for protocol in [1, 2, 3, 4, 255] {
        let mut s = session(false);
        let mut ev = vec![];
        let Message::Common(CommonMessage::SetupConnection(mut bad)) = setup(0) else {
            panic!()
        };
        bad.protocol = protocol;
        s.on_message(bad.into(), &[], clock.now(), &mut ev);
        let sent = sent(&ev);
        let [Message::Common(CommonMessage::SetupConnectionError(e))] = &sent[..] else {
            panic!("protocol {protocol}: {sent:?}")
        };
        assert_eq!(
            e.error_code.as_str(),
            "unsupported-protocol",
            "protocol {protocol}"
        );
        assert_eq!(e.flags, 0);
        assert!(matches!(ev.last(), Some(Event::Close(_))));
        assert!(s.is_closed(), "protocol {protocol}");
    }
}

#[test]
fn update_channel_retargets_and_vardiff_follows_the_share_rate() {
    let mut clock = Clock::new();
    let mut s = session(false);
    let mut ev = vec![];
    s.on_work(work(1, template(1, 101, 0xaa)), clock.now(), &mut ev);
    s.on_message(setup(REQUIRES_STANDARD_JOBS), &[], clock.now(), &mut ev);
    s.on_message(open_standard(1, "alice"), &[], clock.now(), &mut ev);
    let mut miner = Miner::new();
    miner.feed(&sent(&ev));
    ev.clear();
    // 1 TH/s at 6 shares/min: a much harder target than the minimum
    s.on_message(
        UpdateChannel {
            channel_id: 1,
            nominal_hash_rate: 1e12,
            maximum_target: U256([0xff; 32]),
        }
        .into(),
        &[],
        clock.now(),
        &mut ev,
    );
    assert_eq!(names(&ev), ["SetTarget"]);
    let msgs = sent(&ev);
    let Message::Mining(MiningMessage::SetTarget(t)) = &msgs[0] else {
        panic!()
    };
    let d = Target::from_le_bytes(t.maximum_target.0).difficulty();
    assert!(
        (d / (1e12 * 10.0 / 4_294_967_296.0) - 1.0).abs() < 0.05,
        "difficulty {d}"
    );
    miner.feed(&msgs);
    // a silent channel: after the ramp-up checks, vardiff lowers the difficulty
    ev.clear();
    for _ in 0..20 {
        clock.advance(Duration::from_secs(60));
        s.on_tick(clock.now(), &mut ev);
    }
    let targets: Vec<f64> = sent(&ev)
        .iter()
        .filter_map(|m| match m {
            Message::Mining(MiningMessage::SetTarget(t)) => {
                Some(Target::from_le_bytes(t.maximum_target.0).difficulty())
            }
            _ => None,
        })
        .collect();
    assert!(
        !targets.is_empty() && targets.last().unwrap() < &d,
        "{targets:?}"
    );
}

#[test]
fn worker_tagged_shares_are_paid_to_the_channel_identity() {
    use strata_protocol::extensions::{RequestExtensions, FIELD_TYPE_USER_IDENTITY};
    use strata_protocol::{Tlv, EXTENSION_WORKER_HASHRATE};

    let clock = Clock::new();
    let mut s = session(false);
    let mut ev = vec![];
    s.on_work(work(1, template(1, 101, 0xaa)), clock.now(), &mut ev);
    s.on_message(setup(0), &[], clock.now(), &mut ev);
    s.on_message(
        RequestExtensions {
            request_id: 1,
            requested_extensions: vec![EXTENSION_WORKER_HASHRATE].try_into().unwrap(),
        }
        .into(),
        &[],
        clock.now(),
        &mut ev,
    );
    // a proxy whose identity is a bare address
    let identity = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";
    s.on_message(
        OpenExtendedMiningChannel {
            request_id: 2,
            user_identity: Str0_255::new(identity).unwrap(),
            nominal_hash_rate: 0.0,
            max_target: U256([0xff; 32]),
            min_extranonce_size: 8,
        }
        .into(),
        &[],
        clock.now(),
        &mut ev,
    );
    let msgs = sent(&ev);
    let ok = msgs
        .iter()
        .find_map(|m| match m {
            Message::Mining(MiningMessage::OpenExtendedMiningChannelSuccess(ok)) => Some(ok),
            _ => None,
        })
        .expect("channel opened");
    let job = msgs
        .iter()
        .find_map(|m| match m {
            Message::Mining(MiningMessage::NewExtendedMiningJob(j)) => Some(j),
            _ => None,
        })
        .expect("a job");
    let prev = msgs
        .iter()
        .find_map(|m| match m {
            Message::Mining(MiningMessage::SetNewPrevHash(p)) => Some(p),
            _ => None,
        })
        .expect("a tip");
    // a regtest share: every nonce that meets the channel's target also makes a block
    let extranonce = [7u8; 10];
    let mut cb = job.coinbase_tx_prefix.as_slice().to_vec();
    cb.extend_from_slice(ok.extranonce_prefix.as_slice());
    cb.extend_from_slice(&extranonce);
    cb.extend_from_slice(job.coinbase_tx_suffix.as_slice());
    let txid = bitcoin::hashes::sha256d::Hash::hash(&cb).to_byte_array();
    let mut h = Header {
        version: job.version,
        prev_hash: prev.prev_hash.0,
        merkle_root: txid,
        ntime: prev.min_ntime,
        nbits: prev.nbits,
        nonce: 0,
    };
    let target = Target::from_compact(REGTEST_BITS).unwrap();
    while !h.meets(&target) {
        h.nonce += 1;
    }
    // the worker's name has a dot, as SV1 worker names often do
    let mut tlvs = Vec::new();
    strata_protocol::tlv::encode_list(
        &[Tlv::new(
            EXTENSION_WORKER_HASHRATE,
            FIELD_TYPE_USER_IDENTITY,
            &b"rig.1"[..],
        )
        .unwrap()],
        &mut tlvs,
    );
    ev.clear();
    s.on_message(
        SubmitSharesExtended {
            channel_id: ok.channel_id,
            sequence_number: 1,
            job_id: job.job_id,
            nonce: h.nonce,
            ntime: h.ntime,
            version: h.version,
            extranonce: B0_32::new(&extranonce).unwrap(),
        }
        .into(),
        &tlvs,
        clock.now(),
        &mut ev,
    );
    let record = ev
        .iter()
        .find_map(|e| match e {
            Event::Accepted(a) => Some(a.0.clone()),
            _ => None,
        })
        .expect("share accepted");
    // statistics see the worker, PPLNS pays the channel
    assert_eq!(record.worker, format!("{identity}/rig.1"));
    assert_eq!(record.channel_identity, identity);
    let found = ev
        .iter()
        .find_map(|e| match e {
            Event::Block(f) => Some(f.clone()),
            _ => None,
        })
        .expect("block candidate");
    assert_eq!(found.worker, format!("{identity}/rig.1"));
}

/// SRI's `mining_device` opens its channel with an empty user identity (and panics when it is
/// refused): PPLNS takes it like any unpayable identity, solo still needs an address.
#[test]
fn empty_user_identity_opens_in_pplns_and_is_refused_in_solo() {
    let clock = Clock::new();
    for solo in [false, true] {
        let mut s = session(solo);
        let mut ev = vec![];
        let mut w = (*work(1, template(1, 101, 0xaa))).clone();
        if solo {
            w.payouts = Payouts::Solo;
        }
        s.on_work(Arc::new(w), clock.now(), &mut ev);
        s.on_message(setup(REQUIRES_STANDARD_JOBS), &[], clock.now(), &mut ev);
        ev.clear();
        s.on_message(open_standard(10, ""), &[], clock.now(), &mut ev);
        let msgs = sent(&ev);
        if solo {
            let Message::Mining(MiningMessage::OpenMiningChannelError(e)) = &msgs[0] else {
                panic!(
                    "solo: expected OpenMiningChannel.Error, got {}",
                    msgs[0].name()
                )
            };
            assert_eq!(e.error_code.as_str(), "invalid-user-identity");
            assert_eq!(s.channel_count(), 0);
            continue;
        }
        let channel = match &msgs[0] {
            Message::Mining(MiningMessage::OpenStandardMiningChannelSuccess(ok)) => ok.channel_id,
            m => panic!("pplns: expected the channel open, got {}", m.name()),
        };
        // it gets its job, and its shares are accepted under the empty identity
        let mut miner = Miner::new();
        miner.feed(&msgs);
        ev.clear();
        let share = miner.standard_share(channel, false);
        s.on_message(share.into(), &[], clock.now(), &mut ev);
        let (record, _) = ev
            .iter()
            .find_map(|e| match e {
                Event::Accepted(a) => Some((**a).clone()),
                _ => None,
            })
            .expect("share accepted");
        assert_eq!(record.channel_identity, "");
        assert_eq!(record.worker, "");
    }
}
