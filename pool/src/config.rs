//! Pool configuration: defaults, then a TOML file, then `STRATA_POOL_*` environment
//! variables, then command-line flags. No configuration is needed for regtest.
//!
//! Every key can be set from the environment: `STRATA_POOL_` followed by the key path in
//! upper case, with `__` between a table and its key, e.g. `STRATA_POOL_LISTEN=0.0.0.0:3336`,
//! `STRATA_POOL_PAYOUT__MODE=solo`, `STRATA_POOL_RPC__URL=http://127.0.0.1:8332`. Values are
//! read as TOML scalars when they parse as one (numbers, booleans), else as strings.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use strata_template::config::{default_cookie_path, IpcSettings, RpcSettings, TdpSettings};

/// Where templates come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// A regtest chain inside the pool (Bitcoin Core's consensus via bitcoinkernel).
    Embedded,
    /// bitcoind over JSON-RPC.
    Rpc,
    /// A Template Provider over SV2 Template Distribution.
    Tdp,
    /// Bitcoin Core's Mining interface over its IPC socket (`bitcoin-node -ipcbind=unix`).
    Ipc,
}

/// Payout scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PayoutKind {
    /// Each coinbase pays the address in the finder's user identity.
    Solo,
    /// Each coinbase pays the last N shares' owners by difficulty.
    Pplns,
}

/// `[payout]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PayoutConfig {
    /// `solo` or `pplns` (default).
    pub mode: PayoutKind,
    /// PPLNS window: the last N accepted shares, weighted by difficulty.
    pub window_shares: u64,
    /// Pool fee, parts per million (10000 = 1%).
    pub fee_ppm: u32,
    /// PPLNS amounts below this many satoshis go to the pool instead.
    pub dust_sats: u64,
    /// PPLNS: at most this many payees per coinbase (the rest to the pool).
    pub max_outputs: usize,
}

impl Default for PayoutConfig {
    fn default() -> Self {
        PayoutConfig {
            mode: PayoutKind::Pplns,
            window_shares: 10_000,
            fee_ppm: 10_000,
            dust_sats: 1_000,
            max_outputs: 100,
        }
    }
}

/// `[vardiff]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VardiffSettings {
    /// Shares per minute each channel should submit.
    pub shares_per_minute: f64,
    /// Lowest share difficulty.
    pub min_difficulty: f64,
    /// Highest share difficulty.
    pub max_difficulty: f64,
    /// Retarget period in seconds.
    pub period_secs: u64,
}

impl Default for VardiffSettings {
    fn default() -> Self {
        VardiffSettings {
            shares_per_minute: 6.0,
            min_difficulty: 1e-6,
            max_difficulty: 1e15,
            period_secs: 60,
        }
    }
}

/// `[ledger]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LedgerSettings {
    /// `full` (default: survives power loss) or `normal` (survives a crash of the pool, not
    /// of the machine); SQLite's `synchronous`, PostgreSQL's `synchronous_commit` on/off.
    pub synchronous: String,
    /// A PostgreSQL URL (`postgresql://user:password@host/db`, a database of its own) to keep
    /// the ledger there instead of `DIR/ledger.sqlite`. Empty: SQLite.
    pub postgres_url: String,
    /// Least microseconds between two commits under load (group commit): shares arriving
    /// sooner after a commit wait for the rest of it and share the next fsync. Less CPU per
    /// share for at most this much more acknowledgement latency; an idle ledger commits at
    /// once. 0: commit as soon as the previous commit ends.
    pub min_commit_interval_us: u64,
}

impl Default for LedgerSettings {
    fn default() -> Self {
        LedgerSettings {
            synchronous: "full".into(),
            postgres_url: String::new(),
            min_commit_interval_us: crate::ledger::LedgerConfig::DEFAULT_MIN_COMMIT_INTERVAL
                .as_micros() as u64,
        }
    }
}

/// `[history]`: the pool's hashrate, shares and connections over time, kept in the ledger
/// for the overview page's chart (`/api/v1/history`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HistorySettings {
    /// Seconds between two samples (default 60: one a minute).
    pub sample_secs: u64,
    /// Days of samples kept; older ones are deleted as new ones are written (default 7).
    pub retention_days: u32,
}

