//! The SV2 miner's tokio shell and the binary against a tiny SV2 pool (Noise, real share
//! validation).

mod common;

use std::time::Duration;

use common::sv2_server::{Behaviour, Sv2TestServer};
use strata_miner::pace::Pacing;
use strata_miner::shell::{run_sv2, Endpoint, Sv2Connect};
use strata_miner::sv2::{ChannelRequest, Sv2Config, Sv2Miner};
use strata_miner::{MinerError, Reporter, Sink};
use strata_net::sv2::Sv2Options;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

async fn mine_until_acked(channel: ChannelRequest, goal: u64) {
    let server = Sv2TestServer::start(Behaviour::Mine).await;
    let connect = Sv2Connect {
        endpoint: Endpoint::parse(&server.addr.to_string()).expect("addr"),
        authority: Some(server.authority),
        options: Sv2Options::default(),
    };
    let mut miner = Sv2Miner::new(Sv2Config {
        index: 0,
        user: "bcrt1qtest.sim0".into(),
        channel,
        nominal_hashrate: 50_000.0,
        record_latency: true,
    })
    .expect("miner");
    let stop = CancellationToken::new();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let reporter = Reporter::new(Sink::Channel(tx), Some(goal), stop.clone());
    let r = tokio::time::timeout(
        Duration::from_secs(60),
        run_sv2(
            &mut miner,
            &connect,
            Pacing::Hashrate(50_000.0),
            &reporter,
            &stop,
        ),
    )
    .await
    .expect("goal reached in time");
    r.expect("stopped by the goal, not an error");
    let stats = miner.stats();
    assert!(stats.acknowledged >= goal, "{stats:?}");
    assert!(stats.rejected.is_empty(), "{stats:?}");
    assert!(stats.established);
    assert_eq!(stats.latencies_us.len() as u64, stats.acknowledged);
    let mut lines = vec![];
    while let Ok(l) = rx.try_recv() {
        lines.push(l);
    }
    assert!(
        lines[0].starts_with("connected miner=0 addr=127.0.0.1:"),
        "{lines:?}"
    );
    assert!(lines
        .iter()
        .any(|l| l.starts_with("channel opened miner=0 channel=1 kind=")));
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("share accepted miner=0 channel=1 ")
                && l.ends_with(&format!("acked_total={goal}"))),
        "{lines:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standard_channel_shares_are_acknowledged() {
    mine_until_acked(ChannelRequest::Standard, 5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extended_channel_shares_are_acknowledged() {
    mine_until_acked(
        ChannelRequest::Extended {
            min_extranonce_size: 8,
        },
        5,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_error_ends_the_miner_with_a_protocol_error() {
    let server = Sv2TestServer::start(Behaviour::SetupError).await;
    let connect = Sv2Connect {
        endpoint: Endpoint::parse(&server.addr.to_string()).expect("addr"),
        authority: Some(server.authority),
        options: Sv2Options::default(),
    };
    let mut miner = Sv2Miner::new(Sv2Config {
        index: 0,
        user: "u".into(),
        channel: ChannelRequest::Standard,
        nominal_hashrate: 1.0,
        record_latency: false,
    })
    .expect("miner");
    let err = run_sv2(
        &mut miner,
        &connect,
        Pacing::Hashrate(1000.0),
        &Reporter::silent(),
        &CancellationToken::new(),
    )
    .await
    .expect_err("refused");
    assert!(matches!(err, MinerError::SetupRejected { .. }), "{err}");
    assert_eq!(err.exit_code(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_authority_key_fails_the_handshake() {
    let server = Sv2TestServer::start(Behaviour::Mine).await;
    let other = strata_noise::AuthorityKeypair::generate().public_key();
    let connect = Sv2Connect {
        endpoint: Endpoint::parse(&server.addr.to_string()).expect("addr"),
        authority: Some(other),
        options: Sv2Options::default(),
    };
    let mut miner = Sv2Miner::new(Sv2Config {
        index: 0,
        user: "u".into(),
        channel: ChannelRequest::Standard,
        nominal_hashrate: 1.0,
        record_latency: false,
    })
    .expect("miner");
    let err = run_sv2(
        &mut miner,
        &connect,
        Pacing::Hashrate(1000.0),
        &Reporter::silent(),
        &CancellationToken::new(),
    )
    .await
    .expect_err("bad certificate");
    assert_eq!(err.kind(), "noise", "{err}");
}

// ------------------------------------------------------------------------------------------
// the binary
// ------------------------------------------------------------------------------------------

/// Runs a test server on its own runtime in a thread; returns its address and key.
fn server_in_thread(behaviour: Behaviour) -> (String, String) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let s = Sv2TestServer::start(behaviour).await;
            tx.send((s.addr.to_string(), s.authority.to_string()))
                .expect("send");
            std::future::pending::<()>().await;
        });
    });
    rx.recv().expect("server started")
}

fn bin() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_strata-miner"))
}

#[test]
fn help_explains_every_command_and_option() {
    let out = bin().arg("--help").output().expect("run");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).expect("utf8");
    for word in ["sv2", "sv1", "load", "Exit codes"] {
        assert!(text.contains(word), "{word} missing from:\n{text}");
    }
    let out = bin().args(["sv2", "--help"]).output().expect("run");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).expect("utf8");
    for opt in [
        "--pool",
        "--authority-key",
        "--channel",
        "--count",
        "--user",
        "--hashrate",
        "--shares",
        "--duration",
        "--plaintext",
    ] {
        assert!(text.contains(opt), "{opt} missing from:\n{text}");
    }
    let out = bin().args(["load", "--help"]).output().expect("run");
    let text = String::from_utf8(out.stdout).expect("utf8");
    for opt in [
        "--pool",
        "--url",
        "--connections",
        "--rate",
        "--connect-rate",
    ] {
        assert!(text.contains(opt), "{opt} missing from:\n{text}");
    }
    let out = bin().args(["sv2", "--pool"]).output().expect("run");
    assert_eq!(out.status.code(), Some(64));
}

#[test]
fn binary_exits_1_on_setup_connection_error() {
    let (addr, key) = server_in_thread(Behaviour::SetupError);
    let out = bin()
        .args([
            "sv2",
            "--pool",
            &addr,
            "--authority-key",
            &key,
            "--duration",
            "30",
        ])
        .output()
        .expect("run");
    let stdout = String::from_utf8(out.stdout).expect("utf8");
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("setup error miner=0 code=unsupported-protocol"),
        "{stdout}"
    );
    let summary: serde_json::Value =
        serde_json::from_str(stdout.lines().last().expect("summary")).expect("json summary");
    assert_eq!(summary["failed"], 1);
    assert_eq!(summary["acknowledged"], 0);
}

#[test]
fn binary_mines_until_the_share_goal() {
    let (addr, key) = server_in_thread(Behaviour::Mine);
    let out = bin()
        .args([
            "sv2",
            "--pool",
            &addr,
            "--authority-key",
            &key,
            "--count",
            "2",
            "--channel",
            "extended",
            "--hashrate",
            "20000",
            "--shares",
            "6",
            "--duration",
            "60",
        ])
        .output()
        .expect("run");
    let stdout = String::from_utf8(out.stdout).expect("utf8");
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let summary: serde_json::Value =
        serde_json::from_str(stdout.lines().last().expect("summary")).expect("json summary");
    assert!(
        summary["acknowledged"].as_u64().expect("n") >= 6,
        "{summary}"
    );
    assert_eq!(summary["miners"], 2);
    assert_eq!(summary["failed"], 0);
    assert!(
        stdout.contains("share accepted miner=1 channel=1"),
        "{stdout}"
    );
}
