//! One miner connection: the SV2 mining-server core ([`strata_server::ServerCore`]) with the
//! pool's work and share sink. No I/O, time passed in. The connection task ([`super::conn`])
//! wraps it.
//!
//! ```text
//!   AwaitSetup --SetupConnection(mining, v2)--> Ready --(protocol violation)--> Closed
//!        \--anything else / unsupported------------------------------------------^
//! ```
//!
//! The core owns setup, channels, job messages, share validation, vardiff and
//! acknowledgements. The pool adds what is its own: each channel's extranonce prefix from the
//! connection's [`PrefixAllocator`]; every new [`Work`] becomes jobs on its coinbase (future
//! jobs and a `SetNewPrevHash` on a new tip, active jobs otherwise; the `jobs` module); accepted shares
//! leave as [`Event::Accepted`] and are acknowledged with `SubmitShares.Success` only when
//! the connection task reports them committed ([`Session::on_committed`]); a share meeting
//! the network target becomes a block (the `shares` module); custom jobs of its Job Declarator
//! (the `custom` module). Rejected shares get `SubmitShares.Error` at once.

use std::sync::{Arc, OnceLock};

use bitcoin::{Network, ScriptBuf};
use strata_protocol::mining::{self as m, SetCustomMiningJob};
use strata_protocol::wire::B0_32;
use strata_protocol::Message;
use strata_server::{
    AckPolicy, Admission, ChannelRequest, Placement, Request, ServerConfig, ServerCore,
};
use strata_work::channel::{ChannelConfig, ExtendedWork};
use strata_work::coinbase::Coinbase;
use strata_work::extranonce::{PrefixAllocator, PrefixId};
use strata_work::target::Target;
use strata_work::vardiff::VardiffConfig;

use crate::jds::DeclaredJob;
use crate::ledger::{ServerId, ShareRecord};
use crate::payout::{self, Split};
use crate::template::{Solution, Template};

mod custom;
mod jobs;
mod shares;

/// Bytes of every channel's extranonce prefix: 4 bytes of connection id (in a cluster, the
/// server id and 3 bytes of connection id), 2 of channel.
pub const PREFIX_LEN: usize = 6;

/// The 4 bytes a connection's extranonce prefixes start with: the low 32 bits of its id, or
/// in a cluster the server's id and the low 24 bits of the connection's, so that no two
/// servers hand out the same search space (a server's connection ids repeat after 2^24
/// connections rather than 2^32).
pub fn connection_prefix(conn_id: u64, server: Option<ServerId>) -> [u8; 4] {
    let mut fixed = (conn_id as u32).to_be_bytes();
    if let Some(id) = server {
        fixed[0] = id.get();
    }
    fixed
}

/// Settings shared by every session of a pool.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Network of payout addresses.
    pub network: Network,
    /// The pool's own payout script (fees, unpaid remainders).
    pub pool_script: ScriptBuf,
    /// Pool fee in parts per million (solo mode).
    pub solo_fee_ppm: u32,
    /// Solo mode: each channel's coinbase pays the address in its user identity. Otherwise
    /// (PPLNS) every coinbase pays the shared split of the current [`Work`].
    pub solo: bool,
    /// Bytes pushed in the coinbase scriptSig after the height (pool tag).
    pub pool_tag: Vec<u8>,
    /// Full extranonce size of extended channels (prefix + miner bytes, at most 32).
    pub full_extranonce_len: usize,
    /// Channel limits (jobs kept, duplicate memory, version mask...).
    pub channel: ChannelConfig,
    /// Difficulty adjustment.
    pub vardiff: VardiffConfig,
    /// Channels one connection may open.
    pub max_channels: usize,
    /// The server's id in a cluster (the first byte of every extranonce prefix).
    pub server: Option<ServerId>,
    /// Whether connections may set `REQUIRES_WORK_SELECTION` and send `SetCustomMiningJob`
    /// with tokens of the pool's Job Declarator Server (`[jds]` enabled).
    pub work_selection: bool,
}

