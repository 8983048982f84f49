//! What the pool does with a template and a share that meets (or misses) the block target,
//! for tests that drive a template source directly: the coinbase (the pool's payout first,
//! then the template's outputs), the merkle root from the template's path, a header with a
//! ground nonce.

use bitcoin::ScriptBuf;
use strata_pool::template::{Solution, Template};
use strata_work::coinbase::{output, Coinbase, CoinbaseParams};
use strata_work::header::Header;
use strata_work::merkle::merkle_root_from_path;

/// The miner's extranonce in these solutions.
pub const EXTRANONCE: [u8; 8] = [1, 2, 3, 4, 5, 6, 7, 8];

/// The block of `template` paying `payout`, its header ground until it meets (or, with
/// `meets` false, misses) the template's target.
pub fn solve(template: &Template, payout: ScriptBuf, meets: bool) -> Solution {
    let params = CoinbaseParams {
        version: template.coinbase_tx_version,
        script_sig_prefix: template.coinbase_prefix.clone(),
        pool_tag: b"/strata/".to_vec(),
        extranonce_len: EXTRANONCE.len(),
        sequence: template.coinbase_tx_input_sequence,
        pool_outputs: vec![output(template.coinbase_tx_value_remaining, payout)],
        template_outputs: template.coinbase_tx_outputs.clone(),
        lock_time: template.coinbase_tx_locktime,
        witness_reserved_value: [0; 32],
    };
    let coinbase = Coinbase::build(&params).expect("coinbase");
    let txid = coinbase.txid(&[&EXTRANONCE]).expect("txid");
    let mut full = Vec::new();
    coinbase
        .write_full(&[&EXTRANONCE], &mut full)
        .expect("coinbase bytes");
    let header = Header {
        version: template.version,
        prev_hash: template.prev_hash,
        merkle_root: merkle_root_from_path(txid, &template.merkle_path),
        ntime: template.min_ntime,
        nbits: template.nbits,
        nonce: 0,
    };
    Solution {
        template_id: template.id,
        header: grind(header, meets).to_bytes(),
        coinbase: full,
    }
}

/// The first nonce from `header.nonce` on whose hash meets (or, with `meets` false, misses)
/// the header's own target.
pub fn grind(mut header: Header, meets: bool) -> Header {
    loop {
        let h: bitcoin::block::Header = header.into();
        if h.validate_pow(h.target()).is_ok() == meets {
            return header;
        }
        header.nonce += 1;
    }
}
