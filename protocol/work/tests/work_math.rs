//! End to end: a regtest template with real transactions becomes a coinbase, an extended job
//! (and a standard job), a share that meets nBits 0x207fffff, and a block that rust-bitcoin
//! accepts (merkle root, witness commitment, proof of work, BIP34 height).

use bitcoin::hashes::{sha256d, Hash};
use bitcoin::{
    absolute::LockTime, consensus, transaction::Version, Block, OutPoint, ScriptBuf, Sequence,
    Transaction, TxIn, TxOut, Txid, Witness,
};
use strata_protocol::mining::{
    NewExtendedMiningJob, NewMiningJob, SetNewPrevHash, SubmitSharesExtended, SubmitSharesStandard,
};
use strata_protocol::template_distribution::NewTemplate;
use strata_protocol::{Seq0_255, B0_255, B0_32, B0_64K, U256};
use strata_work::coinbase::{bip34_height_push, encode_outputs, output, Coinbase, CoinbaseParams};
use strata_work::header::{assemble_block, Header, BIP323_VERSION_MASK};
use strata_work::merkle::{
    coinbase_merkle_root, merkle_path_for_coinbase, merkle_root, witness_commitment,
    witness_commitment_script, witness_merkle_root,
};
use strata_work::target::{hash_meets, Target};

const HEIGHT: u32 = 101;
const REGTEST_BITS: u32 = 0x207f_ffff;

/// Two spends of made-up outpoints: one segwit (P2WPKH-shaped witness), one legacy.
fn template_transactions() -> Vec<Transaction> {
    let segwit = Transaction {
        version: Version::TWO,
        lock_time: LockTime::from_consensus(100),
        input: vec![TxIn {
            previous_output: OutPoint::new(Txid::from_byte_array([0x11; 32]), 0),
            script_sig: ScriptBuf::new(),
            sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
            witness: Witness::from_slice(&[vec![0x30; 71], vec![0x02; 33]]),
        }],
        output: vec![TxOut {
            value: bitcoin::Amount::from_sat(4_999_990_000),
            script_pubkey: ScriptBuf::from_bytes(
                [&[0x00, 0x14][..], &[0x42; 20]].concat(), // P2WPKH
            ),
        }],
    };
    let legacy = Transaction {
        version: Version::ONE,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint::new(Txid::from_byte_array([0x22; 32]), 1),
            script_sig: ScriptBuf::from_bytes(vec![0x51]),
            sequence: Sequence::MAX,
            witness: Witness::new(),
        }],
        output: vec![TxOut {
            value: bitcoin::Amount::from_sat(1_000),
            script_pubkey: ScriptBuf::from_bytes(vec![0x51]),
        }],
    };
    vec![segwit, legacy]
}

struct Fixture {
    txs: Vec<Transaction>,
    template: NewTemplate,
    coinbase: Coinbase,
    prev: SetNewPrevHash,
}

fn fixture() -> Fixture {
    let txs = template_transactions();
    let txids: Vec<[u8; 32]> = txs
        .iter()
        .map(|t| t.compute_txid().to_byte_array())
        .collect();
    let wtxids: Vec<[u8; 32]> = txs
        .iter()
        .map(|t| t.compute_wtxid().to_byte_array())
        .collect();

    // what a Template Provider sends: the witness commitment as the template's output
    let commitment = witness_commitment(&witness_merkle_root(&wtxids), &[0; 32]);
    let commitment_out = output(
        0,
        ScriptBuf::from_bytes(witness_commitment_script(&commitment).to_vec()),
    );
    let path: Vec<U256> = merkle_path_for_coinbase(&txids)
        .into_iter()
        .map(U256)
        .collect();
    let template = NewTemplate {
        template_id: 7,
        future_template: false,
        version: 0x2000_0000,
        coinbase_tx_version: 2,
        coinbase_prefix: B0_255::new(bip34_height_push(HEIGHT)).expect("short"),
        coinbase_tx_input_sequence: 0xffff_fffe,
        coinbase_tx_value_remaining: 50_0000_0000 + 9_000,
        coinbase_tx_outputs_count: 1,
        coinbase_tx_outputs: B0_64K::new(encode_outputs(&[commitment_out])).expect("short"),
        coinbase_tx_locktime: HEIGHT - 1,
        merkle_path: Seq0_255::new(path).expect("few"),
    };

    let payout = output(
        50_0000_0000 + 9_000,
        ScriptBuf::from_bytes([&[0x00, 0x14][..], &[0x77; 20]].concat()),
    );
    // 4 bytes of channel extranonce_prefix + 8 bytes for the miner
    let params = CoinbaseParams::from_template(&template, vec![payout], b"/strata/", 12)
        .expect("template fits");
    let coinbase = Coinbase::build(&params).expect("valid coinbase");

    let mut prev_hash = [0u8; 32];
    prev_hash[..4].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
    let prev = SetNewPrevHash {
        channel_id: 1,
        job_id: 1,
        prev_hash: U256(prev_hash),
        min_ntime: 1_700_000_000,
        nbits: REGTEST_BITS,
    };
    Fixture {
        txs,
        template,
        coinbase,
        prev,
    }
}

