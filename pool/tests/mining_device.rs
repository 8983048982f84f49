//! SRI's `mining_device` (roles/test-utils) against the pool on its embedded regtest chain,
//! replayed with the pool's own parts: the pool's `Session` fed with templates of a fresh
//! embedded chain, and a device that behaves as that one does (docs/spec-vs-sri.md, "SRI's
//! mining_device"):
//!
//! * `SetupConnection` with `REQUIRES_STANDARD_JOBS`, one standard channel with an empty
//!   user identity and `max_target = u256_from_int(567)`;
//! * on each job (a future job activated by `SetNewPrevHash`, or an active `NewMiningJob`) it
//!   writes the clock plus 60 s into nTime, once, and never looks at `min_ntime`;
//! * it submits every nonce that meets its target, all with that nTime.
//!
//! On regtest every share is a block. The first block's time is the device's clock + 60 s,
//! and on a chain that short the median time past is that block's time: the next template's
//! `min_ntime` (median time past + 1) is above what the device writes when it gets the job
//! within the same second. Such a header can never be a valid block, so the pool refuses
//! the share, now as `ntime-too-early` (it said `invalid-share`). Payout mode plays no part:
//! solo refuses the same share (a chain whose last blocks are older, as after earlier runs,
//! keeps the median time past below the device's clock + 60 s, which is how the same device
//! mined block after block in a solo run).
#![cfg(feature = "embedded")]
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bitcoin::ScriptBuf;
use strata_pool::payout::Split;
use strata_pool::server::session::{Event, Now, Payouts, Session, SessionConfig, Work};
use strata_pool::template::embedded::{EmbeddedConfig, EmbeddedSource};
use strata_pool::template::{SubmitOutcome, Template, TemplateSource};
use strata_protocol::common::SetupConnection;
use strata_protocol::mining::{
    MiningMessage, NewMiningJob, OpenStandardMiningChannel, SubmitSharesStandard,
    ERROR_NTIME_TOO_EARLY, REQUIRES_STANDARD_JOBS,
};
use strata_protocol::wire::{Str0_255, U256};
use strata_protocol::Message;
use strata_work::header::Header;
use strata_work::target::Target;

const WAIT: Duration = Duration::from_secs(60);

/// SRI's `u256_from_int(567)`: 24 zero bytes, then 567 as a little-endian u64.
fn sri_max_target() -> U256 {
    let mut b = [0u8; 32];
    b[24..].copy_from_slice(&567u64.to_le_bytes());
    U256(b)
}

/// What the device holds: its channel, the future jobs, the prevhash, the header it hashes.
#[derive(Default)]
struct Device {
    channel: u32,
    future: Vec<NewMiningJob>,
    prev: Option<([u8; 32], u32)>,
    /// (job id, header) of the job being mined.
    work: Option<(u32, Header)>,
    seq: u32,
}

impl Device {
    /// Takes what the pool sent, with the device's clock at receipt (`clock`, unix seconds).
    fn feed(&mut self, events: &[Event], clock: u32) {
        for e in events {
            let Event::Send(Message::Mining(m)) = e else {
                continue;
            };
            match m {
                MiningMessage::OpenStandardMiningChannelSuccess(s) => self.channel = s.channel_id,
                MiningMessage::NewMiningJob(j) if j.min_ntime.is_none() => {
                    self.future.push(j.clone())
                }
                MiningMessage::NewMiningJob(j) => {
                    let (prev_hash, nbits) = self.prev.expect("a prevhash first");
                    self.work = Some((j.job_id, header(j, prev_hash, nbits, clock)));
                }
                MiningMessage::SetNewPrevHash(p) => {
                    self.prev = Some((p.prev_hash.0, p.nbits));
                    if let Some(j) = self.future.iter().find(|j| j.job_id == p.job_id) {
                        self.work = Some((j.job_id, header(j, p.prev_hash.0, p.nbits, clock)));
                    }
                    self.future.clear();
                }
                _ => {}
            }
        }
    }

    /// The next nonce that meets the network target (every share is a block on regtest).
    fn share(&mut self) -> SubmitSharesStandard {
        let (job_id, h) = self.work.as_mut().expect("a job");
        let target = Target::from_compact(h.nbits).unwrap();
        loop {
            h.nonce += 1;
            if h.meets(&target) {
                break;
            }
        }
        self.seq += 1;
        SubmitSharesStandard {
            channel_id: self.channel,
            sequence_number: self.seq,
            job_id: *job_id,
            nonce: h.nonce,
            ntime: h.ntime,
            version: h.version,
        }
    }
}

/// The device's header for a job received at `clock`: nTime = clock + 60, whatever the job's
/// `min_ntime`.
fn header(j: &NewMiningJob, prev_hash: [u8; 32], nbits: u32, clock: u32) -> Header {
    Header {
        version: j.version,
        prev_hash,
        merkle_root: j.merkle_root.0,
        ntime: clock + 60,
        nbits,
        nonce: 0,
    }
}

fn unix_now() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32
}

