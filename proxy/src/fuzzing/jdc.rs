//! The `jdc_session` harness: the Job Declarator Client core ([`crate::jdc::Jdc`]) driven by
//! a script of JDS frames, scripted JDS answers (tokens, declaration results), templates,
//! upstream events (the pool active, channels, custom job answers, the pool down), hub
//! commands, shares and time.
//!
//! Invariants checked (beyond "no panic"):
//!
//! * the hub's epochs never go back; every `Active` starts a new one; every `Work` and
//!   channel event carries the latest;
//! * every share handed in gets exactly one answer (a `ShareResult` to the hub) or goes into
//!   the pool's share queue, never both;
//! * nothing is sent to the JDS unless its connection is up (connected, not closed since);
//! * custom jobs name the pool's current epoch;
//! * a block is only submitted for a share whose header meets its template's target;
//! * the next timer is always after `now`.
//!
//! Script: the first byte's top bit picks Coinbase-only mode (else Full-Template); then an
//! operation byte (taken modulo 13) and its arguments: 0 JDS frame bytes (a length, then
//! the bytes); 1 a template (its tip and transaction count from the next byte); 2 the JDS
//! connection up (once asked for); 3 it goes down; 4 the pool active (a new epoch; the next
//! byte sets its extranonce prefix length); 5 a further channel open; 6 the pool down; 7
//! the pool's answer to the last custom job (accepted, or refused for its tip); 8 the hub
//! wants more channels; 9 a share on a channel's work (channel, nonce); 10 time passes
//! (the next byte times 50 ms); 11 the JDS's answer to the last declaration (accepted,
//! stale tip, invalid coinbase); 12 `SetupConnection.Success`, then (when repeated) a token
//! for every request.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bitcoin::consensus::serialize;
use bitcoin::hashes::Hash;
use bitcoin::{
    absolute, transaction, Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Witness,
};
use bytes::{Bytes, BytesMut};
use strata_protocol::common::{CommonMessage, SetupConnectionSuccess};
use strata_protocol::job_declaration::{
    AllocateMiningJobTokenSuccess, DeclareMiningJobError, DeclareMiningJobSuccess,
    JobDeclarationMessage as J, ERROR_INVALID_COINBASE_TX, ERROR_STALE_CHAIN_TIP,
};
use strata_protocol::wire::{Str0_255, B0_255, B0_64K};
use strata_protocol::{FrameDecoder, Message};
use strata_template::Template;
use strata_work::coinbase::bip34_height_push;
use strata_work::extranonce::MinerId;
use strata_work::header::Header;
use strata_work::merkle::merkle_path_for_coinbase;
use strata_work::target::Target;
use tokio::sync::mpsc;

use super::{chunk, decode_all, next, MAX_FRAME};
use crate::jdc::{Action, DeclareMode, Input, Jdc, JdcConfig, NodeTemplate};
use crate::upstream::{ShareRoute, UpstreamCommand, UpstreamEvent};
use crate::work::{ForwardShare, UpstreamWork};

/// What a script produced (for the committed seeds' expectations).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outcomes {
    /// `Active` events to the hub whose pool was the pool (index 0).
    pub pool_actives: u32,
    /// `Active` events to the hub for the solo upstream.
    pub solo_actives: u32,
    /// DeclareMiningJob sent.
    pub declarations: u32,
    /// SetCustomMiningJob sent.
    pub custom_jobs: u32,
    /// Blocks submitted to the farm's node.
    pub blocks: u32,
    /// Shares that went into the pool's queue.
    pub forwarded: u32,
}

/// A regtest-like transaction `n`.
pub fn mempool_tx(n: u8) -> Transaction {
    Transaction {
        version: transaction::Version::TWO,
        lock_time: absolute::LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint::new(bitcoin::Txid::from_byte_array([n; 32]), 0),
            script_sig: ScriptBuf::new(),
            sequence: Sequence::MAX,
            witness: Witness::from_slice(&[[n; 4]]),
        }],
        output: vec![TxOut {
            value: Amount::from_sat(1_000),
            script_pubkey: ScriptBuf::from_bytes(vec![0x51]),
        }],
    }
}

