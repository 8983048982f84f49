//! What miners report: [`Event`]s rendered as one stable, machine-readable line each
//! ([`Reporter`]), per-miner counters ([`MinerStats`]) and the JSON [`Summary`] printed at
//! exit. The line format is documented in the crate docs.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// One thing that happened to a miner. [`Event::render`] gives its output line.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// A connection (TCP, and Noise when encrypted) is up.
    Connected {
        /// `host:port`.
        addr: String,
    },
    /// SV2 `SetupConnection.Success`.
    SetupSuccess {
        /// The version the server chose.
        version: u16,
        /// The server's flags.
        flags: u32,
    },
    /// SV2 `SetupConnection.Error`: the miner cannot go on.
    SetupError {
        /// The error code.
        code: String,
        /// Flags the server does not support.
        flags: u32,
    },
    /// An SV2 channel is open.
    ChannelOpened {
        /// The channel id.
        channel: u32,
        /// `standard` or `extended`.
        kind: &'static str,
        /// The initial target's difficulty.
        difficulty: f64,
        /// The extranonce prefix.
        extranonce_prefix: Vec<u8>,
        /// Extranonce bytes the miner rolls (0 for standard channels).
        extranonce_size: u16,
        /// The group channel (0: none).
        group: u32,
    },
    /// SV2 `OpenMiningChannel.Error`: the miner cannot go on.
    OpenChannelError {
        /// The error code.
        code: String,
    },
    /// A job arrived (SV2 `NewMiningJob` / `NewExtendedMiningJob`, SV1 `mining.notify`).
    NewJob {
        /// The SV2 channel or group (none for SV1).
        channel: Option<u32>,
        /// The job id.
        job: String,
        /// SV2: a future job (no `min_ntime`). SV1: `clean_jobs`.
        flag: bool,
    },
    /// SV2 `SetNewPrevHash`.
    NewPrevHash {
        /// The channel or group.
        channel: u32,
        /// The job it activates.
        job: u32,
        /// nBits of the new block.
        nbits: u32,
    },
    /// SV2 `SetTarget` or SV1 `mining.set_difficulty`.
    TargetChanged {
        /// The SV2 channel or group (none for SV1).
        channel: Option<u32>,
        /// The difficulty of the new target.
        difficulty: f64,
    },
    /// SV2 `SetExtranoncePrefix` or SV1 `mining.set_extranonce` (or the subscribe result).
    Extranonce {
        /// The SV2 channel (none for SV1).
        channel: Option<u32>,
        /// The new prefix / extranonce1.
        prefix: Vec<u8>,
        /// SV1: the extranonce2 size.
        size: Option<u32>,
    },
    /// SV2 `SetGroupChannel`.
    GroupChannel {
        /// The group.
        group: u32,
        /// Its channels.
        channels: Vec<u32>,
    },
    /// SV2 `CloseChannel` for the miner's channel: it opens a new one.
    ChannelClosed {
        /// The closed channel.
        channel: u32,
        /// The reason code.
        reason: String,
    },
    /// SV1 `mining.configure` result or `mining.set_version_mask`.
    VersionMask {
        /// The mask the miner rolls within (0: no rolling).
        mask: u32,
    },
    /// SV1 `mining.authorize` succeeded.
    Authorized {
        /// The user.
        user: String,
    },
    /// The server asked the miner to reconnect (SV2 `Reconnect`, SV1 `client.reconnect`).
    Reconnecting {
        /// `host:port` the miner connects to.
        addr: String,
    },
    /// A share went out.
    ShareSubmitted {
        /// The SV2 channel (none for SV1).
        channel: Option<u32>,
        /// SV2 sequence number / SV1 request id.
        seq: u64,
        /// The job.
        job: String,
        /// The nonce.
        nonce: u32,
    },
    /// Shares were acknowledged (SV2 `SubmitShares.Success`, SV1 result `true`).
    ShareAccepted {
        /// The SV2 channel (none for SV1).
        channel: Option<u32>,
        /// SV2 `last_sequence_number` / SV1 request id.
        seq: u64,
        /// Shares acknowledged by this message.
        count: u64,
        /// Shares this miner had acknowledged so far.
        acked: u64,
    },
    /// A share was rejected (SV2 `SubmitShares.Error`, SV1 `false` or an error).
    ShareRejected {
        /// The SV2 channel (none for SV1).
        channel: Option<u32>,
        /// SV2 sequence number / SV1 request id.
        seq: u64,
        /// The error code (SV1: see [`crate::sv1::rejection_code`]).
        code: String,
    },
    /// A share also met the network target.
    BlockCandidate {
        /// The SV2 channel (none for SV1).
        channel: Option<u32>,
        /// The block hash, display order hex.
        hash: String,
    },
    /// SV2 `UpdateChannel.Error`.
    UpdateChannelError {
        /// The channel.
        channel: u32,
        /// The error code.
        code: String,
    },
    /// SV2 `ChannelEndpointChanged`.
    EndpointChanged {
        /// The channel.
        channel: u32,
    },
    /// SV1 `client.show_message`.
    ServerMessage {
        /// The text.
        text: String,
    },
    /// The server sent something the miner could not apply (logged, mining goes on).
    ProtocolWarning {
        /// The message.
        message: &'static str,
        /// What was wrong.
        error: String,
    },
    /// An SV1 line that does not parse (skipped).
    MalformedLine {
        /// The parse error.
        error: String,
    },
    /// The miner stopped because of an error.
    Failed {
        /// The error.
        error: String,
        /// The process exit code this error maps to (1 protocol, 2 connection).
        exit_code: i32,
    },
}

