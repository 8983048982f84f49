//! What the pool's messages do: setup answers, extensions, channel opens and refusals,
//! jobs, prevhashes, targets, prefixes and groups (share answers are in `work_and_shares.rs`,
//! custom-job answers in `custom.rs`).

use super::*;

impl UpstreamSession {
    /// Handles one message from the pool. An error ends the session.
    pub fn on_message(
        &mut self,
        msg: Message,
        now: Instant,
        out: &mut Vec<Action>,
    ) -> Result<(), SessionError> {
        let name = msg.name();
        if matches!(self.state, State::Idle | State::Closed) {
            return Err(SessionError::Protocol {
                reason: format!("{name} on a session that is not running"),
            });
        }
        match msg {
            Message::Common(c) => self.on_common(c, now, out),
            Message::Extensions(e) => {
                self.on_extensions(e);
                Ok(())
            }
            Message::Mining(mm) => self.on_mining(mm, now, out),
            _ => Err(SessionError::Protocol {
                reason: format!("unexpected {name} on a mining connection"),
            }),
        }
    }

    fn on_common(
        &mut self,
        c: CommonMessage,
        _now: Instant,
        out: &mut Vec<Action>,
    ) -> Result<(), SessionError> {
        match (self.state, c) {
            (State::AwaitSetup, CommonMessage::SetupConnectionSuccess(s)) => {
                if s.used_version != 2 {
                    return Err(SessionError::Protocol {
                        reason: format!("pool chose protocol version {}", s.used_version),
                    });
                }
                if s.flags & m::REQUIRES_FIXED_VERSION != 0 {
                    self.fixed_version = true;
                    tracing::warn!(
                        "pool requires a fixed version: miners will not roll version bits"
                    );
                }
                self.state = State::AwaitChannel;
                if self.cfg.request_worker_identity {
                    send(
                        out,
                        RequestExtensions {
                            request_id: EXTENSIONS_REQUEST_ID,
                            requested_extensions: vec![EXTENSION_WORKER_HASHRATE]
                                .try_into()
                                .unwrap_or_default(),
                        },
                    );
                }
                self.open_missing(out);
                Ok(())
            }
            (State::AwaitSetup, CommonMessage::SetupConnectionError(e)) => {
                Err(SessionError::SetupRefused {
                    code: e.error_code.as_str().to_string(),
                    flags: e.flags,
                })
            }
            (_, CommonMessage::Reconnect(r)) => Err(SessionError::Reconnect {
                host: r.new_host.as_str().to_string(),
                port: r.new_port,
            }),
            (_, CommonMessage::ChannelEndpointChanged(c)) => {
                tracing::info!(
                    channel = c.channel_id,
                    "pool says the channel endpoint changed"
                );
                Ok(())
            }
            (state, other) => Err(SessionError::Protocol {
                reason: format!("unexpected {} in state {state:?}", other.name()),
            }),
        }
    }

    fn on_extensions(&mut self, e: ExtensionsMessage) {
        match e {
            ExtensionsMessage::RequestExtensionsSuccess(s) => {
                self.worker_tlv = s
                    .supported_extensions
                    .iter()
                    .any(|&x| x == EXTENSION_WORKER_HASHRATE);
                tracing::debug!(granted = self.worker_tlv, "extension 0x0002 negotiated");
            }
            ExtensionsMessage::RequestExtensionsError(e) => {
                self.worker_tlv = false;
                tracing::info!(
                    unsupported = ?e.unsupported_extensions.as_slice(),
                    "pool refused extension 0x0002: shares go without worker names"
                );
            }
            other => tracing::debug!(message = other.name(), "ignored extension message"),
        }
    }

    fn channel_err(message: &'static str) -> impl FnOnce(ChannelError) -> SessionError {
        move |source| SessionError::Channel { message, source }
    }

