//! Where the proxy's work comes from: its upstream channel's job, placed in each channel's
//! slice of the upstream extranonce space (see the module docs of [`super`]).

use std::sync::Arc;

use bytes::Bytes;
use strata_protocol::mining as m;
use strata_protocol::wire::B0_32;
use strata_server::{Admission, ChannelRequest, JobSpec, Placement, PrevHashSpec};
use strata_work::extranonce::MinerId;

use super::{
    Action, JobMeta, JoinState, Place, ProxyChannel, Sv2DownSession,
    REASON_EXTRANONCE_SPACE_EXHAUSTED,
};
use crate::work::UpstreamWork;

/// The full extranonce of channel counter `counter` of `miner` under `work`:
/// `extranonce1(miner) ‖ counter` big-endian in `extranonce2_size` bytes. `None` if the
/// counter does not fit or the result exceeds 32 bytes.
pub fn full_extranonce(work: &UpstreamWork, miner: MinerId, counter: u64) -> Option<Vec<u8>> {
    let size = work.extranonce2_size;
    if size < 8 && counter >> (8 * size) != 0 {
        return None;
    }
    let mut e = work.extranonce1(miner);
    let be = counter.to_be_bytes();
    for i in (0..size).rev() {
        e.push(if i < 8 { be[7 - i] } else { 0 });
    }
    (e.len() <= B0_32::MAX).then_some(e)
}

/// The `extranonce_prefix` of an extended channel with block `block` rolling `size` bytes of
/// `miner`'s space under `work`: `extranonce1(miner) ‖ block ‖ zeros`, the zeros filling what
/// the channel does not roll. `None` when the space has no room for `1 + size` bytes.
pub fn extended_prefix(
    work: &UpstreamWork,
    miner: MinerId,
    block: u8,
    size: u16,
) -> Option<Vec<u8>> {
    let pad = work.extranonce2_size.checked_sub(1 + usize::from(size))?;
    let mut e = work.extranonce1(miner);
    e.push(block);
    e.resize(e.len() + pad, 0);
    (e.len() + usize::from(size) <= B0_32::MAX).then_some(e)
}

/// The first byte of a standard channel's counter in `e2` bytes (`None` for `e2 == 0`).
fn counter_block(counter: u64, e2: usize) -> Option<u8> {
    match e2 {
        0 => None,
        1..=8 => Some((counter >> (8 * (e2 - 1))) as u8),
        _ => Some(0),
    }
}

impl Sv2DownSession {
    /// Opens the channels waiting for the miner id and the first work, if both are there.
    pub(super) fn open_pending(&mut self, out: &mut Vec<Action>) {
        let (JoinState::Joined(miner), Some(work)) = (self.join, self.work.clone()) else {
            return;
        };
        for p in std::mem::take(&mut self.pending) {
            self.open_now(p, miner, &work, out);
        }
    }

