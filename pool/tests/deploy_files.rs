//! `deploy/` refers only to settings and flags strata-pool has: the example configuration
//! loads (unknown keys are errors), the environment variables the units and the compose file
//! set are keys, and every flag of the systemd unit's and the compose file's command line is
//! one `strata-pool --help` lists.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use strata_pool::config::Config;

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
fn deploy_files_use_only_what_the_pool_has() {
    let cfg = Config::load(
        Some(&deploy("config/pool.toml")),
        vec![("STRATA_POOL_API_TOKEN".to_string(), "t0ken".to_string())],
    )
    .unwrap();
    assert_eq!(
        cfg.api_token,
        Some(strata_net::http_auth::ApiToken::new("t0ken"))
    );

    let help = std::process::Command::new(env!("CARGO_BIN_EXE_strata-pool"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    let unit = std::fs::read_to_string(deploy("systemd/strata-pool.service")).unwrap();
    let compose = std::fs::read_to_string(deploy("compose.yaml")).unwrap();
    let containerfile = std::fs::read_to_string(deploy("Containerfile")).unwrap();
    let mut used = flags(&unit, "ExecStart=", "\n");
    used.extend(flags(&compose, "exec strata-pool", "secrets:"));
    let cmd = containerfile
        .lines()
        .find_map(|l| l.strip_prefix("CMD "))
        .unwrap();
    let cmd: Vec<String> = serde_json::from_str(cmd).unwrap();
    assert_eq!(cmd[0], "strata-pool");
    used.extend(cmd.into_iter().filter(|w| w.starts_with("--")));
    assert!(used.len() >= 7, "{used:?}");
    for flag in used {
        assert!(
            help.contains(&format!("{flag} ")),
            "{flag} is not a flag: {help}"
        );
    }
    assert!(unit.contains("EnvironmentFile=-/etc/strata/pool.env"));
    assert!(compose.contains("STRATA_POOL_API_TOKEN="));
}
