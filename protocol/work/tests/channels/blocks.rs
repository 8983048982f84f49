//! Block candidates: shares that meet the network target, and the blocks they assemble.

use super::*;

#[test]
fn block_candidate_on_regtest() {
    let path: Vec<[u8; 32]> = (0..12u8).map(|i| [i; 32]).collect();
    let (mut c, cb) = extended_channel(NBITS_REGTEST, true, &path);
    let extranonce = [7, 7, 7, 7];
    let (r, s) = (0..)
        .find_map(|n| {
            let s = ext_share(9, 1, n, &extranonce);
            validate_extended(&mut c, &s, 0)
                .ok()
                .filter(|r| r.is_block.is_some())
                .map(|r| (r, s))
        })
        .expect("regtest blocks are easy");
    let block = r.is_block.expect("block");
    let network = Target::from_compact(NBITS_REGTEST).expect("valid");
    assert_eq!(block.header.hash(), r.hash);
    assert!(hash_meets(&block.header.hash(), &network));
    assert_eq!(block.header.nonce, s.nonce);
    assert_eq!(block.header.prev_hash, PREV);
    // the merkle root is that of prefix ‖ extranonce_prefix ‖ extranonce ‖ suffix
    let parts = block.coinbase.expect("extended job");
    assert_eq!(
        parts.extranonce.as_slice(),
        &[0xe0, 0xe1, 0xe2, 0xe3, 7, 7, 7, 7]
    );
    let stripped = parts.stripped();
    let tx: bitcoin::Transaction = deserialize(&stripped).expect("a transaction");
    assert_eq!(tx.compute_txid().to_byte_array(), parts.txid());
    assert_eq!(
        merkle_root_from_path(tx.compute_txid().to_byte_array(), path.iter()),
        block.header.merkle_root
    );
    let mut full = vec![];
    cb.write_full(&[parts.extranonce.as_slice()], &mut full)
        .expect("8 bytes");
    assert_eq!(
        deserialize::<bitcoin::Transaction>(&full)
            .expect("full coinbase")
            .compute_txid(),
        tx.compute_txid()
    );
}

#[test]
fn coinbase_only_block_assembles_and_validates() {
    let (mut c, cb) = extended_channel(NBITS_REGTEST, true, &[]);
    let block = (0..)
        .find_map(|n| {
            validate_extended(&mut c, &ext_share(9, 1, n, &[1, 1, 1, 1]), 0)
                .ok()
                .and_then(|r| r.is_block)
        })
        .expect("regtest blocks are easy");
    let parts = block.coinbase.clone().expect("extended");
    let mut full = vec![];
    cb.write_full(&[parts.extranonce.as_slice()], &mut full)
        .expect("8 bytes");
    let bytes = block.assemble::<Vec<u8>>(&full, &[]);
    let b: bitcoin::Block = deserialize(&bytes).expect("a block");
    assert!(b.check_merkle_root());
    assert!(b.check_witness_commitment());
    assert_eq!(b.block_hash().to_byte_array(), block.hash);
    assert!(b.header.validate_pow(b.header.target()).is_ok());
}

#[test]
fn standard_block_candidate_without_coinbase() {
    let mut c = standard_channel(NBITS_REGTEST);
    let r = (0..)
        .find_map(|n| {
            validate_standard(&mut c, &share(7, 1, n), 0)
                .ok()
                .filter(|r| r.is_block.is_some())
        })
        .expect("regtest");
    let b = r.is_block.expect("block");
    assert!(b.coinbase.is_none());
    assert_eq!(b.header.merkle_root, [0xaa; 32]);
}
