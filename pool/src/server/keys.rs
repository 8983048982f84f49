//! The pool's keys, kept in the data directory: the authority key (`authority.key`, 0600;
//! its public half in `authority.pub` for proxies and miners), the server's static Noise key
//! (`server.key`, 0600), and a certificate signed at every start.

use std::io::Write as _;
use std::path::Path;
use std::str::FromStr;

use anyhow::Context as _;
use bitcoin::key::Secp256k1;
use bitcoin::{Address, ScriptBuf};
use strata_noise::{AuthorityKeypair, Certificate, PublicKey, Responder, SecretKey, StaticKeypair};

use crate::config::Config;

/// The keys a running pool uses.
#[derive(Debug)]
pub struct Keys {
    /// The authority public key (what miners pin).
    pub authority: PublicKey,
    /// The Noise responder with a fresh certificate.
    pub responder: Responder,
}

fn load_or_create_secret(path: &Path) -> anyhow::Result<(SecretKey, bool)> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let key = SecretKey::from_str(text.trim())
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            Ok((key, false))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = SecretKey::generate();
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt as _;
                opts.mode(0o600);
            }
            let mut f = opts
                .open(path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            writeln!(f, "{}", key.encode().as_str())?;
            f.sync_all()?;
            Ok((key, true))
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

fn unix_now() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
}

/// Loads the keys from `dir`, creating them on first start, and issues a certificate valid
/// from an hour ago (clock skew) for `days` days. Writes `authority.pub`.
pub fn load_or_create(dir: &Path, days: u32) -> anyhow::Result<Keys> {
    let (auth_secret, created) = load_or_create_secret(&dir.join("authority.key"))?;
    let authority = AuthorityKeypair::from_secret(auth_secret);
    let public = authority.public_key();
    std::fs::write(dir.join("authority.pub"), format!("{public}\n"))
        .context("cannot write authority.pub")?;
    if created {
        tracing::info!(authority = %public, "generated a new authority key");
    }
    let (server_secret, _) = load_or_create_secret(&dir.join("server.key"))?;
    let server = StaticKeypair::from_secret(server_secret);
    let now = unix_now();
    let cert = Certificate::issue(
        &authority,
        &server.public_key(),
        now.saturating_sub(3600),
        now.saturating_add(days.max(1).saturating_mul(86_400)),
    );
    Ok(Keys {
        authority: public,
        responder: Responder::new(server, cert),
    })
}

/// The pool's payout script: `pool_address`, or on regtest by default a P2TR output of the
/// authority key (whose secret is in the data directory).
pub fn pool_script(cfg: &Config, authority: &PublicKey) -> anyhow::Result<ScriptBuf> {
    match &cfg.pool_address {
        Some(a) => {
            let addr = Address::from_str(a)
                .with_context(|| format!("pool_address {a}"))?
                .require_network(cfg.network)
                .with_context(|| format!("pool_address {a} is not a {} address", cfg.network))?;
            Ok(addr.script_pubkey())
        }
        None if cfg.network == bitcoin::Network::Regtest => {
            let secp = Secp256k1::verification_only();
            Ok(Address::p2tr(&secp, *authority.as_xonly(), None, cfg.network).script_pubkey())
        }
        None => anyhow::bail!("pool_address must be set on {}", cfg.network),
    }
}
