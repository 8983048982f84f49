//! A `strata-pool` process started from the test's build (`CARGO_BIN_EXE_strata-pool`), for
//! tests that `kill -9` it. It listens on ports of the OS's choosing; where is read from the
//! first line it prints.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A running pool process (killed when dropped).
pub struct PoolProcess {
    /// The process.
    pub child: Child,
    /// SV2 address, `HOST:PORT`.
    pub sv2: String,
    /// API address, `HOST:PORT`.
    pub api: String,
    /// The authority public key (base58check).
    pub key: String,
}

impl PoolProcess {
    /// Starts the pool binary on `dir` with these `STRATA_POOL_*` settings (and `RUST_LOG=warn`;
    /// its stderr shown when `show_log`), and waits for it to listen.
    pub fn start(dir: &Path, env: &[(&str, String)], show_log: bool) -> PoolProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_strata-pool"))
            .args(["--data-dir", dir.to_str().expect("a UTF-8 path")])
            .args(["--listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0"])
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(if show_log {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .spawn()
            .expect("start strata-pool");
        // "strata-pool listening on ADDR (API http://ADDR); authority key KEY ..."
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped stdout"))
            .read_line(&mut line)
            .expect("the pool's first line");
        let words: Vec<&str> = line.split_whitespace().collect();
        let after = |w: &str| {
            let at = words
                .iter()
                .position(|x| *x == w)
                .unwrap_or_else(|| panic!("the pool did not start: {line:?}"));
            words[at + 1]
        };
        let sv2 = after("on").to_string();
        let api = after("(API")
            .trim_start_matches("http://")
            .trim_end_matches(");")
            .to_string();
        let key = after("key").to_string();
        PoolProcess {
            child,
            sv2,
            api,
            key,
        }
    }

    /// `kill -9`, and waits for it.
    pub fn kill_9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PoolProcess {
    fn drop(&mut self) {
        self.kill_9();
    }
}