    fn places(&self) -> impl Iterator<Item = Place> + '_ {
        self.core.states().map(|(_, s)| s.data.place)
    }

    /// A free place for a new channel in `e2` bytes, or the `OpenMiningChannel.Error` code.
    fn free_place(&self, kind: ChannelRequest, e2: usize) -> Result<Place, &'static str> {
        let blocks: Vec<u8> = self
            .places()
            .filter_map(|p| match p {
                Place::Extended { block, .. } => Some(block),
                Place::Standard(_) => None,
            })
            .collect();
        let counters: Vec<u64> = self
            .places()
            .filter_map(|p| match p {
                Place::Standard(c) => Some(c),
                Place::Extended { .. } => None,
            })
            .collect();
        match kind {
            ChannelRequest::Standard => {
                let mut counter = 0u64;
                while counters.contains(&counter)
                    || counter_block(counter, e2).is_some_and(|b| blocks.contains(&b))
                {
                    counter += 1;
                }
                Ok(Place::Standard(counter))
            }
            ChannelRequest::Extended {
                min_extranonce_size,
            } => {
                let size = e2
                    .checked_sub(1)
                    .filter(|&s| s >= usize::from(min_extranonce_size))
                    .ok_or(m::ERROR_MIN_EXTRANONCE_SIZE_TOO_LARGE)?;
                let taken = |b: u8| {
                    blocks.contains(&b) || counters.iter().any(|&c| counter_block(c, e2) == Some(b))
                };
                let block = (1..=u8::MAX)
                    .find(|&b| !taken(b))
                    .ok_or(m::ERROR_CHANNEL_CAPACITY_EXHAUSTED)?;
                Ok(Place::Extended {
                    block,
                    size: u16::try_from(size).unwrap_or(u16::MAX),
                })
            }
        }
    }

    /// The prefix of a channel at `place` under `work`, `None` when it has no room there.
    fn prefix_at(&self, place: Place, miner: MinerId, work: &UpstreamWork) -> Option<Vec<u8>> {
        match place {
            Place::Standard(counter) => full_extranonce(work, miner, counter),
            Place::Extended { block, size } => {
                let clash = self.places().any(|p| match p {
                    Place::Standard(c) => counter_block(c, work.extranonce2_size) == Some(block),
                    Place::Extended { .. } => false,
                });
                if clash {
                    return None;
                }
                extended_prefix(work, miner, block, size)
            }
        }
    }

    fn open_now(
        &mut self,
        a: Admission,
        miner: MinerId,
        work: &Arc<UpstreamWork>,
        out: &mut Vec<Action>,
    ) {
        let place = match self.free_place(a.kind, work.extranonce2_size) {
            Ok(p) => p,
            Err(code) => return self.core.refuse_open(a.request_id, code, out),
        };
        let Some(prefix) = self.prefix_at(place, miner, work) else {
            return self
                .core
                .refuse_open(a.request_id, m::ERROR_CHANNEL_CAPACITY_EXHAUSTED, out);
        };
        let size = match place {
            Place::Extended { size, .. } => size,
            Place::Standard(_) => 0,
        };
        let mut config = self.cfg.channel;
        config.version_mask = self.version_mask(work);
        let user = a.user.clone();
        let placement = Placement {
            extranonce_prefix: prefix,
            extranonce_size: size,
            floor: work.upstream_target,
            group: false,
            data: ProxyChannel { place, epoch: None },
        };
        let Ok(id) = self.core.open(a, placement, out) else {
            return;
        };
        // the channel's rollable bits follow the upstream's
        let _ = self.core.set_version_mask(id, config.version_mask);
        tracing::info!(peer = %self.peer, channel = id, worker = %user, ?place, "channel opened");
        self.channel_job(id, work, out);
        // its nominal hashrate counts from now on: the hub hears of it at once
        self.early_report = true;
    }

    /// The version bits jobs of `work` let the miner roll.
    fn version_mask(&self, work: &UpstreamWork) -> u32 {
        if work.version_rolling_allowed {
            work.version_mask & self.cfg.channel.version_mask
        } else {
            0
        }
    }

    /// New upstream work (`None`: no usable upstream; shares are refused until work
    /// returns). Every open channel gets a job; waiting opens complete.
    pub fn on_work(&mut self, work: Option<Arc<UpstreamWork>>, out: &mut Vec<Action>) {
        let same = matches!((&self.work, &work), (Some(a), Some(b)) if a.epoch == b.epoch && a.seq == b.seq);
        self.work = work.clone();
        let Some(work) = work else { return };
        if same || !self.core.is_ready() {
            return;
        }
        for id in self.core.channel_ids() {
            self.channel_job(id, &work, out);
        }
        self.open_pending(out);
    }

    /// Builds, records and sends the job of `work` for one channel (with what must precede
    /// it: a rebuilt channel, `SetExtranoncePrefix`, `SetTarget`) and its `SetNewPrevHash`
    /// when it starts a new prevhash or epoch.
    fn channel_job(&mut self, id: u32, work: &UpstreamWork, out: &mut Vec<Action>) {
        let JoinState::Joined(miner) = self.join else {
            return;
        };
        let Some(state) = self.core.state(id) else {
            return;
        };
        let (place, epoch) = (state.data.place, state.data.epoch);
        let Some(prefix) = self.prefix_at(place, miner, work) else {
            // the new upstream's extranonce space has no room for this channel
            self.core
                .close_channel_with(id, REASON_EXTRANONCE_SPACE_EXHAUSTED, out);
            tracing::warn!(peer = %self.peer, channel = id, "channel closed: no extranonce room upstream");
            return;
        };
        let Some(ch) = self.core.channel(id) else {
            return;
        };
        let mut clean = work.clean
            || epoch != Some(work.epoch)
            || ch
                .prev_hash()
                .is_none_or(|p| p.prev_hash != work.prev_hash || p.nbits != work.nbits);
        match self.core.set_version_mask(id, self.version_mask(work)) {
            None => return,
            Some(rebuilt) => clean |= rebuilt,
        }
        if !self.core.set_extranonce_prefix(id, &prefix, out) {
            return;
        }
        if let Some(state) = self.core.state_mut(id) {
            state.floor = work.upstream_target;
            let target = state.clamp(state.vardiff.target());
            let max = state.max_target;
            let current = self.core.channel(id).map_or(target, |c| c.target());
            if current < work.upstream_target || current > max {
                self.core.retarget(id, target, out);
            }
        }
        let min_ntime = if clean {
            None
        } else {
            let prev = self
                .core
                .channel(id)
                .and_then(|c| c.prev_hash())
                .map_or(0, |p| p.min_ntime);
            Some(work.min_ntime.max(prev))
        };
        let spec = JobSpec {
            version: work.version,
            version_rolling_allowed: work.version_rolling_allowed,
            work: work.extended.clone(),
            min_ntime,
        };
        let skip = work.extranonce_prefix.len().min(prefix.len());
        let meta = JobMeta {
            epoch: work.epoch,
            upstream_job_id: work.job_id,
            upstream_target: work.upstream_target,
            extranonce: Bytes::copy_from_slice(&prefix[skip..]),
        };
        let Some(job_id) = self.core.send_job(id, &spec, meta, out) else {
            return;
        };
        if clean {
            let prev = PrevHashSpec {
                prev_hash: work.prev_hash,
                nbits: work.nbits,
                min_ntime: work.min_ntime,
            };
            if !self.core.send_prev_hash(id, job_id, &prev, out) {
                return;
            }
        }
        if let Some(state) = self.core.state_mut(id) {
            state.data.epoch = Some(work.epoch);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_work::channel::ExtendedWork;
    use strata_work::target::Target;

    fn work(prefix: &[u8], id_width: usize, e2: usize) -> UpstreamWork {
        UpstreamWork {
            epoch: 1,
            seq: 1,
            job_id: 1,
            version: 0x2000_0000,
            version_rolling_allowed: true,
            version_mask: 0x1fff_e000,
            prev_hash: [0; 32],
            nbits: 0x1d00_ffff,
            min_ntime: 0,
            coinbase_prefix: Bytes::new(),
            coinbase_suffix: Bytes::new(),
            merkle_path: Arc::from(Vec::new()),
            extended: ExtendedWork::new(Bytes::new(), Bytes::new(), Arc::from(Vec::new())),
            extranonce_prefix: Bytes::copy_from_slice(prefix),
            extranonce_size: u16::try_from(id_width + e2).unwrap_or(u16::MAX),
            id_width,
            extranonce2_size: e2,
            upstream_target: Target::MAX,
            clean: true,
            route: None,
        }
    }

    #[test]
    fn extended_prefixes_pad_to_their_size_and_refuse_what_does_not_fit() {
        let miner = MinerId(0x0102);
        let w = work(&[0xaa], 2, 8);
        // block 3 rolling 7 bytes: the whole space after the block
        assert_eq!(
            extended_prefix(&w, miner, 3, 7),
            Some(vec![0xaa, 0x01, 0x02, 3])
        );
        // rolling 5: two zero bytes keep the upstream's extranonce size
        assert_eq!(
            extended_prefix(&w, miner, 3, 5),
            Some(vec![0xaa, 0x01, 0x02, 3, 0, 0])
        );
        assert_eq!(
            extended_prefix(&w, miner, 3, 8),
            None,
            "no room for the block"
        );
        // the full extranonce never exceeds 32 bytes
        let long = work(&[0xaa; 20], 2, 8);
        assert_eq!(
            extended_prefix(&long, miner, 1, 7).map(|p| p.len()),
            Some(23)
        );
    }

    #[test]
    fn a_standard_counter_sits_in_block_zero_unless_the_space_is_one_byte() {
        assert_eq!(counter_block(0, 8), Some(0));
        assert_eq!(counter_block(255, 8), Some(0));
        assert_eq!(counter_block(0x0100, 2), Some(1));
        assert_eq!(counter_block(7, 1), Some(7));
        assert_eq!(counter_block(0, 0), None);
        assert_eq!(counter_block(1, 12), Some(0));
        // a standard channel's full extranonce starts with its block
        let w = work(&[0xaa], 2, 2);
        let full = full_extranonce(&w, MinerId(1), 0x0105).unwrap();
        assert_eq!(full[3], counter_block(0x0105, 2).unwrap());
    }
}
