//! Bitcoin Core 30's `Mining` and `BlockTemplate` calls (`schema/v30/mining.capnp`).
//!
//! What differs from Core 31: `Init.makeMining` is ordinal 2; `createNewBlock` and
//! `checkBlock` take no thread context (the node runs them on its event loop);
//! `getCoinbaseTx` returns Core's whole dummy coinbase, serialized, and the witness
//! commitment comes from `getCoinbaseCommitment` (see [`coinbase_parts`]); the
//! `BlockTemplate` ordinals after 5 are shifted by the two commitment methods.
//!
//! The threads come from the shared `proxy.capnp` (`ThreadMap` is the same in both), so the
//! Core 31 thread handles are re-typed as Core 30 ones (same capability).

use std::future::Future;

use bitcoin::consensus;
use bitcoin::{Amount, ScriptBuf, Transaction, TxOut};

use super::generated::v30::init_capnp::init;
use super::generated::v30::mining_capnp::{block_template, mining};
use super::generated::v30::proxy_capnp::thread;
use super::worker::{call_error, timed, Threads};
use super::{template_from_parts, BlockCheck, CheckOptions, CoinbaseParts};
use crate::{SourceError, Template};

/// A Core 31 thread handle as the Core 30 schema's type (the same capability).
fn thread_of(t: &super::generated::proxy_capnp::thread::Client) -> thread::Client {
    thread::Client {
        client: t.client.clone(),
    }
}

/// `Init.makeMining` (@2 in Core 30) on the node's `Init`.
pub(super) async fn make_mining(
    threads: &Threads,
    init: &super::generated::init_capnp::init::Client,
) -> Result<mining::Client, SourceError> {
    let init = init::Client {
        client: init.client.clone(),
    };
    let mut request = init.make_mining_request();
    request
        .get()
        .init_context()
        .set_thread(thread_of(&threads.calls));
    let call = "Init.makeMining (Core 30)";
    timed(threads.config.request_timeout, call, async {
        let answer = request
            .send()
            .promise
            .await
            .map_err(|e| call_error(call, e))?;
        answer
            .get()
            .and_then(|r| r.get_result())
            .map_err(|e| call_error(call, e))
    })
    .await
}

/// `Mining.isTestChain` (Core 30): false on mainnet only.
pub(super) async fn is_test_chain(
    threads: &Threads,
    mining: &mining::Client,
) -> Result<bool, SourceError> {
    let mut request = mining.is_test_chain_request();
    request
        .get()
        .init_context()
        .set_thread(thread_of(&threads.calls));
    let call = "Mining.isTestChain (Core 30)";
    timed(threads.config.request_timeout, call, async {
        let answer = request
            .send()
            .promise
            .await
            .map_err(|e| call_error(call, e))?;
        answer
            .get()
            .map(|r| r.get_result())
            .map_err(|e| call_error(call, e))
    })
    .await
}

/// `Mining.createNewBlock` with the pool's coinbase needs.
pub(super) async fn create_new_block(
    threads: &Threads,
    mining: &mining::Client,
) -> Result<block_template::Client, SourceError> {
    let config = &threads.config;
    let mut request = mining.create_new_block_request();
    {
        let mut options = request.get().init_options();
        options.set_use_mempool(true);
        options.set_block_reserved_weight(config.block_reserved_weight());
        options.set_coinbase_output_max_additional_sigops(u64::from(
            config.constraints.max_additional_sigops,
        ));
    }
    let call = "Mining.createNewBlock";
    timed(config.request_timeout, call, async {
        let answer = request
            .send()
            .promise
            .await
            .map_err(|e| call_error(call, e))?;
        let results = answer.get().map_err(|e| call_error(call, e))?;
        if !results.has_result() {
            return Err(SourceError::Connection(format!(
                "{call}: no template (the node is shutting down)"
            )));
        }
        results.get_result().map_err(|e| call_error(call, e))
    })
    .await
}

/// `BlockTemplate.waitNext` (@10): `Some` new template, or `None` after the timeout.
pub(super) fn wait_next(
    threads: &Threads,
    template: &block_template::Client,
) -> impl Future<Output = Result<Option<block_template::Client>, SourceError>> + 'static {
    let config = &threads.config;
    let mut request = template.wait_next_request();
    {
        let mut params = request.get();
        params
            .reborrow()
            .init_context()
            .set_thread(thread_of(&threads.waits));
        let mut options = params.init_options();
        options.set_timeout(config.wait_timeout.as_secs_f64() * 1000.0);
        options.set_fee_threshold(i64::try_from(config.fee_threshold).unwrap_or(i64::MAX));
    }
    let limit = threads.wait_limit();
    let call = "BlockTemplate.waitNext";
    timed(limit, call, async move {
        let answer = request
            .send()
            .promise
            .await
            .map_err(|e| call_error(call, e))?;
        let results = answer.get().map_err(|e| call_error(call, e))?;
        if !results.has_result() {
            return Ok(None);
        }
        results
            .get_result()
            .map(Some)
            .map_err(|e| call_error(call, e))
    })
}