/// A string value of an output line: bare when it is a non-empty token of ASCII letters,
/// digits and `-_.:/@`, else a JSON string (quoted, escaped).
pub fn token(s: &str) -> String {
    let bare = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/@".contains(&b));
    if bare {
        s.to_owned()
    } else {
        serde_json::Value::String(s.to_owned()).to_string()
    }
}

impl Event {
    /// The output line (no newline) of this event for miner `miner`; `acked_total` is the
    /// number of shares acknowledged to all miners of the process (used by
    /// [`Event::ShareAccepted`]).
    pub fn render(&self, miner: usize, acked_total: u64) -> String {
        let mut s = String::with_capacity(96);
        let chan = |s: &mut String, c: &Option<u32>| {
            if let Some(c) = c {
                let _ = write!(s, " channel={c}");
            }
        };
        match self {
            Event::Connected { addr } => {
                let _ = write!(s, "connected miner={miner} addr={addr}");
            }
            Event::SetupSuccess { version, flags } => {
                let _ = write!(
                    s,
                    "setup success miner={miner} version={version} flags={flags:#x}"
                );
            }
            Event::SetupError { code, flags } => {
                let _ = write!(
                    s,
                    "setup error miner={miner} code={} flags={flags:#x}",
                    token(code)
                );
            }
            Event::ChannelOpened {
                channel,
                kind,
                difficulty,
                extranonce_prefix,
                extranonce_size,
                group,
            } => {
                let _ = write!(
                    s,
                    "channel opened miner={miner} channel={channel} kind={kind} \
                     difficulty={difficulty} extranonce_prefix={} extranonce_size={extranonce_size} \
                     group={group}",
                    hex::encode(extranonce_prefix)
                );
            }
            Event::OpenChannelError { code } => {
                let _ = write!(s, "channel error miner={miner} code={}", token(code));
            }
            Event::NewJob { channel, job, flag } => {
                let _ = write!(s, "job miner={miner}");
                chan(&mut s, channel);
                let name = if channel.is_some() { "future" } else { "clean" };
                let _ = write!(s, " job={} {name}={flag}", token(job));
            }
            Event::NewPrevHash {
                channel,
                job,
                nbits,
            } => {
                let _ = write!(
                    s,
                    "prevhash miner={miner} channel={channel} job={job} nbits={nbits:08x}"
                );
            }
            Event::TargetChanged {
                channel,
                difficulty,
            } => {
                let _ = write!(s, "target miner={miner}");
                chan(&mut s, channel);
                let _ = write!(s, " difficulty={difficulty}");
            }
            Event::Extranonce {
                channel,
                prefix,
                size,
            } => {
                let _ = write!(s, "extranonce miner={miner}");
                chan(&mut s, channel);
                let _ = write!(s, " prefix={}", hex::encode(prefix));
                if let Some(n) = size {
                    let _ = write!(s, " size={n}");
                }
            }
            Event::GroupChannel { group, channels } => {
                let ids: Vec<String> = channels.iter().map(u32::to_string).collect();
                let _ = write!(
                    s,
                    "group channel miner={miner} group={group} channels={}",
                    ids.join(",")
                );
            }
            Event::ChannelClosed { channel, reason } => {
                let _ = write!(
                    s,
                    "channel closed miner={miner} channel={channel} reason={}",
                    token(reason)
                );
            }
            Event::VersionMask { mask } => {
                let _ = write!(s, "version mask miner={miner} mask={mask:08x}");
            }
            Event::Authorized { user } => {
                let _ = write!(s, "authorized miner={miner} user={}", token(user));
            }
            Event::Reconnecting { addr } => {
                let _ = write!(s, "reconnect miner={miner} addr={addr}");
            }
            Event::ShareSubmitted {
                channel,
                seq,
                job,
                nonce,
            } => {
                let _ = write!(s, "share submitted miner={miner}");
                chan(&mut s, channel);
                let _ = write!(s, " seq={seq} job={} nonce={nonce:08x}", token(job));
            }
            Event::ShareAccepted {
                channel,
                seq,
                count,
                acked,
            } => {
                let _ = write!(s, "share accepted miner={miner}");
                chan(&mut s, channel);
                let _ = write!(
                    s,
                    " seq={seq} count={count} acked={acked} acked_total={acked_total}"
                );
            }
            Event::ShareRejected { channel, seq, code } => {
                let _ = write!(s, "share rejected miner={miner}");
                chan(&mut s, channel);
                let _ = write!(s, " seq={seq} code={}", token(code));
            }
            Event::BlockCandidate { channel, hash } => {
                let _ = write!(s, "block candidate miner={miner}");
                chan(&mut s, channel);
                let _ = write!(s, " hash={hash}");
            }
            Event::UpdateChannelError { channel, code } => {
                let _ = write!(
                    s,
                    "update channel error miner={miner} channel={channel} code={}",
                    token(code)
                );
            }
            Event::EndpointChanged { channel } => {
                let _ = write!(s, "endpoint changed miner={miner} channel={channel}");
            }
            Event::ServerMessage { text } => {
                let _ = write!(s, "server message miner={miner} text={}", token(text));
            }
            Event::ProtocolWarning { message, error } => {
                let _ = write!(
                    s,
                    "protocol warning miner={miner} message={message} error={}",
                    token(error)
                );
            }
            Event::MalformedLine { error } => {
                let _ = write!(s, "malformed line miner={miner} error={}", token(error));
            }
            Event::Failed { error, exit_code } => {
                let _ = write!(
                    s,
                    "failed miner={miner} exit_code={exit_code} error={}",
                    token(error)
                );
            }
        }
        s
    }
}