impl SessionConfig {
    /// A regtest configuration paying `pool_script` (tests and the demo).
    pub fn regtest(pool_script: ScriptBuf) -> Self {
        SessionConfig {
            network: Network::Regtest,
            pool_script,
            solo_fee_ppm: 0,
            solo: false,
            pool_tag: b"/strata/".to_vec(),
            full_extranonce_len: 16,
            channel: ChannelConfig::default(),
            vardiff: VardiffConfig::default(),
            max_channels: 1024,
            server: None,
            work_selection: false,
        }
    }
}

/// How the coinbases of a [`Work`] pay out.
#[derive(Debug, Clone)]
pub enum Payouts {
    /// Every coinbase carries these outputs (PPLNS split of the window at template time).
    Shared(Arc<Split>),
    /// Each channel pays the address of its own user identity (solo).
    Solo,
}

/// What the pool mines on: a template and its payouts. Sent to every session.
#[derive(Debug, Clone)]
pub struct Work {
    /// Increases with each new work.
    pub seq: u64,
    /// The template.
    pub template: Arc<Template>,
    /// The payout outputs.
    pub payouts: Payouts,
    /// PPLNS: the ledger share ids `(first, last)` the split was computed from.
    pub window: Option<(i64, i64)>,
    /// The coinbase every channel of the pool shares for this work (shared payouts), built
    /// by the first session that needs it: at a new tip a thousand sessions would otherwise
    /// each build the same one. Keyed by its extranonce size (other sizes build their own).
    pub shared_coinbase: SharedCoinbase,
}

/// See [`Work::shared_coinbase`]. `Default` is empty.
#[derive(Debug, Clone, Default)]
pub struct SharedCoinbase(Arc<OnceLock<SizedCoinbase>>);

/// A coinbase built for one extranonce size, with its parts as channels record them.
type SizedCoinbase = (usize, Arc<Coinbase>, Arc<ExtendedWork>);

pub use strata_work::time::Now;

/// A share accepted by validation, waiting for its ledger commit before its acknowledgement.
pub use strata_server::PendingAck;

/// A share that found a block: the solution for the template source and what the ledger
/// records about it.
#[derive(Debug, Clone)]
pub struct FoundBlock {
    /// Header and full coinbase.
    pub solution: Solution,
    /// Height of the block.
    pub height: u32,
    /// Block hash, display order hex.
    pub hash: String,
    /// Prev hash of the block (header order), to submit at most one block per tip.
    pub prev_hash: [u8; 32],
    /// User identity of the channel that found it.
    pub worker: String,
    /// The coinbase's payouts.
    pub split: Arc<Split>,
    /// Total coinbase value paid.
    pub reward_sats: u64,
    /// PPLNS: the ledger share ids the split was computed from.
    pub window: Option<(i64, i64)>,
    /// Template id (for the ledger; a custom job's is its token).
    pub template_id: u64,
    /// A custom job's block, serialized whole (its transactions are the declared ones, which
    /// the template source does not know): submitted as is.
    pub block: Option<Vec<u8>>,
}

/// Something the connection task must act on.
#[derive(Debug, Clone)]
pub enum Event {
    /// Send this message to the miner.
    Send(Message),
    /// A share was accepted: commit it, then call [`Session::on_committed`] with the ack.
    Accepted(Box<(ShareRecord, PendingAck)>),
    /// A share was rejected (already answered with `SubmitShares.Error`).
    Rejected {
        /// Worker (user identity) of the channel.
        worker: String,
        /// The `SubmitShares.Error` code.
        code: &'static str,
    },
    /// A share met the network target.
    Block(Box<FoundBlock>),
    /// A channel's difficulty or hashrate estimate changed (for statistics).
    Hashrate {
        /// Worker (user identity).
        worker: String,
        /// Estimated hashes per second of the channel.
        hashrate: f64,
    },
    /// A `SetCustomMiningJob` on a work-selecting connection: take its token's declared
    /// job from the JDS registry and call [`Session::on_custom_job`] with it (or `None`).
    CustomJob(Box<SetCustomMiningJob>),
    /// Close the connection after sending what precedes; the reason is logged.
    Close(String),
}

/// The pool's data of one channel.
#[derive(Debug)]
struct PoolChannel {
    prefix: PrefixId,
    /// Solo payout script (solo mode).
    payout: Option<ScriptBuf>,
}

