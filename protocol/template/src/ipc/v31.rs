//! Bitcoin Core 31's `Mining` and `BlockTemplate` calls (`schema/mining.capnp`).

use std::future::Future;

use super::generated::init_capnp::init;
use super::generated::mining_capnp::{block_template, mining};
use super::worker::{call_error, timed, Threads};
use super::{template_from_parts, BlockCheck, CheckOptions, CoinbaseParts};
use crate::{SourceError, Template};

/// `Init.makeMining` (@3); `Ok(None)` when the node does not know it (an older Core).
pub(super) async fn make_mining(
    threads: &Threads,
    init: &init::Client,
) -> Result<Option<mining::Client>, SourceError> {
    let mut request = init.make_mining_request();
    request
        .get()
        .init_context()
        .set_thread(threads.calls.clone());
    let call = "Init.makeMining";
    timed(threads.config.request_timeout, call, async {
        let answer = match request.send().promise.await {
            Ok(answer) => answer,
            Err(e) if e.kind == capnp::ErrorKind::Unimplemented => return Ok(None),
            Err(e) => return Err(call_error(call, e)),
        };
        answer
            .get()
            .and_then(|r| r.get_result())
            .map(Some)
            .map_err(|e| call_error(call, e))
    })
    .await
}

/// `Mining.isTestChain`: false on mainnet only.
pub(super) async fn is_test_chain(
    threads: &Threads,
    mining: &mining::Client,
) -> Result<bool, SourceError> {
    let mut request = mining.is_test_chain_request();
    request
        .get()
        .init_context()
        .set_thread(threads.calls.clone());
    let call = "Mining.isTestChain";
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
        let mut params = request.get();
        params
            .reborrow()
            .init_context()
            .set_thread(threads.calls.clone());
        params.set_cooldown(config.cooldown);
        let mut options = params.init_options();
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

/// `BlockTemplate.waitNext` on `template`: `Some` new template (new tip or fees up), or
/// `None` after the wait's timeout.
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
            .set_thread(threads.waits.clone());
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

/// `BlockTemplate.interruptWait` (it runs on the node's event loop, not on a server thread).
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

/// `getBlockHeader`, `getCoinbaseTx`, `getCoinbaseMerklePath`, `getTxFees`: the four
/// requests go out together, two on the calls thread and two on the reads thread, which the
/// node runs side by side (sending each only after the last answer cost about 0.5 ms more
/// per new tip on regtest).
pub(super) async fn read_template(
    threads: &Threads,
    client: &block_template::Client,
) -> Result<(Template, Vec<u8>), SourceError> {
    let header = {
        let mut request = client.get_block_header_request();
        request
            .get()
            .init_context()
            .set_thread(threads.calls.clone());
        request.send().promise
    };
    let coinbase = {
        let mut request = client.get_coinbase_tx_request();
        request
            .get()
            .init_context()
            .set_thread(threads.reads.clone());
        request.send().promise
    };
    let merkle_path = {
        let mut request = client.get_coinbase_merkle_path_request();
        request
            .get()
            .init_context()
            .set_thread(threads.calls.clone());
        request.send().promise
    };
    let fees = {
        let mut request = client.get_tx_fees_request();
        request
            .get()
            .init_context()
            .set_thread(threads.reads.clone());
        request.send().promise
    };

    let header = {
        let call = "BlockTemplate.getBlockHeader";
        let answer = header.await.map_err(|e| call_error(call, e))?;
        answer
            .get()
            .and_then(|r| r.get_result())
            .map(<[u8]>::to_vec)
            .map_err(|e| call_error(call, e))?
    };
    let coinbase = {
        let call = "BlockTemplate.getCoinbaseTx";
        let answer = coinbase.await.map_err(|e| call_error(call, e))?;
        let read = || -> capnp::Result<CoinbaseParts> {
            let tx = answer.get()?.get_result()?;
            Ok(CoinbaseParts {
                version: tx.get_version(),
                sequence: tx.get_sequence(),
                script_sig_prefix: tx.get_script_sig_prefix()?.to_vec(),
                witness: tx.get_witness()?.to_vec(),
                block_reward_remaining: tx.get_block_reward_remaining(),
                required_outputs: tx
                    .get_required_outputs()?
                    .iter()
                    .map(|o| o.map(<[u8]>::to_vec))
                    .collect::<capnp::Result<_>>()?,
                lock_time: tx.get_lock_time(),
            })
        };
        read().map_err(|e| call_error(call, e))?
    };
    let merkle_path = {
        let call = "BlockTemplate.getCoinbaseMerklePath";
        let answer = merkle_path.await.map_err(|e| call_error(call, e))?;
        let read = || -> capnp::Result<Vec<Vec<u8>>> {
            answer
                .get()?
                .get_result()?
                .iter()
                .map(|h| h.map(<[u8]>::to_vec))
                .collect()
        };
        read().map_err(|e| call_error(call, e))?
    };
    let tx_count = {
        let call = "BlockTemplate.getTxFees";
        let answer = fees.await.map_err(|e| call_error(call, e))?;
        answer
            .get()
            .and_then(|r| r.get_result())
            .map(|fees| fees.len() as usize)
            .map_err(|e| call_error(call, e))?
    };
    let template = template_from_parts(&header, &coinbase, &merkle_path, tx_count)?;
    Ok((template, header))
}

/// `BlockTemplate.submitSolution`.
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
            .set_thread(threads.calls.clone());
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

/// `BlockTemplate.getBlock`: the template's block (with Core's own coinbase).
pub(super) async fn get_block(
    threads: &Threads,
    client: &block_template::Client,
) -> Result<Vec<u8>, SourceError> {
    let mut request = client.get_block_request();
    request
        .get()
        .init_context()
        .set_thread(threads.calls.clone());
    let call = "BlockTemplate.getBlock";
    timed(threads.config.request_timeout, call, async {
        let answer = request
            .send()
            .promise
            .await
            .map_err(|e| call_error(call, e))?;
        answer
            .get()
            .and_then(|r| r.get_result())
            .map(<[u8]>::to_vec)
            .map_err(|e| call_error(call, e))
    })
    .await
}

/// `Mining.checkBlock`.
pub(super) async fn check_block(
    threads: &Threads,
    mining: &mining::Client,
    block: &[u8],
    options: CheckOptions,
) -> Result<BlockCheck, SourceError> {
    let mut request = mining.check_block_request();
    {
        let mut params = request.get();
        params
            .reborrow()
            .init_context()
            .set_thread(threads.calls.clone());
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
