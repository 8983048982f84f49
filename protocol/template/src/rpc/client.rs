//! The JSON-RPC client: HTTP Basic (fixed or bitcoind's `.cookie`, re-read after a 401),
//! and [`NodeRpc`], the node's RPC for other parts of the pool than the template source.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};

use super::{RpcAuth, RpcConfig};
use crate::{SourceError, SubmitOutcome};

/// Why one JSON-RPC call failed.
#[derive(Debug)]
pub(super) enum CallError {
    /// The request timed out (expected for an idle long poll).
    TimedOut,
    /// Anything else.
    Failed(SourceError),
}

impl From<CallError> for SourceError {
    fn from(e: CallError) -> Self {
        match e {
            CallError::TimedOut => SourceError::Connection("request timed out".into()),
            CallError::Failed(e) => e,
        }
    }
}

impl From<SourceError> for CallError {
    fn from(e: SourceError) -> Self {
        CallError::Failed(e)
    }
}

/// A JSON-RPC client to the node of an [`RpcConfig`], for other parts of the pool than the
/// template source (the Job Declarator Server's mempool view and block checks).
#[derive(Debug, Clone)]
pub struct NodeRpc {
    rpc: RpcClient,
    timeout: Duration,
    network: bitcoin::Network,
}

impl NodeRpc {
    /// A client of `config`'s node (nothing is sent yet).
    pub fn new(config: &RpcConfig) -> Result<Self, SourceError> {
        Ok(NodeRpc {
            rpc: RpcClient::new(config)?,
            timeout: config.request_timeout,
            network: config.network,
        })
    }

    /// Calls `method`; bitcoind's error message becomes [`SourceError::Protocol`].
    pub async fn call(&mut self, method: &str, params: Value) -> Result<Value, SourceError> {
        self.rpc
            .call(method, params, self.timeout)
            .await
            .map_err(SourceError::from)
    }

    /// Whether the node answers and runs the configured network's chain, as the `rpc`
    /// source checks it before its first template ([`SourceError::WrongChain`] otherwise).
    pub async fn check_chain(&mut self) -> Result<(), SourceError> {
        let info = self.call("getblockchaininfo", json!([])).await?;
        super::chain_is(&info, self.network)
    }

    /// Submits a whole serialized block (`submitblock`, BIP22), read as the `rpc` source
    /// reads it: `null` and `"duplicate"` are accepted, another string is the node's reason.
    pub async fn submit_block(&mut self, block: &[u8]) -> Result<SubmitOutcome, SourceError> {
        let hash = super::block_hash_hex(block)?;
        let result = self
            .call("submitblock", json!([hex::encode(block)]))
            .await?;
        super::submit_outcome(&result, hash)
    }
}

/// A JSON-RPC 1.0 response as bitcoind sends it.
#[derive(Deserialize)]
struct RpcResponse {
    #[serde(default)]
    result: Value,
    #[serde(default)]
    error: Value,
}

/// The HTTP side: one `reqwest` client, credentials, request ids.
#[derive(Clone)]
pub(super) struct RpcClient {
    http: reqwest::Client,
    url: String,
    auth: RpcAuth,
    /// Credentials in use (read from the cookie file for [`RpcAuth::Cookie`]).
    credentials: Option<(String, String)>,
    next_request_id: u64,
}

impl fmt::Debug for RpcClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RpcClient")
            .field("url", &self.url)
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

impl RpcClient {
    pub(super) fn new(config: &RpcConfig) -> Result<Self, SourceError> {
        let http = reqwest::Client::builder()
            .build()
            .map_err(|e| SourceError::Connection(format!("http client: {e}")))?;
        let credentials = match &config.auth {
            RpcAuth::UserPass { user, password } => Some((user.clone(), password.clone())),
            RpcAuth::Cookie(_) => None,
        };
        Ok(RpcClient {
            http,
            url: config.url.clone(),
            auth: config.auth.clone(),
            credentials,
            next_request_id: 0,
        })
    }

    /// Reads the cookie file into the credentials (a no-op for a fixed user and password).
    async fn load_cookie(&mut self) -> Result<(), SourceError> {
        let RpcAuth::Cookie(path) = &self.auth else {
            return Ok(());
        };
        let text = tokio::fs::read_to_string(path).await?;
        let (user, password) = text.trim_end().split_once(':').ok_or_else(|| {
            SourceError::Auth(format!(
                "cookie file {} is not user:password",
                path.display()
            ))
        })?;
        self.credentials = Some((user.to_owned(), password.to_owned()));
        Ok(())
    }

    pub(super) async fn call(
        &mut self,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<Value, CallError> {
        if self.credentials.is_none() {
            self.load_cookie().await?;
        }
        match self.call_once(method, &params, timeout).await {
            Err(CallError::Failed(SourceError::Auth(_)))
                if matches!(self.auth, RpcAuth::Cookie(_)) =>
            {
                // bitcoind restarted and wrote a new cookie: read it and try once more
                tracing::info!("rpc: 401 with the cookie in use, re-reading the cookie file");
                self.load_cookie().await?;
                self.call_once(method, &params, timeout).await
            }
            other => other,
        }
    }

    async fn call_once(
        &mut self,
        method: &str,
        params: &Value,
        timeout: Duration,
    ) -> Result<Value, CallError> {
        self.next_request_id += 1;
        let body = json!({
            "jsonrpc": "1.0",
            "id": self.next_request_id,
            "method": method,
            "params": params,
        });
        let mut request = self.http.post(&self.url).timeout(timeout).json(&body);
        if let Some((user, password)) = &self.credentials {
            request = request.basic_auth(user, Some(password));
        }
        let response = request.send().await.map_err(transport_error)?;
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(SourceError::Auth(format!("{method}: http {status}")).into());
        }
        let bytes = response.bytes().await.map_err(transport_error)?;
        // bitcoind answers RPC errors with a JSON body and a 4xx/5xx status: read the body
        // first, fall back to the status
        let parsed: RpcResponse = match serde_json::from_slice(&bytes) {
            Ok(parsed) => parsed,
            Err(_) if !status.is_success() => {
                return Err(SourceError::Connection(format!("{method}: http {status}")).into())
            }
            Err(e) => {
                return Err(
                    SourceError::Protocol(format!("{method}: invalid response: {e}")).into(),
                )
            }
        };
        if !parsed.error.is_null() {
            let message = parsed
                .error
                .get("message")
                .and_then(Value::as_str)
                .map_or_else(|| parsed.error.to_string(), str::to_owned);
            let code = parsed.error.get("code").and_then(Value::as_i64);
            return Err(SourceError::Protocol(match code {
                Some(code) => format!("{method}: {message} (code {code})"),
                None => format!("{method}: {message}"),
            })
            .into());
        }
        Ok(parsed.result)
    }
}

fn transport_error(e: reqwest::Error) -> CallError {
    if e.is_timeout() {
        CallError::TimedOut
    } else {
        CallError::Failed(SourceError::Connection(e.to_string()))
    }
}
