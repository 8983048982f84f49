//! strata-net over real sockets and in-memory pipes: handshake both ways, messages both ways,
//! timeouts on a paused clock, cancellation safety under `select!`, hostile peers.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use bytes::Bytes;
use std::time::Duration;
use strata_net::sv2::{initiate, plaintext, respond, Sv2Options, Sv2Reader, Sv2Writer};
use strata_net::NetError;
use strata_noise::{AuthorityKeypair, Certificate, NoiseError, Responder, StaticKeypair};
use strata_protocol::common::{SetupConnection, SetupConnectionSuccess};
use strata_protocol::mining::SubmitSharesStandard;
use strata_protocol::{Header, Message, Str0_255};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn now() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32
}

fn server_keys() -> (AuthorityKeypair, Responder) {
    let authority = AuthorityKeypair::generate();
    let keys = StaticKeypair::generate();
    let cert = Certificate::issue(&authority, &keys.public_key(), now() - 60, now() + 3600);
    (authority, Responder::new(keys, cert))
}

fn setup() -> SetupConnection {
    SetupConnection {
        protocol: 0,
        min_version: 2,
        max_version: 2,
        flags: 0,
        endpoint_host: Str0_255::new("127.0.0.1").unwrap(),
        endpoint_port: 34254,
        vendor: Str0_255::new("strata").unwrap(),
        hardware_version: Str0_255::new("test").unwrap(),
        firmware: Str0_255::new("0").unwrap(),
        device_id: Str0_255::new("").unwrap(),
    }
}

fn share(i: u32) -> SubmitSharesStandard {
    SubmitSharesStandard {
        channel_id: 1,
        sequence_number: i,
        job_id: 7,
        nonce: i.wrapping_mul(2_654_435_761),
        ntime: 1_700_000_000,
        version: 0x2000_0000,
    }
}

type PipeReader = tokio::io::ReadHalf<tokio::io::DuplexStream>;
type PipeWriter = tokio::io::WriteHalf<tokio::io::DuplexStream>;

/// An encrypted session over an in-memory pipe of `pipe` bytes: (client writer, server reader).
async fn session(
    authority: &AuthorityKeypair,
    responder: &Responder,
    pipe: usize,
) -> (Sv2Writer<PipeWriter>, Sv2Reader<PipeReader>) {
    let (a, b) = tokio::io::duplex(pipe);
    let (ar, aw) = tokio::io::split(a);
    let (br, bw) = tokio::io::split(b);
    let opts = Sv2Options::default();
    let (client, server) = tokio::join!(
        initiate(ar, aw, authority.public_key(), &opts),
        respond(br, bw, responder, &opts)
    );
    let (_cr, cw) = client.unwrap();
    let (sr, _sw) = server.unwrap();
    (cw, sr)
}

#[tokio::test]
async fn tcp_handshake_and_messages_both_ways() {
    let (authority, responder) = server_keys();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let (rd, wr) = tcp.into_split();
        let (mut reader, mut writer) = respond(rd, wr, &responder, &Sv2Options::default())
            .await
            .unwrap();
        let (_, first) = reader.read_message().await.unwrap().unwrap();
        assert_eq!(first, Message::from(setup()));
        writer
            .send(&SetupConnectionSuccess {
                used_version: 2,
                flags: 0,
            })
            .await
            .unwrap();
        let mut shares = Vec::new();
        while let Some((h, m)) = reader.read_message().await.unwrap() {
            assert!(h.channel_msg);
            shares.push(m);
        }
        shares
    });

    let tcp = TcpStream::connect(addr).await.unwrap();
    let (rd, wr) = tcp.into_split();
    let (mut reader, mut writer) = initiate(rd, wr, authority.public_key(), &Sv2Options::default())
        .await
        .unwrap();
    writer.send(&setup()).await.unwrap();
    let (_, reply) = reader.read_message().await.unwrap().unwrap();
    assert_eq!(
        reply,
        Message::from(SetupConnectionSuccess {
            used_version: 2,
            flags: 0
        })
    );
    // A batch fed, then flushed once.
    for i in 0..100 {
        writer.feed(&share(i)).unwrap();
    }
    writer.shutdown().await.unwrap();
    let got = server.await.unwrap();
    assert_eq!(got.len(), 100);
    for (i, m) in got.iter().enumerate() {
        assert_eq!(m, &Message::from(share(i as u32)));
    }
}

