//! The tokio shells: one task per miner connection owns its socket, feeds the sans-IO core
//! with what arrives, sends what the core queues, and calls the core's hashing step when the
//! [`Pacer`] allows (the hashing runs on the task between reads; a step is at most about
//! 100 ms of the configured hashrate, or [`crate::pace::SHARE_RATE_STEP`] hashes).
//!
//! A shell returns when `stop` is cancelled (`Ok`), or with the error that ended the miner:
//! a refused setup / channel / subscription, a malformed frame, a lost connection. A
//! `Reconnect` from the server closes the connection and opens one to the new endpoint.

use std::fmt;
use std::time::Duration;

use strata_net::sv1::LineReader;
use strata_net::sv2::{initiate, plaintext, Sv2Options};
use strata_noise::PublicKey;
use strata_protocol::{DecodeError, Message};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::Instant as TokioInstant;
use tokio_util::sync::CancellationToken;

use crate::alarm::Alarm;
use crate::error::MinerError;
use crate::pace::{Pacer, Pacing};
use crate::report::{Event, Reporter};
use crate::sv1::{Sv1Miner, Sv1Output};
use crate::sv2::{Sv2Miner, Sv2Output};
use crate::Now;

/// Longest `client.reconnect` wait honoured.
const MAX_RECONNECT_WAIT: Duration = Duration::from_secs(60);

/// A server address, `host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name or IP address (IPv6 in brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl Endpoint {
    /// Parses `host:port` (also `stratum+tcp://host:port` and `stratum2+tcp://host:port/KEY`,
    /// whose key part is ignored here).
    pub fn parse(s: &str) -> Result<Self, MinerError> {
        let bad = || MinerError::BadAddress { addr: s.to_owned() };
        let rest = s.split_once("://").map_or(s, |(_, r)| r);
        let rest = rest.split('/').next().unwrap_or(rest);
        let (host, port) = rest.rsplit_once(':').ok_or_else(bad)?;
        if host.is_empty() {
            return Err(bad());
        }
        let port = port.parse().map_err(|_| bad())?;
        Ok(Endpoint {
            host: host.to_owned(),
            port,
        })
    }

    /// This endpoint with the host and/or port replaced (a `Reconnect`).
    pub fn redirect(&self, host: Option<String>, port: Option<u16>) -> Self {
        Endpoint {
            host: host.unwrap_or_else(|| self.host.clone()),
            port: port.unwrap_or(self.port),
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// How an SV2 miner connects.
#[derive(Debug, Clone)]
pub struct Sv2Connect {
    /// The pool.
    pub endpoint: Endpoint,
    /// The pool's authority key to pin (Noise); `None`: plaintext (trusted LANs only).
    pub authority: Option<PublicKey>,
    /// Handshake timeout and frame limits.
    pub options: Sv2Options,
}

async fn tcp_connect(
    endpoint: &Endpoint,
    stop: &CancellationToken,
) -> Result<Option<TcpStream>, MinerError> {
    let addr = endpoint.to_string();
    tokio::select! {
        r = TcpStream::connect(&addr) => {
            let tcp = r.map_err(|source| MinerError::Connect { addr, source })?;
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "set_nodelay");
            }
            Ok(Some(tcp))
        }
        () = stop.cancelled() => Ok(None),
    }
}

/// When to hash next: the pacer's time while there is work, else never.
fn wake_at(pacer: &Pacer, has_work: bool) -> std::time::Instant {
    let now = std::time::Instant::now();
    if has_work {
        pacer.next_wake(now)
    } else {
        now + Duration::from_secs(3600)
    }
}

/// What a connection sleeps on between hashing steps: tokio's timer (1 ms ticks), or for
/// the load generator's share-rate pacing an [`Alarm`] (sub-millisecond), so that thousands
/// of connections submit at spread instants rather than in a burst at each tick.
#[derive(Debug)]
enum Wake {
    Tokio,
    Alarm(Alarm),
}

impl Wake {
    fn for_pacing(pacing: Pacing) -> Self {
        match pacing {
            Pacing::ShareRate(_) => Wake::Alarm(Alarm::new()),
            Pacing::Hashrate(_) | Pacing::ClosedLoop => Wake::Tokio,
        }
    }

    async fn until(&mut self, at: std::time::Instant) {
        match self {
            Wake::Tokio => tokio::time::sleep_until(TokioInstant::from_std(at)).await,
            Wake::Alarm(a) => a.until(at).await,
        }
    }
}

/// Hashes what the pacer allows now; `mine` is the core's step.
fn hash_now(pacer: &mut Pacer, mut mine: impl FnMut(u64, Now) -> crate::Mined) {
    let now = Now::system();
    let mut left = pacer.budget(now.instant);
    while left > 0 {
        let m = mine(left, now);
        pacer.spent(m.hashes, m.share, now.instant);
        left = left.saturating_sub(m.hashes);
        if m.hashes == 0 || matches!(pacer.pacing(), Pacing::ShareRate(_) | Pacing::ClosedLoop) {
            break;
        }
    }
}

