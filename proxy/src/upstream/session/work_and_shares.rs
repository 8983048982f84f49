//! The session's work and shares: the work its channels' jobs give the miners, shares
//! forwarded and their answers, hashrate updates, closing.

use super::*;

impl UpstreamSession {
    /// The current work of channel `index` from its active job, if it has one.
    pub fn current_work(&self, index: usize, clean: bool) -> Option<UpstreamWork> {
        let ch = self.channel(index)?;
        let job = ch.active_job()?;
        let prev = ch.prev_hash()?;
        let ext = job.extended_shared()?;
        let extranonce_size = match ch.kind() {
            ChannelKind::Extended { extranonce_size } => u16::from(extranonce_size),
            ChannelKind::Standard => 0,
        };
        Some(UpstreamWork {
            epoch: 0,
            seq: self.seq,
            job_id: job.id(),
            version: job.version(),
            version_rolling_allowed: job.version_mask() != 0,
            version_mask: job.version_mask(),
            prev_hash: prev.prev_hash,
            nbits: prev.nbits,
            min_ntime: job.min_ntime().unwrap_or(prev.min_ntime),
            coinbase_prefix: ext.coinbase_prefix.clone(),
            coinbase_suffix: ext.coinbase_suffix.clone(),
            merkle_path: ext.merkle_path.clone(),
            extended: std::sync::Arc::clone(ext),
            extranonce_prefix: Bytes::copy_from_slice(job.extranonce_prefix()),
            extranonce_size,
            id_width: 0,
            extranonce2_size: 0,
            upstream_target: job.target(),
            clean,
            route: None,
        })
    }

    pub(super) fn emit_work(&mut self, index: usize, clean: bool, out: &mut Vec<Action>) {
        self.seq += 1;
        if let Some(w) = self.current_work(index, clean) {
            if let Some(c) = self.open_chan_mut(index) {
                c.work_job = Some(w.job_id);
            }
            out.push(Action::Work {
                channel: index,
                work: w,
            });
        }
    }

    /// Forwards a share as `SubmitSharesExtended` on its channel ([`ForwardShare::channel`])
    /// (with the worker-name TLV when 0x0002 was granted). While that channel is not open the
    /// share comes straight back as [`CODE_STALE_UPSTREAM`]. The share's `epoch` is not
    /// checked here (the caller's job).
    pub fn submit(&mut self, share: ForwardShare, out: &mut Vec<Action>) {
        if self.state != State::Open || self.open_chan(share.channel).is_none() {
            out.push(Action::ShareResult {
                share,
                accepted: false,
                code: Some(CODE_STALE_UPSTREAM.into()),
            });
            return;
        }
        let Ok(extranonce) = B0_32::new(&share.extranonce) else {
            out.push(Action::ShareResult {
                share,
                accepted: false,
                code: Some(m::ERROR_BAD_EXTRANONCE_SIZE.into()),
            });
            return;
        };
        let tlvs = if self.worker_tlv && !share.worker.is_empty() {
            UserIdentity::new(truncate_utf8(&share.worker, 32))
                .map(|id| vec![id.to_tlv()])
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let max_pending = self.cfg.max_pending_shares.max(1);
        let Some(c) = self.open_chan_mut(share.channel) else {
            return;
        };
        let sequence_number = c.next_sequence;
        c.next_sequence = c.next_sequence.wrapping_add(1);
        out.push(Action::Send {
            msg: SubmitSharesExtended {
                channel_id: c.channel_id,
                sequence_number,
                job_id: share.job_id,
                nonce: share.nonce,
                ntime: share.ntime,
                version: share.version,
                extranonce,
            }
            .into(),
            tlvs,
        });
        if c.pending.len() >= max_pending {
            if let Some((_, oldest)) = c.pending.pop_front() {
                tracing::warn!(
                    pending = max_pending,
                    channel = share.channel,
                    "pool does not answer shares: the oldest is given up"
                );
                out.push(Action::ShareResult {
                    share: oldest,
                    accepted: false,
                    code: Some(CODE_NO_RESPONSE.into()),
                });
            }
        }
        c.pending.push_back((sequence_number, share));
    }

    pub(super) fn on_success(
        &mut self,
        index: usize,
        last: u32,
        count: u32,
        out: &mut Vec<Action>,
    ) {
        let Some(c) = self.open_chan_mut(index) else {
            return;
        };
        let mut acked = 0u32;
        while let Some((seq, _)) = c.pending.front() {
            if !seq_le(*seq, last) {
                break;
            }
            if let Some((_, share)) = c.pending.pop_front() {
                acked += 1;
                out.push(Action::ShareResult {
                    share,
                    accepted: true,
                    code: None,
                });
            }
        }
        if acked != count {
            tracing::debug!(
                channel = index,
                acked,
                count,
                last,
                "SubmitShares.Success count differs from the shares it acknowledges"
            );
        }
    }

    pub(super) fn on_share_error(
        &mut self,
        index: usize,
        sequence_number: u32,
        code: &str,
        out: &mut Vec<Action>,
    ) {
        let Some(c) = self.open_chan_mut(index) else {
            return;
        };
        match c.pending.iter().position(|(s, _)| *s == sequence_number) {
            Some(i) => {
                if let Some((_, share)) = c.pending.remove(i) {
                    out.push(Action::ShareResult {
                        share,
                        accepted: false,
                        code: Some(code.to_string()),
                    });
                }
            }
            None => tracing::debug!(
                channel = index,
                sequence_number,
                code,
                "SubmitShares.Error for a share not pending"
            ),
        }
    }

    /// Sends `UpdateChannel` on channel `index` with a new nominal hashrate (no maximum
    /// target); the value is also the one announced if the channel opens later.
    pub fn update_hashrate(&mut self, index: usize, hashrate: f32, out: &mut Vec<Action>) {
        if self.state == State::Closed || !hashrate.is_finite() || hashrate < 0.0 {
            return;
        }
        let rates = &mut self.cfg.channel_hashrates;
        if rates.len() <= index {
            rates.resize(index + 1, self.cfg.nominal_hashrate);
        }
        rates[index] = hashrate;
        if self.state != State::Open {
            return;
        }
        if let Some(c) = self.open_chan(index) {
            send(
                out,
                UpdateChannel {
                    channel_id: c.channel_id,
                    nominal_hash_rate: hashrate,
                    maximum_target: U256([0xff; 32]),
                },
            );
        }
    }

    /// The connection ended: every unanswered share comes back as
    /// [`CODE_UPSTREAM_CLOSED`] (the pool may or may not have counted it).
    pub fn close(&mut self, out: &mut Vec<Action>) {
        for c in &mut self.chans {
            if let Chan::Open(o) = c {
                for (_, share) in o.pending.drain(..) {
                    out.push(Action::ShareResult {
                        share,
                        accepted: false,
                        code: Some(CODE_UPSTREAM_CLOSED.into()),
                    });
                }
            }
        }
        self.state = State::Closed;
    }
}
