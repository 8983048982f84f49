//! The SQLite ledger's WAL checkpoints, off the ledger thread: a thread with a connection of
//! its own moves the WAL's pages into the database file when the ledger thread asks (about
//! as often as SQLite's own automatic checkpoint would run) and at least every
//! [`CHECKPOINT_AT_LEAST_EVERY`], so that the thread acknowledgements wait for never copies
//! pages or syncs the database file.

use std::path::Path;
use std::sync::mpsc::{sync_channel, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

use super::LedgerError;

/// The longest the WAL goes without a checkpoint while anything was written (blocks, totals
/// and history between the share imports that ask for one).
const CHECKPOINT_AT_LEAST_EVERY: Duration = Duration::from_secs(30);

/// The thread that checkpoints the WAL (`PRAGMA wal_checkpoint(PASSIVE)`: it never waits
/// for the writer, and the writer never waits for it) when asked ([`Checkpointer::request`])
/// and at least every [`CHECKPOINT_AT_LEAST_EVERY`]; the ledger's own connection has
/// automatic checkpoints off. Stops when dropped.
#[derive(Debug)]
pub(super) struct Checkpointer {
    requests: Option<SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts checkpointing the database at `path` (in WAL mode; its writer's automatic
    /// checkpoints turned off).
    pub(super) fn start(path: &Path) -> Result<Checkpointer, LedgerError> {
        let conn = Connection::open(path).map_err(LedgerError::sqlite("open the database"))?;
        // one request waiting is enough: a checkpoint takes every frame there is
        let (requests, asked) = sync_channel::<()>(1);
        let thread = std::thread::Builder::new()
            .name("strata-ledger-checkpoint".into())
            .spawn(move || loop {
                match asked.recv_timeout(CHECKPOINT_AT_LEAST_EVERY) {
                    Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return,
                }
                if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::warn!(error = %e, "WAL checkpoint failed; tried again later");
                }
            })
            .map_err(|e| LedgerError::Io {
                path: path.to_path_buf(),
                source: Arc::new(e),
            })?;
        Ok(Checkpointer {
            requests: Some(requests),
            thread: Some(thread),
        })
    }

    /// Asks for a checkpoint soon; never waits (a request already waiting covers this one).
    pub(super) fn request(&self) {
        if let Some(requests) = &self.requests {
            let _ = requests.try_send(());
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.requests.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
