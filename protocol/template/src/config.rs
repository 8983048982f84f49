//! The settings of a template source as an operator writes them (`[rpc]`, `[tdp]`, `[ipc]`
//! tables of a TOML file), shared by the pool and the proxy's Job Declarator Client, and
//! their translation into each source's configuration.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ipc::IpcConfig;
use crate::rpc::{RpcAuth, RpcConfig};
use crate::tdp::TdpConfig;
use crate::CoinbaseConstraints;

/// `[rpc]`: bitcoind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RpcSettings {
    /// bitcoind RPC URL.
    pub url: String,
    /// Cookie file (default auth when no user is set); unset: bitcoind's default for the
    /// network ([`default_cookie_path`]).
    pub cookie: Option<PathBuf>,
    /// RPC user.
    pub user: Option<String>,
    /// RPC password.
    pub password: Option<String>,
    /// Poll interval in milliseconds when long-polling is off or unavailable.
    pub poll_ms: u64,
    /// Use getblocktemplate long-polling.
    pub longpoll: bool,
    /// bitcoind's `-blockreservedweight` (its default: 8000): the weight its templates leave
    /// for the block header and the coinbase. The pool refuses to start when its largest
    /// coinbase does not fit (its coinbase budget).
    pub block_reserved_weight: u32,
}

impl Default for RpcSettings {
    fn default() -> Self {
        RpcSettings {
            url: "http://127.0.0.1:18443".into(),
            cookie: None,
            user: None,
            password: None,
            poll_ms: 1000,
            longpoll: true,
            block_reserved_weight: crate::CORE_DEFAULT_BLOCK_RESERVED_WEIGHT,
        }
    }
}

/// Where bitcoind writes its RPC cookie for `network` when its data directory is the
/// default `HOME/.bitcoin` (the `[rpc] cookie` default): `.bitcoin/.cookie` on main,
/// `.bitcoin/testnet3/.cookie`, `.bitcoin/testnet4/.cookie`, `.bitcoin/signet/.cookie`,
/// `.bitcoin/regtest/.cookie`.
pub fn default_cookie_path(home: &Path, network: bitcoin::Network) -> PathBuf {
    let datadir = home.join(".bitcoin");
    let sub = match network {
        bitcoin::Network::Bitcoin => None,
        bitcoin::Network::Testnet => Some("testnet3"),
        bitcoin::Network::Testnet4 => Some("testnet4"),
        bitcoin::Network::Signet => Some("signet"),
        // regtest, and any network a later `bitcoin` release adds
        _ => Some("regtest"),
    };
    match sub {
        Some(sub) => datadir.join(sub).join(".cookie"),
        None => datadir.join(".cookie"),
    }
}

/// `[tdp]`: a Template Provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TdpSettings {
    /// host:port of the Template Provider.
    pub address: String,
    /// Its authority public key (base58check); empty = plaintext (localhost only).
    pub authority_key: String,
}

impl Default for TdpSettings {
    fn default() -> Self {
        TdpSettings {
            address: "127.0.0.1:8442".into(),
            authority_key: String::new(),
        }
    }
}

/// `[ipc]`: Bitcoin Core's IPC socket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IpcSettings {
    /// The node's socket; default `~/.bitcoin/<chain>/node.sock` for `network`.
    pub socket: Option<PathBuf>,
    /// A better template on the same tip when fees rise by this many satoshis.
    pub fee_threshold_sats: u64,
    /// Longest single wait for a new template, in milliseconds (re-issued when it ends).
    pub wait_ms: u64,
    /// Bitcoin Core's Mining interface version: `auto` (31, else 30), `v31` or `v30`.
    pub interface: crate::ipc::Interface,
}

impl Default for IpcSettings {
    fn default() -> Self {
        IpcSettings {
            socket: None,
            fee_threshold_sats: 1_000,
            wait_ms: 10_000,
            interface: crate::ipc::Interface::Auto,
        }
    }
}

impl RpcSettings {
    /// The [`RpcConfig`] of these settings for `network`: user and password when a user is
    /// set, else the cookie file (bitcoind's default for `network` under `HOME` when unset).
    pub fn to_config(&self, network: bitcoin::Network) -> RpcConfig {
        let auth = match (&self.user, &self.cookie) {
            (Some(user), _) => RpcAuth::UserPass {
                user: user.clone(),
                password: self.password.clone().unwrap_or_default(),
            },
            (None, Some(cookie)) => RpcAuth::Cookie(cookie.clone()),
            (None, None) => RpcAuth::Cookie(default_cookie_path(&home(), network)),
        };
        let mut rc = RpcConfig::new(self.url.clone(), auth, network);
        rc.poll_interval = Duration::from_millis(self.poll_ms.max(10));
        rc.longpoll = self.longpoll;
        rc
    }
}

impl TdpSettings {
    /// The [`TdpConfig`] of these settings, asking the TP for `constraints`. Fails when
    /// `authority_key` is set and is not a key.
    pub fn to_config(&self, constraints: CoinbaseConstraints) -> Result<TdpConfig, String> {
        let authority = if self.authority_key.is_empty() {
            None
        } else {
            Some(
                self.authority_key
                    .parse::<strata_noise::PublicKey>()
                    .map_err(|e| format!("tdp.authority_key: {e}"))?,
            )
        };
        let mut tc = TdpConfig::new(self.address.clone(), authority);
        tc.constraints = constraints;
        Ok(tc)
    }
}

impl IpcSettings {
    /// The [`IpcConfig`] of these settings for `network`, asking the node for
    /// `constraints`: the socket (bitcoind's default for `network` under `HOME` when unset),
    /// no initial-download cooldown on regtest (whose chain may look stale forever).
    pub fn to_config(
        &self,
        network: bitcoin::Network,
        constraints: CoinbaseConstraints,
    ) -> IpcConfig {
        let socket = self
            .socket
            .clone()
            .unwrap_or_else(|| IpcConfig::default_socket(&home().join(".bitcoin"), network));
        let mut ic = IpcConfig::new(socket);
        ic.constraints = constraints;
        ic.fee_threshold = self.fee_threshold_sats;
        ic.wait_timeout = Duration::from_millis(self.wait_ms.max(100));
        ic.interface = self.interface;
        ic.network = network;
        ic.cooldown = network != bitcoin::Network::Regtest;
        ic
    }
}

fn home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default()
}
