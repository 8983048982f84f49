//! The SQLite ledger's share log: where a group commit's shares are made durable before
//! they are acknowledged, with one write and one `fdatasync` of a small file, instead of an
//! SQLite transaction (its WAL frames, its checkpoints) per group. The shares go into the
//! `shares` table later, many groups per transaction ([`Store`](super::sqlite::Store)
//! decides when); the log is rewound once SQLite holds every share in it durably.
//!
//! ```text
//!  offset 0                                   end            size
//!  | record | record | ... | record |         | zeros or older records (ignored) |
//!  record = len u32 | checksum u64 (FNV-1a of len and payload) | payload (len bytes)
//!  payload = id i64 | connection_id u64 | channel_id u32 | job_id u32 | sequence u32 |
//!            height u32 | difficulty f64 | hash [32] | time_ms i64 | block u8 |
//!            worker (len u32, utf-8) | channel_identity (len u32, utf-8)      all little-endian
//! ```
//!
//! Reading it back (at open, after a crash) stops at the first record that is cut short,
//! fails its checksum, or does not carry the id after its predecessor's: a torn last write
//! (never acknowledged: acknowledgement waits for the write and its sync) or the older
//! records a rewound log writes over. The file is written ahead with zeros, so that a
//! group's write overwrites blocks the file already has and its `fdatasync` flushes data
//! only, no file size.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{LedgerError, ShareRecord};

/// The size the log is written ahead to, and grows by.
const CHUNK: u64 = 4 << 20;
/// Bytes before a record's payload: its length and checksum.
const RECORD_HEADER: usize = 4 + 8;
/// The fixed part of a payload: id up to `block`, and the two string lengths.
const FIXED_PAYLOAD: usize = 8 + 8 + 4 * 4 + 8 + 32 + 8 + 1 + 4 + 4;
/// The largest payload read back (a worker label is at most a few hundred bytes).
const MAX_PAYLOAD: usize = 64 * 1024;

/// The log file of an SQLite ledger at `db`: beside it, `<db>-shares`.
pub(super) fn path_for(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-shares");
    PathBuf::from(name)
}

