//! Group channels and the channels of one connection ([`Channels`]).

use strata_protocol::mining::{
    NewExtendedMiningJob, NewMiningJob, SetExtranoncePrefix, SetGroupChannel, SetNewPrevHash,
    SetTarget, UpdateChannel,
};

use super::*;
use crate::target::Target;

/// A group channel (spec 5.2.3): channels of one connection addressed together by extended
/// jobs, `SetNewPrevHash` and `SetTarget`. All members have the same full extranonce size
/// (docs/spec-notes.md §9).
#[derive(Debug, Clone)]
pub struct GroupChannel {
    id: u32,
    members: Vec<u32>,
    full_extranonce_size: Option<usize>,
    next_job_id: u32,
}

impl GroupChannel {
    /// The group id.
    pub fn id(&self) -> u32 {
        self.id
    }
    /// Member channel ids.
    pub fn members(&self) -> &[u32] {
        &self.members
    }
    /// The full extranonce size of the members (set by the group or its first member).
    pub fn full_extranonce_size(&self) -> Option<usize> {
        self.full_extranonce_size
    }
}

/// The channels and group channels of one connection, by id (one namespace, spec 5.2.3).
#[derive(Debug, Clone, Default)]
pub struct Channels {
    channels: IdMap<Channel>,
    groups: IdMap<GroupChannel>,
}

impl Channels {
    /// No channels.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a channel.
    pub fn insert(&mut self, channel: Channel) -> Result<&mut Channel, ChannelError> {
        let id = channel.id;
        if self.channels.contains_key(&id) || self.groups.contains_key(&id) {
            return Err(ChannelError::ChannelIdInUse { channel_id: id });
        }
        Ok(self.channels.entry(id).or_insert(channel))
    }

    /// A channel by id.
    #[inline]
    pub fn get(&self, channel_id: u32) -> Option<&Channel> {
        self.channels.get(&channel_id)
    }

    /// A channel by id, mutably.
    #[inline]
    pub fn get_mut(&mut self, channel_id: u32) -> Option<&mut Channel> {
        self.channels.get_mut(&channel_id)
    }

    /// A group by id.
    pub fn group(&self, group_id: u32) -> Option<&GroupChannel> {
        self.groups.get(&group_id)
    }

    /// Number of (non-group) channels.
    pub fn len(&self) -> usize {
        self.channels.len()
    }

    /// Whether there are no channels.
    pub fn is_empty(&self) -> bool {
        self.channels.is_empty()
    }

    /// Closes a channel, or a group and all its members (spec 5.3.9); returns the ids of the
    /// channels removed.
    pub fn close(&mut self, channel_id: u32) -> Vec<u32> {
        if let Some(g) = self.groups.remove(&channel_id) {
            for m in &g.members {
                self.channels.remove(m);
            }
            return g.members;
        }
        match self.channels.remove(&channel_id) {
            Some(c) => {
                if let Some(g) = c.group_id.and_then(|g| self.groups.get_mut(&g)) {
                    g.members.retain(|&m| m != channel_id);
                }
                vec![channel_id]
            }
            None => vec![],
        }
    }

    /// Creates an empty group; `full_extranonce_size` (if given) is enforced on members.
    pub fn create_group(
        &mut self,
        group_id: u32,
        full_extranonce_size: Option<usize>,
    ) -> Result<(), ChannelError> {
        if self.channels.contains_key(&group_id) || self.groups.contains_key(&group_id) {
            return Err(ChannelError::ChannelIdInUse {
                channel_id: group_id,
            });
        }
        self.groups.insert(
            group_id,
            GroupChannel {
                id: group_id,
                members: vec![],
                full_extranonce_size,
                next_job_id: 1,
            },
        );
        Ok(())
    }