/// Where event lines go.
#[derive(Debug, Clone)]
pub enum Sink {
    /// Standard output, one line per event, flushed at once.
    Stdout,
    /// Nowhere (the load generator: counters only).
    Silent,
    /// A channel (tests read the lines from it).
    Channel(mpsc::UnboundedSender<String>),
}

#[derive(Debug)]
struct ReporterInner {
    sink: Sink,
    acked_total: AtomicU64,
    goal: Option<u64>,
    goal_reached: CancellationToken,
}

/// Renders events of all miners of the process into a [`Sink`] and counts acknowledged
/// shares across them: when a goal is set and reached, it cancels the token given at
/// construction (the CLI's `--shares`).
#[derive(Debug, Clone)]
pub struct Reporter {
    inner: Arc<ReporterInner>,
}

impl Reporter {
    /// A reporter into `sink`; `goal`: cancel `stop` once this many shares were acknowledged.
    pub fn new(sink: Sink, goal: Option<u64>, stop: CancellationToken) -> Self {
        Reporter {
            inner: Arc::new(ReporterInner {
                sink,
                acked_total: AtomicU64::new(0),
                goal,
                goal_reached: stop,
            }),
        }
    }

    /// A reporter that prints nothing and has no goal.
    pub fn silent() -> Self {
        Self::new(Sink::Silent, None, CancellationToken::new())
    }