/// A record's checksum: FNV-1a (64 bits) of its length and payload. It finds torn and
/// stale records, not tampering.
fn checksum(len: u32, payload: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in len.to_le_bytes().iter().chain(payload) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The append-only share log (one owner: the ledger thread).
#[derive(Debug)]
pub(super) struct ShareLog {
    file: File,
    path: PathBuf,
    /// Where the next write goes: every record before it is durable.
    end: u64,
    /// How far the file is written (zeros past the records).
    size: u64,
    /// `fdatasync` after each write (`synchronous = full`); without it a write survives a
    /// crash of the process, not of the machine.
    sync: bool,
    /// Records appended since the last write.
    buf: Vec<u8>,
}

impl ShareLog {
    /// Opens (creating) the log and reads back the shares it holds, in id order.
    pub(super) fn open(
        path: &Path,
        sync: bool,
    ) -> Result<(ShareLog, Vec<(i64, ShareRecord)>), LedgerError> {
        let io = |source: std::io::Error| LedgerError::Io {
            path: path.to_path_buf(),
            source: Arc::new(source),
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io)?;
        let size = file.metadata().map_err(io)?.len();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut &file, &mut bytes).map_err(io)?;
        let shares = read_records(&bytes);
        let mut log = ShareLog {
            file,
            path: path.to_path_buf(),
            end: 0,
            size,
            sync,
            buf: Vec::with_capacity(16 * 1024),
        };
        log.ensure(CHUNK)?;
        Ok((log, shares))
    }

    fn io_error(&self, source: std::io::Error) -> LedgerError {
        LedgerError::Io {
            path: self.path.clone(),
            source: Arc::new(source),
        }
    }

    /// Makes the file at least `size` bytes long, written with zeros, and syncs it (its
    /// size changes here, never in a group's write).
    fn ensure(&mut self, size: u64) -> Result<(), LedgerError> {
        if self.size >= size {
            return Ok(());
        }
        let target = size.div_ceil(CHUNK) * CHUNK;
        let zeros = vec![0u8; 64 * 1024];
        let mut at = self.size;
        while at < target {
            let n = zeros
                .len()
                .min(usize::try_from(target - at).unwrap_or(usize::MAX));
            self.file
                .write_all_at(&zeros[..n], at)
                .map_err(|e| self.io_error(e))?;
            at += n as u64;
        }
        self.file.sync_all().map_err(|e| self.io_error(e))?;
        self.size = target;
        Ok(())
    }

    /// Appends a share (in memory until [`write`](Self::write)).
    pub(super) fn append(&mut self, id: i64, s: &ShareRecord, time_ms: i64) {
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0; RECORD_HEADER]);
        let b = &mut self.buf;
        b.extend_from_slice(&id.to_le_bytes());
        b.extend_from_slice(&s.connection_id.to_le_bytes());
        b.extend_from_slice(&s.channel_id.to_le_bytes());
        b.extend_from_slice(&s.job_id.to_le_bytes());
        b.extend_from_slice(&s.sequence_number.to_le_bytes());
        b.extend_from_slice(&s.height.to_le_bytes());
        b.extend_from_slice(&s.difficulty.to_le_bytes());
        b.extend_from_slice(&s.hash);
        b.extend_from_slice(&time_ms.to_le_bytes());
        b.push(u8::from(s.block));
        for text in [&s.worker, &s.channel_identity] {
            // a label longer than u32::MAX bytes cannot come out of a 16 MiB frame
            b.extend_from_slice(&(text.len() as u32).to_le_bytes());
            b.extend_from_slice(text.as_bytes());
        }
        let len = (b.len() - start - RECORD_HEADER) as u32;
        b[start..start + 4].copy_from_slice(&len.to_le_bytes());
        let sum = checksum(len, &b[start + RECORD_HEADER..]);
        b[start + 4..start + RECORD_HEADER].copy_from_slice(&sum.to_le_bytes());
    }

    /// Drops what was appended since the last [`write`](Self::write).
    pub(super) fn discard(&mut self) {
        self.buf.clear();
    }

    /// Writes what was appended (and syncs it, unless `synchronous = normal`): once this
    /// returns `Ok`, those shares survive a crash. On an error nothing counts as written;
    /// the next write goes to the same place.
    pub(super) fn write(&mut self) -> Result<(), LedgerError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let res = self.write_buffered();
        self.buf.clear();
        res
    }

    fn write_buffered(&mut self) -> Result<(), LedgerError> {
        let len = self.buf.len() as u64;
        self.ensure(self.end + len)?;
        self.file
            .write_all_at(&self.buf, self.end)
            .map_err(|e| self.io_error(e))?;
        if self.sync {
            self.file.sync_data().map_err(|e| self.io_error(e))?;
        }
        self.end += len;
        Ok(())
    }

    /// Bytes of records written since the log was last rewound.
    pub(super) fn len(&self) -> u64 {
        self.end
    }

    /// Starts over at the beginning of the file: call only once SQLite holds every share
    /// written so far durably. The next records overwrite the old ones; reading back stops
    /// at the first old one (its id does not follow).
    pub(super) fn rewind(&mut self) {
        self.end = 0;
    }
}

/// The records at the start of `bytes`, up to the first that is cut short, fails its
/// checksum or does not follow its predecessor's id.
fn read_records(bytes: &[u8]) -> Vec<(i64, ShareRecord)> {
    let mut out: Vec<(i64, ShareRecord)> = Vec::new();
    let mut at = 0usize;
    while let Some((id, share, next)) = read_record(bytes, at) {
        if out.last().is_some_and(|(last, _)| id != last + 1) {
            break;
        }
        out.push((id, share));
        at = next;
    }
    out
}

