//! The SQLite ledger's WAL checkpoints, off the ledger thread: a thread with a connection of
//! its own moves the WAL's pages into the database file once a second, so that the thread
//! acknowledgements wait for never copies pages or syncs the database file.

use std::path::Path;
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

use super::LedgerError;

/// How often the checkpointer moves the WAL's pages into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(1000);

/// The thread that checkpoints the WAL (`PRAGMA wal_checkpoint(PASSIVE)`: it never waits
/// for the writer, and the writer never waits for it) once every [`CHECKPOINT_EVERY`]; the
/// ledger's own connection has automatic checkpoints off. Stops when dropped.
#[derive(Debug)]
pub(super) struct Checkpointer {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts checkpointing the database at `path` (in WAL mode; its writer's automatic
    /// checkpoints turned off).
    pub(super) fn start(path: &Path) -> Result<Checkpointer, LedgerError> {
        let conn = Connection::open(path).map_err(LedgerError::sqlite("open the database"))?;
        let (stop, stopped) = channel::<()>();
        let thread = std::thread::Builder::new()
            .name("strata-ledger-checkpoint".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(CHECKPOINT_EVERY) {
                    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                    {
                        tracing::warn!(error = %e, "WAL checkpoint failed; retried in a second");
                    }
                }
            })
            .map_err(|e| LedgerError::Io {
                path: path.to_path_buf(),
                source: Arc::new(e),
            })?;
        Ok(Checkpointer {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
