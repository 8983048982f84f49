//! The tokio shell around one [`UpstreamSession`]: TCP connect, Noise handshake (pinning the
//! pool's authority key), then one `select!` loop over the pool's frames, the hub's shares,
//! the supervisor's commands and the session's deadline. Share answers go straight to the
//! hub ([`UpstreamEvent::ShareResult`]); every other outcome goes to the supervisor as a
//! [`ConnEvent`], and the task always ends with [`ConnEvent::Ended`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use strata_net::sv2::{initiate, Sv2Options, Sv2Reader, Sv2Writer};
use strata_net::NetError;
use strata_protocol::{DecodeError, Message};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::failover::ConnEvent;
use super::session::{Action, SessionConfig, SessionError, UpstreamSession};
use super::url::PoolUrl;
use super::UpstreamEvent;
use crate::work::ForwardShare;

/// What the supervisor tells a connection.
#[derive(Debug)]
pub(crate) enum ConnCommand {
    /// Send UpdateChannel on a channel.
    UpdateHashrate { channel: usize, hashrate: f32 },
    /// End once every pending share is answered or `timeout` passed (the epoch changed:
    /// shares still arriving through its old route are taken until then).
    Drain { timeout: Duration },
    /// Send SetCustomMiningJob on a channel.
    SetCustomJob {
        channel: usize,
        job: Box<strata_protocol::mining::SetCustomMiningJob>,
    },
}

/// How a connection failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnError {
    #[error("tcp connect to {addr} failed: {source}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("tcp connect to {addr} timed out after {secs:.1}s")]
    ConnectTimeout { addr: String, secs: f64 },
    #[error(
        "noise handshake with {addr} failed (wrong authority key or not an sv2 pool?): {source}"
    )]
    Handshake {
        addr: String,
        #[source]
        source: NetError,
    },
    #[error("connection lost: {source}")]
    Net {
        #[source]
        source: NetError,
    },
    #[error("garbage from the pool: {source}")]
    Garbage {
        #[source]
        source: DecodeError,
    },
    #[error("pool closed the connection")]
    Eof,
    #[error("write to the pool timed out after {secs:.1}s")]
    WriteTimeout { secs: f64 },
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error("drained")]
    Drained,
    #[error("shut down")]
    Shutdown,
    #[error("supervisor gone")]
    SupervisorGone,
    #[error("hub gone")]
    HubGone,
}

/// Settings of one connection.
#[derive(Debug, Clone)]
pub(crate) struct ConnSettings {
    pub session: SessionConfig,
    pub connect_timeout: Duration,
    pub net: Sv2Options,
    pub write_timeout: Duration,
}

/// Shares handed to the session per wake-up at most: a burst of queued shares goes out in
/// one write, and the pool's frames are not kept waiting behind a long queue.
const SHARE_BATCH: usize = 64;

/// What one connection task reads from and reports to.
#[derive(Debug)]
pub(crate) struct Queues {
    /// The supervisor's commands.
    pub commands: mpsc::Receiver<ConnCommand>,
    /// The hub's shares (through a [`super::ShareRoute`]).
    pub shares: mpsc::Receiver<ForwardShare>,
    /// Channels wanted.
    pub channels: watch::Receiver<usize>,
    /// Everything but share answers, to the supervisor.
    pub events: mpsc::Sender<(u64, ConnEvent)>,
    /// Share answers, to the hub.
    pub results: mpsc::Sender<UpstreamEvent>,
}