    fn on_mining(
        &mut self,
        mm: MiningMessage,
        now: Instant,
        out: &mut Vec<Action>,
    ) -> Result<(), SessionError> {
        if self.state == State::AwaitSetup {
            return Err(SessionError::Protocol {
                reason: format!("unexpected {} before SetupConnection.Success", mm.name()),
            });
        }
        match mm {
            MiningMessage::OpenExtendedMiningChannelSuccess(s) => {
                let index = self.answered(s.request_id, "OpenExtendedMiningChannel.Success")?;
                self.on_opened(index, &s, now, out)
            }
            MiningMessage::OpenMiningChannelError(e) => {
                let index = self.answered(e.request_id, "OpenMiningChannel.Error")?;
                let code = e.error_code.as_str().to_string();
                if index == 0 {
                    return Err(SessionError::ChannelRefused { code });
                }
                tracing::warn!(
                    channel = index,
                    %code,
                    "pool refused a further channel: its miners get no work"
                );
                self.chans[index] = Chan::Refused;
                out.push(Action::ChannelRefused {
                    channel: index,
                    code,
                });
                Ok(())
            }
            _ if self.state == State::AwaitChannel
                && self.chans.iter().all(|c| !matches!(c, Chan::Open(_))) =>
            {
                Err(SessionError::Protocol {
                    reason: format!("unexpected {} before the channel opened", mm.name()),
                })
            }
            MiningMessage::NewExtendedMiningJob(j) => {
                let members = self.addressed(j.channel_id);
                if members.is_empty() {
                    tracing::debug!(channel = j.channel_id, "job for another channel ignored");
                    return Ok(());
                }
                let active = j.min_ntime.is_some();
                self.channels
                    .on_new_extended_mining_job(&j)
                    .map_err(Self::channel_err("NewExtendedMiningJob"))?;
                if active {
                    for i in members {
                        self.emit_work(i, false, out);
                    }
                }
                Ok(())
            }
            MiningMessage::SetNewPrevHash(p) => {
                let members = self.addressed(p.channel_id);
                if members.is_empty() {
                    return Ok(());
                }
                self.channels
                    .on_set_new_prev_hash(&p)
                    .map_err(Self::channel_err("SetNewPrevHash"))?;
                for i in members {
                    self.emit_work(i, true, out);
                }
                Ok(())
            }
            MiningMessage::SetTarget(t) => {
                let members = self.addressed(t.channel_id);
                if members.is_empty() {
                    return Ok(());
                }
                // kept in the channel state only: it applies to the jobs activated after it
                // (spec 5.3.21), whose work carries it as `upstream_target`
                self.channels
                    .on_set_target(&t)
                    .map_err(Self::channel_err("SetTarget"))?;
                Ok(())
            }
            MiningMessage::SetExtranoncePrefix(p) => {
                let Some(channel) = self.index_of(p.channel_id) else {
                    return Ok(());
                };
                self.channels
                    .on_set_extranonce_prefix(&p)
                    .map_err(Self::channel_err("SetExtranoncePrefix"))?;
                out.push(Action::ExtranoncePrefix {
                    channel,
                    prefix: Bytes::copy_from_slice(p.extranonce_prefix.as_slice()),
                });
                Ok(())
            }
            MiningMessage::SetGroupChannel(g) => {
                // only our channels matter (a group may name channels of other connections)
                let ours: Vec<u32> = g
                    .channel_ids
                    .iter()
                    .copied()
                    .filter(|&c| self.index_of(c).is_some())
                    .collect();
                if ours.is_empty() {
                    return Ok(());
                }
                let msg = m::SetGroupChannel {
                    group_channel_id: g.group_channel_id,
                    channel_ids: ours.try_into().map_err(|_| SessionError::Protocol {
                        reason: "SetGroupChannel with too many channels".into(),
                    })?,
                };
                self.channels
                    .on_set_group_channel(&msg)
                    .map_err(Self::channel_err("SetGroupChannel"))?;
                tracing::debug!(
                    group = g.group_channel_id,
                    members = ?self.addressed(g.group_channel_id),
                    "pool grouped our channels"
                );
                Ok(())
            }
            MiningMessage::SubmitSharesSuccess(s) => {
                if let Some(i) = self.index_of(s.channel_id) {
                    self.on_success(i, s.last_sequence_number, s.new_submits_accepted_count, out);
                }
                Ok(())
            }
            MiningMessage::SubmitSharesError(e) => {
                if let Some(i) = self.index_of(e.channel_id) {
                    self.on_share_error(i, e.sequence_number, e.error_code.as_str(), out);
                }
                Ok(())
            }
            MiningMessage::CloseChannel(c) => {
                if !self.addressed(c.channel_id).is_empty() {
                    return Err(SessionError::ChannelClosed {
                        reason: c.reason_code.as_str().to_string(),
                    });
                }
                Ok(())
            }
            MiningMessage::UpdateChannelError(e) => {
                tracing::warn!(
                    channel = e.channel_id,
                    code = e.error_code.as_str(),
                    "pool refused UpdateChannel"
                );
                Ok(())
            }
            MiningMessage::SetCustomMiningJobSuccess(s) => {
                self.on_custom_job_answer(s.channel_id, s.request_id, Ok(s.job_id), out);
                Ok(())
            }
            MiningMessage::SetCustomMiningJobError(e) => {
                let code = e.error_code.as_str().to_string();
                self.on_custom_job_answer(e.channel_id, e.request_id, Err(code), out);
                Ok(())
            }
            MiningMessage::NewMiningJob(j) => {
                // extended channels take extended jobs only; a standard job cannot be split
                tracing::warn!(
                    channel = j.channel_id,
                    "NewMiningJob on an extended channel ignored"
                );
                Ok(())
            }
            other => Err(SessionError::Protocol {
                reason: format!("unexpected {} from a pool", other.name()),
            }),
        }
    }