    /// Records a `SetGroupChannel` (spec 5.3.22): moves the channels into the group (created
    /// if needed), out of any other group. All or nothing: every channel must exist and have
    /// the group's full extranonce size.
    pub fn on_set_group_channel(&mut self, msg: &SetGroupChannel) -> Result<(), ChannelError> {
        let gid = msg.group_channel_id;
        if self.channels.contains_key(&gid) {
            return Err(ChannelError::ChannelIdInUse { channel_id: gid });
        }
        let mut size = self.groups.get(&gid).and_then(|g| g.full_extranonce_size);
        for &cid in msg.channel_ids.iter() {
            let c = self
                .channels
                .get(&cid)
                .ok_or(ChannelError::UnknownChannel { channel_id: cid })?;
            let got = c.full_extranonce_size();
            match size {
                Some(expected) if expected != got => {
                    return Err(ChannelError::ExtranonceSizeMismatch {
                        group_id: gid,
                        channel_id: cid,
                        expected,
                        got,
                    })
                }
                _ => size = Some(got),
            }
        }
        if !self.groups.contains_key(&gid) {
            self.create_group(gid, size)?;
        }
        for &cid in msg.channel_ids.iter() {
            let old = self.channels.get(&cid).and_then(|c| c.group_id);
            if let Some(old) = old.filter(|&o| o != gid) {
                if let Some(g) = self.groups.get_mut(&old) {
                    g.members.retain(|&m| m != cid);
                }
            }
            if let Some(c) = self.channels.get_mut(&cid) {
                c.group_id = Some(gid);
            }
            if let Some(g) = self.groups.get_mut(&gid) {
                g.full_extranonce_size = size;
                if !g.members.contains(&cid) {
                    g.members.push(cid);
                }
            }
        }
        Ok(())
    }

    /// Adds one channel to a group (see [`on_set_group_channel`](Self::on_set_group_channel)).
    pub fn add_to_group(&mut self, group_id: u32, channel_id: u32) -> Result<(), ChannelError> {
        let msg = SetGroupChannel {
            group_channel_id: group_id,
            channel_ids: vec![channel_id]
                .try_into()
                .map_err(|_| ChannelError::UnknownChannel { channel_id })?,
        };
        self.on_set_group_channel(&msg)
    }

    /// A fresh job id for a job about to be sent to `channel_id`, a channel or a group: for
    /// a group it is not in use on any member.
    pub fn next_job_id(&mut self, channel_id: u32) -> Result<u32, ChannelError> {
        if let Some(c) = self.channels.get_mut(&channel_id) {
            return Ok(c.next_job_id());
        }
        let g = self
            .groups
            .get_mut(&channel_id)
            .ok_or(ChannelError::UnknownChannel { channel_id })?;
        loop {
            let id = g.next_job_id;
            g.next_job_id = id.checked_add(1).unwrap_or(1);
            if id != 0
                && !g
                    .members
                    .iter()
                    .any(|m| self.channels.get(m).is_some_and(|c| c.job_id_in_use(id)))
            {
                return Ok(id);
            }
        }
    }

    fn targets(&self, channel_id: u32) -> Result<Vec<u32>, ChannelError> {
        if self.channels.contains_key(&channel_id) {
            return Ok(vec![channel_id]);
        }
        self.groups
            .get(&channel_id)
            .map(|g| g.members.clone())
            .ok_or(ChannelError::UnknownChannel { channel_id })
    }

    /// Records a `NewMiningJob` on its channel.
    pub fn on_new_mining_job(&mut self, msg: &NewMiningJob) -> Result<(), ChannelError> {
        self.channels
            .get_mut(&msg.channel_id)
            .ok_or(ChannelError::UnknownChannel {
                channel_id: msg.channel_id,
            })?
            .on_new_mining_job(msg)
    }

