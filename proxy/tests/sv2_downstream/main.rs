//! The SV2 downstream (SV2 firmware behind the proxy): the sans-IO session driven by hand
//! with synthetic upstream work, a miner mirror built from strata-work's client-side
//! channels and an upstream-side extended channel that checks every forwarded share; then
//! the tokio task over 127.0.0.1 with a fake hub and the workspace's simulated SV2 miner.
#![allow(clippy::unwrap_used)]

#[path = "../upstream_view/mod.rs"]
mod upstream_view;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use strata_miner::pace::Pacing;
use strata_miner::report::{Reporter, Sink};
use strata_miner::shell::{run_sv2, Endpoint, Sv2Connect};
use strata_miner::sv2::{ChannelRequest, Sv2Config, Sv2Miner};
use strata_net::sv2::Sv2Options;
use strata_noise::{AuthorityKeypair, Certificate, PublicKey, Responder, StaticKeypair};
use strata_protocol::common::{CommonMessage, SetupConnection};
use strata_protocol::mining::{
    MiningMessage, OpenExtendedMiningChannel, OpenStandardMiningChannel, SubmitSharesExtended,
    SubmitSharesStandard, UpdateChannel, REQUIRES_WORK_SELECTION,
};
use strata_protocol::wire::{Str0_255, B0_32, U256};
use strata_protocol::Message;
use strata_proxy::downstream::sv2::{Action, Now, Sv2DownConfig, Sv2DownSession};
use strata_proxy::downstream::sv2_conn::{listen_sv2, Sv2DownContext};
use strata_proxy::hub::{HubHandle, HubRequest, JoinError, Joined, MinerReport, Slot};
use strata_proxy::work::{ForwardShare, UpstreamWork};
use strata_work::channel::ExtendedWork;
use strata_work::channel::{Channel, ChannelConfig, Channels};
use strata_work::extranonce::MinerId;
use strata_work::header::Header;
use strata_work::target::{hashrate_from_target, Target};
use strata_work::vardiff::VardiffConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use upstream_view::upstream_channel;

mod conn;
mod extended;
mod setup;
mod shares;
mod work;

/// Mainnet-like nBits: no test share is a block.
const HARD_BITS: u32 = 0x1d00_ffff;
const MIN_NTIME: u32 = 1_700_000_000;
const MINER: MinerId = MinerId(0x0102);

fn upstream_target() -> Target {
    // about 4096 hashes per upstream share
    Target::from_difficulty(2f64.powi(-20)).unwrap()
}

fn work(epoch: u64, seq: u64, job_id: u32, prev: u8, prefix: &[u8], clean: bool) -> UpstreamWork {
    UpstreamWork {
        epoch,
        seq,
        job_id,
        version: 0x2000_0000,
        version_rolling_allowed: true,
        version_mask: 0x1fff_e000,
        prev_hash: [prev; 32],
        nbits: HARD_BITS,
        min_ntime: MIN_NTIME,
        coinbase_prefix: Bytes::from_static(b"\x02\x00\x00\x00\x01coinbase-prefix"),
        coinbase_suffix: Bytes::from_static(b"coinbase-suffix\x00\x00\x00\x00"),
        merkle_path: Arc::from(vec![[0x11u8; 32], [0x22u8; 32]]),
        extended: ExtendedWork::new(
            Bytes::from_static(b"\x02\x00\x00\x00\x01coinbase-prefix"),
            Bytes::from_static(b"coinbase-suffix\x00\x00\x00\x00"),
            Arc::from(vec![[0x11u8; 32], [0x22u8; 32]]),
        ),
        extranonce_prefix: Bytes::copy_from_slice(prefix),
        extranonce_size: 8,
        id_width: 2,
        extranonce2_size: 6,
        upstream_target: upstream_target(),
        clean,
        route: None,
    }
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
}

fn config() -> Arc<Sv2DownConfig> {
    Arc::new(Sv2DownConfig {
        // channels start at about 64 hashes per share (nominal hashrate 0 = minimum)
        vardiff: VardiffConfig {
            min_difficulty: 2f64.powi(-26),
            ..VardiffConfig::default()
        },
        ..Sv2DownConfig::default()
    })
}

fn peer() -> SocketAddr {
    "192.168.1.20:4000".parse().unwrap()
}

fn setup(flags: u32) -> Message {
    SetupConnection {
        protocol: 0,
        min_version: 2,
        max_version: 2,
        flags,
        endpoint_host: Str0_255::new("proxy").unwrap(),
        endpoint_port: 3336,
        vendor: Str0_255::new("bitmain").unwrap(),
        hardware_version: Str0_255::new("S21").unwrap(),
        firmware: Str0_255::new("sv2-fw 1.0").unwrap(),
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

fn sent(actions: &[Action]) -> Vec<Message> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

fn names(actions: &[Action]) -> Vec<&'static str> {
    sent(actions).iter().map(Message::name).collect()
}

fn forwards(actions: &[Action]) -> Vec<ForwardShare> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Forward(f) => Some(f.clone()),
            _ => None,
        })
        .collect()
}

