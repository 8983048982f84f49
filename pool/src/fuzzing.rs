//! Fuzzing harness for the pool's connection state machine (the `pool_session` cargo-fuzz
//! target is a shim over [`session`]; its seeds are replayed by `cargo test`).
//!
//! The input is a script: each step is one control byte followed by its argument. Steps feed
//! the [`Session`] SV2 frames (whatever bytes follow, framed or not), new work on the same or
//! a new tip, ledger commits of everything accepted so far, and vardiff ticks. Invariants
//! checked: no panic; nothing comes out after a `Close`; every `SubmitShares.Success`
//! acknowledges only shares the session reported accepted.

pub mod jds;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bitcoin::{Amount, ScriptBuf, TxOut};
use bytes::BytesMut;
use strata_protocol::{FrameDecoder, Message};
use strata_work::coinbase::bip34_height_push;

use crate::payout::Split;
use crate::server::session::{Event, Now, Payouts, PendingAck, Session, SessionConfig, Work};
use crate::template::Template;

fn template(id: u64, prev: u8) -> Template {
    Template {
        id,
        height: 100 + id as u32,
        prev_hash: [prev; 32],
        version: 0x2000_0000,
        nbits: 0x207f_ffff,
        min_ntime: 1_700_000_000,
        coinbase_tx_version: 2,
        coinbase_prefix: bip34_height_push(100 + id as u32),
        coinbase_tx_input_sequence: u32::MAX,
        coinbase_tx_value_remaining: 5_000_000_000,
        coinbase_tx_outputs: vec![],
        coinbase_tx_locktime: 0,
        merkle_path: vec![[prev; 32]; (prev % 4) as usize],
        tx_count: u32::from(prev % 4),
    }
}

fn work(seq: u64, prev: u8) -> Arc<Work> {
    let script = ScriptBuf::from_bytes(vec![0x51, 0x20].into_iter().chain([1u8; 32]).collect());
    Arc::new(Work {
        seq,
        template: Arc::new(template(seq, prev)),
        payouts: Payouts::Shared(Arc::new(Split {
            outputs: vec![TxOut {
                value: Amount::from_sat(5_000_000_000),
                script_pubkey: script,
            }],
            ..Split::default()
        })),
        window: None,
        shared_coinbase: Default::default(),
    })
}

/// Runs one fuzz input through a session.
pub fn session(data: &[u8]) {
    let script = ScriptBuf::from_bytes(vec![0x51, 0x20].into_iter().chain([1u8; 32]).collect());
    let mut s = Session::new(1, Arc::new(SessionConfig::regtest(script)));
    let start = Instant::now();
    let mut now = Now {
        mono: start,
        unix_ms: 1_700_000_000_000,
    };
    let mut seq = 0u64;
    let mut prev = 0u8;
    let mut accepted: Vec<PendingAck> = Vec::new();
    let mut out: Vec<Event> = Vec::new();
    let mut buf = BytesMut::new();
    let mut decoder = FrameDecoder::new(1 << 16);
    let mut closed = false;
    let mut i = 0;
    s.on_work(work(seq, prev), now, &mut out);
    while i < data.len() {
        let op = data[i];
        i += 1;
        match op % 5 {
            0 | 1 => {
                // bytes of the SV2 stream, length-prefixed by one byte
                let n = usize::from(data.get(i).copied().unwrap_or(0));
                i = (i + 1).min(data.len());
                let end = (i + n).min(data.len());
                buf.extend_from_slice(&data[i..end]);
                i = end;
                while let Ok(Some(frame)) = decoder.decode(&mut buf) {
                    if let Ok((msg, tlvs)) =
                        Message::decode_with_tlvs(&frame.header, &frame.payload)
                    {
                        s.on_message(msg, tlvs, now, &mut out);
                    }
                }
            }
            2 => {
                seq += 1;
                if data.get(i).is_some_and(|b| b & 1 == 1) {
                    prev = prev.wrapping_add(1);
                }
                i += 1;
                s.on_work(work(seq, prev), now, &mut out);
            }
            3 => {
                let done = std::mem::take(&mut accepted);
                s.on_committed(&done, &mut out);
                for e in &out {
                    if let Event::Send(Message::Mining(
                        strata_protocol::mining::MiningMessage::SubmitSharesSuccess(ok),
                    )) = e
                    {
                        assert!(
                            done.iter().any(|a| a.channel_id == ok.channel_id
                                && a.sequence_number == ok.last_sequence_number),
                            "acknowledged a share that was not committed"
                        );
                    }
                }
            }
            _ => {
                now.mono += Duration::from_secs(30);
                now.unix_ms += 30_000;
                s.on_tick(now, &mut out);
            }
        }
        for e in out.drain(..) {
            assert!(!closed, "event after Close: {e:?}");
            match e {
                Event::Accepted(b) => accepted.push(b.1),
                Event::Close(_) => closed = true,
                _ => {}
            }
        }
    }
}
