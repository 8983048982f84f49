//! The proxy's SV2 downstream with an offline authority: its data directory holds
//! `downstream-server.key` and a `downstream-server.cert` signed elsewhere (as `strata
//! keygen` and `strata cert` make them), no `downstream-authority.key`. A miner pinning that
//! authority completes the handshake; an expired certificate keeps the proxy from starting.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use strata_net::cert::CertificateFile;
use strata_net::sv2::{initiate, Sv2Options};
use strata_noise::{AuthorityKeypair, Certificate, PublicKey, SecretKey};
use strata_proxy::config::Config;

/// A proxy whose upstream is a closed port (the downstream handshake does not need it).
fn config(dir: &Path) -> Config {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let pool_key = AuthorityKeypair::generate().public_key();
    Config {
        upstreams: vec![format!("stratum2+tcp://127.0.0.1:{port}/{pool_key}")],
        sv1_listen: "127.0.0.1:0".parse().unwrap(),
        sv2_listen: Some("127.0.0.1:0".parse().unwrap()),
        api_listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.to_path_buf(),
        ..Config::default()
    }
}

/// What `strata cert ... --out downstream-server.cert` writes.
fn write_cert(dir: &Path, authority: &AuthorityKeypair, server: &PublicKey, from: u32, to: u32) {
    let file = CertificateFile {
        certificate: Certificate::issue(authority, server, from, to),
        server: *server,
        authority: authority.public_key(),
    };
    std::fs::write(dir.join("downstream-server.cert"), file.to_json()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_downstream_serves_a_certificate_signed_offline_and_refuses_an_expired_one() {
    let dir = tempfile::tempdir().unwrap();
    let authority = AuthorityKeypair::generate();
    let key = SecretKey::generate();
    std::fs::write(
        dir.path().join("downstream-server.key"),
        format!("{}\n", key.encode().as_str()),
    )
    .unwrap();
    let t = strata_net::keys::unix_now();
    write_cert(
        dir.path(),
        &authority,
        &key.public_key(),
        t - 60,
        t + 3 * 86_400,
    );

    let proxy = strata_proxy::server::start(config(dir.path()))
        .await
        .unwrap();
    assert_eq!(proxy.authority, Some(authority.public_key()));
    assert!(!dir.path().join("downstream-authority.key").exists());
    let tcp = tokio::net::TcpStream::connect(proxy.sv2_addr.unwrap())
        .await
        .unwrap();
    let (rd, wr) = tcp.into_split();
    initiate(rd, wr, authority.public_key(), &Sv2Options::default())
        .await
        .expect("the handshake verifies the offline certificate");

    // three days left: flagged in the metrics
    let metrics = reqwest::get(format!("http://{}/metrics", proxy.api_addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("strata_proxy_certificate_expiring 1"),
        "{metrics}"
    );
    proxy.shutdown.cancel();
    proxy.wait().await;

    write_cert(
        dir.path(),
        &authority,
        &key.public_key(),
        t - 7_200,
        t - 3_600,
    );
    let err = strata_proxy::server::start(config(dir.path()))
        .await
        .expect_err("expired certificate");
    let message = format!("{err:#}");
    assert!(message.contains("downstream-server.cert"), "{message}");
    assert!(message.contains("expired"), "{message}");
    assert!(!dir.path().join("downstream-authority.key").exists());
}