#[tokio::test]
async fn multi_chunk_frame_crosses_intact() {
    let (authority, responder) = server_keys();
    let (mut cw, mut sr) = session(&authority, &responder, 1024).await;
    let big: Bytes = (0..200_000u32).map(|i| i as u8).collect::<Vec<_>>().into();
    let header = Header {
        extension_type: 0x4001,
        channel_msg: true,
        msg_type: 9,
        msg_length: 0,
    };
    let send = async {
        cw.feed_frame(header, &big).unwrap();
        cw.flush().await.unwrap();
    };
    let (_, got) = tokio::join!(send, sr.read_frame());
    let f = got.unwrap().unwrap();
    assert_eq!(f.header.extension_type, 0x4001);
    assert!(f.header.channel_msg);
    assert_eq!(f.payload, big);
}

#[tokio::test(start_paused = true)]
async fn silent_peer_hits_handshake_timeout() {
    let (_authority, responder) = server_keys();
    let (_client_end, server_end) = tokio::io::duplex(1024);
    let (rd, wr) = tokio::io::split(server_end);
    let opts = Sv2Options {
        handshake_timeout: Duration::from_secs(5),
        ..Sv2Options::default()
    };
    let err = respond(rd, wr, &responder, &opts).await.unwrap_err();
    assert!(matches!(err, NetError::HandshakeTimeout { .. }), "{err}");
}

#[tokio::test]
async fn wrong_authority_is_refused_by_the_client() {
    let (_authority, responder) = server_keys();
    let impostor = AuthorityKeypair::generate();
    let (a, b) = tokio::io::duplex(1024);
    let (ar, aw) = tokio::io::split(a);
    let (br, bw) = tokio::io::split(b);
    let opts = Sv2Options::default();
    let (client, server) = tokio::join!(
        initiate(ar, aw, impostor.public_key(), &opts),
        respond(br, bw, &responder, &opts)
    );
    assert!(server.is_ok());
    let err = client.unwrap_err();
    assert!(
        matches!(err, NetError::Noise(NoiseError::CertificateBadSignature)),
        "{err}"
    );
}

#[tokio::test]
async fn peer_closing_during_handshake_is_reported() {
    let (authority, _responder) = server_keys();
    let (a, mut b) = tokio::io::duplex(1024);
    let (ar, aw) = tokio::io::split(a);
    let peer = async move {
        let mut act1 = [0u8; 64];
        b.read_exact(&mut act1).await.unwrap();
        b.write_all(&[0u8; 100]).await.unwrap();
        drop(b);
    };
    let opts = Sv2Options::default();
    let (res, _) = tokio::join!(initiate(ar, aw, authority.public_key(), &opts), peer);
    assert!(matches!(res.unwrap_err(), NetError::HandshakeEof));
}

