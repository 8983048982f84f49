//! # strata-miner
//!
//! Simulated Stratum miners that really hash (double SHA-256 from the header midstate, in
//! SIMD batches, [`strata_work::sha256d`]) at the difficulty the server gives: SV2 standard
//! and extended channels (including group channels) against a pool, SV1 against a proxy,
//! and a load generator. Used by demos, integration tests and benchmarks.
//!
//! ## Layers
//!
//! * Sans-IO cores, deterministic, time passed in ([`Now`]): [`sv2::Sv2Miner`]
//!   (`handle(Message)`, `mine(budget)`, `poll_output()`) and [`sv1::Sv1Miner`]
//!   (`handle_line(bytes)`, `mine(budget)`, `poll_output()`). Hashing is a bounded step that
//!   stops at the first share; the nonce loop is [`search::HeaderSearch`].
//! * [`pace::Pacer`]: how many hashes a step may do (a hashrate cap, or a share rate for the
//!   load generator).
//! * Tokio shells, one task per connection: [`shell::run_sv2`], [`shell::run_sv1`] (connect,
//!   Noise or plaintext, follow `Reconnect`), and [`load::run_load`].
//! * [`report`]: events, their output lines, counters and the JSON summary. The binary
//!   (`src/main.rs`) is a thin clap layer over these.
//!
//! ## Output lines (stdout, one per event, flushed at once)
//!
//! Each line is an event name of one or more words, then `key=value` pairs. A value is a bare
//! token (ASCII letters, digits, `-_.:/@`) or, when it holds anything else, a JSON string
//! (quoted, escaped). `miner=` is the miner's index (0-based); `channel=` appears on SV2 events
//! only; `seq=` is the SV2 sequence number or the SV1 request id.
//!
//! ```text
//! connected miner=0 addr=127.0.0.1:34254
//! setup success miner=0 version=2 flags=0x0
//! setup error miner=0 code=unsupported-protocol flags=0x0
//! channel opened miner=0 channel=1 kind=standard difficulty=0.001 extranonce_prefix=05050505 extranonce_size=0 group=0
//! channel error miner=0 code=unknown-user
//! job miner=0 channel=1 job=1 future=true           (SV1: job miner=0 job=a1 clean=true)
//! prevhash miner=0 channel=1 job=1 nbits=1703a30c
//! target miner=0 channel=1 difficulty=0.5           (SetTarget; SV1 mining.set_difficulty)
//! extranonce miner=0 channel=1 prefix=09090909      (SV1: extranonce miner=0 prefix=01020304 size=4)
//! group channel miner=0 group=10 channels=1,2
//! channel closed miner=0 channel=1 reason=maintenance
//! version mask miner=0 mask=1fffe000                (SV1 configure / set_version_mask)
//! authorized miner=0 user=bcrt1q....sim0            (SV1)
//! share submitted miner=0 channel=1 seq=4 job=1 nonce=0000a1b2
//! share accepted miner=0 channel=1 seq=12 count=1 acked=12 acked_total=12
//! share rejected miner=0 channel=1 seq=13 code=stale-share
//! block candidate miner=0 channel=1 hash=<64 hex digits, display order>
//! update channel error miner=0 channel=1 code=max-target-out-of-range
//! endpoint changed miner=0 channel=1
//! server message miner=0 text="hello miners"       (SV1 client.show_message)
//! reconnect miner=0 addr=pool2.example:3333
//! protocol warning miner=0 message=NewMiningJob error="unknown channel 9"
//! malformed line miner=0 error="..."               (SV1, skipped)
//! failed miner=0 exit_code=2 error="connection closed by the server"
//! ```
//!
//! `share accepted`: `count` shares acknowledged by this message (SV2
//! `new_submits_accepted_count`; SV1 always 1), `acked` this miner's running total,
//! `acked_total` the total over all miners of the process (what `--shares` compares with).
//! SV1 rejection codes are named after the stratum error codes (see
//! [`sv1::rejection_code`]).
//!
//! At exit `sv2` and `sv1` print one JSON line ([`Summary`]):
//!
//! ```text
//! {"submitted":14,"acknowledged":12,"rejected":{"stale-share":1},"blocks":0,"elapsed_s":3.2,
//!  "miners":1,"failed":0,"shares_sum":12,"hashes":3481,"protocol_warnings":0,"malformed_lines":0}
//! ```
//!
//! and `load` prints [`load::LoadReport`]: `connections` (`established`, `failed`),
//! `submitted`, `acknowledged`, `rejected`, `accepted_per_s`, `latency_ms` (`samples`, `p50`,
//! `p90`, `p99`, `max`), `errors` (by [`MinerError::kind`]), `elapsed_s`, `hashes`.
//!
//! Exit codes: 0 normal end (duration, share goal, Ctrl-C), 1 protocol error in any miner
//! (`SetupConnection.Error`, `OpenMiningChannel.Error`, refused SV1 subscribe/authorize, a
//! malformed frame, a failed Noise handshake), 2 connection lost or refused (and no protocol
//! error), 64 bad command line.
//!
//! ## Example: a miner core fed by hand
//!
//! ```
//! use strata_miner::sv2::{ChannelRequest, Sv2Config, Sv2Miner, Sv2Output};
//! use strata_miner::Now;
//! use strata_protocol::common::SetupConnectionSuccess;
//! use strata_protocol::mining::{
//!     NewMiningJob, OpenStandardMiningChannelSuccess, SetNewPrevHash,
//! };
//! use strata_protocol::{B0_32, U256};
//! use strata_work::target::Target;
//!
//! let mut m = Sv2Miner::new(Sv2Config {
//!     index: 0,
//!     user: "bcrt1qexample.sim0".into(),
//!     channel: ChannelRequest::Standard,
//!     nominal_hashrate: 1e6,
//!     record_latency: false,
//! })?;
//! let now = Now::at_unix(1_700_000_000);
//! m.connect("127.0.0.1", 34254); // queues SetupConnection
//! m.handle(SetupConnectionSuccess { used_version: 2, flags: 0 }.into(), now)?;
//! let easy = Target::from_difficulty(1.0 / 16_777_216.0)?; // ~256 hashes per share
//! m.handle(OpenStandardMiningChannelSuccess {
//!     request_id: 1, channel_id: 1, target: U256(easy.to_le_bytes()),
//!     extranonce_prefix: B0_32::new(&[0; 4])?, group_channel_id: 0,
//! }.into(), now)?;
//! m.handle(NewMiningJob {
//!     channel_id: 1, job_id: 1, min_ntime: None, version: 0x2000_0000,
//!     merkle_root: U256([7; 32]),
//! }.into(), now)?;
//! m.handle(SetNewPrevHash {
//!     channel_id: 1, job_id: 1, prev_hash: U256([1; 32]), min_ntime: 1_700_000_000,
//!     nbits: 0x1703_a30c,
//! }.into(), now)?;
//! while !m.mine(4096, now).share {}
//! let submits = std::iter::from_fn(|| m.poll_output())
//!     .filter(|o| matches!(o, Sv2Output::Send(msg) if msg.name() == "SubmitSharesStandard"))
//!     .count();
//! assert_eq!(submits, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Scaling the load generator
//!
//! One tokio task per connection (no reader/writer task pairs), about 20 KiB of buffers each.
//! 10 000 connections need 10 000 file descriptors: raise the limit in the shell first
//! (`ulimit -n 20000`); the binary does not change it.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod alarm;
pub mod error;
pub mod funds;
pub mod identity;
pub mod load;
pub mod pace;
pub mod report;
pub mod search;
pub mod shell;
pub mod sv1;
pub mod sv2;
pub mod tips;

use std::time::{Instant, SystemTime, UNIX_EPOCH};

pub use error::{MinerError, EXIT_CONNECTION, EXIT_PROTOCOL};
pub use report::{Event, MinerStats, Reporter, Sink, Summary};

/// The time, as the cores take it: a monotonic instant (latencies, pacing) and UNIX seconds
/// (nTime).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Monotonic time.
    pub instant: Instant,
    /// UNIX time in seconds.
    pub unix_secs: u32,
}

impl Now {
    /// The system clocks.
    pub fn system() -> Self {
        let unix_secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX));
        Now {
            instant: Instant::now(),
            unix_secs,
        }
    }

    /// A fixed UNIX time with the current monotonic instant (tests, replays).
    pub fn at_unix(unix_secs: u32) -> Self {
        Now {
            instant: Instant::now(),
            unix_secs,
        }
    }
}

/// What one hashing step of a core (`mine(budget, now)`) did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mined {
    /// Hashes computed.
    pub hashes: u64,
    /// Whether a share was found (and queued for sending).
    pub share: bool,
}