/// `BlockTemplate.interruptWait` (@11).
pub(super) fn interrupt(
    threads: &Threads,
    template: &block_template::Client,
) -> impl Future<Output = ()> + 'static {
    let request = template.interrupt_wait_request();
    let limit = threads.config.request_timeout;
    async move {
        let _ = tokio::time::timeout(limit, request.send().promise).await;
    }
}

/// Sends a `BlockTemplate` getter with the calls thread as context and reads its `result`.
macro_rules! get {
    ($threads:expr, $client:expr, $request:ident, $call:expr, |$r:ident| $read:expr) => {{
        let mut request = $client.$request();
        request
            .get()
            .init_context()
            .set_thread(thread_of(&$threads.calls));
        let answer = request
            .send()
            .promise
            .await
            .map_err(|e| call_error($call, e))?;
        let read = || -> capnp::Result<_> {
            let $r = answer.get()?;
            $read
        };
        read().map_err(|e| call_error($call, e))?
    }};
}

/// `getBlockHeader`, `getCoinbaseTx`, `getCoinbaseCommitment`, `getCoinbaseMerklePath`,
/// `getTxFees`.
pub(super) async fn read_template(
    threads: &Threads,
    client: &block_template::Client,
) -> Result<(Template, Vec<u8>), SourceError> {
    let header: Vec<u8> = get!(
        threads,
        client,
        get_block_header_request,
        "BlockTemplate.getBlockHeader",
        |r| Ok(r.get_result()?.to_vec())
    );
    let coinbase: Vec<u8> = get!(
        threads,
        client,
        get_coinbase_tx_request,
        "BlockTemplate.getCoinbaseTx",
        |r| Ok(r.get_result()?.to_vec())
    );
    let commitment: Vec<u8> = get!(
        threads,
        client,
        get_coinbase_commitment_request,
        "BlockTemplate.getCoinbaseCommitment",
        |r| Ok(r.get_result()?.to_vec())
    );
    let merkle_path: Vec<Vec<u8>> = get!(
        threads,
        client,
        get_coinbase_merkle_path_request,
        "BlockTemplate.getCoinbaseMerklePath",
        |r| r
            .get_result()?
            .iter()
            .map(|h| h.map(<[u8]>::to_vec))
            .collect()
    );
    let tx_count: usize = get!(
        threads,
        client,
        get_tx_fees_request,
        "BlockTemplate.getTxFees",
        |r| Ok(r.get_result()?.len() as usize)
    );
    let parts = coinbase_parts(&coinbase, &commitment)?;
    let template = template_from_parts(&header, &parts, &merkle_path, tx_count)?;
    Ok((template, header))
}

/// Core 30's coinbase answer as Core 31's `CoinbaseTx`: version, sequence, lock time from the
/// dummy coinbase; the scriptSig prefix is its first push (the BIP34 height); the reward is
/// what its outputs pay (Core pays it all to one output); the witness reserved value is its
/// input's single witness item; the required output is the commitment script
/// (`getCoinbaseCommitment`, empty when there is none) at 0 sat.
pub(super) fn coinbase_parts(
    raw_coinbase: &[u8],
    commitment: &[u8],
) -> Result<CoinbaseParts, SourceError> {
    let bad = |what: &str| SourceError::Protocol(format!("Core 30 coinbase: {what}"));
    let tx: Transaction =
        consensus::deserialize(raw_coinbase).map_err(|e| bad(&format!("does not decode: {e}")))?;
    let [input] = tx.input.as_slice() else {
        return Err(bad("not exactly one input"));
    };
    let script_sig = input.script_sig.as_bytes();
    let prefix_len = match script_sig.first() {
        Some(0x51..=0x60) => 1,
        Some(&n @ 1..=75) => 1 + usize::from(n),
        _ => return Err(bad("scriptSig does not start with a height push")),
    };
    let script_sig_prefix = script_sig
        .get(..prefix_len)
        .ok_or_else(|| bad("scriptSig push is truncated"))?
        .to_vec();
    let witness = match input.witness.len() {
        0 => Vec::new(),
        1 => input.witness.to_vec().concat(),
        _ => return Err(bad("more than one witness item")),
    };
    let reward = tx
        .output
        .iter()
        .try_fold(Amount::ZERO, |sum, o| sum.checked_add(o.value))
        .ok_or_else(|| bad("outputs overflow"))?;
    let block_reward_remaining =
        i64::try_from(reward.to_sat()).map_err(|_| bad("reward out of range"))?;
    let required_outputs = if commitment.is_empty() {
        Vec::new()
    } else {
        vec![consensus::serialize(&TxOut {
            value: Amount::ZERO,
            script_pubkey: ScriptBuf::from_bytes(commitment.to_vec()),
        })]
    };
    Ok(CoinbaseParts {
        version: u32::from_le_bytes(tx.version.0.to_le_bytes()),
        sequence: input.sequence.0,
        script_sig_prefix,
        witness,
        block_reward_remaining,
        required_outputs,
        lock_time: tx.lock_time.to_consensus_u32(),
    })
}

