//! Who is paid: solo addresses, worker-tagged shares, empty user identities.

use super::*;

#[test]
fn solo_mode_requires_an_address_and_pays_it() {
    let clock = Clock::new();
    let mut s = session(true);
    let mut ev = vec![];
    let mut w = (*work(1, template(1, 101, 0xaa))).clone();
    w.payouts = Payouts::Solo;
    s.on_work(Arc::new(w), clock.now(), &mut ev);
    s.on_message(setup(0), &[], clock.now(), &mut ev);
    ev.clear();
    s.on_message(
        open_standard(1, "not-an-address"),
        &[],
        clock.now(),
        &mut ev,
    );
    let msgs = sent(&ev);
    let Message::Mining(MiningMessage::OpenMiningChannelError(e)) = &msgs[0] else {
        panic!("expected OpenMiningChannel.Error")
    };
    assert_eq!(e.error_code.as_str(), "invalid-user-identity");
    ev.clear();
    let addr = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";
    s.on_message(
        open_standard(2, &format!("{addr}.rig1")),
        &[],
        clock.now(),
        &mut ev,
    );
    let mut miner = Miner::new();
    miner.feed(&sent(&ev));
    let channel = match &sent(&ev)[0] {
        Message::Mining(MiningMessage::OpenStandardMiningChannelSuccess(ok)) => ok.channel_id,
        m => panic!("{}", m.name()),
    };
    ev.clear();
    let share = miner.standard_share(channel, true);
    s.on_message(share.into(), &[], clock.now(), &mut ev);
    let found = ev
        .iter()
        .find_map(|e| match e {
            Event::Block(f) => Some(f.clone()),
            _ => None,
        })
        .expect("block");
    let mut raw = found.solution.header.to_vec();
    raw.push(1);
    raw.extend_from_slice(&found.solution.coinbase);
    let b: Block = deserialize(&raw).unwrap();
    let paid = bitcoin::Address::from_script(
        &b.txdata[0].output[0].script_pubkey,
        bitcoin::Network::Regtest,
    )
    .unwrap();
    assert_eq!(paid.to_string(), addr);
}

#[test]
fn worker_tagged_shares_are_paid_to_the_channel_identity() {
    use strata_protocol::extensions::{RequestExtensions, FIELD_TYPE_USER_IDENTITY};
    use strata_protocol::{Tlv, EXTENSION_WORKER_HASHRATE};

    let clock = Clock::new();
    let mut s = session(false);
    let mut ev = vec![];
    s.on_work(work(1, template(1, 101, 0xaa)), clock.now(), &mut ev);
    s.on_message(setup(0), &[], clock.now(), &mut ev);
    s.on_message(
        RequestExtensions {
            request_id: 1,
            requested_extensions: vec![EXTENSION_WORKER_HASHRATE].try_into().unwrap(),
        }
        .into(),
        &[],
        clock.now(),
        &mut ev,
    );
    // a proxy whose identity is a bare address
    let identity = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";
    s.on_message(
        OpenExtendedMiningChannel {
            request_id: 2,
            user_identity: Str0_255::new(identity).unwrap(),
            nominal_hash_rate: 0.0,
            max_target: U256([0xff; 32]),
            min_extranonce_size: 8,
        }
        .into(),
        &[],
        clock.now(),
        &mut ev,
    );
    let msgs = sent(&ev);
    let ok = msgs
        .iter()
        .find_map(|m| match m {
            Message::Mining(MiningMessage::OpenExtendedMiningChannelSuccess(ok)) => Some(ok),
            _ => None,
        })
        .expect("channel opened");
    let job = msgs
        .iter()
        .find_map(|m| match m {
            Message::Mining(MiningMessage::NewExtendedMiningJob(j)) => Some(j),
            _ => None,
        })
        .expect("a job");
    let prev = msgs
        .iter()
        .find_map(|m| match m {
            Message::Mining(MiningMessage::SetNewPrevHash(p)) => Some(p),
            _ => None,
        })
        .expect("a tip");
    // a regtest share: every nonce that meets the channel's target also makes a block
    let extranonce = [7u8; 10];
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
    // the worker's name has a dot, as SV1 worker names often do
    let mut tlvs = Vec::new();
    strata_protocol::tlv::encode_list(
        &[Tlv::new(
            EXTENSION_WORKER_HASHRATE,
            FIELD_TYPE_USER_IDENTITY,
            &b"rig.1"[..],
        )
        .unwrap()],
        &mut tlvs,
    );
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
        &tlvs,
        clock.now(),
        &mut ev,
    );
    let record = ev
        .iter()
        .find_map(|e| match e {
            Event::Accepted(a) => Some(a.0.clone()),
            _ => None,
        })
        .expect("share accepted");
    // statistics see the worker, PPLNS pays the channel
    assert_eq!(record.worker, format!("{identity}/rig.1"));
    assert_eq!(record.channel_identity, identity);
    let found = ev
        .iter()
        .find_map(|e| match e {
            Event::Block(f) => Some(f.clone()),
            _ => None,
        })
        .expect("block candidate");
    assert_eq!(found.worker, format!("{identity}/rig.1"));
}

/// SRI's `mining_device` opens its channel with an empty user identity (and panics when it is
/// refused): PPLNS takes it like any unpayable identity, solo still needs an address.
#[test]
fn empty_user_identity_opens_in_pplns_and_is_refused_in_solo() {
    let clock = Clock::new();
    for solo in [false, true] {
        let mut s = session(solo);
        let mut ev = vec![];
        let mut w = (*work(1, template(1, 101, 0xaa))).clone();
        if solo {
            w.payouts = Payouts::Solo;
        }
        s.on_work(Arc::new(w), clock.now(), &mut ev);
        s.on_message(setup(REQUIRES_STANDARD_JOBS), &[], clock.now(), &mut ev);
        ev.clear();
        s.on_message(open_standard(10, ""), &[], clock.now(), &mut ev);
        let msgs = sent(&ev);
        if solo {
            let Message::Mining(MiningMessage::OpenMiningChannelError(e)) = &msgs[0] else {
                panic!(
                    "solo: expected OpenMiningChannel.Error, got {}",
                    msgs[0].name()
                )
            };
            assert_eq!(e.error_code.as_str(), "invalid-user-identity");
            assert_eq!(s.channel_count(), 0);
            continue;
        }
        let channel = match &msgs[0] {
            Message::Mining(MiningMessage::OpenStandardMiningChannelSuccess(ok)) => ok.channel_id,
            m => panic!("pplns: expected the channel open, got {}", m.name()),
        };
        // it gets its job, and its shares are accepted under the empty identity
        let mut miner = Miner::new();
        miner.feed(&msgs);
        ev.clear();
        let share = miner.standard_share(channel, false);
        s.on_message(share.into(), &[], clock.now(), &mut ev);
        let (record, _) = ev
            .iter()
            .find_map(|e| match e {
                Event::Accepted(a) => Some((**a).clone()),
                _ => None,
            })
            .expect("share accepted");
        assert_eq!(record.channel_identity, "");
        assert_eq!(record.worker, "");
    }
}