impl HistorySettings {
    /// Default [`sample_secs`](Self::sample_secs).
    pub const DEFAULT_SAMPLE_SECS: u64 = 60;
    /// Default [`retention_days`](Self::retention_days).
    pub const DEFAULT_RETENTION_DAYS: u32 = 7;
}

impl Default for HistorySettings {
    fn default() -> Self {
        HistorySettings {
            sample_secs: Self::DEFAULT_SAMPLE_SECS,
            retention_days: Self::DEFAULT_RETENTION_DAYS,
        }
    }
}

/// `[cluster]`: several pool processes on one PostgreSQL ledger.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterSettings {
    /// This server's id in the cluster, 1 to 255, distinct for every server of it (a second
    /// process with the same id is refused at start). It is the first byte of every
    /// extranonce prefix the server hands out, so no two servers give miners the same
    /// search space; shares are stored with it. 0 (the default): the only pool on its
    /// ledger. Needs `[ledger] postgres_url`.
    pub server_id: u8,
}

/// `[jds]`: the pool as Job Declarator Server (spec 6) on its own port, and the mining
/// port accepting the custom jobs it declared. Off unless `listen` is set. Works in PPLNS
/// and solo payout modes (solo: a token requires the outputs paying the address of its
/// `user_identifier`, as a channel of that identity is paid). Reads the mempool of, checks
/// blocks with and submits whole blocks to the node at `[rpc]`, whatever the template
/// source: `rpc` (the same bitcoind), `ipc` (the same node's RPC port: IPC gives no mempool
/// access) or `tdp` (the node whose mempool declarations are checked against); not
/// `embedded`, which has no mempool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JdsSettings {
    /// Job Declaration listen address (Noise with the pool's keys); unset: no JDS, and
    /// miners setting `REQUIRES_WORK_SELECTION` are refused as before.
    pub listen: Option<SocketAddr>,
    /// Seconds a token may wait for its declaration, a declaration for its missing
    /// transactions and the node, and a declared job for its `SetCustomMiningJob`.
    pub token_lifetime_secs: u64,
    /// Undeclared tokens one connection may hold (allocating more drops the oldest).
    pub max_tokens_per_connection: usize,
    /// Declarations of one connection waiting for transactions or the node.
    pub max_pending_declarations: usize,
    /// Unknown transactions one declaration may leave to ProvideMissingTransactions.
    pub max_missing_txs: usize,
    /// Accepted declarations one connection keeps (for PushSolution).
    pub max_declared_jobs_per_connection: usize,
    /// Declared jobs waiting for their `SetCustomMiningJob`, pool-wide.
    pub max_declared_jobs: usize,
    /// Job Declaration connections at most.
    pub max_connections: usize,
    /// Milliseconds between two reads of the node's mempool.
    pub mempool_poll_ms: u64,
    /// Mempool transactions kept at most (the node's newest beyond it are not known).
    pub max_mempool_txs: usize,
    /// Milliseconds a declaration for the block after a tip the pool has not seen yet waits
    /// for the pool's node to get that tip (the farm's node often has a new block first),
    /// before it is refused `stale-chain-tip`.
    pub tip_wait_ms: u64,
}

impl Default for JdsSettings {
    fn default() -> Self {
        JdsSettings {
            listen: None,
            token_lifetime_secs: 120,
            max_tokens_per_connection: 16,
            max_pending_declarations: 4,
            max_missing_txs: 4_096,
            max_declared_jobs_per_connection: 8,
            max_declared_jobs: 4_096,
            max_connections: 64,
            mempool_poll_ms: 1_000,
            max_mempool_txs: 200_000,
            tip_wait_ms: 3_000,
        }
    }
}

impl JdsSettings {
    /// Whether the template source allows the JDS: any but `embedded` (the JDS uses the node
    /// at `[rpc]` for the mempool and the block checks; the embedded regtest node has no
    /// mempool). Either payout mode.
    pub fn check(&self, source: SourceKind) -> Result<(), ConfigError> {
        if self.listen.is_some() && source == SourceKind::Embedded {
            return Err(ConfigError::Invalid(
                "[jds] needs a node with a mempool, reached over [rpc]: template_source = \
                 \"rpc\", \"ipc\" or \"tdp\", not \"embedded\""
                    .into(),
            ));
        }
        Ok(())
    }