fn check_block(f: &Fixture, header: &Header, coinbase_full: &[u8], stripped_coinbase: &[u8]) {
    let tx_bytes: Vec<Vec<u8>> = f.txs.iter().map(consensus::serialize).collect();
    let mut raw = Vec::new();
    assemble_block(&header.to_bytes(), coinbase_full, &tx_bytes, &mut raw);

    let block: Block = consensus::deserialize(&raw).expect("block deserializes");
    assert_eq!(
        consensus::serialize(&block),
        raw,
        "round trips byte for byte"
    );
    assert_eq!(block.txdata.len(), 3);
    assert!(block.check_merkle_root(), "merkle root");
    assert!(block.check_witness_commitment(), "witness commitment");
    let target =
        bitcoin::Target::from_compact(bitcoin::CompactTarget::from_consensus(REGTEST_BITS));
    let hash = block.header.validate_pow(target).expect("proof of work");
    assert_eq!(hash.to_byte_array(), header.hash());
    assert_eq!(
        block.bip34_block_height().expect("BIP34"),
        u64::from(HEIGHT)
    );

    // the coinbase txid is SHA256d of the stripped prefix ‖ extranonce ‖ suffix
    // (docs/spec-notes.md §5)
    let cb = &block.txdata[0];
    assert!(cb.is_coinbase());
    assert_eq!(
        cb.compute_txid().to_byte_array(),
        sha256d::Hash::hash(stripped_coinbase).to_byte_array()
    );
    assert_ne!(
        cb.compute_wtxid().to_byte_array(),
        cb.compute_txid().to_byte_array()
    );
    assert_eq!(
        cb.input[0].sequence.0,
        f.template.coinbase_tx_input_sequence
    );
    assert_eq!(
        cb.lock_time.to_consensus_u32(),
        f.template.coinbase_tx_locktime
    );
    assert_eq!(
        cb.output.last().map(|o| o.value.to_sat()),
        Some(0),
        "template output last"
    );

    // and our own merkle root over every txid agrees
    let txids: Vec<[u8; 32]> = block
        .txdata
        .iter()
        .map(|t| t.compute_txid().to_byte_array())
        .collect();
    assert_eq!(merkle_root(&txids), Some(header.merkle_root));
}