/// The coinbase behind a job, kept to assemble the block.
#[derive(Debug)]
struct JobInfo {
    template: Arc<Template>,
    window: Option<(i64, i64)>,
    /// The pool's coinbase of the job, or a custom job's declaration (whose coinbase and
    /// transactions make the block).
    coinbase: JobCoinbase,
    split: Arc<Split>,
}

/// See [`JobInfo::coinbase`].
#[derive(Debug)]
enum JobCoinbase {
    Pool(Arc<Coinbase>),
    Custom(Arc<DeclaredJob>),
}

impl strata_server::Output for Event {
    fn send(msg: Message) -> Self {
        Event::Send(msg)
    }
    fn close(reason: String) -> Self {
        Event::Close(reason)
    }
}

/// One miner connection's protocol state.
#[derive(Debug)]
pub struct Session {
    conn_id: u64,
    cfg: Arc<SessionConfig>,
    core: ServerCore<PoolChannel, JobInfo>,
    prefixes: PrefixAllocator,
    work: Option<Arc<Work>>,
}

impl SessionConfig {
    /// The server core's share of these settings.
    fn server(&self) -> ServerConfig {
        ServerConfig {
            channel: self.channel,
            vardiff: self.vardiff,
            max_channels: self.max_channels,
            work_selection: self.work_selection,
            worker_identity: true,
            acks: AckPolicy::AfterCommit,
        }
    }
}

impl Session {
    /// A session for connection `conn_id` (its low 32 bits, or in a cluster the server id
    /// and its low 24 bits, make the extranonce prefixes of its channels unique across the
    /// pool: [`connection_prefix`]).
    pub fn new(conn_id: u64, cfg: Arc<SessionConfig>) -> Self {
        let fixed = connection_prefix(conn_id, cfg.server);
        let full = cfg.full_extranonce_len.clamp(PREFIX_LEN, 32);
        // `fixed` is 4 bytes and PREFIX_LEN 6 <= full <= 32: always valid
        let prefixes = PrefixAllocator::new(&fixed, PREFIX_LEN, full)
            .or_else(|_| PrefixAllocator::new(&fixed, PREFIX_LEN, PREFIX_LEN))
            .expect("a 6-byte prefix over a 4-byte fixed part fits any extranonce");
        Session {
            conn_id,
            core: ServerCore::new(Arc::new(cfg.server())),
            cfg,
            prefixes,
            work: None,
        }
    }

    /// The connection id.
    pub fn conn_id(&self) -> u64 {
        self.conn_id
    }

    /// Open channels.
    pub fn channel_count(&self) -> usize {
        self.core.channel_count()
    }

    /// Whether `SetupConnection` succeeded.
    pub fn is_ready(&self) -> bool {
        self.core.is_ready()
    }

    /// Whether the session ended (a `Close` event was emitted).
    pub fn is_closed(&self) -> bool {
        self.core.is_closed()
    }

    /// Handles one message from the miner; `tlvs` is the frame's TLV tail (extension
    /// 0x0002's user identity on `SubmitSharesExtended`).
    pub fn on_message(&mut self, msg: Message, tlvs: &[u8], now: Now, out: &mut Vec<Event>) {
        let Some(request) = self.core.on_message(msg, tlvs, now, out) else {
            return;
        };
        match request {
            Request::Open(a) => self.open(*a, now, out),
            Request::Accepted(a) => self.accepted(&a, now, out),
            Request::Rejected {
                channel_id,
                rejection,
            } => out.push(Event::Rejected {
                worker: self
                    .core
                    .state(channel_id)
                    .map(|s| s.user.clone())
                    .unwrap_or_default(),
                code: rejection.error_code(),
            }),
            Request::Closed(closed) => {
                for (id, state) in closed {
                    let _ = self.prefixes.release(state.data.prefix);
                    tracing::debug!(conn = self.conn_id, channel = id, "channel released");
                }
            }
            Request::Updated { .. } => {}
            Request::CustomJob(j) => out.push(Event::CustomJob(j)),
        }
    }

