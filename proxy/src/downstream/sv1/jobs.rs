//! An SV1 session's jobs: the upstream work turned into `mining.notify` and the difficulty
//! its miner is asked for.

use super::*;

impl Sv1Session {
    /// The mask of jobs built from `w`.
    pub(super) fn effective_mask(&self, w: &UpstreamWork) -> u32 {
        self.rolling
            .map_or(0, |r| r.mask & self.cfg.version_mask & upstream_mask(w))
    }

    pub(super) fn build_mining(&mut self, w: &UpstreamWork, miner: MinerId) -> Option<Mining> {
        if w.extranonce1(miner).len() < w.extranonce_prefix.len() {
            return None;
        }
        let extranonce1 = w.extranonce1(miner);
        let size = u8::try_from(w.extranonce2_size).ok()?;
        let mask = self.effective_mask(w);
        let config = ChannelConfig {
            max_jobs: self.cfg.max_jobs.max(1),
            max_future_jobs: 1,
            version_mask: mask,
            // one channel per miner, most of them idle: the duplicate set grows with shares
            initial_seen_capacity: 4,
            ..ChannelConfig::default()
        };
        let channel = match Channel::new_extended(
            LOCAL_CHANNEL_ID,
            &extranonce1,
            size,
            self.share_target(),
            config,
        ) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(peer = %self.peer, error = %e, "cannot build the local channel");
                return None;
            }
        };
        Some(Mining {
            channel,
            epoch: w.epoch,
            upstream_prefix_len: w.extranonce_prefix.len(),
            extranonce1,
            extranonce2_size: w.extranonce2_size,
            mask,
            prev_hash: [0; 32],
            nbits: 0,
            prev_min_ntime: 0,
            last_seq: 0,
            jobs: VecDeque::new(),
            current: None,
            sequence: 0,
        })
    }

    /// Work after the jobs started: a new job, or a rebuilt channel (new epoch, extranonce or
    /// mask).
    pub(super) fn on_new_work(&mut self, w: &Arc<UpstreamWork>, out: &mut Vec<Sv1Action>) {
        let Some(miner) = self.miner() else {
            return;
        };
        let Some(m) = self.mining.as_ref() else {
            return;
        };
        let extranonce1 = w.extranonce1(miner);
        // what the miner sees: its id bytes (the upstream prefix travels in coinbase1), so a
        // new pool with an extranonce space of the same size changes nothing for the miner
        let visible = extranonce1
            .get(w.extranonce_prefix.len()..)
            .unwrap_or_default();
        let extranonce_changed =
            visible != m.visible_extranonce1() || w.extranonce2_size != m.extranonce2_size;
        let rebuild = extranonce_changed
            || extranonce1 != m.extranonce1
            || w.epoch != m.epoch
            || self.effective_mask(w) != m.mask;
        if !rebuild {
            if w.seq <= m.last_seq {
                return; // already sent (or older)
            }
            let clean = w.clean || w.prev_hash != m.prev_hash || w.nbits != m.nbits;
            self.push_job(w, clean, out);
            return;
        }
        if extranonce_changed && !self.extranonce_subscribed {
            send_method(out, ServerMethod::Reconnect(Reconnect::default()));
            self.close(
                out,
                "extranonce changed and the miner did not subscribe to it",
            );
            return;
        }
        let Some(new) = self.build_mining(w, miner) else {
            send_method(out, ServerMethod::Reconnect(Reconnect::default()));
            self.close(out, "upstream extranonce space unusable for sv1");
            return;
        };
        if let Some(old) = self.mining.replace(new) {
            let cap = 4 * self.cfg.max_jobs.max(1);
            for j in old.jobs {
                if self.retired.len() >= cap {
                    self.retired.pop_front();
                }
                self.retired.push_back(j.local_id);
            }
        }
        if extranonce_changed {
            if let Some(m) = self.mining.as_ref() {
                send_method(
                    out,
                    ServerMethod::SetExtranonce(SetExtranonce {
                        extranonce1: Bytes::copy_from_slice(m.visible_extranonce1()),
                        extranonce2_size: u32::try_from(m.extranonce2_size).unwrap_or(u32::MAX),
                    }),
                );
            }
        }
        self.announce_mask(out);
        self.push_job(w, true, out);
    }

    /// Records a job for `w` on the local channel and sends its `mining.notify`.
    pub(super) fn push_job(&mut self, w: &UpstreamWork, clean: bool, out: &mut Vec<Sv1Action>) {
        let local_id = self.next_job_id;
        let Some(m) = self.mining.as_mut() else {
            return;
        };
        let min_ntime = if clean {
            w.min_ntime
        } else {
            w.min_ntime.max(m.prev_min_ntime)
        };
        let job = match build_job(w, local_id, (!clean).then_some(min_ntime), m.mask != 0) {
            Ok(j) => j,
            Err(reason) => {
                tracing::warn!(peer = %self.peer, %reason, "upstream work not usable");
                return;
            }
        };
        let recorded = m
            .channel
            .on_new_extended_mining_job_shared(&job, &w.extended)
            .and_then(|()| {
                if clean {
                    m.channel.on_set_new_prev_hash(&SetNewPrevHash {
                        channel_id: LOCAL_CHANNEL_ID,
                        job_id: local_id,
                        prev_hash: U256(w.prev_hash),
                        min_ntime,
                        nbits: w.nbits,
                    })
                } else {
                    Ok(())
                }
            });
        if let Err(e) = recorded {
            tracing::warn!(peer = %self.peer, error = %e, "upstream work not recorded");
            return;
        }
        self.next_job_id = self.next_job_id.checked_add(1).unwrap_or(1);
        if clean {
            m.prev_hash = w.prev_hash;
            m.nbits = w.nbits;
            m.prev_min_ntime = w.min_ntime;
            m.jobs.clear();
        }
        m.last_seq = m.last_seq.max(w.seq);
        if m.jobs.len() >= 2 * self.cfg.max_jobs.max(1) {
            m.jobs.pop_front();
        }
        m.jobs.push_back(SentJob {
            local_id,
            upstream_job_id: w.job_id,
        });
        m.current = Some(local_id);
        let notify = Notify {
            job_id: Text::from(format!("{local_id:x}")),
            prev_hash: w.prev_hash,
            coinb1: coinbase1(w),
            coinb2: w.coinbase_suffix.clone(),
            merkle_branch: w.merkle_path.to_vec(),
            version: w.version,
            nbits: w.nbits,
            ntime: min_ntime,
            clean_jobs: clean,
        };
        send_method(out, ServerMethod::Notify(notify));
    }

    /// The difficulty as sent to the miner.
    pub(super) fn wire_difficulty(&self) -> Difficulty {
        Difficulty::new(self.vardiff.difficulty()).unwrap_or(Difficulty::ONE)
    }

    /// The target shares are checked against: exactly what the miner derives from the
    /// difficulty it was sent.
    pub(super) fn share_target(&self) -> Target {
        Target::from_difficulty(self.wire_difficulty().get()).unwrap_or(self.vardiff.target())
    }

    /// A new difficulty: `mining.set_difficulty`, then the current job again under a new id
    /// so that it applies (older jobs keep their targets).
    pub(super) fn apply_difficulty(&mut self, out: &mut Vec<Sv1Action>) {
        let target = self.share_target();
        let difficulty = self.wire_difficulty();
        let Some(m) = self.mining.as_mut() else {
            return; // sent with the first job
        };
        if let Err(e) = m.channel.set_target(target) {
            tracing::warn!(peer = %self.peer, error = %e, "target not applied");
            return;
        }
        let epoch = m.epoch;
        send_method(out, ServerMethod::SetDifficulty(difficulty));
        if let Some(w) = self.work.clone().filter(|w| w.epoch == epoch) {
            self.push_job(&w, false, out);
        }
    }
}

/// The mask miners may roll under `w`.
pub(super) fn upstream_mask(w: &UpstreamWork) -> u32 {
    if w.version_rolling_allowed {
        w.version_mask
    } else {
        0
    }
}

/// The `NewExtendedMiningJob` for `w` on the local channel.
fn build_job(
    w: &UpstreamWork,
    job_id: u32,
    min_ntime: Option<u32>,
    version_rolling_allowed: bool,
) -> Result<NewExtendedMiningJob, String> {
    Ok(NewExtendedMiningJob {
        channel_id: LOCAL_CHANNEL_ID,
        job_id,
        min_ntime,
        version: w.version,
        version_rolling_allowed,
        merkle_path: Seq0_255::new(w.merkle_path.iter().map(|h| U256(*h)).collect())
            .map_err(|e| e.to_string())?,
        coinbase_tx_prefix: B0_64K::new(w.coinbase_prefix.clone()).map_err(|e| e.to_string())?,
        coinbase_tx_suffix: B0_64K::new(w.coinbase_suffix.clone()).map_err(|e| e.to_string())?,
    })
}