fn error_codes(actions: &[Action]) -> Vec<String> {
    sent(actions)
        .iter()
        .filter_map(|m| match m {
            Message::Mining(MiningMessage::SubmitSharesError(e)) => {
                Some(e.error_code.as_str().to_string())
            }
            _ => None,
        })
        .collect()
}

/// The miner's view: client-side channels fed with what the proxy sent.
struct Miner {
    channels: Channels,
    seq: u32,
    start_nonce: u32,
}

impl Miner {
    fn new() -> Self {
        Miner {
            channels: Channels::new(),
            seq: 0,
            start_nonce: 0,
        }
    }

    fn feed(&mut self, actions: &[Action]) {
        for m in sent(actions) {
            let Message::Mining(mm) = m else { continue };
            match mm {
                MiningMessage::OpenStandardMiningChannelSuccess(s) => {
                    assert_eq!(s.group_channel_id, 0);
                    let c = Channel::new_standard(
                        s.channel_id,
                        s.extranonce_prefix.as_slice(),
                        Target::from_le_bytes(s.target.0),
                        ChannelConfig::default(),
                    )
                    .unwrap();
                    self.channels.insert(c).unwrap();
                }
                MiningMessage::OpenExtendedMiningChannelSuccess(s) => {
                    assert_eq!(s.group_channel_id, 0);
                    let c = Channel::new_extended(
                        s.channel_id,
                        s.extranonce_prefix.as_slice(),
                        u8::try_from(s.extranonce_size).unwrap(),
                        Target::from_le_bytes(s.target.0),
                        ChannelConfig::default(),
                    )
                    .unwrap();
                    self.channels.insert(c).unwrap();
                }
                MiningMessage::NewMiningJob(j) => self.channels.on_new_mining_job(&j).unwrap(),
                MiningMessage::NewExtendedMiningJob(j) => {
                    self.channels.on_new_extended_mining_job(&j).unwrap()
                }
                MiningMessage::SetNewPrevHash(p) => self.channels.on_set_new_prev_hash(&p).unwrap(),
                MiningMessage::SetTarget(t) => self.channels.on_set_target(&t).unwrap(),
                MiningMessage::SetExtranoncePrefix(p) => {
                    self.channels.on_set_extranonce_prefix(&p).unwrap()
                }
                _ => {}
            }
        }
    }

    /// A share on the channel's active job at the channel's target; `upstream`: whether its
    /// hash must (or must not) also meet the upstream target.
    fn share(&mut self, channel_id: u32, upstream: Option<bool>) -> SubmitSharesStandard {
        let c = self.channels.get(channel_id).unwrap();
        let job = c.active_job().unwrap();
        let prev = *c.prev_hash().unwrap();
        let mut h = Header {
            version: job.version() | 0x0000_2000,
            prev_hash: prev.prev_hash,
            merkle_root: job.merkle_root(),
            ntime: job.min_ntime().unwrap(),
            nbits: prev.nbits,
            nonce: self.start_nonce,
        };
        loop {
            if h.meets(&job.target())
                && upstream.is_none_or(|want| h.meets(&upstream_target()) == want)
            {
                break;
            }
            h.nonce += 1;
        }
        self.start_nonce = h.nonce + 1;
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

fn validate_upstream(c: &mut Channel, f: &ForwardShare, seq: u32) {
    let share = SubmitSharesExtended {
        channel_id: 1,
        sequence_number: seq,
        job_id: f.job_id,
        nonce: f.nonce,
        ntime: f.ntime,
        version: f.version,
        extranonce: B0_32::new(&f.extranonce).unwrap(),
    };
    let r = strata_work::share::validate_extended(c, &share, 1_700_000_100_000);
    assert!(r.is_ok(), "upstream refused the forwarded share: {r:?}");
}

/// A ready session with channels opened for `users`, on `w`.
fn ready_session(
    clock: &Clock,
    w: &UpstreamWork,
    users: &[&str],
    miner: &mut Miner,
) -> Sv2DownSession {
    let mut s = Sv2DownSession::new(peer(), config(), clock.now());
    let mut out = vec![];
    s.on_work(Some(Arc::new(w.clone())), &mut out);
    s.on_message(setup(0), clock.now(), &mut out);
    assert_eq!(names(&out), ["SetupConnection.Success"]);
    out.clear();
    for (i, u) in users.iter().enumerate() {
        s.on_message(open_standard(i as u32 + 1, u), clock.now(), &mut out);
    }
    assert_eq!(
        out,
        vec![Action::Join],
        "one join per connection, opens wait"
    );
    out.clear();
    s.on_slot(Ok(Slot { miner: MINER }), &mut out);
    let per_channel = [
        "OpenStandardMiningChannel.Success",
        "NewMiningJob",
        "SetNewPrevHash",
    ];
    assert_eq!(names(&out), per_channel.repeat(users.len()));
    miner.feed(&out);
    s
}
