//! SRI's applications (crates.io) for the interop tests, installed and cached outside the
//! clone by `scripts/sri-apps.sh`, which prints their paths as `STRATA_SRI_POOL=...` and
//! `STRATA_SRI_JDC=...` (`.ci/run` exports them).
//!
//! A test asks for a binary with [`bin`]: the path in its variable when that is set (which
//! must then be a program: a clear failure otherwise), else the script's cache folder
//! (`~/.cache/strata/sri-*/bin`, or under `STRATA_CACHE`). Neither there: the test fails
//! naming the script when `CI` is set (CI installs them), and is skipped with a message
//! otherwise (installing them takes minutes; the real-node tests build Bitcoin Core the same
//! way, but that build is needed by many more tests).
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// An SRI application.
#[derive(Debug, Clone, Copy)]
pub enum App {
    /// `pool_sv2` (its Job Declaration Server built in, `[jds]`).
    Pool,
    /// `jd_client_sv2`.
    Jdc,
}

impl App {
    fn variable(self) -> &'static str {
        match self {
            App::Pool => "STRATA_SRI_POOL",
            App::Jdc => "STRATA_SRI_JDC",
        }
    }

    fn cached(self) -> PathBuf {
        let cache = std::env::var_os("STRATA_CACHE").map_or_else(
            || PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/strata"),
            PathBuf::from,
        );
        match self {
            App::Pool => cache.join("sri-pool/bin/pool_sv2"),
            App::Jdc => cache.join("sri-jdc/bin/jd_client_sv2"),
        }
    }
}

/// The workspace's `scripts/sri-apps.sh`.
pub fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|d| d.join("scripts/sri-apps.sh"))
        .find(|s| s.exists())
        .expect("scripts/sri-apps.sh in a folder above the crate")
}

/// The binary of `app`, or `None` (the test is skipped, said on stderr) when it is not
/// installed outside CI.
pub fn bin(app: App) -> Option<PathBuf> {
    let var = app.variable();
    if let Some(path) = std::env::var_os(var).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "{var}={} is not a program: run scripts/sri-apps.sh (it installs SRI's \
             applications and prints their paths)",
            path.display()
        );
        return Some(path);
    }
    let cached = app.cached();
    if cached.is_file() {
        return Some(cached);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "SRI's {} is not installed ({var} unset, nothing at {}): run scripts/sri-apps.sh, \
         as .ci/run does",
        cached.file_name().unwrap_or_default().to_string_lossy(),
        cached.display()
    );
    eprintln!(
        "skipped: SRI's {} is not installed; scripts/sri-apps.sh installs it (or set {var})",
        cached.display()
    );
    None
}

/// `pool.toml` for SRI's pool on a node's IPC socket (the script's `sri_pool_config`, one
/// copy for the benchmarks and the tests): listening on `port`, the built-in JDS on
/// `jds_port`, paying `address`, `network` regtest/signet, the node's `datadir`.
pub fn pool_config(
    port: u16,
    monitor_port: u16,
    network: &str,
    datadir: &Path,
    address: &str,
    shares_per_minute: f64,
    jds_port: Option<u16>,
) -> String {
    let out = Command::new("bash")
        .arg("-c")
        .arg("src=$1; shift; . \"$src\" && sri_pool_config \"$@\"")
        .arg("bash")
        .arg(script())
        .arg(port.to_string())
        .arg(monitor_port.to_string())
        .arg(network)
        .arg(datadir)
        .arg(address)
        .arg(shares_per_minute.to_string())
        .args(jds_port.map(|p| p.to_string()))
        .stderr(Stdio::inherit())
        .output()
        .expect("bash");
    assert!(out.status.success(), "sri_pool_config failed");
    String::from_utf8(out.stdout).expect("utf-8")
}

/// The authority public key of [`pool_config`] (SRI's example key pair).
pub fn pool_authority() -> String {
    let out = Command::new("bash")
        .arg("-c")
        .arg(". \"$1\" && echo \"$SRI_POOL_AUTHORITY\"")
        .arg("bash")
        .arg(script())
        .output()
        .expect("bash");
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_string()
}