    /// Places an admitted channel in the connection's extranonce space and sends it its
    /// first job.
    fn open(&mut self, a: Admission, now: Now, out: &mut Vec<Event>) {
        // PPLNS takes any identity, an empty one too (SRI's mining_device sends one): one
        // that is no address is paid to the pool; solo needs an address
        let payout = if self.cfg.solo {
            match payout::payout_script(&a.user, self.cfg.network) {
                Some(s) => Some(s),
                None => {
                    return self
                        .core
                        .refuse_open(a.request_id, m::ERROR_INVALID_USER_IDENTITY, out)
                }
            }
        } else {
            None
        };
        let size = match a.kind {
            ChannelRequest::Standard => 0,
            ChannelRequest::Extended {
                min_extranonce_size,
            } => match self.prefixes.extranonce_size_for(min_extranonce_size) {
                Ok(size) => size,
                Err(_) => {
                    return self.core.refuse_open(
                        a.request_id,
                        m::ERROR_MIN_EXTRANONCE_SIZE_TOO_LARGE,
                        out,
                    )
                }
            },
        };
        let Ok(prefix) = self.prefixes.allocate() else {
            return self
                .core
                .refuse_open(a.request_id, m::ERROR_CHANNEL_CAPACITY_EXHAUSTED, out);
        };
        let bytes = match a.kind {
            ChannelRequest::Standard => self.prefixes.standard_prefix(prefix.id),
            ChannelRequest::Extended { .. } => self.prefixes.prefix(prefix.id),
        };
        let placement = Placement {
            extranonce_prefix: bytes.as_slice().to_vec(),
            extranonce_size: size,
            floor: Target::ZERO,
            group: true,
            data: PoolChannel {
                prefix: prefix.id,
                payout,
            },
        };
        match self.core.open(a, placement, out) {
            Ok(id) => {
                tracing::info!(conn = self.conn_id, channel = id, "channel placed");
                if let Some(work) = self.work.clone() {
                    self.first_job(id, &work, now, out);
                }
            }
            Err(_) => {
                let _ = self.prefixes.release(prefix.id);
            }
        }
    }

    /// Shares committed to the ledger: acknowledges them with one `SubmitShares.Success` per
    /// channel (shares of closed channels are dropped silently: the miner left).
    pub fn on_committed(&mut self, acks: &[PendingAck], out: &mut Vec<Event>) {
        self.core.on_committed(acks, out);
    }

    /// Shares the ledger failed to commit: they are not acknowledged; the miner is told with
    /// `SubmitShares.Error` so it does not count them.
    pub fn on_commit_failed(&mut self, acks: &[PendingAck], out: &mut Vec<Event>) {
        self.core.on_commit_failed(acks, out);
    }

    /// Periodic work: vardiff retargets (`SetTarget`) and hashrate estimates.
    pub fn on_tick(&mut self, now: Now, out: &mut Vec<Event>) {
        self.core.on_tick(now, out, |_, state, out| {
            out.push(Event::Hashrate {
                worker: state.user.clone(),
                hashrate: state.vardiff.hashrate(now.mono),
            })
        });
    }

    /// Extranonce prefix of a channel (tests).
    pub fn extranonce_prefix(&self, channel_id: u32) -> Option<B0_32> {
        self.core
            .channel(channel_id)
            .and_then(|c| B0_32::new(c.extranonce_prefix()).ok())
    }
}

#[cfg(test)]
mod prefix_tests {
    use super::*;

    #[test]
    fn cluster_servers_never_share_a_connection_prefix() {
        let one = ServerId::new(1);
        let two = ServerId::new(2);
        assert_eq!(connection_prefix(0x0102_0304, None), [1, 2, 3, 4]);
        assert_eq!(connection_prefix(0x0102_0304, one), [1, 2, 3, 4]);
        assert_eq!(connection_prefix(0x0102_0304, two), [2, 2, 3, 4]);
        // the same connection number on two servers, and a server's ids past 2^24
        assert_ne!(connection_prefix(7, one), connection_prefix(7, two));
        assert_eq!(
            connection_prefix(7 + (1 << 24), two),
            connection_prefix(7, two)
        );
    }
}