fn read_record(bytes: &[u8], at: usize) -> Option<(i64, ShareRecord, usize)> {
    let header = bytes.get(at..at.checked_add(RECORD_HEADER)?)?;
    let len = u32::from_le_bytes(header[..4].try_into().ok()?) as usize;
    if !(FIXED_PAYLOAD..=MAX_PAYLOAD).contains(&len) {
        return None;
    }
    let sum = u64::from_le_bytes(header[4..].try_into().ok()?);
    let start = at + RECORD_HEADER;
    let payload = bytes.get(start..start + len)?;
    if checksum(len as u32, payload) != sum {
        return None;
    }
    let mut r = Fields(payload);
    let id = r.i64()?;
    let connection_id = r.u64()?;
    let channel_id = r.u32()?;
    let job_id = r.u32()?;
    let sequence_number = r.u32()?;
    let height = r.u32()?;
    let difficulty = f64::from_le_bytes(r.take(8)?.try_into().ok()?);
    let hash: [u8; 32] = r.take(32)?.try_into().ok()?;
    let time_ms = u64::try_from(r.i64()?).ok()?;
    let block = r.take(1)?[0] != 0;
    let worker = r.text()?;
    let channel_identity = r.text()?;
    if !r.0.is_empty() {
        return None;
    }
    let share = ShareRecord {
        worker,
        channel_identity,
        connection_id,
        channel_id,
        job_id,
        sequence_number,
        height,
        difficulty,
        hash,
        time_ms,
        block,
    };
    Some((id, share, start + len))
}

/// A cursor over a payload's fields.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn i64(&mut self) -> Option<i64> {
        Some(i64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn text(&mut self) -> Option<String> {
        let len = self.u32()? as usize;
        String::from_utf8(self.take(len)?.to_vec()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share(n: u32) -> ShareRecord {
        ShareRecord {
            worker: format!("bcrt1qexample.rig{n}"),
            channel_identity: "bcrt1qexample".into(),
            connection_id: u64::from(n) << 40,
            channel_id: n,
            job_id: n + 1,
            sequence_number: n + 2,
            height: 100 + n,
            difficulty: f64::from(n) / 3.0,
            hash: [n as u8; 32],
            time_ms: 1_700_000_000_000 + u64::from(n),
            block: n.is_multiple_of(2),
        }
    }

    fn append(log: &mut ShareLog, id: i64) {
        let s = share(id as u32);
        log.append(id, &s, s.time_ms as i64);
    }

    fn ids(path: &Path) -> Vec<i64> {
        let (_, read) = ShareLog::open(path, false).unwrap();
        read.iter().map(|(id, _)| *id).collect()
    }

    #[test]
    fn written_shares_read_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let (mut log, read) = ShareLog::open(&path, true).unwrap();
        assert!(read.is_empty());
        for id in 1..=3 {
            append(&mut log, id);
        }
        log.write().unwrap();
        // appended, not written: not there
        append(&mut log, 4);
        drop(log);
        let (_, read) = ShareLog::open(&path, true).unwrap();
        let want: Vec<(i64, ShareRecord)> = (1..=3).map(|id| (id, share(id as u32))).collect();
        assert_eq!(read, want);
    }

    #[test]
    fn a_discarded_append_is_not_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let (mut log, _) = ShareLog::open(&path, false).unwrap();
        append(&mut log, 1);
        log.write().unwrap();
        append(&mut log, 2);
        log.discard();
        append(&mut log, 2);
        log.write().unwrap();
        assert_eq!(ids(&path), vec![1, 2]);
        append(&mut log, 3);
        log.discard();
        log.write().unwrap();
        assert_eq!(ids(&path), vec![1, 2]);
    }

    #[test]
    fn reading_stops_at_a_torn_record_and_at_older_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let (mut log, _) = ShareLog::open(&path, false).unwrap();
        for id in 1..=5 {
            append(&mut log, id);
            log.write().unwrap();
        }
        // rewound: new records over the old ones; reading stops where the old ones resume
        log.rewind();
        for id in 6..=7 {
            append(&mut log, id);
        }
        log.write().unwrap();
        assert_eq!(ids(&path), vec![6, 7]);
        // a torn third record: one byte of it changed
        let end = log.len();
        append(&mut log, 8);
        log.write().unwrap();
        assert_eq!(ids(&path), vec![6, 7, 8]);
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.write_all_at(&[0xff], end + 30).unwrap();
        assert_eq!(ids(&path), vec![6, 7]);
        // zeros: nothing
        file.write_all_at(&[0; 8], 0).unwrap();
        assert!(ids(&path).is_empty());
    }

    #[test]
    fn the_log_grows_past_its_first_chunk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let (mut log, _) = ShareLog::open(&path, false).unwrap();
        let mut id = 0;
        while log.len() < CHUNK + 1000 {
            id += 1;
            append(&mut log, id);
            if id % 1000 == 0 {
                log.write().unwrap();
            }
        }
        log.write().unwrap();
        assert_eq!(ids(&path).len() as i64, id);
    }
}