#[tokio::test]
async fn tampered_ciphertext_closes_only_that_connection() {
    let (authority, responder) = server_keys();
    let opts = Sv2Options::default();
    // Connection 1: a man in the middle flips one bit of the first frame after the handshake.
    let (a, mid_a) = tokio::io::duplex(4096);
    let (mid_b, b) = tokio::io::duplex(4096);
    let (ar, aw) = tokio::io::split(a);
    let (br, bw) = tokio::io::split(b);
    let relay = async move {
        let (mut ma_r, mut ma_w) = tokio::io::split(mid_a);
        let (mut mb_r, mut mb_w) = tokio::io::split(mid_b);
        let up = async {
            let mut buf = vec![0u8; 64];
            ma_r.read_exact(&mut buf).await.unwrap();
            mb_w.write_all(&buf).await.unwrap();
            let mut frame = vec![0u8; 22 + 24 + 16];
            ma_r.read_exact(&mut frame).await.unwrap();
            frame[30] ^= 1;
            mb_w.write_all(&frame).await.unwrap();
        };
        let down = async {
            let mut buf = vec![0u8; 234];
            mb_r.read_exact(&mut buf).await.unwrap();
            ma_w.write_all(&buf).await.unwrap();
        };
        tokio::join!(up, down);
    };
    let relay = tokio::spawn(relay);
    let (client, server) = tokio::join!(
        initiate(ar, aw, authority.public_key(), &opts),
        respond(br, bw, &responder, &opts)
    );
    let (_cr, mut cw) = client.unwrap();
    let (mut sr, _sw) = server.unwrap();
    cw.send(&share(1)).await.unwrap();
    relay.await.unwrap();
    let err = sr.read_frame().await.unwrap_err();
    assert!(
        matches!(
            err,
            NetError::Noise(NoiseError::FramePayloadAuthentication { chunk: 0 })
        ),
        "{err}"
    );

    // Connection 2 with the same responder is unaffected.
    let (mut cw, mut sr) = session(&authority, &responder, 4096).await;
    cw.send(&share(2)).await.unwrap();
    assert_eq!(
        sr.read_message().await.unwrap().unwrap().1,
        Message::from(share(2))
    );
}

/// Every read is polled once and dropped if not ready, while the peer's bytes arrive one at a
/// time (a 1-byte pipe): nearly every read is cancelled mid-frame, yet no frame may be lost or
/// torn.
#[tokio::test]
async fn read_frame_is_cancellation_safe() {
    let (authority, responder) = server_keys();
    let (mut cw, mut sr) = session(&authority, &responder, 1).await;

    let n = 20u32;
    for i in 0..n {
        cw.feed(&share(i)).unwrap();
    }
    let trickle = tokio::spawn(async move {
        cw.flush().await.unwrap();
        cw
    });
    let mut got = Vec::new();
    let mut cancelled = 0u32;
    while got.len() < n as usize {
        let read = sr.read_message();
        tokio::pin!(read);
        match futures::poll!(read) {
            std::task::Poll::Ready(f) => got.push(f.unwrap().unwrap().1),
            std::task::Poll::Pending => cancelled += 1,
        }
        tokio::task::yield_now().await;
    }
    let _cw = trickle.await.unwrap();
    for (i, m) in got.iter().enumerate() {
        assert_eq!(m, &Message::from(share(i as u32)));
    }
    assert!(cancelled > 0, "the race never cancelled a read");
}

#[tokio::test]
async fn peer_closing_mid_frame_is_an_error_not_a_clean_end() {
    let (a, b) = tokio::io::duplex(1024);
    let (ar, aw) = tokio::io::split(a);
    let (_br, mut bw) = tokio::io::split(b);
    let (mut reader, _writer) = plaintext(ar, aw, &Sv2Options::default());
    bw.write_all(&[0, 0x80, 0x1a, 24, 0, 0, 1, 2, 3])
        .await
        .unwrap();
    drop(bw);
    drop(_br);
    let err = reader.read_frame().await.unwrap_err();
    assert!(
        matches!(err, NetError::UnexpectedEof { pending: 9 }),
        "{err}"
    );
}

#[tokio::test]
async fn oversized_plaintext_frame_is_refused() {
    let (a, b) = tokio::io::duplex(1024);
    let (ar, aw) = tokio::io::split(a);
    let (_br, mut bw) = tokio::io::split(b);
    let opts = Sv2Options {
        max_payload_len: 1000,
        ..Sv2Options::default()
    };
    let (mut reader, _writer) = plaintext(ar, aw, &opts);
    bw.write_all(&[0, 0, 0x71, 0xff, 0xff, 0xff]).await.unwrap();
    let err = reader.read_frame().await.unwrap_err();
    assert!(matches!(err, NetError::Frame(_)), "{err}");
}
