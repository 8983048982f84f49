//! Proxy configuration: defaults, then a TOML file, then `STRATA_PROXY_*` environment
//! variables (`__` between a table and its key, e.g. `STRATA_PROXY_SV1__POWER_OF_TWO=true`),
//! then command-line flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// `[sv1]`: the SV1 miners.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Sv1Settings {
    /// Shares per minute each miner should submit (vardiff).
    pub shares_per_minute: f64,
    /// Difficulty a miner starts at (before vardiff or `mining.suggest_difficulty`).
    pub initial_difficulty: f64,
    /// Lowest difficulty.
    pub min_difficulty: f64,
    /// Highest difficulty.
    pub max_difficulty: f64,
    /// Only integer power-of-two difficulties (firmware that needs them).
    pub power_of_two: bool,
    /// Longest accepted line in bytes.
    pub max_line_len: usize,
    /// Seconds without a line before a miner is dropped.
    pub idle_timeout_secs: u64,
    /// Seconds a connection may take to both subscribe and authorize before it is dropped
    /// (port scanners, connections that send nothing or garbage).
    pub handshake_timeout_secs: u64,
    /// Unparseable lines tolerated per connection; the next one drops it.
    pub max_malformed_lines: u32,
    /// Seconds a write to a miner may block (a miner that does not read is dropped then).
    pub write_timeout_secs: u64,
    /// Connections at most per IP address, on the SV1 port and (separately counted) the SV2
    /// port (0: no limit).
    pub max_per_ip: usize,
}

impl Default for Sv1Settings {
    fn default() -> Self {
        Sv1Settings {
            shares_per_minute: 10.0,
            initial_difficulty: 1024.0,
            min_difficulty: 1e-6,
            max_difficulty: 1e15,
            power_of_two: false,
            max_line_len: 4096,
            idle_timeout_secs: 600,
            handshake_timeout_secs: 30,
            max_malformed_lines: 16,
            write_timeout_secs: 30,
            max_per_ip: 4096,
        }
    }
}

/// `[upstream]`: the pools.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpstreamSettings {
    /// User identity of the proxy's channel at the pool (for solo pools: a payout address).
    pub user_identity: String,
    /// `min_extranonce_size` the proxy asks the pool for (split into miner ids and
    /// extranonce2). Unset (default): what its own miners need, the id bytes of `max_miners`
    /// plus the 4-byte floor of an SV1 `extranonce2` (6 for 65,536 miners); the proxy uses
    /// whatever more the pool grants (miners roll up to 8 bytes). Set it to refuse pools
    /// that grant less.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_extranonce_size: Option<u16>,
    /// Go back to a more preferred pool once it is up again.
    pub return_to_preferred: bool,
    /// Seconds a preferred pool must stay up before the proxy returns to it.
    pub stable_secs: u64,
    /// Miners per upstream extended channel: 0 aggregates every miner into one channel;
    /// N > 0 opens one more channel on the pool each time N more miners connect.
    pub miners_per_channel: u32,
    /// Hashrate (H/s) each channel announces when it opens, before its miners report. 0
    /// (default): the pool starts the channel at its minimum difficulty until the first
    /// `UpdateChannel`, about a second after the miners start; set it to the farm's
    /// hashrate (per channel) so that the pool's first target already fits.
    pub nominal_hashrate: f64,
    /// Seconds between a channel's `UpdateChannel`s (a rise beyond twice the announced
    /// hashrate goes out after 1 s regardless).
    pub update_interval_secs: u64,
    /// Relative hashrate change that sends an `UpdateChannel` (0.1 = 10 %).
    pub update_threshold: f64,
}

impl Default for UpstreamSettings {
    fn default() -> Self {
        UpstreamSettings {
            user_identity: "strata-proxy".into(),
            min_extranonce_size: None,
            return_to_preferred: true,
            stable_secs: 30,
            miners_per_channel: 0,
            nominal_hashrate: 0.0,
            update_interval_secs: 10,
            update_threshold: 0.1,
        }
    }
}