/// Runs one connection to `url` (or the `redirect` host/port with `url`'s key) until it
/// fails, drains, or `cancel` fires. Always reports [`ConnEvent::Ended`] last, after the
/// answer of every share it took.
pub(crate) async fn run(
    id: u64,
    url: PoolUrl,
    settings: Arc<ConnSettings>,
    mut q: Queues,
    cancel: CancellationToken,
) {
    let mut session_cfg = settings.session.clone();
    session_cfg.channels = session_cfg.channels.max(*q.channels.borrow_and_update());
    session_cfg.endpoint_host = url.host.clone();
    session_cfg.endpoint_port = url.port;
    let mut session = UpstreamSession::new(session_cfg);
    let result = tokio::select! {
        r = drive(id, &url, &settings, &mut session, &mut q) => r,
        () = cancel.cancelled() => Err(ConnError::Shutdown),
    };
    let mut out = Vec::new();
    session.close(&mut out);
    // shares that arrived for this connection and were never handed to the session
    q.shares.close();
    while let Ok(share) = q.shares.try_recv() {
        out.push(Action::ShareResult {
            share,
            accepted: false,
            code: Some(super::session::CODE_STALE_UPSTREAM.into()),
        });
    }
    let _ = forward(id, &mut out, &q).await;
    let events = &q.events;
    match &result {
        Err(
            e @ (ConnError::Handshake { .. }
            | ConnError::Garbage { .. }
            | ConnError::Session(
                SessionError::Protocol { .. }
                | SessionError::Channel { .. }
                | SessionError::SetupRefused { .. }
                | SessionError::ChannelRefused { .. },
            )),
        ) => tracing::error!(pool = %url.address(), error = %e, "pool unusable"),
        Err(
            ConnError::Drained
            | ConnError::Shutdown
            | ConnError::SupervisorGone
            | ConnError::HubGone,
        )
        | Ok(()) => {}
        Err(e) => tracing::info!(pool = %url.address(), error = %e, "pool connection ended"),
    }
    let (reason, redirect) = match &result {
        Err(ConnError::Session(SessionError::Reconnect { host, port })) => (
            result
                .as_ref()
                .err()
                .map(ToString::to_string)
                .unwrap_or_default(),
            Some((host.clone(), *port)),
        ),
        Err(e) => (e.to_string(), None),
        Ok(()) => ("ended".into(), None),
    };
    let _ = events
        .send((id, ConnEvent::Ended { reason, redirect }))
        .await;
}

async fn connect(url: &PoolUrl, settings: &ConnSettings) -> Result<TcpStream, ConnError> {
    let addr = url.address();
    let tcp = tokio::time::timeout(settings.connect_timeout, TcpStream::connect(&addr))
        .await
        .map_err(|_| ConnError::ConnectTimeout {
            addr: addr.clone(),
            secs: settings.connect_timeout.as_secs_f64(),
        })?
        .map_err(|source| ConnError::Connect {
            addr: addr.clone(),
            source,
        })?;
    let _ = tcp.set_nodelay(true);
    Ok(tcp)
}

/// Hands the session's actions over: messages into the writer, share answers to the hub,
/// the rest to the supervisor.
async fn apply(
    id: u64,
    out: &mut Vec<Action>,
    writer: &mut Sv2Writer<OwnedWriteHalf>,
    q: &Queues,
    write_timeout: Duration,
) -> Result<(), ConnError> {
    let mut wrote = false;
    for a in out.iter() {
        if let Action::Send { msg, tlvs } = a {
            if tlvs.is_empty() {
                writer
                    .feed_message(msg)
                    .map_err(|source| ConnError::Net { source })?;
            } else {
                let mut payload = BytesMut::with_capacity(msg.encoded_len() + 64);
                msg.encode(&mut payload);
                strata_protocol::tlv::encode_list(tlvs, &mut payload);
                writer
                    .feed_frame(msg.header(), &payload.freeze())
                    .map_err(|source| ConnError::Net { source })?;
            }
            wrote = true;
        }
    }
    out.retain(|a| !matches!(a, Action::Send { .. }));
    forward(id, out, q).await?;
    if wrote {
        tokio::time::timeout(write_timeout, writer.flush())
            .await
            .map_err(|_| ConnError::WriteTimeout {
                secs: write_timeout.as_secs_f64(),
            })?
            .map_err(|source| ConnError::Net { source })?;
    }
    Ok(())
}

/// Sends the non-message actions on: share answers to the hub, the rest to the supervisor.
async fn forward(id: u64, out: &mut Vec<Action>, q: &Queues) -> Result<(), ConnError> {
    for a in out.drain(..) {
        let ev = match a {
            Action::Send { .. } => continue,
            Action::Opened(info) => ConnEvent::Opened(info),
            Action::ChannelRefused { channel, code } => ConnEvent::Refused { channel, code },
            Action::Work { channel, work } => ConnEvent::Work { channel, work },
            Action::ExtranoncePrefix { channel, prefix } => {
                ConnEvent::ExtranoncePrefix { channel, prefix }
            }
            Action::CustomJob {
                channel,
                request_id,
                result,
            } => ConnEvent::CustomJob {
                channel,
                request_id,
                result,
            },
            Action::ShareResult {
                share,
                accepted,
                code,
            } => {
                q.results
                    .send(UpstreamEvent::ShareResult {
                        share,
                        accepted,
                        code,
                    })
                    .await
                    .map_err(|_| ConnError::HubGone)?;
                continue;
            }
        };
        q.events
            .send((id, ev))
            .await
            .map_err(|_| ConnError::SupervisorGone)?;
    }
    Ok(())
}

