//! The pool's keys, kept in the data directory: the authority key (`authority.key`, 0600;
//! its public half in `authority.pub` for proxies and miners), the server's static Noise key
//! (`server.key`, 0600), and a certificate signed at every start and renewed while running.
//! Or, with the authority kept offline, `server.cert` from `strata cert` and no
//! `authority.key` ([`strata_net::keys`] has the rules).

use std::path::Path;
use std::str::FromStr;

use anyhow::Context as _;
use bitcoin::key::Secp256k1;
use bitcoin::{Address, ScriptBuf};
use strata_net::cert::Signer;
use strata_net::keys::ServerKeys;
use strata_noise::PublicKey;

use crate::config::Config;

/// Loads the keys from `dir`, creating them on first start, and issues a certificate valid
/// from an hour ago (clock skew) for `days` days; writes `authority.pub`. With `server.cert`
/// and no `authority.key`, checks and uses that certificate instead.
pub fn load_or_create(dir: &Path, days: u32) -> anyhow::Result<ServerKeys> {
    let keys = strata_net::keys::load_or_create(dir, "", days)
        .context("cannot load the pool's keys and certificate")?;
    if keys.created {
        tracing::info!(authority = %keys.authority, "generated a new authority key");
    }
    if keys.renewal.signer() == Signer::Offline {
        tracing::info!(
            authority = %keys.authority,
            not_valid_after = keys.responder.certificate().not_valid_after(),
            "using server.cert, signed by an offline authority"
        );
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
        None => anyhow::bail!(
            "pool_address must be set on {}: fees and unpaid remainders go to it (only regtest \
             defaults to an address of the pool's authority key)",
            cfg.network
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authority() -> PublicKey {
        // the x coordinate of the secp256k1 generator
        let g = hex::decode("79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")
            .expect("hex");
        PublicKey::from_bytes(&g.try_into().expect("32 bytes")).expect("a valid x-only key")
    }

    #[test]
    fn mainnet_refuses_to_start_without_a_pool_address() {
        let cfg = Config {
            network: bitcoin::Network::Bitcoin,
            ..Config::default()
        };
        let err = pool_script(&cfg, &authority()).expect_err("mainnet without pool_address");
        let message = format!("{err:#}");
        assert!(
            message.contains("pool_address must be set on bitcoin"),
            "{message}"
        );

        // with one, the script is the address's
        let address = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq";
        let cfg = Config {
            pool_address: Some(address.into()),
            ..cfg
        };
        let expected = Address::from_str(address)
            .expect("address")
            .assume_checked()
            .script_pubkey();
        assert_eq!(pool_script(&cfg, &authority()).expect("script"), expected);

        // and a testnet address is refused on mainnet
        let cfg = Config {
            pool_address: Some("tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx".into()),
            ..cfg
        };
        assert!(pool_script(&cfg, &authority()).is_err());
    }
}