/// `[history]`: per-miner and farm history in `data_dir/history.sqlite`, kept across
/// restarts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HistorySettings {
    /// Keep history at all (false: no file, the history endpoints answer 503).
    pub enabled: bool,
    /// Hours of history kept; older points are pruned.
    pub retention_hours: u64,
    /// Seconds per point (one row per miner and one farm row each step).
    pub resolution_secs: u64,
    /// Miners (worker names) per step at most; the rest are counted in the farm row only.
    pub max_miners: usize,
    /// Row batches waiting for the writer at most; when full a batch is dropped (and
    /// counted) rather than the hub waiting on the disk.
    pub queue: usize,
}

impl Default for HistorySettings {
    fn default() -> Self {
        HistorySettings {
            enabled: true,
            retention_hours: 24,
            resolution_secs: 60,
            max_miners: 10_000,
            queue: 64,
        }
    }
}

/// `[alerts]`: what the proxy warns about (log lines, Prometheus series, optional webhook).
/// A threshold of 0 turns its alert off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertSettings {
    /// A miner (worker name) with no accepted share for this many seconds is silent.
    pub miner_silent_secs: u64,
    /// A silent miner not heard of for this long is forgotten (its alert resolves).
    pub forget_after_secs: u64,
    /// Farm hashrate drop (percent) that fires: the mean of the last `drop_recent_secs`
    /// below the mean of the `drop_baseline_secs` before them by more than this.
    pub hashrate_drop_percent: f64,
    /// The recent part of the drop comparison (seconds).
    pub drop_recent_secs: u64,
    /// The baseline part of the drop comparison (seconds, just before the recent part).
    pub drop_baseline_secs: u64,
    /// Each failover (and return to the preferred pool) fires an alert that stays active
    /// this many seconds (0: no failover alerts).
    pub failover_active_secs: u64,
    /// Fired and resolved alerts kept for `GET /api/v1/alerts`.
    pub max_recent: usize,
    /// Workers tracked for the silent-miner alert at most.
    pub max_miners: usize,
    /// `http://` URL that gets each fired and resolved alert as a JSON POST.
    pub webhook_url: Option<String>,
    /// Seconds a webhook POST may take.
    pub webhook_timeout_secs: u64,
    /// Alerts waiting for the webhook at most (more are dropped and counted).
    pub webhook_queue: usize,
}

impl Default for AlertSettings {
    fn default() -> Self {
        AlertSettings {
            miner_silent_secs: 600,
            forget_after_secs: 24 * 3600,
            hashrate_drop_percent: 30.0,
            drop_recent_secs: 600,
            drop_baseline_secs: 3600,
            failover_active_secs: 600,
            max_recent: 200,
            max_miners: 10_000,
            webhook_url: None,
            webhook_timeout_secs: 5,
            webhook_queue: 256,
        }
    }
}

/// Where the JDC's templates come from (`[jdc] source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JdcSource {
    /// bitcoind over JSON-RPC (`[jdc.rpc]`).
    Rpc,
    /// Bitcoin Core's IPC Mining interface (`[jdc.ipc]`).
    Ipc,
    /// A Template Provider (`[jdc.tdp]`); Full-Template mode declares the transactions the
    /// TP lists for each template (`RequestTransactionData`, `[jdc.tdp] verify_templates`,
    /// on by default).
    Tdp,
}

