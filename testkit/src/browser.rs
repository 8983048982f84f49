//! A headless Chromium for the web pages' tests.
//!
//! The browser is `STRATA_CHROMIUM` (a path) or, when that is unset, `/usr/bin/chromium`
//! (Debian's `chromium` package, which `scripts/install-deps.sh` installs when missing). A
//! test that needs it and cannot find it **fails** with a message saying so: a page test
//! never passes without having run in a browser.
//!
//! Each call starts a fresh browser (its own temporary profile, so nothing such as a stored
//! token carries from one call to the next) with `--headless --no-sandbox --disable-gpu`,
//! gives the page [`VIRTUAL_TIME_BUDGET_MS`] of virtual time (timers and the requests the
//! page makes run within it; virtual time waits for the network), and stops it after at
//! most [`DEADLINE`] of real time. The calls block: from async code run them through
//! `spawn_blocking`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The variable naming the browser to run.
pub const CHROMIUM_ENV: &str = "STRATA_CHROMIUM";

/// The browser when [`CHROMIUM_ENV`] is unset (Debian's `chromium` package).
pub const DEFAULT_CHROMIUM: &str = "/usr/bin/chromium";

/// Virtual time a page gets to load, run its scripts and fetch its data.
pub const VIRTUAL_TIME_BUDGET_MS: u32 = 5_000;

/// Real time after which a browser that has not finished is killed (the call panics).
pub const DEADLINE: Duration = Duration::from_secs(90);

/// The browser's executable: [`CHROMIUM_ENV`], else [`DEFAULT_CHROMIUM`]. Panics with what
/// to do when it is not there.
pub fn chromium() -> PathBuf {
    let (path, from) = match std::env::var_os(CHROMIUM_ENV) {
        Some(p) if !p.is_empty() => (PathBuf::from(p), CHROMIUM_ENV),
        _ => (PathBuf::from(DEFAULT_CHROMIUM), "the default"),
    };
    assert!(
        path.is_file(),
        "headless Chromium not found at {} ({from}): this test renders pages in a real browser \
         and does not pass without one. Install Debian's `chromium` (scripts/install-deps.sh \
         does) or set {CHROMIUM_ENV} to a Chromium or Chrome executable.",
        path.display()
    );
    path
}

/// What a finished browser printed.
struct Output {
    stdout: String,
    stderr: String,
}

/// Runs the browser with `args` after the common ones, within [`DEADLINE`].
fn run(args: &[String]) -> Output {
    let exe = chromium();
    let profile = tempfile::tempdir().expect("a temporary browser profile");
    let mut command = Command::new(&exe);
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--mute-audio",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--virtual-time-budget={VIRTUAL_TIME_BUDGET_MS}"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", exe.display()));
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let status = wait(&mut child, DEADLINE);
    let out = Output {
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    };
    match status {
        Some(s) if s.success() => out,
        Some(s) => panic!(
            "{} {args:?} failed ({s}):\n{}",
            exe.display(),
            tail(&out.stderr)
        ),
        None => panic!(
            "{} {args:?} did not finish within {DEADLINE:?}:\n{}",
            exe.display(),
            tail(&out.stderr)
        ),
    }
}

/// Reads a pipe to its end on a thread of its own (so that neither pipe fills up).
fn drain<R: std::io::Read + Send + 'static>(pipe: Option<R>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut text);
        }
        String::from_utf8_lossy(&text).into_owned()
    })
}

/// Waits for `child` at most `limit`; kills it (and returns `None`) after that.
fn wait(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let end = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < end => std::thread::sleep(Duration::from_millis(50)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// Loads `url`, lets its scripts run for [`VIRTUAL_TIME_BUDGET_MS`] of virtual time, and
/// returns the DOM it ends with, serialized as HTML.
pub fn dump_dom(url: &str) -> String {
    let out = run(&["--dump-dom".to_owned(), url.to_owned()]);
    assert!(
        out.stdout.contains("<html"),
        "no DOM from {url}:\n{}",
        tail(&out.stderr)
    );
    out.stdout
}

/// Loads `url` in a `width` x `height` window, lets its scripts run as [`dump_dom`] does,
/// and writes a PNG of the window to `path` (its folder is created).
pub fn screenshot(url: &str, path: &Path, width: u32, height: u32) {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    }
    let _ = std::fs::remove_file(path);
    run(&[
        format!("--screenshot={}", path.display()),
        format!("--window-size={width},{height}"),
        url.to_owned(),
    ]);
    let png = std::fs::read(path)
        .unwrap_or_else(|e| panic!("no screenshot of {url} at {}: {e}", path.display()));
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a PNG",
        path.display()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(dir: &Path, body: &str) -> String {
        let file = dir.join("page.html");
        std::fs::write(&file, body).expect("write the page");
        format!("file://{}", file.display())
    }

    #[test]
    fn the_dom_is_the_one_scripts_leave() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = page(
            dir.path(),
            "<!doctype html><html><body><p id=x>before</p><script>\
             setTimeout(() => { document.getElementById('x').textContent = 'after ' + (6 * 7); }, 1000);\
             </script></body></html>",
        );
        let dom = dump_dom(&url);
        assert!(dom.contains("<p id=\"x\">after 42</p>"), "{dom}");
    }

    #[test]
    fn a_screenshot_is_a_png_of_the_window() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = page(
            dir.path(),
            "<!doctype html><html><body style='background:#0a0'>green</body></html>",
        );
        let png = dir.path().join("shots/page.png");
        screenshot(&url, &png, 320, 200);
        let bytes = std::fs::read(&png).expect("png");
        // the IHDR chunk: width and height, big-endian, at bytes 16..24
        assert_eq!(&bytes[16..20], &320u32.to_be_bytes());
        assert_eq!(&bytes[20..24], &200u32.to_be_bytes());
    }
}
