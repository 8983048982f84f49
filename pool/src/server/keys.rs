//! The pool's keys, kept in the data directory: the authority key (`authority.key`, 0600;
//! its public half in `authority.pub` for proxies and miners), the server's static Noise key
//! (`server.key`, 0600), and a certificate signed at every start.

use std::path::Path;
use std::str::FromStr;

use anyhow::Context as _;
use bitcoin::key::Secp256k1;
use bitcoin::{Address, ScriptBuf};
use strata_net::keys::ServerKeys;
use strata_noise::PublicKey;

use crate::config::Config;

/// Loads the keys from `dir`, creating them on first start, and issues a certificate valid
/// from an hour ago (clock skew) for `days` days. Writes `authority.pub`.
pub fn load_or_create(dir: &Path, days: u32) -> anyhow::Result<ServerKeys> {
    let keys = strata_net::keys::load_or_create(dir, "", days)?;
    if keys.created {
        tracing::info!(authority = %keys.authority, "generated a new authority key");
    }
    Ok(keys)
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
