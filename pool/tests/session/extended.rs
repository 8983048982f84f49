//! Extended channels: shares with their own extranonce.

use super::*;

#[test]
fn extended_channel_share_with_its_extranonce() {
    let clock = Clock::new();
    let mut s = session(false);
    let mut ev = vec![];
    s.on_work(work(1, template(1, 101, 0xaa)), clock.now(), &mut ev);
    s.on_message(setup(0), &[], clock.now(), &mut ev);
    s.on_message(
        OpenExtendedMiningChannel {
            request_id: 9,
            user_identity: Str0_255::new("proxy").unwrap(),
            nominal_hash_rate: 0.0,
            max_target: U256([0xff; 32]),
            min_extranonce_size: 8,
        }
        .into(),
        &[],
        clock.now(),
        &mut ev,
    );
    ev.drain(..1);
    assert_eq!(
        names(&ev),
        [
            "OpenExtendedMiningChannel.Success",
            "NewExtendedMiningJob",
            "SetNewPrevHash"
        ]
    );
    let msgs = sent(&ev);
    let Message::Mining(MiningMessage::OpenExtendedMiningChannelSuccess(ok)) = &msgs[0] else {
        panic!()
    };
    assert_eq!(ok.extranonce_size, 10, "16-byte extranonce, 6-byte prefix");
    let Message::Mining(MiningMessage::NewExtendedMiningJob(job)) = &msgs[1] else {
        panic!()
    };
    let Message::Mining(MiningMessage::SetNewPrevHash(prev)) = &msgs[2] else {
        panic!()
    };
    // the miner's side: coinbase prefix ‖ channel prefix ‖ its extranonce ‖ suffix
    let extranonce = [5u8; 10];
    let mut cb = job.coinbase_tx_prefix.as_slice().to_vec();
    cb.extend_from_slice(ok.extranonce_prefix.as_slice());
    cb.extend_from_slice(&extranonce);
    cb.extend_from_slice(job.coinbase_tx_suffix.as_slice());
    let txid = bitcoin::hashes::sha256d::Hash::hash(&cb).to_byte_array();
    let mut h = Header {
        version: job.version,
        prev_hash: prev.prev_hash.0,
        merkle_root: txid,
        ntime: prev.min_ntime,
        nbits: prev.nbits,
        nonce: 0,
    };
    let target = Target::from_compact(REGTEST_BITS).unwrap();
    while !h.meets(&target) {
        h.nonce += 1;
    }
    ev.clear();
    s.on_message(
        SubmitSharesExtended {
            channel_id: ok.channel_id,
            sequence_number: 1,
            job_id: job.job_id,
            nonce: h.nonce,
            ntime: h.ntime,
            version: h.version,
            extranonce: B0_32::new(&extranonce).unwrap(),
        }
        .into(),
        &[],
        clock.now(),
        &mut ev,
    );
    let found = ev
        .iter()
        .find_map(|e| match e {
            Event::Block(f) => Some(f.clone()),
            _ => None,
        })
        .expect("block candidate");
    let mut raw = found.solution.header.to_vec();
    raw.push(1);
    raw.extend_from_slice(&found.solution.coinbase);
    let b: Block = deserialize(&raw).unwrap();
    assert!(b.check_merkle_root() && b.check_witness_commitment());

    // a wrong extranonce size is refused with the spec's code
    ev.clear();
    s.on_message(
        SubmitSharesExtended {
            channel_id: ok.channel_id,
            sequence_number: 2,
            job_id: job.job_id,
            nonce: h.nonce,
            ntime: h.ntime,
            version: h.version,
            extranonce: B0_32::new(&[1, 2, 3]).unwrap(),
        }
        .into(),
        &[],
        clock.now(),
        &mut ev,
    );
    let msgs = sent(&ev);
    let Message::Mining(MiningMessage::SubmitSharesError(e)) = &msgs[0] else {
        panic!()
    };
    assert_eq!(e.error_code.as_str(), "bad-extranonce-size");
}