/// Runs an SV2 miner until `stop` is cancelled or an error ends it (reported as
/// [`Event::Failed`] too). Follows `Reconnect`s.
pub async fn run_sv2(
    miner: &mut Sv2Miner,
    connect: &Sv2Connect,
    pacing: Pacing,
    reporter: &Reporter,
    stop: &CancellationToken,
) -> Result<(), MinerError> {
    let index = miner.config().index;
    let mut endpoint = connect.endpoint.clone();
    let r = loop {
        match sv2_session(miner, &endpoint, connect, pacing, reporter, stop).await {
            Ok(None) => break Ok(()),
            Ok(Some(next)) => {
                reporter.emit(
                    index,
                    &Event::Reconnecting {
                        addr: next.to_string(),
                    },
                );
                endpoint = next;
            }
            Err(e) => break Err(e),
        }
    };
    if let Err(e) = &r {
        reporter.emit(
            index,
            &Event::Failed {
                error: e.to_string(),
                exit_code: e.exit_code(),
            },
        );
    }
    r
}

/// Reports the events queued in `miner` and drops everything else (the connection is over).
fn report_sv2_events(miner: &mut Sv2Miner, reporter: &Reporter) {
    let index = miner.config().index;
    while let Some(out) = miner.poll_output() {
        if let Sv2Output::Event(e) = out {
            reporter.emit(index, &e);
        }
    }
}

/// One connection; `Ok(Some(endpoint))` when the server asked to reconnect there.
async fn sv2_session(
    miner: &mut Sv2Miner,
    endpoint: &Endpoint,
    connect: &Sv2Connect,
    pacing: Pacing,
    reporter: &Reporter,
    stop: &CancellationToken,
) -> Result<Option<Endpoint>, MinerError> {
    let index = miner.config().index;
    let Some(tcp) = tcp_connect(endpoint, stop).await? else {
        return Ok(None);
    };
    let (rd, wr) = tcp.into_split();
    let (mut reader, mut writer) = match connect.authority {
        Some(key) => tokio::select! {
            r = initiate(rd, wr, key, &connect.options) => r?,
            () = stop.cancelled() => return Ok(None),
        },
        None => plaintext(rd, wr, &connect.options),
    };
    reporter.emit(
        index,
        &Event::Connected {
            addr: endpoint.to_string(),
        },
    );
    miner.connect(&endpoint.host, endpoint.port);
    let mut pacer = Pacer::new(pacing, std::time::Instant::now());
    let mut hashed = false;
    let mut sleep = Wake::for_pacing(pacing);
    loop {
        while let Some(out) = miner.poll_output() {
            match out {
                Sv2Output::Send(m) => writer.feed_message(&m)?,
                Sv2Output::Event(e) => reporter.emit(index, &e),
                Sv2Output::Reconnect { host, port } => {
                    report_sv2_events(miner, reporter);
                    let _ = writer.shutdown().await;
                    return Ok(Some(endpoint.redirect(host, port)));
                }
            }
        }
        if writer.pending() > 0 {
            tokio::select! {
                r = writer.flush() => r?,
                () = stop.cancelled() => return Ok(None),
            }
        }
        if std::mem::take(&mut hashed) {
            // after a hashing step, let the other tasks run; only once its share is written
            // (a submit waiting behind the run queue would count in its latency)
            tokio::task::yield_now().await;
        }
        let wake = wake_at(&pacer, miner.has_work());
        tokio::select! {
            biased;
            () = stop.cancelled() => return Ok(None),
            frame = reader.read_frame() => {
                let frame = frame?.ok_or(MinerError::Closed)?;
                match Message::decode_with_tlvs(&frame.header, &frame.payload) {
                    Ok((msg, _tlvs)) => {
                        if let Err(e) = miner.handle(msg, Now::system()) {
                            report_sv2_events(miner, reporter);
                            return Err(e);
                        }
                    }
                    Err(DecodeError::UnknownMessage { extension_type, msg_type }) => {
                        tracing::debug!(miner = index, extension_type, msg_type, "unknown message ignored");
                    }
                    Err(source) => return Err(MinerError::Malformed { source }),
                }
            }
            () = sleep.until(wake), if miner.has_work() => {
                hash_now(&mut pacer, |budget, now| miner.mine(budget, now));
                hashed = true;
            }
        }
    }
}

/// Runs an SV1 miner until `stop` is cancelled or an error ends it (reported as
/// [`Event::Failed`] too). Follows `client.reconnect`.
pub async fn run_sv1(
    miner: &mut Sv1Miner,
    endpoint: &Endpoint,
    pacing: Pacing,
    reporter: &Reporter,
    stop: &CancellationToken,
) -> Result<(), MinerError> {
    let index = miner.config().index;
    let mut endpoint = endpoint.clone();
    let r = loop {
        match sv1_session(miner, &endpoint, pacing, reporter, stop).await {
            Ok(None) => break Ok(()),
            Ok(Some((next, wait))) => {
                reporter.emit(
                    index,
                    &Event::Reconnecting {
                        addr: next.to_string(),
                    },
                );
                endpoint = next;
                let wait = Duration::from_secs(u64::from(wait)).min(MAX_RECONNECT_WAIT);
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = stop.cancelled() => break Ok(()),
                }
            }
            Err(e) => break Err(e),
        }
    };
    if let Err(e) = &r {
        reporter.emit(
            index,
            &Event::Failed {
                error: e.to_string(),
                exit_code: e.exit_code(),
            },
        );
    }
    r
}

