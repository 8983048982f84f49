//! The pool with an offline authority: its data directory holds `server.key` and a
//! `server.cert` signed elsewhere (as `strata keygen` and `strata cert` make them), no
//! `authority.key`. A miner pinning the authority key completes the handshake; an expired
//! certificate, or one for another authority, keeps the pool from starting.
#![cfg(feature = "embedded")]
#![allow(clippy::unwrap_used)]

use std::path::Path;

use strata_net::cert::CertificateFile;
use strata_net::sv2::{initiate, Sv2Options};
use strata_noise::{AuthorityKeypair, Certificate, PublicKey, SecretKey};
use strata_pool::config::Config;

fn config(dir: &Path) -> Config {
    Config {
        data_dir: dir.to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        api_listen: "127.0.0.1:0".parse().unwrap(),
        ..Config::default()
    }
}

fn now() -> u32 {
    strata_net::keys::unix_now()
}

/// What `strata keygen --out server.key` leaves on the server: the secret key (the `.pub`
/// goes to the offline machine).
fn server_key(dir: &Path) -> PublicKey {
    let key = SecretKey::generate();
    std::fs::write(
        dir.join("server.key"),
        format!("{}\n", key.encode().as_str()),
    )
    .unwrap();
    key.public_key()
}

/// What `strata cert --authority-secret @authority.key --server-public KEY --valid-from
/// FROM --valid-for ... --out server.cert` writes.
fn write_cert(dir: &Path, authority: &AuthorityKeypair, server: &PublicKey, from: u32, to: u32) {
    let file = CertificateFile {
        certificate: Certificate::issue(authority, server, from, to),
        server: *server,
        authority: authority.public_key(),
    };
    std::fs::write(dir.join("server.cert"), file.to_json()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_signed_offline_is_served_and_an_expired_one_refused() {
    let dir = tempfile::tempdir().unwrap();
    // the offline machine's `strata keygen`
    let authority = AuthorityKeypair::generate();
    let server = server_key(dir.path());
    let t = now();
    write_cert(dir.path(), &authority, &server, t - 60, t + 30 * 86_400);
    std::fs::write(
        dir.path().join("authority.pub"),
        format!("{}\n", authority.public_key()),
    )
    .unwrap();

    let pool = strata_pool::server::start(config(dir.path()))
        .await
        .unwrap();
    assert_eq!(pool.authority, authority.public_key());
    assert!(!dir.path().join("authority.key").exists());

    // a miner pinning the offline authority key completes the handshake with the server key
    let tcp = tokio::net::TcpStream::connect(pool.sv2_addr).await.unwrap();
    let (rd, wr) = tcp.into_split();
    initiate(rd, wr, authority.public_key(), &Sv2Options::default())
        .await
        .expect("the handshake verifies the offline certificate");
    // one pinning another authority does not
    let tcp = tokio::net::TcpStream::connect(pool.sv2_addr).await.unwrap();
    let (rd, wr) = tcp.into_split();
    let stranger = AuthorityKeypair::generate().public_key();
    assert!(initiate(rd, wr, stranger, &Sv2Options::default())
        .await
        .is_err());

    // the certificate expiry is a metric
    let metrics = reqwest::get(format!("http://{}/metrics", pool.api_addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(&format!(
            "strata_pool_certificate_not_valid_after_seconds {}",
            t + 30 * 86_400
        )),
        "{metrics}"
    );
    assert!(
        metrics.contains("strata_pool_certificate_expiring 0"),
        "{metrics}"
    );

    pool.shutdown.cancel();
    pool.wait().await;

    // an expired certificate: the pool refuses to start, and says why
    write_cert(dir.path(), &authority, &server, t - 7_200, t - 3_600);
    let err = strata_pool::server::start(config(dir.path()))
        .await
        .expect_err("expired certificate");
    let message = format!("{err:#}");
    assert!(message.contains("server.cert"), "{message}");
    assert!(message.contains("expired"), "{message}");
    assert!(!dir.path().join("authority.key").exists());

    // one signed by another authority than authority.pub: refused too
    let other = AuthorityKeypair::generate();
    write_cert(dir.path(), &other, &server, t - 60, t + 86_400);
    let err = strata_pool::server::start(config(dir.path()))
        .await
        .expect_err("other authority");
    let message = format!("{err:#}");
    assert!(message.contains("signed by authority"), "{message}");
    assert!(!dir.path().join("authority.key").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_expiring_within_a_week_is_flagged_in_the_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let authority = AuthorityKeypair::generate();
    let server = server_key(dir.path());
    let t = now();
    // no authority.pub: the certificate's own authority is taken
    write_cert(dir.path(), &authority, &server, t - 60, t + 2 * 86_400);
    let pool = strata_pool::server::start(config(dir.path()))
        .await
        .unwrap();
    assert_eq!(pool.authority, authority.public_key());
    let metrics = reqwest::get(format!("http://{}/metrics", pool.api_addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("strata_pool_certificate_expiring 1"),
        "{metrics}"
    );
    pool.shutdown.cancel();
    pool.wait().await;
}