#[test]
fn extended_channel_share_becomes_a_valid_block() {
    let f = fixture();
    let job = NewExtendedMiningJob {
        channel_id: 1,
        job_id: 1,
        min_ntime: Some(1_700_000_000),
        version: f.template.version,
        version_rolling_allowed: true,
        merkle_path: f.template.merkle_path.clone(),
        coinbase_tx_prefix: B0_64K::new(f.coinbase.prefix().to_vec()).expect("short"),
        coinbase_tx_suffix: B0_64K::new(f.coinbase.suffix().to_vec()).expect("short"),
    };
    let extranonce_prefix = [0x01, 0x02, 0x03, 0x04];
    let miner_extranonce = [0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7];
    let target = Target::from_compact(REGTEST_BITS).expect("regtest bits");

    // grind: regtest's target passes about one hash in two
    let mut found = None;
    for nonce in 0..1_000u32 {
        let share = SubmitSharesExtended {
            channel_id: 1,
            sequence_number: nonce,
            job_id: 1,
            nonce,
            ntime: 1_700_000_005,
            version: 0x2000_0000 | 0x0001_e000, // rolled general purpose bits
            extranonce: B0_32::new(&miner_extranonce).expect("short"),
        };
        let header = Header::from_extended_share(&job, &f.prev, &extranonce_prefix, &share)
            .expect("version ok");
        if hash_meets(&header.hash(), &target) {
            found = Some(header);
            break;
        }
    }
    let header = found.expect("a regtest share within 1000 nonces");
    assert_eq!(header.version & !BIP323_VERSION_MASK, 0x2000_0000);
    assert_eq!(
        header.merkle_root,
        coinbase_merkle_root(
            f.coinbase.prefix(),
            &[&extranonce_prefix, &miner_extranonce],
            f.coinbase.suffix(),
            f.template.merkle_path.iter().map(U256::as_bytes),
        )
    );

    let parts: [&[u8]; 2] = [&extranonce_prefix, &miner_extranonce];
    let mut full = Vec::new();
    f.coinbase
        .write_full(&parts, &mut full)
        .expect("extranonce fits");
    let stripped = [
        job.coinbase_tx_prefix.as_slice(),
        &extranonce_prefix,
        &miner_extranonce,
        job.coinbase_tx_suffix.as_slice(),
    ]
    .concat();
    check_block(&f, &header, &full, &stripped);
}

#[test]
fn standard_channel_share_becomes_a_valid_block() {
    let f = fixture();
    // a standard channel's extranonce_prefix fills the whole extranonce (spec 5.1.2.1)
    let extranonce_prefix = [0x5a; 12];
    let job = NewMiningJob {
        channel_id: 2,
        job_id: 9,
        min_ntime: Some(1_700_000_000),
        version: f.template.version,
        merkle_root: U256(coinbase_merkle_root(
            f.coinbase.prefix(),
            &[&extranonce_prefix],
            f.coinbase.suffix(),
            f.template.merkle_path.iter().map(U256::as_bytes),
        )),
    };
    let target = Target::from_compact(REGTEST_BITS).expect("regtest bits");
    let header = (0..1_000u32)
        .map(|nonce| {
            let share = SubmitSharesStandard {
                channel_id: 2,
                sequence_number: nonce,
                job_id: 9,
                nonce,
                ntime: 1_700_000_001,
                version: 0x2000_0000,
            };
            Header::from_standard_share(&job, &f.prev, &share, BIP323_VERSION_MASK)
                .expect("version ok")
        })
        .find(|h| h.meets(&target))
        .expect("a regtest share within 1000 nonces");

    let mut full = Vec::new();
    f.coinbase
        .write_full(&[&extranonce_prefix], &mut full)
        .expect("extranonce fits");
    let mut stripped = Vec::new();
    f.coinbase
        .write_stripped(&[&extranonce_prefix], &mut stripped)
        .expect("extranonce fits");
    check_block(&f, &header, &full, &stripped);
}

#[test]
fn share_with_foreign_version_bits_is_rejected() {
    let f = fixture();
    let job = NewExtendedMiningJob {
        channel_id: 1,
        job_id: 1,
        min_ntime: None,
        version: 0x2000_0000,
        version_rolling_allowed: false,
        merkle_path: f.template.merkle_path.clone(),
        coinbase_tx_prefix: B0_64K::new(f.coinbase.prefix().to_vec()).expect("short"),
        coinbase_tx_suffix: B0_64K::new(f.coinbase.suffix().to_vec()).expect("short"),
    };
    let share = SubmitSharesExtended {
        channel_id: 1,
        sequence_number: 0,
        job_id: 1,
        nonce: 0,
        ntime: 0,
        version: 0x2000_2000,
        extranonce: B0_32::new(&[0; 8]).expect("short"),
    };
    let err = Header::from_extended_share(&job, &f.prev, &[0; 4], &share).expect_err("no rolling");
    assert_eq!(err.changed, 0x2000);
}
