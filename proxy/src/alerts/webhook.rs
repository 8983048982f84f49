//! The alert webhook: each fired and resolved alert POSTed as JSON to `webhook_url`, one at
//! a time, once (no retries: a receiver that is down misses the alerts of that time, which
//! stay in `GET /api/v1/alerts` and the log), each POST bounded by `webhook_timeout_secs`.
//! The hub queues them without waiting ([`Webhook::try_send`]; a full queue drops the alert
//! and the hub counts it).
//!
//! Body (`Content-Type: application/json`), the [`Notice`]:
//!
//! ```json
//! {"status": "fired", "kind": "miner_silent", "subject": "rig 412",
//!  "message": "miner rig 412: no accepted share for 600 s", "since": 1765080000,
//!  "resolved_at": null}
//! ```
//!
//! `status` is `fired` or `resolved` (then `resolved_at` is set); `kind` is `miner_silent`,
//! `hashrate_drop` or `failover`; `subject` is the worker name, null, or the new pool's URL.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Notice;

/// The webhook URL cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// Not a URL.
    #[error("alerts.webhook_url {url:?}: {why}")]
    Url {
        /// The setting.
        url: String,
        /// What is wrong.
        why: String,
    },
}

/// Checks `url`: an `http://` URL with a host (the proxy's HTTP client has no TLS; put a
/// relay on the LAN in front of an `https://` receiver).
pub fn check_url(url: &str) -> Result<reqwest::Url, WebhookError> {
    let bad = |why: &str| WebhookError::Url {
        url: url.to_string(),
        why: why.to_string(),
    };
    let u = reqwest::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
    if u.scheme() != "http" {
        return Err(bad(
            "only http:// URLs are supported (no TLS in the proxy's client)",
        ));
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(bad("no host"));
    }
    Ok(u)
}

/// The hub's side of the webhook.
#[derive(Debug, Clone)]
pub struct Webhook {
    tx: mpsc::Sender<Notice>,
}

impl Webhook {
    /// Queues a notice without waiting; false when the queue is full or the task is gone.
    pub fn try_send(&self, n: Notice) -> bool {
        self.tx.try_send(n).is_ok()
    }
}

/// Starts the task that POSTs each queued notice to `url` (at most `queue` waiting, each
/// POST within `timeout`), until `shutdown`.
pub fn spawn(
    url: reqwest::Url,
    timeout: Duration,
    queue: usize,
    shutdown: CancellationToken,
) -> (Webhook, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = mpsc::channel::<Notice>(queue.max(1));
    let task = tokio::spawn(async move {
        let client = match reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
        {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "alert webhook: no HTTP client");
                return;
            }
        };
        loop {
            let n = tokio::select! {
                n = rx.recv() => match n { Some(n) => n, None => break },
                () = shutdown.cancelled() => break,
            };
            let sent = tokio::select! {
                r = client.post(url.clone()).json(&n).send() => r,
                () = shutdown.cancelled() => break,
            };
            match sent {
                Ok(r) if r.status().is_success() => {
                    tracing::debug!(
                        kind = n.alert.kind.name(),
                        status = n.status,
                        "alert webhook delivered"
                    );
                }
                Ok(r) => {
                    tracing::warn!(http_status = %r.status(), kind = n.alert.kind.name(), "alert webhook refused the alert (not retried)")
                }
                Err(e) => {
                    tracing::warn!(error = %e, kind = n.alert.kind.name(), "alert webhook failed (not retried)")
                }
            }
        }
    });
    (Webhook { tx }, task)
}