fn work(seq: u64, t: Template, solo: bool) -> Arc<Work> {
    let payouts = if solo {
        Payouts::Solo
    } else {
        Payouts::Shared(Arc::new(Split {
            outputs: vec![bitcoin::TxOut {
                value: bitcoin::Amount::from_sat(t.coinbase_tx_value_remaining),
                script_pubkey: pool_script(),
            }],
            ..Split::default()
        }))
    };
    Arc::new(Work {
        seq,
        template: Arc::new(t),
        payouts,
        window: None,
        shared_coinbase: Default::default(),
    })
}

fn pool_script() -> ScriptBuf {
    ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::from_raw_hash(
        bitcoin::hashes::Hash::from_byte_array([0x11; 20]),
    ))
}

fn refusal(events: &[Event]) -> Option<String> {
    events.iter().find_map(|e| match e {
        Event::Send(Message::Mining(MiningMessage::SubmitSharesError(err))) => {
            Some(err.error_code.as_str().to_string())
        }
        _ => None,
    })
}

/// One run on a fresh chain: the first share is a block, the share the device sends for the
/// next job (received within the same second) is refused as `ntime-too-early`, and a job it
/// receives a second later is mined again.
async fn first_block_then_ntime_too_early(solo: bool, identity: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut source = EmbeddedSource::open(dir.path(), EmbeddedConfig::default()).unwrap();
    let mono = Instant::now();
    // the device's clock: the second it gets its jobs in
    let clock = unix_now();
    let now = Now {
        mono,
        unix_ms: u64::from(clock) * 1000,
    };
    let mut cfg = SessionConfig::regtest(pool_script());
    cfg.solo = solo;
    let mut s = Session::new(1, Arc::new(cfg));
    let mut device = Device::default();
    let mut ev = vec![];

    let t1 = tokio::time::timeout(WAIT, source.next_template())
        .await
        .unwrap()
        .unwrap();
    s.on_work(work(1, t1, solo), now, &mut ev);
    let setup = SetupConnection {
        protocol: 0,
        min_version: 2,
        max_version: 2,
        flags: REQUIRES_STANDARD_JOBS,
        endpoint_host: Str0_255::new("127.0.0.1").unwrap(),
        endpoint_port: 34254,
        vendor: Str0_255::default(),
        hardware_version: Str0_255::default(),
        firmware: Str0_255::default(),
        device_id: Str0_255::default(),
    };
    s.on_message(setup.into(), &[], now, &mut ev);
    let open = OpenStandardMiningChannel {
        request_id: 10,
        user_identity: Str0_255::new(identity).unwrap(),
        nominal_hash_rate: 5e6,
        max_target: sri_max_target(),
    };
    s.on_message(open.into(), &[], now, &mut ev);
    device.feed(&ev, clock);
    assert!(device.channel != 0, "channel opened");

    // share 1: a block on genesis, nTime = clock + 60
    ev.clear();
    s.on_message(device.share().into(), &[], now, &mut ev);
    let found = ev
        .iter()
        .find_map(|e| match e {
            Event::Block(b) => Some(b.clone()),
            _ => None,
        })
        .expect("the first share is a block");
    assert!(ev.iter().any(|e| matches!(e, Event::Accepted(_))));
    let outcome = tokio::time::timeout(WAIT, source.submit(found.solution.clone()))
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(outcome, SubmitOutcome::Accepted { .. }),
        "{outcome:?}"
    );

    // the next template: median time past of [genesis, block 1] is block 1's time
    let t2 = tokio::time::timeout(WAIT, source.next_template())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(t2.height, 2);
    assert_eq!(
        t2.min_ntime,
        clock + 61,
        "min_ntime is the first block's time + 1"
    );
    ev.clear();
    s.on_work(work(2, t2.clone(), solo), now, &mut ev);
    device.feed(&ev, clock);
    ev.clear();
    let share = device.share();
    assert_eq!(
        share.ntime,
        clock + 60,
        "at the median time past: no valid block"
    );
    s.on_message(share.into(), &[], now, &mut ev);
    assert_eq!(refusal(&ev).as_deref(), Some(ERROR_NTIME_TOO_EARLY));
    // every later nonce of that job carries the same nTime: refused alike
    ev.clear();
    s.on_message(device.share().into(), &[], now, &mut ev);
    assert_eq!(refusal(&ev).as_deref(), Some(ERROR_NTIME_TOO_EARLY));

    // a job received a second later (a template refresh) is mined again
    let later = Now {
        mono: mono + Duration::from_secs(1),
        unix_ms: u64::from(clock + 1) * 1000,
    };
    let mut t3 = t2;
    t3.id += 1;
    ev.clear();
    s.on_work(work(3, t3, solo), later, &mut ev);
    device.feed(&ev, clock + 1);
    ev.clear();
    s.on_message(device.share().into(), &[], later, &mut ev);
    assert_eq!(refusal(&ev), None);
    assert!(ev.iter().any(|e| matches!(e, Event::Block(_))));
}

#[tokio::test]
async fn pplns_refuses_the_devices_share_below_min_ntime_with_a_precise_code() {
    // PPLNS, with the device's empty user identity
    first_block_then_ntime_too_early(false, "").await;
}

#[tokio::test]
async fn solo_refuses_the_same_share_alike() {
    first_block_then_ntime_too_early(true, "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080").await;
}
