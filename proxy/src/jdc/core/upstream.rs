//! The core's upstream side: the pool's channels and their events, the hub's commands.

use super::*;

impl Jdc {
    pub(super) fn on_command(&mut self, c: UpstreamCommand, _now: Instant, out: &mut Vec<Action>) {
        if let UpstreamCommand::Channels(n) = c {
            let old = self.channels;
            if n > old {
                self.channels = n;
                self.ensure_channels(n);
                if self.mode == Mode::Solo {
                    let size = self.cfg.solo_extranonce_size;
                    let target = self.network_target();
                    for c in old..n {
                        out.push(Action::ToHub(UpstreamEvent::ChannelOpened {
                            epoch: self.hub_epoch,
                            channel: c,
                            channel_id: c as u32,
                            extranonce_prefix: solo_prefix(c),
                            extranonce_size: size,
                            target,
                        }));
                        self.publish_solo(c, out);
                    }
                }
            }
        }
        if !matches!(c, UpstreamCommand::SetCustomJob { .. }) {
            out.push(Action::ToUpstream(c));
        }
    }

    pub(super) fn on_upstream(&mut self, ev: UpstreamEvent, now: Instant, out: &mut Vec<Action>) {
        let pool_epoch = self.pool.as_ref().map(|p| p.epoch);
        match ev {
            UpstreamEvent::Active {
                epoch,
                route,
                pool,
                url,
                channel_id,
                extranonce_prefix,
                extranonce_size,
                target,
            } => {
                tracing::info!(%url, epoch, "pool active: declaring custom jobs on it");
                self.ensure_channels(1);
                let mut chans = vec![None; self.pipes.len().max(1)];
                chans[0] = Some(PoolChan {
                    channel_id,
                    prefix: extranonce_prefix,
                    size: extranonce_size,
                    target,
                    version_mask: BIP320_VERSION_MASK,
                });
                self.pool = Some(PoolSide {
                    epoch,
                    route,
                    pool,
                    url,
                    chans,
                });
                for p in &mut self.pipes {
                    *p = Pipe::new();
                }
                if self.mode == Mode::Pool {
                    // another pool: its custom jobs come next; solo until then
                    self.go_solo("the upstream pool changed", out);
                }
            }
            UpstreamEvent::ChannelOpened {
                epoch,
                channel,
                channel_id,
                extranonce_prefix,
                extranonce_size,
                target,
            } if Some(epoch) == pool_epoch => {
                self.ensure_channels(channel + 1);
                let chan = PoolChan {
                    channel_id,
                    prefix: extranonce_prefix.clone(),
                    size: extranonce_size,
                    target,
                    version_mask: BIP320_VERSION_MASK,
                };
                if let Some(p) = self.pool.as_mut() {
                    if p.chans.len() <= channel {
                        p.chans.resize(channel + 1, None);
                    }
                    p.chans[channel] = Some(chan);
                }
                self.pipes[channel] = Pipe::new();
                if self.mode == Mode::Pool {
                    out.push(Action::ToHub(UpstreamEvent::ChannelOpened {
                        epoch: self.hub_epoch,
                        channel,
                        channel_id,
                        extranonce_prefix,
                        extranonce_size,
                        target,
                    }));
                }
            }
            UpstreamEvent::ChannelRefused {
                epoch,
                channel,
                reason,
            } if Some(epoch) == pool_epoch => {
                if let Some(c) = self.pool.as_mut().and_then(|p| p.chans.get_mut(channel)) {
                    *c = None;
                }
                if self.mode == Mode::Pool {
                    out.push(Action::ToHub(UpstreamEvent::ChannelRefused {
                        epoch: self.hub_epoch,
                        channel,
                        reason,
                    }));
                }
            }
            UpstreamEvent::Work { channel, work } if Some(work.epoch) == pool_epoch => {
                // the pool's own job: not mined, but its target and version bits apply to ours
                if let Some(Some(c)) = self.pool.as_mut().and_then(|p| p.chans.get_mut(channel)) {
                    c.target = work.upstream_target;
                    c.version_mask = if work.version_rolling_allowed {
                        work.version_mask
                    } else {
                        0
                    };
                }
                // the pool is on our tip now (its JDS too: it checks against the pool's
                // template): a declaration refused for a stale tip is tried again at once
                let ours = self.template.as_ref().map(|t| t.template.prev_hash);
                if ours == Some(work.prev_hash) {
                    for p in self.pipes.iter_mut().filter(|p| p.retry_at.is_some()) {
                        p.retry_at = Some(now);
                    }
                }
            }
            UpstreamEvent::ExtranoncePrefix {
                epoch,
                channel,
                extranonce_prefix,
            } if Some(epoch) == pool_epoch => {
                if let Some(Some(c)) = self.pool.as_mut().and_then(|p| p.chans.get_mut(channel)) {
                    c.prefix = extranonce_prefix.clone();
                }
                if let Some(p) = self.pipes.get_mut(channel) {
                    // the next job carries the new prefix
                    *p = Pipe::new();
                }
                if self.mode == Mode::Pool {
                    out.push(Action::ToHub(UpstreamEvent::ExtranoncePrefix {
                        epoch: self.hub_epoch,
                        channel,
                        extranonce_prefix,
                    }));
                }
            }
            UpstreamEvent::CustomJob {
                epoch,
                channel,
                request_id,
                result,
            } if Some(epoch) == pool_epoch => {
                self.on_custom_job(channel, request_id, result, now, out);
            }
            UpstreamEvent::ShareResult {
                mut share,
                accepted,
                code,
            } => {
                share.epoch = self.hub_epoch;
                out.push(Action::ToHub(UpstreamEvent::ShareResult {
                    share,
                    accepted,
                    code,
                }));
            }
            UpstreamEvent::Down {
                pool,
                url,
                reason,
                was_active,
            } => {
                let ours = was_active && self.pool.as_ref().is_some_and(|p| p.pool == pool);
                out.push(Action::ToHub(UpstreamEvent::Down {
                    pool,
                    url: url.clone(),
                    reason: reason.clone(),
                    was_active: was_active && self.mode == Mode::Pool,
                }));
                if ours {
                    self.pool = None;
                    for p in &mut self.pipes {
                        *p = Pipe::new();
                    }
                    if self.mode == Mode::Pool {
                        self.last_failure = Some(format!("pool {url} down: {reason}"));
                        self.go_solo(&format!("pool {url} down: {reason}"), out);
                    }
                }
            }
            other => {
                tracing::debug!(event = ?other, "upstream event of an old epoch ignored");
            }
        }
    }
}
