//! End to end against a real block: mainnet block 1, expressed as the `mining.notify` a pool
//! would have sent for it plus the miner's `mining.submit`, rebuilt into a header whose
//! double-SHA-256 is the block's hash. This pins the byte order of every field, prevhash's word
//! swap included.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use sha2::{Digest, Sha256};
use strata_sv1::{
    header_prevhash_from_sv1, sv1_prevhash_from_header, ClientMessage, ClientMethod, ServerMessage,
    ServerMethod,
};

fn sha256d(data: &[u8]) -> [u8; 32] {
    Sha256::digest(Sha256::digest(data)).into()
}

/// Block 1's hash as explorers show it.
const BLOCK1_HASH: &str = "00000000839a8e6886ab5951d76f411475428afc90947ee320161bbf18eb6048";
/// Block 0 (genesis), block 1's parent.
const GENESIS_HASH: &str = "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f";
/// Block 1's raw header.
const BLOCK1_HEADER: &str = "010000006fe28c0ab6f1b372c1a6a246ae63f74f931e8365e15a089c68d6190000000000982051fd1e4ba744bbbe680e1fee14677ba1a3c3540bf7b1cdb606e857233e0e61bc6649ffff001d01e36299";
/// Block 1's coinbase transaction, split around a 4-byte extranonce1 and a 2-byte extranonce2
/// inside its scriptSig `04ffff001d0104`.
const COINB1: &str =
    "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff0704";
const EXTRANONCE1: &str = "ffff001d";
const EXTRANONCE2: &str = "0104";
const COINB2: &str = "ffffffff0100f2052a0100000043410496b538e853519c726a2c91e61ec11600ae1390813a627c66fb8be7947be63c52da7589379515d4e0a604f8141781e62294721166bf621e73a82cbf2342c858eeac00000000";

fn explorer_to_internal(s: &str) -> [u8; 32] {
    let mut h: [u8; 32] = hex::decode(s).unwrap().try_into().unwrap();
    h.reverse();
    h
}

#[test]
fn the_header_itself_hashes_to_block_1() {
    let header = hex::decode(BLOCK1_HEADER).unwrap();
    assert_eq!(sha256d(&header), explorer_to_internal(BLOCK1_HASH));
}

#[test]
fn prevhash_wire_form_of_genesis() {
    let internal = explorer_to_internal(GENESIS_HASH);
    let wire = sv1_prevhash_from_header(internal);
    // Explorer hex split in 8-digit words, words reversed.
    let words: Vec<&str> = (0..8)
        .map(|i| &GENESIS_HASH[8 * i..8 * i + 8])
        .rev()
        .collect();
    assert_eq!(hex::encode(wire), words.concat());
    assert_eq!(
        hex::encode(wire),
        "0a8ce26f72b3f1b646a2a6c14ff763ae65831e939c085ae10019d66800000000"
    );
    assert_eq!(header_prevhash_from_sv1(wire), internal);
}

#[test]
fn notify_and_submit_rebuild_block_1() {
    let notify_line = format!(
        "{{\"id\":null,\"method\":\"mining.notify\",\"params\":[\"1\",\"{}\",\"{COINB1}\",\"{COINB2}\",[],\"00000001\",\"1d00ffff\",\"4966bc61\",true]}}",
        hex::encode(sv1_prevhash_from_header(explorer_to_internal(GENESIS_HASH)))
    );
    let submit_line = format!(
        "{{\"params\": [\"satoshi\", \"1\", \"{EXTRANONCE2}\", \"4966bc61\", \"9962e301\"], \"id\": 4, \"method\": \"mining.submit\"}}"
    );
    let Ok(ServerMessage::Request(r)) = ServerMessage::parse_slice(notify_line.as_bytes()) else {
        panic!()
    };
    let ServerMethod::Notify(job) = r.method else {
        panic!()
    };
    let Ok(ClientMessage::Request(r)) = ClientMessage::parse_slice(submit_line.as_bytes()) else {
        panic!()
    };
    let ClientMethod::Submit(share) = r.method else {
        panic!()
    };
    assert_eq!(share.job_id, job.job_id);

    let mut coinbase = job.coinb1.to_vec();
    coinbase.extend(hex::decode(EXTRANONCE1).unwrap());
    coinbase.extend(share.extranonce2.as_bytes());
    coinbase.extend(&job.coinb2[..]);
    let mut root = sha256d(&coinbase);
    for h in &job.merkle_branch {
        root = sha256d(&[root, *h].concat());
    }

    let mut header = Vec::with_capacity(80);
    header.extend(job.version.to_le_bytes());
    header.extend(job.prev_hash);
    header.extend(root);
    header.extend(share.ntime.to_le_bytes());
    header.extend(job.nbits.to_le_bytes());
    header.extend(share.nonce.to_le_bytes());
    assert_eq!(hex::encode(&header), BLOCK1_HEADER);
    assert_eq!(sha256d(&header), explorer_to_internal(BLOCK1_HASH));

    // And our encoder writes the notify back byte for byte.
    let mut out = Vec::new();
    job.encode(&mut out);
    assert_eq!(out, format!("{notify_line}\n").into_bytes());
}