/// Template `id` on tip `[prev; 32]` with `txs` transactions, at regtest difficulty.
pub fn template(id: u64, prev: u8, txs: u8) -> Arc<NodeTemplate> {
    let txs: Vec<Transaction> = (0..txs).map(mempool_tx).collect();
    let txids: Vec<[u8; 32]> = txs
        .iter()
        .map(|t| t.compute_txid().to_byte_array())
        .collect();
    Arc::new(NodeTemplate {
        template: Template {
            id,
            height: 200,
            prev_hash: [prev; 32],
            version: 0x2000_0000,
            nbits: 0x207f_ffff,
            min_ntime: 1_700_000_000,
            coinbase_tx_version: 2,
            coinbase_prefix: bip34_height_push(200),
            coinbase_tx_input_sequence: u32::MAX,
            coinbase_tx_value_remaining: 25 * 100_000_000 + 5_000,
            coinbase_tx_outputs: Vec::new(),
            coinbase_tx_locktime: 0,
            merkle_path: merkle_path_for_coinbase(&txids),
            tx_count: txids.len() as u32,
        },
        transactions: Some(txs.into_iter().map(Arc::new).collect()),
    })
}

/// The pool's required output of every token.
pub fn required() -> Vec<TxOut> {
    vec![TxOut {
        value: Amount::from_sat(25 * 100_000_000),
        script_pubkey: ScriptBuf::from_bytes(
            vec![0x00, 0x14].into_iter().chain([0xbb; 20]).collect(),
        ),
    }]
}

/// The harness's view of the core's output.
struct View {
    hub_epoch: u64,
    pool_epoch: Option<u64>,
    jds_up: bool,
    /// SetupConnection.Success given on the current connection.
    setup_done: bool,
    connect_asked: bool,
    /// AllocateMiningJobToken request ids not answered yet.
    token_requests: Vec<u32>,
    /// DeclareMiningJob request ids not answered yet.
    declarations: Vec<u32>,
    /// SetCustomMiningJob (channel, request id) not answered yet.
    custom: Vec<(usize, u32)>,
    /// The latest work of each channel.
    works: Vec<Option<UpstreamWork>>,
    /// Shares handed in and not answered.
    pending: u32,
    outcomes: Outcomes,
}

impl View {
    fn take(&mut self, out: &mut Vec<Action>, templates: &[Arc<NodeTemplate>]) {
        for a in out.drain(..) {
            match a {
                Action::ToHub(ev) => self.hub(ev),
                Action::ToUpstream(UpstreamCommand::SetCustomJob {
                    epoch,
                    channel,
                    job,
                }) => {
                    assert_eq!(Some(epoch), self.pool_epoch, "custom job of another epoch");
                    self.custom.push((channel, job.request_id));
                    self.outcomes.custom_jobs += 1;
                }
                Action::ToUpstream(_) => {}
                Action::ConnectJds => self.connect_asked = true,
                Action::ToJds(m) => {
                    assert!(self.jds_up, "{} to a JDS not connected", m.name());
                    match m {
                        Message::JobDeclaration(J::AllocateMiningJobToken(t)) => {
                            self.token_requests.push(t.request_id)
                        }
                        Message::JobDeclaration(J::DeclareMiningJob(d)) => {
                            self.declarations.push(d.request_id);
                            self.outcomes.declarations += 1;
                        }
                        _ => {}
                    }
                }
                Action::CloseJds(_) => {
                    self.jds_up = false;
                    self.token_requests.clear();
                    self.declarations.clear();
                }
                Action::SubmitBlock(s) => {
                    let t = templates
                        .iter()
                        .find(|t| t.template.id == s.template_id)
                        .expect("a block of a known template");
                    let target = Target::from_compact(t.template.nbits).expect("nbits");
                    let header = Header::from_bytes(&s.header);
                    assert!(header.meets(&target), "a block above the target");
                    self.outcomes.blocks += 1;
                }
            }
        }
    }