    /// The index of the channel still opening that `request_id` answers.
    fn answered(&self, request_id: u32, message: &str) -> Result<usize, SessionError> {
        let index = request_id.wrapping_sub(1) as usize;
        match self.chans.get(index) {
            Some(Chan::Opening) => Ok(index),
            _ => Err(SessionError::Protocol {
                reason: format!("{message} for request {request_id}, which is not pending"),
            }),
        }
    }

    fn on_opened(
        &mut self,
        index: usize,
        s: &m::OpenExtendedMiningChannelSuccess,
        now: Instant,
        out: &mut Vec<Action>,
    ) -> Result<(), SessionError> {
        let size = u8::try_from(s.extranonce_size).map_err(|_| SessionError::Protocol {
            reason: format!(
                "extranonce_size {} does not fit 32 bytes",
                s.extranonce_size
            ),
        })?;
        if s.extranonce_size < self.cfg.min_extranonce_size {
            return Err(SessionError::Protocol {
                reason: format!(
                    "pool granted extranonce_size {} below the {} asked for",
                    s.extranonce_size, self.cfg.min_extranonce_size
                ),
            });
        }
        let target = Target::from_le_bytes(s.target.0);
        let channel = Channel::new_extended(
            s.channel_id,
            s.extranonce_prefix.as_slice(),
            size,
            target,
            ChannelConfig {
                version_mask: if self.fixed_version {
                    0
                } else {
                    ChannelConfig::default().version_mask
                },
                ..ChannelConfig::default()
            },
        )
        .map_err(Self::channel_err("OpenExtendedMiningChannel.Success"))?;
        self.channels
            .insert(channel)
            .map_err(Self::channel_err("OpenExtendedMiningChannel.Success"))?;
        if s.group_channel_id != 0 && s.group_channel_id != s.channel_id {
            let full = s.extranonce_prefix.as_slice().len() + usize::from(size);
            let _ = self.channels.create_group(s.group_channel_id, Some(full));
            self.channels
                .add_to_group(s.group_channel_id, s.channel_id)
                .map_err(Self::channel_err("OpenExtendedMiningChannel.Success"))?;
        }
        self.chans[index] = Chan::Open(OpenChan {
            channel_id: s.channel_id,
            work_job: None,
            custom_job: false,
            next_sequence: 0,
            pending: VecDeque::new(),
        });
        if index == 0 {
            self.state = State::Open;
            self.opened = Some(now);
        }
        out.push(Action::Opened(ChannelInfo {
            index,
            channel_id: s.channel_id,
            extranonce_prefix: Bytes::copy_from_slice(s.extranonce_prefix.as_slice()),
            extranonce_size: s.extranonce_size,
            target,
            group_channel_id: s.group_channel_id,
        }));
        Ok(())
    }
}