    /// The per-connection limits of the JDS core.
    pub fn limits(&self) -> crate::jds::JdsLimits {
        crate::jds::JdsLimits {
            token_lifetime: std::time::Duration::from_secs(self.token_lifetime_secs),
            max_tokens: self.max_tokens_per_connection,
            max_pending: self.max_pending_declarations,
            max_missing_txs: self.max_missing_txs,
            max_declared_jobs: self.max_declared_jobs_per_connection,
            tip_wait: std::time::Duration::from_millis(self.tip_wait_ms),
        }
    }
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Data directory: chain (embedded), ledger, keys.
    pub data_dir: PathBuf,
    /// SV2 listen address.
    pub listen: SocketAddr,
    /// HTTP API listen address.
    pub api_listen: SocketAddr,
    /// Bearer token of the HTTP API and `/metrics`: when set, every request needs
    /// `Authorization: Bearer <token>`. Required when `api_listen` is not a loopback
    /// address (the pool refuses to start without one).
    pub api_token: Option<strata_net::http_auth::ApiToken>,
    /// Template source.
    pub template_source: SourceKind,
    /// Network of payout addresses (`regtest` for the embedded source).
    pub network: bitcoin::Network,
    /// The pool's payout address (fees, remainders). Default on regtest: a P2TR address of
    /// the pool's authority key.
    pub pool_address: Option<String>,
    /// Tag pushed in coinbase scriptSigs.
    pub pool_tag: String,
    /// Full extranonce size of extended channels (the pool's prefix of 6 bytes + miner
    /// bytes; in a cluster the prefix's first byte is the server id).
    pub extranonce_size: usize,
    /// Channels per connection at most.
    pub max_channels_per_connection: usize,
    /// Connections at most.
    pub max_connections: usize,
    /// Connections at most from one IP address (0: no limit), so that one host cannot take
    /// every connection slot; further ones are closed at once (logged at debug).
    pub max_connections_per_ip: usize,
    /// Seconds a connection has to finish the handshake and SetupConnection.
    pub setup_timeout_secs: u64,
    /// Certificate validity in days (re-issued at every start).
    pub certificate_days: u32,
    /// Testing knob for chains where every share is a block (regtest): candidates found
    /// sooner than this many milliseconds after the last accepted block stay ordinary shares
    /// and are not submitted, so that load tests are not all new tips and stale shares.
    /// 0 (the default) submits the first candidate on every tip.
    pub min_block_interval_ms: u64,
    /// Worker threads of the async runtime (connections, jobs, API). 0 (the default): one
    /// per core (or `TOKIO_WORKER_THREADS`). On a 2-core machine one worker spent about the
    /// same CPU per share as two but had a 2-5 times longer latency tail (BENCHMARKS.md).
    pub worker_threads: usize,
    /// Payouts.
    pub payout: PayoutConfig,
    /// Difficulty adjustment.
    pub vardiff: VardiffSettings,
    /// bitcoind source.
    pub rpc: RpcSettings,
    /// Template Provider source.
    pub tdp: TdpSettings,
    /// Bitcoin Core IPC source.
    pub ipc: IpcSettings,
    /// Share ledger.
    pub ledger: LedgerSettings,
    /// Pool history (the overview page's chart).
    pub history: HistorySettings,
    /// Several servers on one ledger.
    pub cluster: ClusterSettings,
    /// Job Declarator Server.
    pub jds: JdsSettings,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("strata-pool-data"),
            listen: SocketAddr::from(([0, 0, 0, 0], 34254)),
            api_listen: SocketAddr::from(([127, 0, 0, 1], 34255)),
            api_token: None,
            template_source: SourceKind::Embedded,
            network: bitcoin::Network::Regtest,
            pool_address: None,
            pool_tag: "/strata/".into(),
            extranonce_size: 16,
            max_channels_per_connection: 1024,
            max_connections: 18_000,
            max_connections_per_ip: 4096,
            setup_timeout_secs: 30,
            certificate_days: 365,
            min_block_interval_ms: 0,
            worker_threads: 0,
            payout: PayoutConfig::default(),
            vardiff: VardiffSettings::default(),
            rpc: RpcSettings::default(),
            tdp: TdpSettings::default(),
            ipc: IpcSettings::default(),
            ledger: LedgerSettings::default(),
            history: HistorySettings::default(),
            cluster: ClusterSettings::default(),
            jds: JdsSettings::default(),
        }
    }
}