    fn hub(&mut self, ev: UpstreamEvent) {
        match ev {
            UpstreamEvent::Active { epoch, pool, .. } => {
                assert!(
                    epoch > self.hub_epoch,
                    "epoch {epoch} after {}",
                    self.hub_epoch
                );
                self.hub_epoch = epoch;
                self.works.iter_mut().for_each(|w| *w = None);
                if pool == 0 {
                    self.outcomes.pool_actives += 1;
                } else {
                    self.outcomes.solo_actives += 1;
                }
            }
            UpstreamEvent::Work { channel, work } => {
                assert_eq!(work.epoch, self.hub_epoch, "work of another epoch");
                if self.works.len() <= channel {
                    self.works.resize(channel + 1, None);
                }
                self.works[channel] = Some(work);
            }
            UpstreamEvent::ChannelOpened { epoch, .. }
            | UpstreamEvent::ChannelRefused { epoch, .. }
            | UpstreamEvent::ExtranoncePrefix { epoch, .. } => {
                assert_eq!(epoch, self.hub_epoch, "channel event of another epoch");
            }
            UpstreamEvent::ShareResult { .. } => {
                assert!(self.pending > 0, "a share answered twice");
                self.pending -= 1;
            }
            UpstreamEvent::CustomJob { .. } => panic!("custom job answers are not the hub's"),
            UpstreamEvent::Down { .. } => {}
        }
    }
}