/// Hands up to `most` queued shares to the session; returns how many.
fn take_shares(
    shares: &mut mpsc::Receiver<ForwardShare>,
    most: usize,
    session: &mut UpstreamSession,
    out: &mut Vec<Action>,
) -> usize {
    let mut taken = 0;
    while taken < most {
        match shares.try_recv() {
            Ok(share) => session.submit(share, out),
            Err(_) => break,
        }
        taken += 1;
    }
    taken
}

async fn drive(
    id: u64,
    url: &PoolUrl,
    settings: &ConnSettings,
    session: &mut UpstreamSession,
    q: &mut Queues,
) -> Result<(), ConnError> {
    let tcp = connect(url, settings).await?;
    let (rd, wr) = tcp.into_split();
    let (mut reader, mut writer): (Sv2Reader<OwnedReadHalf>, Sv2Writer<OwnedWriteHalf>) =
        initiate(rd, wr, url.authority, &settings.net)
            .await
            .map_err(|source| ConnError::Handshake {
                addr: url.address(),
                source,
            })?;
    let mut out = Vec::new();
    session.start(Instant::now(), &mut out);
    apply(id, &mut out, &mut writer, q, settings.write_timeout).await?;
    let mut drain_until: Option<tokio::time::Instant> = None;
    let mut commands_open = true;
    let mut shares_open = true;
    let mut channels_open = true;
    loop {
        if drain_until.is_some() && session.pending_shares() == 0 {
            return Err(ConnError::Drained);
        }
        let deadline = match (session.deadline(), drain_until) {
            (Some(d), Some(t)) => Some(tokio::time::Instant::from_std(d).min(t)),
            (Some(d), None) => Some(tokio::time::Instant::from_std(d)),
            (None, t) => t,
        };
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            frame = reader.read_frame() => {
                let frame = match frame {
                    Ok(Some(f)) => f,
                    Ok(None) => return Err(ConnError::Eof),
                    Err(NetError::Decode(source)) => return Err(ConnError::Garbage { source }),
                    Err(source) => return Err(ConnError::Net { source }),
                };
                match Message::decode_with_tlvs(&frame.header, &frame.payload) {
                    Ok((msg, _tlvs)) => session.on_message(msg, Instant::now(), &mut out)?,
                    Err(DecodeError::UnknownMessage { extension_type, msg_type }) => {
                        tracing::debug!(pool = id, extension_type, msg_type, "unknown message skipped");
                    }
                    Err(source) => return Err(ConnError::Garbage { source }),
                }
            }
            share = q.shares.recv(), if shares_open => match share {
                Some(share) => {
                    session.submit(share, &mut out);
                    let taken = 1 + take_shares(&mut q.shares, SHARE_BATCH - 1, session, &mut out);
                    if taken < SHARE_BATCH {
                        // the miners' tasks already woken queue their shares first, so that
                        // one write carries them: woken at once by each share, this task
                        // wrote about three shares a write (decision record 0018)
                        tokio::task::yield_now().await;
                        take_shares(&mut q.shares, SHARE_BATCH - taken, session, &mut out);
                    }
                }
                None => shares_open = false,
            },
            cmd = q.commands.recv(), if commands_open => match cmd {
                Some(ConnCommand::UpdateHashrate { channel, hashrate }) => {
                    session.update_hashrate(channel, hashrate, &mut out);
                }
                Some(ConnCommand::SetCustomJob { channel, job }) => {
                    session.set_custom_job(channel, *job, &mut out);
                }
                Some(ConnCommand::Drain { timeout }) => {
                    drain_until = Some(tokio::time::Instant::now() + timeout);
                }
                None => commands_open = false,
            },
            changed = q.channels.changed(), if channels_open => match changed {
                Ok(()) => {
                    let wanted = *q.channels.borrow_and_update();
                    if drain_until.is_none() {
                        session.set_channels(wanted, &mut out);
                    }
                }
                Err(_) => channels_open = false,
            },
            () = sleep => {
                if drain_until.is_some_and(|t| tokio::time::Instant::now() >= t) {
                    return Err(ConnError::Drained);
                }
                session.check_timeout(Instant::now())?;
            }
        }
        apply(id, &mut out, &mut writer, q, settings.write_timeout).await?;
    }
}