pub use strata_net::config::ConfigError;

impl Config {
    /// Defaults, overlaid with `file` (if any) and then with `env` (name, value) pairs
    /// (`std::env::vars()` in the binary).
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        strata_net::config::load(file, env, "STRATA_POOL_", &[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_need_no_file() {
        let c = Config::load(None, Vec::new()).expect("defaults");
        assert_eq!(c.listen.to_string(), "0.0.0.0:34254");
        assert_eq!(c.template_source, SourceKind::Embedded);
        assert_eq!(c.payout.mode, PayoutKind::Pplns);
        assert_eq!((c.history.sample_secs, c.history.retention_days), (60, 7));
    }

    #[test]
    fn env_overrides_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pool.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:1000\"\n[payout]\nmode = \"solo\"\nfee_ppm = 5\n",
        )
        .expect("write");
        let env = vec![
            ("STRATA_POOL_PAYOUT__FEE_PPM".to_string(), "7".to_string()),
            ("STRATA_POOL_RPC__URL".to_string(), "http://h:1".to_string()),
            ("OTHER".to_string(), "x".to_string()),
        ];
        let c = Config::load(Some(&path), env).expect("load");
        assert_eq!(c.listen.to_string(), "127.0.0.1:1000");
        assert_eq!(c.payout.mode, PayoutKind::Solo);
        assert_eq!(c.payout.fee_ppm, 7);
        assert_eq!(c.rpc.url, "http://h:1");
    }

    #[test]
    fn default_cookie_paths_follow_bitcoind_datadirs() {
        use bitcoin::Network;
        let home = Path::new("/home/pool");
        for (network, path) in [
            (Network::Bitcoin, "/home/pool/.bitcoin/.cookie"),
            (Network::Testnet, "/home/pool/.bitcoin/testnet3/.cookie"),
            (Network::Testnet4, "/home/pool/.bitcoin/testnet4/.cookie"),
            (Network::Signet, "/home/pool/.bitcoin/signet/.cookie"),
            (Network::Regtest, "/home/pool/.bitcoin/regtest/.cookie"),
        ] {
            assert_eq!(
                default_cookie_path(home, network),
                PathBuf::from(path),
                "{network}"
            );
        }
    }

    #[test]
    fn jds_is_off_by_default_and_needs_a_source_with_a_mempool() {
        let c = Config::load(None, Vec::new()).expect("defaults");
        assert_eq!(c.jds.listen, None);
        // off: any source
        for source in [
            SourceKind::Embedded,
            SourceKind::Rpc,
            SourceKind::Ipc,
            SourceKind::Tdp,
        ] {
            assert!(c.jds.check(source).is_ok(), "{source:?}");
        }
        let env = vec![
            (
                "STRATA_POOL_JDS__LISTEN".to_string(),
                "127.0.0.1:3400".to_string(),
            ),
            ("STRATA_POOL_PAYOUT__MODE".to_string(), "solo".to_string()),
        ];
        let c = Config::load(None, env).expect("load");
        assert_eq!(c.jds.listen, Some("127.0.0.1:3400".parse().unwrap()));
        assert_eq!(c.payout.mode, PayoutKind::Solo);
        // on: every source whose node has a mempool, in either payout mode
        for source in [SourceKind::Rpc, SourceKind::Ipc, SourceKind::Tdp] {
            assert!(c.jds.check(source).is_ok(), "{source:?}");
        }
        let err = c.jds.check(SourceKind::Embedded).unwrap_err().to_string();
        assert!(err.contains("[rpc]") && err.contains("embedded"), "{err}");
        assert_eq!(c.jds.limits().token_lifetime.as_secs(), 120);
    }

    #[test]
    fn unknown_keys_are_errors() {
        let env = vec![("STRATA_POOL_LISTN".to_string(), "x".to_string())];
        assert!(Config::load(None, env).is_err());
    }
}