    /// Records a `NewExtendedMiningJob` on an extended channel, or on every member of a
    /// group (standard members get the merkle root of their extranonce prefix). A job sent to
    /// a standard channel directly is refused. Members are all checked for a free job id
    /// first, so the job lands on all of them or on none.
    pub fn on_new_extended_mining_job(
        &mut self,
        msg: &NewExtendedMiningJob,
    ) -> Result<(), ChannelError> {
        let work = ExtendedWork::from_job(msg);
        if let Some(c) = self.channels.get_mut(&msg.channel_id) {
            if c.kind == ChannelKind::Standard {
                return Err(ChannelError::WrongChannelKind {
                    channel_id: c.id,
                    expected: "extended",
                });
            }
            return c.on_extended_work(msg, work);
        }
        let members = self.targets(msg.channel_id)?;
        for m in &members {
            let c = self
                .channels
                .get(m)
                .ok_or(ChannelError::UnknownChannel { channel_id: *m })?;
            c.check_new_job_id(msg.job_id)?;
            if let Some(t) = msg.min_ntime {
                let prev = c.prev.ok_or(ChannelError::NoPrevHash {
                    channel_id: *m,
                    job_id: msg.job_id,
                })?;
                if t < prev.min_ntime {
                    return Err(ChannelError::MinNtimeBelowPrevHash {
                        job_id: msg.job_id,
                        min_ntime: t,
                        prev_min_ntime: prev.min_ntime,
                    });
                }
            }
        }
        for m in &members {
            if let Some(c) = self.channels.get_mut(m) {
                c.on_extended_work(msg, work.clone())?;
            }
        }
        Ok(())
    }

    /// Records a `SetNewPrevHash` on a channel or every member of a group. For a group, every
    /// member must hold the job as a future job; otherwise nothing changes.
    pub fn on_set_new_prev_hash(&mut self, msg: &SetNewPrevHash) -> Result<(), ChannelError> {
        let members = self.targets(msg.channel_id)?;
        for m in &members {
            let c = self
                .channels
                .get(m)
                .ok_or(ChannelError::UnknownChannel { channel_id: *m })?;
            if c.future_job(msg.job_id).is_none() {
                return Err(if c.job(msg.job_id).is_some() {
                    ChannelError::NotAFutureJob {
                        channel_id: *m,
                        job_id: msg.job_id,
                    }
                } else {
                    ChannelError::UnknownJob {
                        channel_id: *m,
                        job_id: msg.job_id,
                    }
                });
            }
        }
        Target::from_compact(msg.nbits)
            .map_err(|_| ChannelError::InvalidNbits { nbits: msg.nbits })?;
        for m in &members {
            if let Some(c) = self.channels.get_mut(m) {
                c.on_set_new_prev_hash(msg)?;
            }
        }
        Ok(())
    }

    /// Records a `SetTarget` on a channel or every member of a group.
    pub fn on_set_target(&mut self, msg: &SetTarget) -> Result<(), ChannelError> {
        let target = Target::from_le_bytes(msg.maximum_target.0);
        if target == Target::ZERO {
            return Err(ChannelError::ZeroTarget);
        }
        for m in self.targets(msg.channel_id)? {
            if let Some(c) = self.channels.get_mut(&m) {
                c.set_target(target)?;
            }
        }
        Ok(())
    }

    /// Records a `SetExtranoncePrefix` (not for groups, spec 5.3.10); a member of a group must
    /// keep the group's full extranonce size.
    pub fn on_set_extranonce_prefix(
        &mut self,
        msg: &SetExtranoncePrefix,
    ) -> Result<(), ChannelError> {
        let c = self
            .channels
            .get_mut(&msg.channel_id)
            .ok_or(ChannelError::UnknownChannel {
                channel_id: msg.channel_id,
            })?;
        if let Some(gid) = c.group_id {
            let expected = self.groups.get(&gid).and_then(|g| g.full_extranonce_size);
            let got = c.full_extranonce_size() - c.extranonce_prefix.as_slice().len()
                + msg.extranonce_prefix.as_slice().len();
            if let Some(expected) = expected.filter(|&e| e != got) {
                return Err(ChannelError::ExtranonceSizeMismatch {
                    group_id: gid,
                    channel_id: msg.channel_id,
                    expected,
                    got,
                });
            }
        }
        c.on_set_extranonce_prefix(msg)
    }

    /// Handles an `UpdateChannel` (see [`Channel::update_channel`]).
    pub fn update_channel(
        &mut self,
        msg: &UpdateChannel,
    ) -> Result<Option<SetTarget>, ChannelError> {
        self.channels
            .get_mut(&msg.channel_id)
            .ok_or(ChannelError::UnknownChannel {
                channel_id: msg.channel_id,
            })?
            .update_channel(msg)
    }

    /// Iterates over the channels.
    pub fn iter(&self) -> impl Iterator<Item = &Channel> + '_ {
        self.channels.values()
    }
}
