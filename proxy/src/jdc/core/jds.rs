//! The core's Job Declaration side: tokens, declarations, missing transactions, and the
//! custom jobs they become on the pool's channels.

use bitcoin::consensus::{deserialize, serialize};
use strata_protocol::job_declaration::{
    AllocateMiningJobToken, AllocateMiningJobTokenSuccess, DeclareMiningJob, DeclareMiningJobError,
    DeclareMiningJobSuccess, ProvideMissingTransactions, ProvideMissingTransactionsSuccess,
    ERROR_STALE_CHAIN_TIP,
};
use strata_protocol::mining::SetCustomMiningJob;
use strata_protocol::wire::{B0_16M, B0_64K, U256};

use super::super::pool_outputs;
use super::*;

/// Whether a refusal is about the tip (the pool's node not there yet): worth a retry.
fn stale(code: &str) -> bool {
    code == ERROR_STALE_CHAIN_TIP || code.ends_with("prev_hash") || code.contains("stale")
}

impl Jdc {
    fn setup_message(&self) -> SetupConnection {
        SetupConnection {
            protocol: PROTOCOL_JOB_DECLARATION,
            min_version: 2,
            max_version: 2,
            flags: match self.cfg.mode {
                DeclareMode::FullTemplate => jd::DECLARE_TX_DATA,
                DeclareMode::CoinbaseOnly => 0,
            },
            endpoint_host: Str0_255::default(),
            endpoint_port: 0,
            vendor: Str0_255::truncated("strata"),
            hardware_version: Str0_255::default(),
            firmware: Str0_255::truncated(concat!("strata-proxy/", env!("CARGO_PKG_VERSION"))),
            device_id: Str0_255::default(),
        }
    }

    pub(super) fn on_jds_connected(&mut self, now: Instant, out: &mut Vec<Action>) {
        if !matches!(self.jds, JdsState::Connecting { .. }) {
            return;
        }
        self.jds = JdsState::AwaitSetup { since: now };
        out.push(Action::ToJds(self.setup_message().into()));
    }

    pub(super) fn on_jds_message(&mut self, m: Message, now: Instant, out: &mut Vec<Action>) {
        match m {
            Message::Common(CommonMessage::SetupConnectionSuccess(_))
                if matches!(self.jds, JdsState::AwaitSetup { .. }) =>
            {
                tracing::info!("JDS connection set up");
                self.jds = JdsState::Ready;
                self.jds_backoff = self.cfg.retry_min;
            }
            Message::Common(CommonMessage::SetupConnectionError(e)) => {
                let reason = format!(
                    "the JDS refused the connection setup: {} (flags {:#x})",
                    e.error_code.as_str(),
                    e.flags
                );
                self.jds_failed(reason, now, out);
            }
            Message::JobDeclaration(m) if self.jds == JdsState::Ready => {
                self.on_jd(m, now, out);
            }
            other => {
                let reason = format!("unexpected {} from the JDS", other.name());
                self.jds_failed(reason, now, out);
            }
        }
    }

    fn on_jd(&mut self, m: JobDeclarationMessage, now: Instant, out: &mut Vec<Action>) {
        match m {
            JobDeclarationMessage::AllocateMiningJobTokenSuccess(s) => self.on_token(s, now, out),
            JobDeclarationMessage::ProvideMissingTransactions(p) => self.on_missing(p, now, out),
            JobDeclarationMessage::DeclareMiningJobSuccess(s) => self.on_declared(s, now, out),
            JobDeclarationMessage::DeclareMiningJobError(e) => self.on_declare_error(e, now, out),
            other => {
                let reason = format!("unexpected {} from the JDS", other.name());
                self.jds_failed(reason, now, out);
            }
        }
    }

    /// Keeps a token ahead for every open pool channel, plus one.
    pub(super) fn ask_tokens(&mut self, now: Instant, out: &mut Vec<Action>) {
        let open = self
            .pool
            .as_ref()
            .map_or(0, |p| p.chans.iter().filter(|c| c.is_some()).count());
        let wanted = (open + 1).min(self.cfg.max_tokens.max(1));
        while self.tokens.len() + self.token_requests.len() < wanted {
            let request_id = self.request_id();
            self.token_requests.push((request_id, now));
            out.push(Action::ToJds(
                AllocateMiningJobToken {
                    user_identifier: Str0_255::truncated(&self.cfg.user_identifier),
                    request_id,
                }
                .into(),
            ));
        }
    }

    pub(super) fn on_token(
        &mut self,
        s: AllocateMiningJobTokenSuccess,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let Some(i) = self
            .token_requests
            .iter()
            .position(|(id, _)| *id == s.request_id)
        else {
            let reason = format!(
                "the JDS sent a token for request {}, never asked",
                s.request_id
            );
            return self.jds_failed(reason, now, out);
        };
        self.token_requests.swap_remove(i);
        let outputs: Vec<bitcoin::TxOut> = match deserialize(s.coinbase_tx_outputs.as_slice()) {
            Ok(o) => o,
            Err(e) => {
                let reason = format!("the JDS's token carries unreadable coinbase outputs: {e}");
                return self.jds_failed(reason, now, out);
            }
        };
        self.tokens.push_back(Token {
            token: s.mining_job_token,
            outputs,
            at: now,
        });
    }