    /// Shares acknowledged to all miners so far.
    pub fn acked_total(&self) -> u64 {
        self.inner.acked_total.load(Ordering::Relaxed)
    }

    /// Reports `event` of miner `miner`.
    pub fn emit(&self, miner: usize, event: &Event) {
        let total = match event {
            Event::ShareAccepted { count, .. } => {
                let t = self.inner.acked_total.fetch_add(*count, Ordering::Relaxed) + count;
                if self.inner.goal.is_some_and(|g| t >= g) {
                    self.inner.goal_reached.cancel();
                }
                t
            }
            _ => self.acked_total(),
        };
        match &self.inner.sink {
            Sink::Silent => {}
            Sink::Stdout => {
                let line = event.render(miner, total);
                let mut out = std::io::stdout().lock();
                if let Err(e) = writeln!(out, "{line}").and_then(|()| out.flush()) {
                    tracing::debug!(error = %e, "stdout");
                }
            }
            Sink::Channel(tx) => {
                // a test that stopped listening is not the miner's problem
                let _ = tx.send(event.render(miner, total));
            }
        }
    }
}

/// Counters of one miner (kept by its core across reconnections).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MinerStats {
    /// Shares submitted.
    pub submitted: u64,
    /// Shares acknowledged (SV2: sum of `new_submits_accepted_count`; SV1: `true` results).
    pub acknowledged: u64,
    /// SV2: sum of `new_shares_sum`.
    pub shares_sum: u64,
    /// Rejected shares by error code.
    pub rejected: BTreeMap<String, u64>,
    /// Shares that met the network target.
    pub blocks: u64,
    /// Hashes computed.
    pub hashes: u64,
    /// Server messages that could not be applied (logged, mining went on).
    pub protocol_warnings: u64,
    /// SV1 lines that did not parse.
    pub malformed_lines: u64,
    /// Whether a channel (SV2) or subscription + authorization (SV1) was ever established.
    pub established: bool,
    /// Microseconds from submit to acknowledgement, per acknowledged share (only when the
    /// core was configured to record them): to the acknowledgement's arrival at the socket
    /// where the kernel's receive time is known (SV1 load), else to its read.
    pub latencies_us: Vec<u32>,
    /// Microseconds from submit to the miner reading the acknowledgement, recorded beside
    /// `latencies_us` when that one ran to the arrival (the difference is the miner's own
    /// delay in reading).
    pub read_latencies_us: Vec<u32>,
    /// When each share of `latencies_us` was submitted: microseconds since
    /// [`clock_base`] (one clock for every connection of the process), saturating.
    pub latency_at_us: Vec<u32>,
}

/// The process's reference instant for [`MinerStats::latency_at_us`] (set at first use).
pub fn clock_base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

/// Microseconds from [`clock_base`] to `t` (0 before it, `u32::MAX` past 71 minutes).
pub fn since_clock_base(t: Instant) -> u32 {
    u32::try_from(t.saturating_duration_since(clock_base()).as_micros()).unwrap_or(u32::MAX)
}