/// `BlockTemplate.submitSolution` (@9).
pub(super) async fn submit_solution(
    threads: &Threads,
    client: &block_template::Client,
    (version, timestamp, nonce): (u32, u32, u32),
    coinbase: &[u8],
) -> Result<bool, SourceError> {
    let mut request = client.submit_solution_request();
    {
        let mut params = request.get();
        params
            .reborrow()
            .init_context()
            .set_thread(thread_of(&threads.calls));
        params.set_version(version);
        params.set_timestamp(timestamp);
        params.set_nonce(nonce);
        params.set_coinbase(coinbase);
    }
    let call = "BlockTemplate.submitSolution";
    timed(threads.config.request_timeout, call, async {
        let answer = request
            .send()
            .promise
            .await
            .map_err(|e| call_error(call, e))?;
        answer
            .get()
            .map(|r| r.get_result())
            .map_err(|e| call_error(call, e))
    })
    .await
}

/// `BlockTemplate.getBlock`.
pub(super) async fn get_block(
    threads: &Threads,
    client: &block_template::Client,
) -> Result<Vec<u8>, SourceError> {
    let call = "BlockTemplate.getBlock";
    timed(threads.config.request_timeout, call, async {
        Ok(get!(threads, client, get_block_request, call, |r| Ok(r
            .get_result()?
            .to_vec())))
    })
    .await
}

/// `Mining.checkBlock` (no thread context in Core 30).
pub(super) async fn check_block(
    threads: &Threads,
    mining: &mining::Client,
    block: &[u8],
    options: CheckOptions,
) -> Result<BlockCheck, SourceError> {
    let mut request = mining.check_block_request();
    {
        let mut params = request.get();
        params.set_block(block);
        let mut o = params.init_options();
        o.set_check_merkle_root(options.check_merkle_root);
        o.set_check_pow(options.check_pow);
    }
    let call = "Mining.checkBlock";
    timed(threads.config.request_timeout, call, async {
        let answer = request
            .send()
            .promise
            .await
            .map_err(|e| call_error(call, e))?;
        let read = || -> capnp::Result<BlockCheck> {
            let r = answer.get()?;
            let reason = r.get_reason()?.to_string()?;
            let debug = r.get_debug()?.to_string()?;
            Ok(BlockCheck::from_answer(r.get_result(), &reason, &debug))
        };
        read().map_err(|e| call_error(call, e))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::{absolute, transaction, OutPoint, Sequence, TxIn, Witness};

    fn coinbase(script_sig: Vec<u8>, witness: &[&[u8]]) -> Transaction {
        Transaction {
            version: transaction::Version::TWO,
            lock_time: absolute::LockTime::from_consensus(7),
            input: vec![TxIn {
                previous_output: OutPoint::null(),
                script_sig: ScriptBuf::from_bytes(script_sig),
                sequence: Sequence(0xffff_fffe),
                witness: Witness::from_slice(witness),
            }],
            output: vec![TxOut {
                value: Amount::from_sat(5_000_000_000),
                script_pubkey: ScriptBuf::from_bytes(vec![0x51]),
            }],
        }
    }

    #[test]
    fn core_30_coinbases() {
        // height 16 is OP_16, then Core's OP_0; no witness, no commitment
        let raw = consensus::serialize(&coinbase(vec![0x60, 0x00], &[]));
        let parts = coinbase_parts(&raw, &[]).unwrap();
        assert_eq!(parts.script_sig_prefix, vec![0x60]);
        assert!(parts.witness.is_empty() && parts.required_outputs.is_empty());
        assert_eq!(
            (parts.version, parts.sequence, parts.lock_time),
            (2, 0xffff_fffe, 7)
        );
        assert_eq!(parts.block_reward_remaining, 5_000_000_000);

        let raw = consensus::serialize(&coinbase(vec![0x02, 0x2c, 0x01, 0x00], &[&[0; 32]]));
        let parts = coinbase_parts(&raw, &[0x6a, 0x24]).unwrap();
        assert_eq!(parts.script_sig_prefix, vec![0x02, 0x2c, 0x01]);
        assert_eq!(parts.witness, vec![0; 32]);
        assert_eq!(parts.required_outputs.len(), 1);

        for bad in [
            consensus::serialize(&coinbase(vec![], &[])),
            consensus::serialize(&coinbase(vec![0x00], &[])),
            consensus::serialize(&coinbase(vec![0x03, 0x01], &[])),
            consensus::serialize(&coinbase(vec![0x51], &[&[0; 32], &[0; 32]])),
            vec![1, 2, 3],
        ] {
            assert!(
                matches!(coinbase_parts(&bad, &[]), Err(SourceError::Protocol(_))),
                "{}",
                hex::encode(&bad)
            );
        }
    }
}