fn report_sv1_events(miner: &mut Sv1Miner, reporter: &Reporter) {
    let index = miner.config().index;
    while let Some(out) = miner.poll_output() {
        if let Sv1Output::Event(e) = out {
            reporter.emit(index, &e);
        }
    }
}

async fn sv1_session(
    miner: &mut Sv1Miner,
    endpoint: &Endpoint,
    pacing: Pacing,
    reporter: &Reporter,
    stop: &CancellationToken,
) -> Result<Option<(Endpoint, u32)>, MinerError> {
    let index = miner.config().index;
    let Some(tcp) = tcp_connect(endpoint, stop).await? else {
        return Ok(None);
    };
    let (rd, mut wr) = tcp.into_split();
    let mut lines = LineReader::new(rd, strata_sv1::DEFAULT_MAX_LINE_LEN);
    if miner.config().record_latency {
        // latencies to the responses' arrival, not to this task's read
        if let Err(e) = lines.timestamp_reads() {
            tracing::debug!(error = %e, "SO_TIMESTAMPNS");
        }
    }
    reporter.emit(
        index,
        &Event::Connected {
            addr: endpoint.to_string(),
        },
    );
    miner.connect();
    let mut pacer = Pacer::new(pacing, std::time::Instant::now());
    let mut out = Vec::with_capacity(1024);
    let mut hashed = false;
    let mut sleep = Wake::for_pacing(pacing);
    loop {
        while let Some(o) = miner.poll_output() {
            match o {
                Sv1Output::Send(line) => out.extend_from_slice(&line),
                Sv1Output::Event(e) => reporter.emit(index, &e),
                Sv1Output::Reconnect {
                    host,
                    port,
                    wait_secs,
                } => {
                    report_sv1_events(miner, reporter);
                    let _ = wr.shutdown().await;
                    return Ok(Some((endpoint.redirect(host, port), wait_secs)));
                }
            }
        }
        if !out.is_empty() {
            let io = |source| MinerError::Net {
                source: strata_net::NetError::Io(source),
            };
            tokio::select! {
                r = wr.write_all(&out) => r.map_err(io)?,
                () = stop.cancelled() => return Ok(None),
            }
            out.clear();
        }
        if std::mem::take(&mut hashed) {
            // after a hashing step, let the other tasks run; only once its share is written
            // (a submit waiting behind the run queue would count in its latency)
            tokio::task::yield_now().await;
        }
        // closed loop: no hashing while a share waits for its answer
        let may_hash =
            miner.has_work() && !(pacing == Pacing::ClosedLoop && miner.submit_in_flight());
        let wake = wake_at(&pacer, may_hash);
        tokio::select! {
            biased;
            () = stop.cancelled() => return Ok(None),
            line = lines.next() => {
                let line = line.ok_or(MinerError::Closed)??;
                let now = Now::system();
                let arrived = lines.received().map(|at| {
                    let ago = std::time::SystemTime::now().duration_since(at).unwrap_or_default();
                    now.instant.checked_sub(ago).unwrap_or(now.instant)
                });
                if let Err(e) = miner.handle_line_arrived(line.freeze(), now, arrived) {
                    report_sv1_events(miner, reporter);
                    return Err(e);
                }
            }
            () = sleep.until(wake), if may_hash => {
                hash_now(&mut pacer, |budget, now| miner.mine(budget, now));
                hashed = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse() {
        let e = Endpoint::parse("127.0.0.1:3333").expect("plain");
        assert_eq!((e.host.as_str(), e.port), ("127.0.0.1", 3333));
        let e = Endpoint::parse("stratum+tcp://pool.example:3334").expect("url");
        assert_eq!((e.host.as_str(), e.port), ("pool.example", 3334));
        let e = Endpoint::parse(
            "stratum2+tcp://[::1]:34254/9bXiEd8boQVhq7WddEcERUL5tyyJVFYdU8th3HfbNXK3Yw6GRXh",
        )
        .expect("sv2 url");
        assert_eq!((e.host.as_str(), e.port), ("[::1]", 34254));
        assert!(Endpoint::parse("nohost").is_err());
        assert!(Endpoint::parse(":3333").is_err());
        assert!(Endpoint::parse("h:99999").is_err());
        let r = e.redirect(None, Some(1));
        assert_eq!(r.to_string(), "[::1]:1");
        let r = e.redirect(Some("a".into()), None);
        assert_eq!(r.to_string(), "a:34254");
    }
}