impl MinerStats {
    /// Adds `other`'s counters (and latencies) to these.
    pub fn merge(&mut self, other: &MinerStats) {
        self.submitted += other.submitted;
        self.acknowledged += other.acknowledged;
        self.shares_sum += other.shares_sum;
        for (k, v) in &other.rejected {
            *self.rejected.entry(k.clone()).or_default() += v;
        }
        self.blocks += other.blocks;
        self.hashes += other.hashes;
        self.protocol_warnings += other.protocol_warnings;
        self.malformed_lines += other.malformed_lines;
        self.established |= other.established;
        self.latencies_us.extend_from_slice(&other.latencies_us);
        self.read_latencies_us
            .extend_from_slice(&other.read_latencies_us);
        self.latency_at_us.extend_from_slice(&other.latency_at_us);
    }

    /// Counts one rejected share.
    pub(crate) fn reject(&mut self, code: &str) {
        *self.rejected.entry(code.to_owned()).or_default() += 1;
    }
}

/// The JSON line printed when `sv2` / `sv1` exit.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Summary {
    /// Shares submitted.
    pub submitted: u64,
    /// Shares acknowledged.
    pub acknowledged: u64,
    /// Rejected shares by error code.
    pub rejected: BTreeMap<String, u64>,
    /// Block candidates found.
    pub blocks: u64,
    /// Seconds since start.
    pub elapsed_s: f64,
    /// Miners run.
    pub miners: usize,
    /// Miners that ended with an error.
    pub failed: usize,
    /// SV2: sum of `new_shares_sum`.
    pub shares_sum: u64,
    /// Hashes computed.
    pub hashes: u64,
    /// Server messages that could not be applied.
    pub protocol_warnings: u64,
    /// SV1 lines that did not parse.
    pub malformed_lines: u64,
}

impl Summary {
    /// The summary of `stats` (merged over all miners).
    pub fn new(stats: &MinerStats, miners: usize, failed: usize, elapsed_s: f64) -> Self {
        Summary {
            submitted: stats.submitted,
            acknowledged: stats.acknowledged,
            rejected: stats.rejected.clone(),
            blocks: stats.blocks,
            elapsed_s: (elapsed_s * 1000.0).round() / 1000.0,
            miners,
            failed,
            shares_sum: stats.shares_sum,
            hashes: stats.hashes,
            protocol_warnings: stats.protocol_warnings,
            malformed_lines: stats.malformed_lines,
        }
    }

    /// One line of JSON.
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_stable() {
        let e = Event::ShareAccepted {
            channel: Some(1),
            seq: 11,
            count: 2,
            acked: 12,
        };
        assert_eq!(
            e.render(0, 30),
            "share accepted miner=0 channel=1 seq=11 count=2 acked=12 acked_total=30"
        );
        let e = Event::ShareRejected {
            channel: None,
            seq: 4,
            code: "stale-share".into(),
        };
        assert_eq!(
            e.render(3, 0),
            "share rejected miner=3 seq=4 code=stale-share"
        );
        let e = Event::ServerMessage {
            text: "hi \"there\"".into(),
        };
        assert_eq!(
            e.render(1, 0),
            "server message miner=1 text=\"hi \\\"there\\\"\""
        );
    }

    #[test]
    fn goal_cancels_once_reached() {
        let stop = CancellationToken::new();
        let r = Reporter::new(Sink::Silent, Some(3), stop.clone());
        let acc = |n| Event::ShareAccepted {
            channel: None,
            seq: 0,
            count: n,
            acked: n,
        };
        r.emit(0, &acc(2));
        assert!(!stop.is_cancelled());
        r.emit(1, &acc(1));
        assert!(stop.is_cancelled());
        assert_eq!(r.acked_total(), 3);
    }

    #[test]
    fn summary_json_has_the_documented_keys() {
        let mut s = MinerStats {
            submitted: 5,
            acknowledged: 4,
            ..Default::default()
        };
        s.reject("stale-share");
        let j: serde_json::Value =
            serde_json::from_str(&Summary::new(&s, 1, 0, 1.23456).to_json_line()).expect("json");
        assert_eq!(j["submitted"], 5);
        assert_eq!(j["acknowledged"], 4);
        assert_eq!(j["rejected"]["stale-share"], 1);
        assert_eq!(j["blocks"], 0);
        assert_eq!(j["elapsed_s"], 1.235);
    }
}
