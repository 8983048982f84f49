//! Custom jobs (spec 5.3.18): on a connection that set `REQUIRES_WORK_SELECTION`, an
//! extended channel accepts `SetCustomMiningJob` carrying a token the pool's Job Declarator
//! Server declared ([`DeclaredJob`]). The job must be the declared one: the same tip, version,
//! merkle path, and a coinbase that differs from the declared coinbase only in its extranonce
//! (whose size must be the channel's). In solo mode the declaration's token must be of an
//! identity with the channel's payout address. Shares on it are validated and credited like
//! any other; a block found on it is assembled here with the declared transactions.

use std::sync::Arc;

use bitcoin::consensus::{deserialize, serialize};
use bitcoin::TxOut;
use strata_protocol::mining::{
    self as m, SetCustomMiningJob, SetCustomMiningJobError, SetCustomMiningJobSuccess,
};
use strata_protocol::wire::Str0_255;
use strata_work::channel::ExtendedWork;

use super::{Event, JobCoinbase, JobInfo, Now, Session};
use crate::jds::DeclaredJob;
use crate::payout;
use crate::template::Template;

/// Why a custom job is refused: the `SetCustomMiningJob.Error` code.
fn param(field: &str) -> String {
    format!("{}{field}", m::ERROR_INVALID_JOB_PARAM_VALUE_PREFIX)
}

impl Session {
    /// The answer to an [`Event::CustomJob`]: `declared` is the job the registry held for
    /// the message's token (taken out of it), `None` when it held none.
    pub fn on_custom_job(
        &mut self,
        j: &SetCustomMiningJob,
        declared: Option<Arc<DeclaredJob>>,
        now: Now,
        out: &mut Vec<Event>,
    ) {
        if self.is_closed() {
            return;
        }
        match self.custom_job(j, declared, now) {
            Ok(job_id) => out.push(Event::Send(
                SetCustomMiningJobSuccess {
                    channel_id: j.channel_id,
                    request_id: j.request_id,
                    job_id,
                }
                .into(),
            )),
            Err(code) => {
                tracing::debug!(conn = self.conn_id, channel = j.channel_id, %code, "custom job refused");
                out.push(Event::Send(
                    SetCustomMiningJobError {
                        channel_id: j.channel_id,
                        request_id: j.request_id,
                        error_code: Str0_255::truncated(&code),
                    }
                    .into(),
                ))
            }
        }
    }

    fn custom_job(
        &mut self,
        j: &SetCustomMiningJob,
        declared: Option<Arc<DeclaredJob>>,
        now: Now,
    ) -> Result<u32, String> {
        let standard = self.core.state(j.channel_id).map(|m| m.standard);
        let Some(ch) = self.core.channel(j.channel_id) else {
            return Err(m::ERROR_INVALID_CHANNEL_ID.into());
        };
        if standard != Some(false) {
            return Err(m::ERROR_STANDARD_CHANNELS_NOT_SUPPORTED_FOR_CUSTOM_WORK.into());
        }
        let Some(d) = declared.filter(|d| d.expires > now.mono) else {
            return Err(m::ERROR_INVALID_MINING_JOB_TOKEN.into());
        };
        // solo: the declared coinbase pays its token's identity, which must be the channel's
        // (a solo block pays its finder, and the finder recorded is the channel's identity)
        if self.cfg.solo {
            let channel_payee = self
                .core
                .state(j.channel_id)
                .and_then(|s| s.data.payout.as_ref());
            if payout::payout_script(&d.user, self.cfg.network).as_ref() != channel_payee {
                return Err(param("coinbase_tx_outputs"));
            }
        }
        let declared_tx = &d.coinbase.tx;
        let script = declared_tx.input[0].script_sig.as_bytes();
        let head = &script[..script.len() - d.coinbase.extranonce_len];
        if j.prev_hash.0 != d.prev_hash || ch.prev_hash().map(|p| p.prev_hash) != Some(d.prev_hash)
        {
            return Err(param("prev_hash"));
        }
        if j.nbits != d.nbits {
            return Err(param("nbits"));
        }
        if j.version != d.version {
            return Err(param("version"));
        }
        if j.merkle_path.len() != d.merkle_path.len()
            || j.merkle_path
                .iter()
                .zip(&d.merkle_path)
                .any(|(a, b)| &a.0 != b)
        {
            return Err(param("merkle_path"));
        }
        if j.coinbase_tx_version != declared_tx.version.0 as u32 {
            return Err(param("coinbase_tx_version"));
        }
        if j.coinbase_prefix.as_slice() != head {
            return Err(param("coinbase_prefix"));
        }
        if j.coinbase_tx_input_n_sequence != declared_tx.input[0].sequence.0 {
            return Err(param("coinbase_tx_input_nSequence"));
        }
        if j.coinbase_tx_locktime != declared_tx.lock_time.to_consensus_u32() {
            return Err(param("coinbase_tx_locktime"));
        }
        let outputs: Vec<TxOut> = deserialize(j.coinbase_tx_outputs.as_slice())
            .map_err(|_| param("coinbase_tx_outputs"))?;
        if outputs != declared_tx.output {
            return Err(param("coinbase_tx_outputs"));
        }
        if d.coinbase.extranonce_len != ch.full_extranonce_size() {
            // the job is the declared block: only the extranonce's bytes may change
            return Err(param("coinbase_prefix"));
        }
        // the stripped coinbase around the extranonce (scriptSigs are at most 100 bytes:
        // their length takes one byte)
        let mut stripped_tx = declared_tx.clone();
        stripped_tx.input[0].witness.clear();
        let stripped = serialize(&stripped_tx);
        let end = 4 + 1 + 36 + 1 + script.len();
        let start = end - d.coinbase.extranonce_len;
        if script.len() > 100 || stripped.len() < end {
            return Err(param("coinbase_prefix"));
        }
        let job_id = self
            .core
            .next_job_id(j.channel_id)
            .ok_or_else(|| m::ERROR_INVALID_CHANNEL_ID.to_string())?;
        let work = ExtendedWork::new(
            stripped[..start].to_vec().into(),
            stripped[end..].to_vec().into(),
            d.merkle_path.clone().into(),
        );
        self.core
            .channel_mut(j.channel_id)
            .ok_or_else(|| m::ERROR_INVALID_CHANNEL_ID.to_string())?
            .on_custom_job(job_id, j.version, j.min_ntime.max(d.min_ntime), work)
            .map_err(|e| {
                tracing::debug!(error = %e, "custom job refused by the channel");
                param("min_ntime")
            })?;
        let template = Template {
            id: d.token,
            height: d.height,
            prev_hash: d.prev_hash,
            version: d.version,
            nbits: d.nbits,
            min_ntime: d.min_ntime,
            coinbase_tx_version: j.coinbase_tx_version,
            coinbase_prefix: head.to_vec(),
            coinbase_tx_input_sequence: j.coinbase_tx_input_n_sequence,
            coinbase_tx_value_remaining: d.coinbase.reward(),
            coinbase_tx_outputs: Vec::new(),
            coinbase_tx_locktime: j.coinbase_tx_locktime,
            merkle_path: d.merkle_path.clone(),
            tx_count: d.transactions.len() as u32,
        };
        self.core.insert_job(
            j.channel_id,
            job_id,
            JobInfo {
                template: Arc::new(template),
                window: d.window,
                coinbase: JobCoinbase::Custom(Arc::clone(&d)),
                split: Arc::clone(&d.split),
            },
        );
        Ok(job_id)
    }
}