    /// Takes the current template through every open pool channel whose pipeline is idle.
    pub(super) fn start_jobs(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.pool_retry_at.is_some() {
            return;
        }
        let (Some(t), Some(pool)) = (self.template.clone(), self.pool.as_ref()) else {
            return;
        };
        let chans: Vec<(usize, PoolChan)> = pool
            .chans
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.clone().map(|c| (i, c)))
            .collect();
        for (c, chan) in chans {
            let p = &self.pipes[c];
            let current = p
                .template
                .as_ref()
                .is_some_and(|pt| pt.template.id == t.template.id);
            let busy = matches!(p.stage, Stage::Declaring { .. } | Stage::Setting { .. });
            if busy || (current && p.stage == Stage::Done) || p.retry_at.is_some_and(|r| r > now) {
                continue;
            }
            let Some(token) = self.tokens.pop_front() else {
                return;
            };
            let room = chan.prefix.len() + usize::from(chan.size);
            let outputs = pool_outputs(
                &token.outputs,
                t.template.coinbase_tx_value_remaining,
                &self.cfg.solo_script,
            );
            let coinbase =
                match JobCoinbase::build(&t.template, outputs, &self.cfg.coinbase_tag, room) {
                    Ok(cb) => Arc::new(cb),
                    Err(e) => {
                        let reason =
                            format!("cannot build the coinbase the JDS's token requires: {e}");
                        return self.pool_failed(reason, now, out);
                    }
                };
            let p = &mut self.pipes[c];
            p.template = Some(t.clone());
            p.coinbase = Some(coinbase.clone());
            p.job_id = None;
            p.retry_at = None;
            match self.cfg.mode {
                DeclareMode::CoinbaseOnly => self.send_custom_job(c, token.token, now, out),
                DeclareMode::FullTemplate => {
                    let Some(txs) = &t.transactions else {
                        let reason = "the template source gives no transactions (Full-Template \
                                      mode needs `rpc`, `ipc`, or `tdp` with verify_templates)"
                            .to_string();
                        return self.pool_failed(reason, now, out);
                    };
                    let wtxids: Vec<U256> = txs
                        .iter()
                        .map(|tx| U256(bitcoin::hashes::Hash::to_byte_array(tx.compute_wtxid())))
                        .collect();
                    let (Ok(prefix), Ok(suffix), Ok(wtxid_list)) = (
                        B0_64K::new(coinbase.declared_prefix.clone()),
                        B0_64K::new(coinbase.declared_suffix.clone()),
                        wtxids.try_into(),
                    ) else {
                        return self.pool_failed(
                            "the declaration does not fit its message".into(),
                            now,
                            out,
                        );
                    };
                    let request_id = self.request_id();
                    self.pipes[c].stage = Stage::Declaring {
                        request_id,
                        sent: now,
                    };
                    out.push(Action::ToJds(
                        DeclareMiningJob {
                            request_id,
                            mining_job_token: token.token,
                            version: t.template.version,
                            coinbase_tx_prefix: prefix,
                            coinbase_tx_suffix: suffix,
                            wtxid_list,
                            excess_data: B0_64K::default(),
                        }
                        .into(),
                    ));
                }
            }
        }
    }

    fn declaring(&self, request_id: u32) -> Option<usize> {
        self.pipes.iter().position(
            |p| matches!(p.stage, Stage::Declaring { request_id: r, .. } if r == request_id),
        )
    }

    pub(super) fn on_missing(
        &mut self,
        m: ProvideMissingTransactions,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let Some(c) = self.declaring(m.request_id) else {
            tracing::debug!(
                request_id = m.request_id,
                "ProvideMissingTransactions of no declaration in flight"
            );
            return;
        };
        let txs = self.pipes[c]
            .template
            .as_ref()
            .and_then(|t| t.transactions.clone())
            .unwrap_or_default();
        let mut list = Vec::with_capacity(m.unknown_tx_position_list.len());
        for &pos in m.unknown_tx_position_list.iter() {
            let Some(tx) = txs.get(usize::from(pos)) else {
                let reason = format!(
                    "the JDS asked for transaction {pos} of a declaration of {}",
                    txs.len()
                );
                return self.jds_failed(reason, now, out);
            };
            match B0_16M::new(serialize(tx.as_ref())) {
                Ok(b) => list.push(b),
                Err(_) => {
                    return self.pool_failed("a transaction too large to provide".into(), now, out)
                }
            }
        }
        let Ok(transaction_list) = list.try_into() else {
            return self.pool_failed("too many missing transactions".into(), now, out);
        };
        tracing::debug!(
            request_id = m.request_id,
            "JDS asked for transactions: provided"
        );
        out.push(Action::ToJds(
            ProvideMissingTransactionsSuccess {
                request_id: m.request_id,
                transaction_list,
            }
            .into(),
        ));
    }

    pub(super) fn on_declared(
        &mut self,
        s: DeclareMiningJobSuccess,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        match self.declaring(s.request_id) {
            Some(c) => {
                if let Stage::Declaring { sent, .. } = self.pipes[c].stage {
                    record(&mut self.declare_rtt, now.saturating_duration_since(sent));
                }
                self.send_custom_job(c, s.new_mining_job_token, now, out)
            }
            None => tracing::debug!(
                request_id = s.request_id,
                "late DeclareMiningJob.Success ignored"
            ),
        }
    }

    pub(super) fn on_declare_error(
        &mut self,
        e: DeclareMiningJobError,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let Some(c) = self.declaring(e.request_id) else {
            return;
        };
        let code = e.error_code.as_str().to_string();
        let details = String::from_utf8_lossy(e.error_details.as_slice()).into_owned();
        self.refused(
            c,
            format!("the JDS refused the declaration on channel {c}: {code} ({details})"),
            stale(&code),
            now,
            out,
        );
    }

    /// A refusal of channel `c`'s job: retried later when about the tip, else a failure.
    fn refused(
        &mut self,
        c: usize,
        reason: String,
        stale: bool,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let p = &mut self.pipes[c];
        if stale && p.stale_tries < self.cfg.stale_retries {
            p.stale_tries += 1;
            tracing::info!(channel = c, %reason, "retrying on the same template");
            p.stage = Stage::Idle;
            p.template = None;
            let doubled = 1u32 << (p.stale_tries - 1).min(16);
            let wait = (self.cfg.stale_retry * doubled).min(self.cfg.stale_retry_max);
            p.retry_at = Some(now + wait);
            return;
        }
        self.pool_failed(reason, now, out);
    }

    fn send_custom_job(&mut self, c: usize, token: B0_255, now: Instant, out: &mut Vec<Action>) {
        let Some(epoch) = self.pool.as_ref().map(|p| p.epoch) else {
            self.pipes[c] = Pipe::new();
            return;
        };
        let p = &self.pipes[c];
        let (Some(t), Some(cb)) = (p.template.clone(), p.coinbase.clone()) else {
            return;
        };
        let tt = &t.template;
        let (Ok(coinbase_prefix), Ok(coinbase_tx_outputs), Ok(merkle_path)) = (
            B0_255::new(cb.head.clone()),
            B0_64K::new(serialize(&cb.outputs)),
            tt.merkle_path
                .iter()
                .map(|h| U256(*h))
                .collect::<Vec<_>>()
                .try_into(),
        ) else {
            return self.pool_failed("the custom job does not fit its message".into(), now, out);
        };
        let request_id = self.request_id();
        self.pipes[c].stage = Stage::Setting {
            request_id,
            sent: now,
        };
        let job = SetCustomMiningJob {
            channel_id: 0,
            request_id,
            mining_job_token: token,
            version: tt.version,
            prev_hash: U256(tt.prev_hash),
            min_ntime: tt.min_ntime,
            nbits: tt.nbits,
            coinbase_tx_version: tt.coinbase_tx_version,
            coinbase_prefix,
            coinbase_tx_input_n_sequence: tt.coinbase_tx_input_sequence,
            coinbase_tx_outputs,
            coinbase_tx_locktime: tt.coinbase_tx_locktime,
            merkle_path,
        };
        out.push(Action::ToUpstream(UpstreamCommand::SetCustomJob {
            epoch,
            channel: c,
            job: Box::new(job),
        }));
    }

    pub(super) fn on_custom_job(
        &mut self,
        c: usize,
        request_id: u32,
        result: Result<u32, String>,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let Some(p) = self.pipes.get_mut(c) else {
            return;
        };
        if !matches!(p.stage, Stage::Setting { request_id: r, .. } if r == request_id) {
            return;
        }
        match result {
            Ok(job_id) => {
                p.stage = Stage::Done;
                p.job_id = Some(job_id);
                let tip = p.template.as_ref().map(|t| t.template.prev_hash);
                if let Some((_, at)) = self.new_tip.filter(|(t, _)| c == 0 && Some(*t) == tip) {
                    record(&mut self.tip_to_job, now.saturating_duration_since(at));
                    self.new_tip = None;
                }
                if self.mode == Mode::Pool {
                    self.publish_pool(c, out);
                } else if c == 0 {
                    self.go_pool(out);
                }
            }
            Err(code) if code == CODE_STALE_UPSTREAM => {
                // the pool's connection changed under it: its Active restarts the pipelines
                *p = Pipe::new();
            }
            Err(code) => {
                let retry = stale(&code);
                self.refused(
                    c,
                    format!("the pool refused the custom job on channel {c}: {code}"),
                    retry,
                    now,
                    out,
                );
            }
        }
    }
}
