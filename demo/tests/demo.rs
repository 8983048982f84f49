//! The README's first command: the demo mines regtest blocks with its simulated miners and
//! stops cleanly on Ctrl-C.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn the_demo_mines_blocks_and_stops_on_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_strata-demo"))
        .args(["--listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(dir.path())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut found = None;
    while found.is_none() && Instant::now() < deadline {
        let Ok(line) = rx.recv_timeout(Duration::from_secs(1)) else {
            continue;
        };
        // "height 6  blocks found 5  shares accepted 5 rejected 0  miners 2  hashrate ..."
        let words: Vec<&str> = line.split_whitespace().collect();
        if let Some(i) = words.windows(2).position(|w| w == ["blocks", "found"]) {
            let blocks: u64 = words[i + 2].parse().unwrap();
            let miners = words
                .iter()
                .position(|w| *w == "miners")
                .map(|i| words[i + 1]);
            if blocks > 0 {
                assert_eq!(miners, Some("2"), "{line}");
                found = Some(blocks);
            }
        }
    }
    assert!(found.is_some(), "no block found by the demo's miners");
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "the demo exited with {status}");
            break;
        }
        assert!(Instant::now() < deadline, "the demo did not stop on Ctrl-C");
        std::thread::sleep(Duration::from_millis(100));
    }
}
