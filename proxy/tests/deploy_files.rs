//! `deploy/` refers only to settings and flags strata-proxy has: the example configuration
//! loads (unknown keys are errors), the environment variables the compose file sets are keys
//! (and its farm identity pays a valid address), and every flag of the systemd unit's and the
//! compose file's command line is one `strata-proxy --help` lists.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use strata_proxy::config::Config;

fn deploy(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(file)
}

/// The `--flags` of the command line that starts with `start` in `text`, up to `end`.
fn flags(text: &str, start: &str, end: &str) -> Vec<String> {
    let from = text.find(start).unwrap_or_else(|| panic!("no {start}"));
    let rest = &text[from..];
    let command = &rest[..rest.find(end).unwrap_or(rest.len())];
    command
        .split_whitespace()
        .filter(|w| w.starts_with("--"))
        .map(|w| w.to_string())
        .collect()
}

#[test]
fn deploy_files_use_only_what_the_proxy_has() {
    let compose = std::fs::read_to_string(deploy("compose.yaml")).unwrap();
    let identity = compose
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("STRATA_PROXY_UPSTREAM__USER_IDENTITY: ")
        })
        .unwrap()
        .to_string();
    let cfg = Config::load(
        Some(&deploy("config/proxy.toml")),
        vec![
            ("STRATA_PROXY_API_TOKEN".to_string(), "t0ken".to_string()),
            (
                "STRATA_PROXY_UPSTREAM__USER_IDENTITY".to_string(),
                identity.clone(),
            ),
        ],
    )
    .unwrap();
    assert_eq!(
        cfg.api_token,
        Some(strata_net::http_auth::ApiToken::new("t0ken"))
    );
    assert_eq!(cfg.upstream.user_identity, identity);
    assert!(
        strata_work::payout::payout_address(&identity, bitcoin::Network::Regtest).is_some(),
        "{identity} pays no regtest address"
    );

    let help = std::process::Command::new(env!("CARGO_BIN_EXE_strata-proxy"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    let unit = std::fs::read_to_string(deploy("systemd/strata-proxy.service")).unwrap();
    let mut used = flags(&unit, "ExecStart=", "\n");
    used.extend(flags(&compose, "exec strata-proxy", "environment:"));
    assert!(used.len() >= 6, "{used:?}");
    for flag in used {
        assert!(
            help.contains(&format!("{flag} ")),
            "{flag} is not a flag: {help}"
        );
    }
    assert!(unit.contains("EnvironmentFile=-/etc/strata/proxy.env"));
    assert!(compose.contains("STRATA_PROXY_API_TOKEN="));
}
