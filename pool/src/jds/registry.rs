//! Declared jobs by token, for the mining side: the JDS connections put what they accept in,
//! a mining connection takes a job out when a `SetCustomMiningJob` names its token. One task
//! owns the [`Registry`] at the edge; nothing else holds it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use super::DeclaredJob;

/// Declared jobs waiting for their `SetCustomMiningJob`, at most `capacity` (a named
/// `[jds]` limit); past it, the job expiring first is dropped.
#[derive(Debug)]
pub struct Registry {
    jobs: HashMap<u64, Arc<DeclaredJob>>,
    capacity: usize,
}

impl Registry {
    /// An empty registry holding at most `capacity` jobs.
    pub fn new(capacity: usize) -> Self {
        Registry {
            jobs: HashMap::new(),
            capacity: capacity.max(1),
        }
    }

    /// Jobs held.
    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    /// Whether no job is held.
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// Adds a declared job (expired ones are dropped first).
    pub fn insert(&mut self, job: Arc<DeclaredJob>, now: Instant) {
        self.jobs.retain(|_, j| j.expires > now);
        while self.jobs.len() >= self.capacity {
            let Some(first) = self
                .jobs
                .values()
                .min_by_key(|j| j.expires)
                .map(|j| j.token)
            else {
                break;
            };
            self.jobs.remove(&first);
        }
        self.jobs.insert(job.token, job);
    }

    /// Takes out the job of `token`: a token opens one custom job, once, before it expires.
    pub fn take(&mut self, token: u64, now: Instant) -> Option<Arc<DeclaredJob>> {
        self.jobs.remove(&token).filter(|j| j.expires > now)
    }
}