/// Runs one script (see the module docs).
pub fn session(data: &[u8]) -> Outcomes {
    let start = Instant::now();
    let mut now = start;
    let (route, _own) = ShareRoute::channel(0, 64);
    let mode = if data.first().is_some_and(|b| b & 0x80 != 0) {
        DeclareMode::CoinbaseOnly
    } else {
        DeclareMode::FullTemplate
    };
    let cfg = JdcConfig {
        mode,
        solo_script: ScriptBuf::from_bytes(vec![0x51]),
        ..JdcConfig::default()
    };
    let mut jdc = Jdc::new(cfg, route, 1, now);
    let mut view = View {
        hub_epoch: 0,
        pool_epoch: None,
        jds_up: false,
        setup_done: false,
        connect_asked: false,
        token_requests: Vec::new(),
        declarations: Vec::new(),
        custom: Vec::new(),
        works: Vec::new(),
        pending: 0,
        outcomes: Outcomes::default(),
    };
    let mut templates: Vec<Arc<NodeTemplate>> = Vec::new();
    let mut pool_shares: Option<mpsc::Receiver<ForwardShare>> = None;
    let mut decoder = FrameDecoder::new(MAX_FRAME);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut pool_epoch = 0u64;
    let mut i = 1;
    jdc.on_timer(now, &mut out);
    view.take(&mut out, &templates);
    while i < data.len() {
        let op = next(data, &mut i);
        let mut inputs: Vec<Input> = Vec::new();
        match op % 13 {
            0 => {
                for m in decode_all(&mut decoder, &mut buf, chunk(data, &mut i)) {
                    inputs.push(Input::JdsMessage(m));
                }
            }
            1 => {
                let n = next(data, &mut i);
                let t = template(templates.len() as u64 + 1, n / 4, n % 4);
                templates.push(t.clone());
                inputs.push(Input::Template(t));
            }
            2 if view.connect_asked => {
                view.connect_asked = false;
                view.jds_up = true;
                view.setup_done = false;
                inputs.push(Input::JdsConnected);
            }
            3 if view.jds_up => {
                view.jds_up = false;
                inputs.push(Input::JdsDown("fuzz".into()));
            }
            4 => {
                let n = usize::from(next(data, &mut i) % 9);
                pool_epoch += 1;
                let (route, rx) = ShareRoute::channel(pool_epoch, 64);
                pool_shares = Some(rx);
                view.pool_epoch = Some(pool_epoch);
                inputs.push(Input::Upstream(UpstreamEvent::Active {
                    epoch: pool_epoch,
                    route,
                    pool: 0,
                    url: "pool".into(),
                    channel_id: 1,
                    extranonce_prefix: Bytes::from(vec![7; n]),
                    extranonce_size: 8,
                    target: Target::MAX,
                }));
            }
            5 => {
                let c = usize::from(next(data, &mut i) % 4);
                inputs.push(Input::Upstream(UpstreamEvent::ChannelOpened {
                    epoch: pool_epoch,
                    channel: c,
                    channel_id: c as u32 + 1,
                    extranonce_prefix: Bytes::from(vec![c as u8; 4]),
                    extranonce_size: 8,
                    target: Target::MAX,
                }));
            }
            6 => {
                view.pool_epoch = None;
                inputs.push(Input::Upstream(UpstreamEvent::Down {
                    pool: 0,
                    url: "pool".into(),
                    reason: "fuzz".into(),
                    was_active: true,
                }));
            }
            7 => {
                let r = next(data, &mut i);
                if let Some((channel, request_id)) = view.custom.pop() {
                    let result = match r % 3 {
                        0 | 1 => Ok(u32::from(r) + 1),
                        _ => Err("invalid-job-param-value-prev_hash".to_string()),
                    };
                    inputs.push(Input::Upstream(UpstreamEvent::CustomJob {
                        epoch: pool_epoch,
                        channel,
                        request_id,
                        result,
                    }));
                }
            }
            8 => {
                let n = usize::from(next(data, &mut i) % 4) + 1;
                inputs.push(Input::Command(UpstreamCommand::Channels(n)));
            }
            9 => {
                let c = usize::from(next(data, &mut i) % 4);
                let nonce = u32::from(next(data, &mut i));
                if let Some(Some(w)) = view.works.get(c) {
                    view.pending += 1;
                    inputs.push(Input::Share(share(c, w, nonce)));
                }
            }
            10 => {
                now += Duration::from_millis(u64::from(next(data, &mut i)) * 50);
                jdc.on_timer(now, &mut out);
            }
            11 if view.jds_up => {
                let r = next(data, &mut i);
                if let Some(request_id) = view.declarations.pop() {
                    let m: Message = match r % 4 {
                        0 | 1 => DeclareMiningJobSuccess {
                            request_id,
                            new_mining_job_token: B0_255::new(vec![r; 8]).expect("8 bytes"),
                        }
                        .into(),
                        2 => error(request_id, ERROR_STALE_CHAIN_TIP),
                        _ => error(request_id, ERROR_INVALID_COINBASE_TX),
                    };
                    inputs.push(Input::JdsMessage(m));
                }
            }
            12 if view.jds_up && !view.setup_done => {
                view.setup_done = true;
                let setup = SetupConnectionSuccess {
                    used_version: 2,
                    flags: 1,
                };
                inputs.push(Input::JdsMessage(Message::Common(
                    CommonMessage::SetupConnectionSuccess(setup),
                )));
            }
            12 if view.jds_up => {
                for request_id in std::mem::take(&mut view.token_requests) {
                    inputs.push(Input::JdsMessage(
                        AllocateMiningJobTokenSuccess {
                            request_id,
                            mining_job_token: B0_255::new(request_id.to_le_bytes().repeat(2))
                                .expect("8 bytes"),
                            coinbase_tx_outputs: B0_64K::new(serialize(&required()))
                                .expect("small"),
                        }
                        .into(),
                    ));
                }
            }
            _ => {}
        }
        for input in inputs {
            if !view.jds_up && matches!(input, Input::JdsMessage(_)) {
                continue;
            }
            jdc.handle(input, now, &mut out);
            view.take(&mut out, &templates);
        }
        view.take(&mut out, &templates);
        if let Some(rx) = pool_shares.as_mut() {
            while rx.try_recv().is_ok() {
                assert!(view.pending > 0, "a share forwarded and answered");
                view.pending -= 1;
                view.outcomes.forwarded += 1;
            }
        }
        assert_eq!(view.pending, 0, "a share neither answered nor forwarded");
        if let Some(t) = jdc.next_wake() {
            assert!(t > now, "the next timer is not after now");
        }
    }
    view.outcomes
}

fn error(request_id: u32, code: &str) -> Message {
    DeclareMiningJobError {
        request_id,
        error_code: Str0_255::truncated(code),
        error_details: B0_64K::default(),
    }
    .into()
}

/// A share on `w` whose extranonce fills the work's room.
fn share(channel: usize, w: &UpstreamWork, nonce: u32) -> ForwardShare {
    // about half the nonces make a block at the templates' regtest difficulty
    let extranonce = vec![nonce as u8; usize::from(w.extranonce_size)];
    ForwardShare {
        channel,
        miner: MinerId(1),
        worker: "fuzz".into(),
        epoch: w.epoch,
        job_id: w.job_id,
        nonce,
        ntime: w.min_ntime,
        version: w.version,
        extranonce: Bytes::from(extranonce),
        difficulty: 1.0,
        received: Instant::now(),
    }
}