/// `[jdc]`: the proxy as Job Declarator Client. Off unless `jds_url` is set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JdcSettings {
    /// The pool's Job Declarator Server, `stratum2+tcp://host:port/AUTHORITY_KEY` (its key
    /// is the pool's authority key). Empty: no Job Declaration.
    pub jds_url: String,
    /// `full-template` (default: transactions declared in full) or `coinbase-only`.
    pub mode: crate::jdc::DeclareMode,
    /// Solo fallback payout address (and where a reward larger than the pool's required
    /// outputs leaves the rest). Required with `jds_url`.
    pub solo_address: String,
    /// The network of `solo_address` and of the farm's node.
    pub network: bitcoin::Network,
    /// The farm's node: `rpc` (default), `ipc` or `tdp`.
    pub source: JdcSource,
    /// bitcoind (the pool's `[rpc]` settings).
    pub rpc: strata_template::config::RpcSettings,
    /// Bitcoin Core's IPC socket (the pool's `[ipc]` settings).
    pub ipc: strata_template::config::IpcSettings,
    /// A Template Provider (the pool's `[tdp]` settings).
    pub tdp: strata_template::config::TdpSettings,
    /// `AllocateMiningJobToken.user_identifier` (default: `[upstream] user_identity`).
    pub user_identifier: Option<String>,
    /// Bytes written in every coinbase's scriptSig after the height.
    pub coinbase_tag: String,
    /// At start, milliseconds to wait for the pool's first custom job before mining solo.
    pub startup_grace_ms: u64,
    /// First retry of the JDS or the pool after a failure (milliseconds; doubles).
    pub retry_min_ms: u64,
    /// Longest retry delay (seconds).
    pub retry_max_secs: u64,
    /// Seconds an unused token is kept (the JDS expires them; ours after 120 s).
    pub token_max_age_secs: u64,
    /// Unused tokens held at most.
    pub max_tokens: usize,
    /// Milliseconds the JDS or the pool may take to answer a request.
    pub answer_timeout_ms: u64,
    /// Jobs kept per channel to recognise blocks among shares.
    pub max_jobs: usize,
}

impl Default for JdcSettings {
    fn default() -> Self {
        let core = crate::jdc::JdcConfig::default();
        JdcSettings {
            jds_url: String::new(),
            mode: core.mode,
            solo_address: String::new(),
            network: bitcoin::Network::Bitcoin,
            source: JdcSource::Rpc,
            rpc: Default::default(),
            ipc: Default::default(),
            tdp: Default::default(),
            user_identifier: None,
            coinbase_tag: String::from_utf8_lossy(&core.coinbase_tag).into_owned(),
            startup_grace_ms: core.startup_grace.as_millis() as u64,
            retry_min_ms: core.retry_min.as_millis() as u64,
            retry_max_secs: core.retry_max.as_secs(),
            token_max_age_secs: core.token_max_age.as_secs(),
            max_tokens: core.max_tokens,
            answer_timeout_ms: core.answer_timeout.as_millis() as u64,
            max_jobs: core.max_jobs,
        }
    }
}

impl JdcSettings {
    /// Whether Job Declaration is on.
    pub fn enabled(&self) -> bool {
        !self.jds_url.is_empty()
    }
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Pools in priority order: `stratum2+tcp://host:port/AUTHORITY_KEY`.
    pub upstreams: Vec<String>,
    /// Address for SV1 miners.
    pub sv1_listen: SocketAddr,
    /// Address for SV2 miners (Noise); none to disable.
    pub sv2_listen: Option<SocketAddr>,
    /// Serve SV2 miners without encryption (trusted LAN only).
    pub sv2_plaintext: bool,
    /// Address of the HTTP API.
    pub api_listen: SocketAddr,
    /// Bearer token of the HTTP API and `/metrics`: when set, every request needs
    /// `Authorization: Bearer <token>`. Required when `api_listen` is not a loopback
    /// address (the proxy refuses to start without one).
    pub api_token: Option<strata_net::http_auth::ApiToken>,
    /// Directory of the proxy's own keys (SV2 downstream certificate; `authority.pub`) and
    /// of its history (`history.sqlite`).
    pub data_dir: PathBuf,
    /// Per-miner Prometheus series at most.
    pub max_miner_series: usize,
    /// Miners at most (the extranonce split is sized for it).
    pub max_miners: u32,
    /// Seconds between each miner's statistics reports to the hub (API, hashrate sums).
    pub report_interval_secs: u64,
    /// SV1 miners.
    pub sv1: Sv1Settings,
    /// Pools.
    pub upstream: UpstreamSettings,
    /// Miner and farm history.
    pub history: HistorySettings,
    /// Alerts.
    pub alerts: AlertSettings,
    /// Failovers kept for `GET /api/v1/failovers`.
    pub max_failovers: usize,
    /// Job Declaration (the proxy as Job Declarator Client).
    pub jdc: JdcSettings,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            upstreams: vec![],
            sv1_listen: SocketAddr::from(([0, 0, 0, 0], 3333)),
            sv2_listen: Some(SocketAddr::from(([0, 0, 0, 0], 34256))),
            sv2_plaintext: false,
            api_listen: SocketAddr::from(([127, 0, 0, 1], 34257)),
            api_token: None,
            data_dir: PathBuf::from("strata-proxy-data"),
            max_miner_series: 1000,
            max_miners: 65_536,
            report_interval_secs: 10,
            sv1: Sv1Settings::default(),
            upstream: UpstreamSettings::default(),
            history: HistorySettings::default(),
            alerts: AlertSettings::default(),
            max_failovers: 100,
            jdc: JdcSettings::default(),
        }
    }
}

