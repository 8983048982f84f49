//! A tiny SV2 pool for tests: Noise responder with a generated authority, one standard or
//! extended channel per connection, one job + prevhash, every share validated with
//! strata_work and answered with SubmitShares.Success / .Error.

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use strata_net::sv2::{respond, Sv2Options};
use strata_noise::{AuthorityKeypair, Certificate, PublicKey, Responder, StaticKeypair};
use strata_protocol::common::{CommonMessage, SetupConnectionError, SetupConnectionSuccess};
use strata_protocol::mining::{
    MiningMessage, OpenExtendedMiningChannelSuccess, OpenStandardMiningChannelSuccess,
    SubmitSharesSuccess,
};
use strata_protocol::{Message, Str0_255, B0_32, U256};
use strata_work::channel::{Channel, ChannelConfig};
use strata_work::share::{validate_extended, validate_standard};
use tokio::net::TcpListener;

use super::{easy_target, extended_job, prevhash, standard_job, HARD_NBITS};

/// What the server does with a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Open the channel asked for, send a job, validate and acknowledge shares.
    Mine,
    /// Answer SetupConnection with SetupConnection.Error and close.
    SetupError,
}

fn unix_now() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .expect("clock")
}

/// A listening server; `authority` is the key miners pin.
pub struct Sv2TestServer {
    pub addr: SocketAddr,
    pub authority: PublicKey,
}

impl Sv2TestServer {
    /// Binds 127.0.0.1:0 and serves connections on the current runtime.
    pub async fn start(behaviour: Behaviour) -> Self {
        let authority = AuthorityKeypair::generate();
        let keys = StaticKeypair::generate();
        let now = unix_now();
        let cert = Certificate::issue(&authority, &keys.public_key(), now - 3600, now + 3600);
        let responder = std::sync::Arc::new(Responder::new(keys, cert));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let responder = responder.clone();
                tokio::spawn(async move {
                    if let Err(e) = serve(tcp, &responder, behaviour).await {
                        eprintln!("test server connection ended: {e}");
                    }
                });
            }
        });
        Sv2TestServer {
            addr,
            authority: authority.public_key(),
        }
    }
}

async fn serve(
    tcp: tokio::net::TcpStream,
    responder: &Responder,
    behaviour: Behaviour,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let (rd, wr) = tcp.into_split();
    let (mut r, mut w) = respond(rd, wr, responder, &Sv2Options::default()).await?;
    let Some((_, Message::Common(CommonMessage::SetupConnection(setup)))) =
        r.read_message().await?
    else {
        return Err("expected SetupConnection".into());
    };
    assert_eq!(setup.protocol, 0);
    if behaviour == Behaviour::SetupError {
        w.send(&SetupConnectionError {
            flags: 0,
            error_code: Str0_255::new("unsupported-protocol")?,
        })
        .await?;
        w.shutdown().await?;
        return Ok(());
    }
    w.send(&SetupConnectionSuccess {
        used_version: 2,
        flags: 0,
    })
    .await?;
    let target = U256(easy_target().to_le_bytes());
    let mut channel = match r.read_message().await? {
        Some((_, Message::Mining(MiningMessage::OpenStandardMiningChannel(o)))) => {
            let ch =
                Channel::new_standard(1, &[5, 5, 5, 5], easy_target(), ChannelConfig::default())?;
            w.feed(&OpenStandardMiningChannelSuccess {
                request_id: o.request_id,
                channel_id: 1,
                target,
                extranonce_prefix: B0_32::new(&[5, 5, 5, 5])?,
                group_channel_id: 0,
            })?;
            let mut ch = ch;
            let job = standard_job(1, 1, true, 0x3c);
            ch.on_new_mining_job(&job)?;
            w.feed(&job)?;
            ch
        }
        Some((_, Message::Mining(MiningMessage::OpenExtendedMiningChannel(o)))) => {
            let size = o.min_extranonce_size.max(4);
            let mut ch = Channel::new_extended(
                1,
                &[5, 5],
                size as u8,
                easy_target(),
                ChannelConfig::default(),
            )?;
            w.feed(&OpenExtendedMiningChannelSuccess {
                request_id: o.request_id,
                channel_id: 1,
                target,
                extranonce_size: size,
                extranonce_prefix: B0_32::new(&[5, 5])?,
                group_channel_id: 0,
            })?;
            let job = extended_job(1, 1, true, true);
            ch.on_new_extended_mining_job(&job)?;
            w.feed(&job)?;
            ch
        }
        other => return Err(format!("expected an open, got {other:?}").into()),
    };
    let mut prev = prevhash(1, 1, 0x6d, HARD_NBITS);
    prev.min_ntime = unix_now();
    channel.on_set_new_prev_hash(&prev)?;
    w.send(&prev).await?;
    while let Some((_, msg)) = r.read_message().await? {
        let now_ms = u64::from(unix_now()) * 1000;
        let (seq, result) = match msg {
            Message::Mining(MiningMessage::SubmitSharesStandard(s)) => (
                s.sequence_number,
                validate_standard(&mut channel, &s, now_ms),
            ),
            Message::Mining(MiningMessage::SubmitSharesExtended(s)) => (
                s.sequence_number,
                validate_extended(&mut channel, &s, now_ms),
            ),
            other => return Err(format!("unexpected {}", other.name()).into()),
        };
        match result {
            Ok(_) => {
                w.send(&SubmitSharesSuccess {
                    channel_id: 1,
                    last_sequence_number: seq,
                    new_submits_accepted_count: 1,
                    new_shares_sum: 1,
                })
                .await?
            }
            Err(rej) => w.send(&rej.to_message(1, seq)).await?,
        }
    }
    Ok(())
}
