//! Blocks from a Bitcoin Core blocks directory (`blk?????.dat`), the way Core stores them:
//! records of network magic (4 bytes), size (u32 little-endian) and the serialized block,
//! the whole file XORed with the 8-byte key in `xor.dat` (Core 28 and later; absent or zero:
//! plain). For an operator whose node has no RPC: the pool's embedded node keeps its chain in
//! `DATA_DIR/regtest/blocks`.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use bitcoin::block::Header;
use bitcoin::{consensus, p2p::Magic, BlockHash};

/// Bitcoin Core's `MAX_BLOCK_SERIALIZED_SIZE`: a record claiming more is not a block.
pub(crate) const MAX_BLOCK_BYTES: u32 = 4_000_000;

/// Length of a block header.
const HEADER_LEN: u32 = 80;

/// A reader that undoes Core's block-file obfuscation: byte `p` of the file is XORed with
/// `key[p % 8]`.
struct XorReader<R> {
    inner: R,
    key: [u8; 8],
    pos: u64,
}

impl<R: Read> Read for XorReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        for b in &mut buf[..n] {
            // pos % 8 < 8
            *b ^= self.key[(self.pos % 8) as usize];
            self.pos += 1;
        }
        Ok(n)
    }
}

impl<R: Seek> Seek for XorReader<R> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.pos = self.inner.seek(to)?;
        Ok(self.pos)
    }
}

/// The obfuscation key of a blocks directory (zero when there is no `xor.dat`).
fn xor_key(dir: &Path) -> Result<[u8; 8]> {
    let path = dir.join("xor.dat");
    match std::fs::read(&path) {
        Ok(bytes) => bytes
            .as_slice()
            .try_into()
            .map_err(|_| anyhow::anyhow!("{} is not 8 bytes", path.display())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok([0; 8]),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// The block files of `dir`, in Core's order.
fn block_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("blk") && n.ends_with(".dat"))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("{} holds no blk*.dat files", dir.display());
    }
    Ok(files)
}

/// The serialized block `hash` from the block files in `dir`, whose records carry `magic`.
pub(crate) fn find_block(dir: &Path, magic: Magic, hash: BlockHash) -> Result<Vec<u8>> {
    let key = xor_key(dir)?;
    for path in block_files(dir)? {
        let file = File::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
        let mut reader = XorReader {
            inner: BufReader::new(file),
            key,
            pos: 0,
        };
        if let Some(block) = scan(&mut reader, magic, hash)
            .with_context(|| format!("cannot read {}", path.display()))?
        {
            return Ok(block);
        }
    }
    bail!("block {hash} is not in {}", dir.display())
}

/// Walks the records of one file; stops at its end or at the first place without a record
/// (Core preallocates block files with zeros).
fn scan<R: Read + Seek>(r: &mut R, magic: Magic, hash: BlockHash) -> io::Result<Option<Vec<u8>>> {
    loop {
        let mut head = [0u8; 8];
        match r.read_exact(&mut head) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e),
        }
        if head[..4] != magic.to_bytes() {
            return Ok(None);
        }
        let size = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        if !(HEADER_LEN..=MAX_BLOCK_BYTES).contains(&size) {
            return Ok(None);
        }
        let mut header = [0u8; HEADER_LEN as usize];
        r.read_exact(&mut header)?;
        let found = consensus::deserialize::<Header>(&header)
            .map(|h| h.block_hash() == hash)
            .unwrap_or(false);
        if found {
            let mut block = header.to_vec();
            block.resize(size as usize, 0);
            r.read_exact(&mut block[HEADER_LEN as usize..])?;
            return Ok(Some(block));
        }
        r.seek(SeekFrom::Current(i64::from(size - HEADER_LEN)))?;
    }
}