pub use strata_net::config::ConfigError;

impl Config {
    /// Defaults, overlaid with `file` (if any) and then with `env` pairs. A list key
    /// (`upstreams`) takes a comma-separated value.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        strata_net::config::load(file, env, "STRATA_PROXY_", &["upstreams"])
    }

    /// How the proxy carves each upstream channel's extranonce space among its miners
    /// ([`Config::max_miners`] at most, the default extranonce2 range).
    pub fn split(&self) -> strata_work::extranonce::SplitConfig {
        strata_work::extranonce::SplitConfig {
            max_miners: self.max_miners,
            ..Default::default()
        }
    }

    /// The `min_extranonce_size` asked of the pools: [`UpstreamSettings::min_extranonce_size`]
    /// when set, else the least the split accepts
    /// ([`strata_work::extranonce::SplitConfig::min_extranonce_size`]). A site proxy grants
    /// a proxy behind it 7 bytes, enough for the default 6.
    pub fn upstream_min_extranonce_size(&self) -> u16 {
        self.upstream.min_extranonce_size.unwrap_or_else(|| {
            u16::try_from(self.split().min_extranonce_size()).unwrap_or(u16::MAX)
        })
    }

    /// The `extranonce_size` of the Job Declarator Client's solo channels:
    /// [`UpstreamSettings::min_extranonce_size`] when set, else what lets every miner roll
    /// the most ([`strata_work::extranonce::SplitConfig::full_extranonce_size`], 10 by
    /// default).
    pub fn solo_extranonce_size(&self) -> u16 {
        self.upstream.min_extranonce_size.unwrap_or_else(|| {
            u16::try_from(self.split().full_extranonce_size()).unwrap_or(u16::MAX)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_extranonce_size_asked_upstream_is_what_the_miners_need_unless_set() {
        let c = Config::load(None, Vec::new()).expect("defaults");
        assert_eq!(c.upstream.min_extranonce_size, None);
        // 65,536 miners: 2 id bytes + the 4-byte floor of an SV1 extranonce2; a site proxy's
        // extended channel (7 bytes) is enough
        assert_eq!(c.upstream_min_extranonce_size(), 6);
        // the solo channels still give every miner 8 bytes of extranonce2
        assert_eq!(c.solo_extranonce_size(), 10);
        let big = Config {
            max_miners: 1 << 20,
            ..c.clone()
        };
        assert_eq!(big.upstream_min_extranonce_size(), 7);
        assert_eq!(big.solo_extranonce_size(), 11);
        let env = vec![(
            "STRATA_PROXY_UPSTREAM__MIN_EXTRANONCE_SIZE".to_string(),
            "10".to_string(),
        )];
        let set = Config::load(None, env).expect("env");
        assert_eq!(set.upstream.min_extranonce_size, Some(10));
        assert_eq!(set.upstream_min_extranonce_size(), 10);
        assert_eq!(set.solo_extranonce_size(), 10);
    }

    #[test]
    fn defaults_and_overrides() {
        let c = Config::load(None, Vec::new()).expect("defaults");
        assert_eq!(c.sv1_listen.to_string(), "0.0.0.0:3333");
        let env = vec![
            (
                "STRATA_PROXY_UPSTREAMS".to_string(),
                "stratum2+tcp://a:1/K,stratum2+tcp://b:2/K".to_string(),
            ),
            (
                "STRATA_PROXY_SV1__POWER_OF_TWO".to_string(),
                "true".to_string(),
            ),
            (
                "STRATA_PROXY_UPSTREAM__MINERS_PER_CHANNEL".to_string(),
                "8".to_string(),
            ),
        ];
        assert_eq!(c.upstream.miners_per_channel, 0);
        let c = Config::load(None, env).expect("env");
        assert_eq!(c.upstreams.len(), 2);
        assert!(c.sv1.power_of_two);
        assert_eq!(c.upstream.miners_per_channel, 8);
        let file = std::env::temp_dir().join(format!("strata-proxy-{}.toml", std::process::id()));
        std::fs::write(
            &file,
            "report_interval_secs = 5\n[upstream]\nminers_per_channel = 3\nnominal_hashrate = 1e15\nupdate_interval_secs = 30\n",
        )
        .expect("write");
        let c = Config::load(Some(&file), Vec::new()).expect("file");
        let _ = std::fs::remove_file(&file);
        assert_eq!(c.upstream.miners_per_channel, 3);
        assert_eq!(c.upstream.nominal_hashrate, 1e15);
        assert_eq!(c.upstream.update_interval_secs, 30);
        assert_eq!(c.report_interval_secs, 5);
        let bad = vec![(
            "STRATA_PROXY_UPSTREAM__MINERS_PER_CHANNEL".to_string(),
            "-1".to_string(),
        )];
        assert!(Config::load(None, bad).is_err());
        assert!(Config::load(None, vec![("STRATA_PROXY_NOPE".into(), "1".into())]).is_err());
    }

    #[test]
    fn jdc_settings_parse_and_default_off() {
        let c = Config::load(None, Vec::new()).expect("defaults");
        assert!(!c.jdc.enabled());
        assert_eq!(c.jdc.mode, crate::jdc::DeclareMode::FullTemplate);
        let file =
            std::env::temp_dir().join(format!("strata-proxy-jdc-{}.toml", std::process::id()));
        std::fs::write(
            &file,
            "[jdc]\njds_url = \"stratum2+tcp://pool:34264/KEY\"\nsolo_address = \"bcrt1qx\"\n\
             network = \"regtest\"\nmode = \"coinbase-only\"\nsource = \"ipc\"\n\
             [jdc.rpc]\nurl = \"http://127.0.0.1:18443\"\npoll_ms = 100\n\
             [jdc.ipc]\nsocket = \"/tmp/node.sock\"\n",
        )
        .expect("write");
        let c = Config::load(Some(&file), Vec::new()).expect("file");
        let _ = std::fs::remove_file(&file);
        assert!(c.jdc.enabled());
        assert_eq!(c.jdc.mode, crate::jdc::DeclareMode::CoinbaseOnly);
        assert_eq!(c.jdc.source, JdcSource::Ipc);
        assert_eq!(c.jdc.network, bitcoin::Network::Regtest);
        assert_eq!(c.jdc.rpc.poll_ms, 100);
        assert_eq!(
            c.jdc.ipc.socket.as_deref(),
            Some(Path::new("/tmp/node.sock"))
        );
    }

    #[test]
    fn history_and_alert_settings() {
        let c = Config::load(None, Vec::new()).expect("defaults");
        assert_eq!(
            (c.history.retention_hours, c.history.resolution_secs),
            (24, 60)
        );
        assert_eq!(c.alerts.webhook_url, None);
        let env = vec![
            (
                "STRATA_PROXY_HISTORY__RESOLUTION_SECS".to_string(),
                "5".to_string(),
            ),
            (
                "STRATA_PROXY_ALERTS__WEBHOOK_URL".to_string(),
                "http://10.0.0.5:9000/hook".to_string(),
            ),
            (
                "STRATA_PROXY_ALERTS__HASHRATE_DROP_PERCENT".to_string(),
                "50".to_string(),
            ),
        ];
        let c = Config::load(None, env).expect("env");
        assert_eq!(c.history.resolution_secs, 5);
        assert_eq!(c.alerts.hashrate_drop_percent, 50.0);
        assert_eq!(
            c.alerts.webhook_url.as_deref(),
            Some("http://10.0.0.5:9000/hook")
        );
        let bad = vec![("STRATA_PROXY_ALERTS__NOPE".to_string(), "1".to_string())];
        assert!(Config::load(None, bad).is_err());
    }
}
