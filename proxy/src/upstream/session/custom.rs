//! Custom jobs (spec 5.3.18): the proxy's Job Declarator Client sets the jobs of its own
//! templates on the session's channels (the connection set `REQUIRES_WORK_SELECTION`, see
//! [`SessionConfig::work_selection`]); the pool's answers come back as
//! [`Action::CustomJob`].

use strata_protocol::mining::SetCustomMiningJob;

use super::*;

impl UpstreamSession {
    /// Sends `job` on channel `channel` (its `channel_id` is filled in). While that channel
    /// is not open the job is answered at once with [`CODE_STALE_UPSTREAM`].
    pub fn set_custom_job(
        &mut self,
        channel: usize,
        mut job: SetCustomMiningJob,
        out: &mut Vec<Action>,
    ) {
        let open = (self.state == State::Open)
            .then(|| self.open_chan(channel))
            .flatten();
        let Some(c) = open else {
            out.push(Action::CustomJob {
                channel,
                request_id: job.request_id,
                result: Err(CODE_STALE_UPSTREAM.into()),
            });
            return;
        };
        job.channel_id = c.channel_id;
        send(out, job);
    }

    /// `SetCustomMiningJob.Success` / `.Error` for the pool's channel `channel_id`.
    pub(super) fn on_custom_job_answer(
        &mut self,
        channel_id: u32,
        request_id: u32,
        result: Result<u32, String>,
        out: &mut Vec<Action>,
    ) {
        match self.index_of(channel_id) {
            Some(channel) => {
                if result.is_ok() {
                    if let Some(c) = self.open_chan_mut(channel) {
                        c.custom_job = true;
                    }
                }
                out.push(Action::CustomJob {
                    channel,
                    request_id,
                    result,
                });
            }
            None => tracing::debug!(channel_id, "custom job answer for another channel ignored"),
        }
    }
}
