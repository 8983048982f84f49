//! Extended channels (a proxy behind this one, or firmware that rolls its own extranonce).

use super::*;

/// A share on an extended channel's active job: `extranonce` rolled by the miner, header at
/// the channel's target and (if `upstream` says so) at the upstream target.
fn extended_share(
    miner: &mut Miner,
    channel_id: u32,
    extranonce: &[u8],
    upstream: bool,
) -> SubmitSharesExtended {
    let c = miner.channels.get(channel_id).unwrap();
    let job = c.active_job().unwrap();
    let prev = *c.prev_hash().unwrap();
    let work = job.extended().unwrap();
    let txid = work.txid(&[job.extranonce_prefix(), extranonce]);
    let root = strata_work::merkle::merkle_root_from_path(txid, work.merkle_path.iter());
    let mut h = Header {
        version: job.version(),
        prev_hash: prev.prev_hash,
        merkle_root: root,
        ntime: job.min_ntime().unwrap(),
        nbits: prev.nbits,
        nonce: miner.start_nonce,
    };
    while !(h.meets(&job.target()) && h.meets(&upstream_target()) == upstream) {
        h.nonce += 1;
    }
    miner.start_nonce = h.nonce + 1;
    miner.seq += 1;
    SubmitSharesExtended {
        channel_id,
        sequence_number: miner.seq,
        job_id: job.id(),
        nonce: h.nonce,
        ntime: h.ntime,
        version: h.version,
        extranonce: B0_32::new(extranonce).unwrap(),
    }
}

/// A proxy behind this one (or firmware that rolls its own extranonce) opens an extended
/// channel beside a standard one: it gets a block of the miner's space and rolls the rest;
/// its shares are forwarded under the worker name its TLV carries and validate upstream, and a
/// new epoch moves its prefix but not its size.
#[test]
fn extended_channels_roll_their_own_space_and_forward_per_worker_shares() {
    use strata_protocol::extensions::{RequestExtensions, FIELD_TYPE_USER_IDENTITY};
    use strata_protocol::{Tlv, EXTENSION_WORKER_HASHRATE};

    let clock = Clock::new();
    let w = work(1, 1, 77, 0xaa, &[0xaa, 0xbb], true);
    let mut miner = Miner::new();
    let mut s = ready_session(&clock, &w, &["farm.a"], &mut miner);
    let mut out = vec![];
    let ext = RequestExtensions {
        request_id: 9,
        requested_extensions: vec![EXTENSION_WORKER_HASHRATE].try_into().unwrap(),
    };
    s.on_message(ext.into(), clock.now(), &mut out);
    assert_eq!(names(&out), ["RequestExtensions.Success"]);
    out.clear();
    let open = OpenExtendedMiningChannel {
        request_id: 2,
        user_identity: Str0_255::new("farm-proxy").unwrap(),
        nominal_hash_rate: 0.0,
        max_target: U256([0xff; 32]),
        min_extranonce_size: 4,
    };
    s.on_message(open.into(), clock.now(), &mut out);
    assert_eq!(
        names(&out),
        [
            "OpenExtendedMiningChannel.Success",
            "NewExtendedMiningJob",
            "SetNewPrevHash"
        ]
    );
    match &sent(&out)[0] {
        Message::Mining(MiningMessage::OpenExtendedMiningChannelSuccess(ok)) => {
            // the miner's 6 bytes: block 1, then 5 rolled
            assert_eq!(ok.extranonce_size, 5);
            assert_eq!(
                ok.extranonce_prefix.as_slice(),
                [0xaa, 0xbb, 0x01, 0x02, 0x01]
            );
        }
        other => panic!("{other:?}"),
    }
    miner.feed(&out);
    // the standard channel's full extranonce is outside the extended channel's block
    assert_eq!(
        s.extranonce_prefix(1).unwrap(),
        [0xaa, 0xbb, 0x01, 0x02, 0, 0, 0, 0, 0, 0]
    );

    let mut tlvs = Vec::new();
    strata_protocol::tlv::encode_list(
        &[Tlv::new(
            EXTENSION_WORKER_HASHRATE,
            FIELD_TYPE_USER_IDENTITY,
            &b"alice.rig7"[..],
        )
        .unwrap()],
        &mut tlvs,
    );
    let rolled = [9u8, 8, 7, 6, 5];
    let big = extended_share(&mut miner, 2, &rolled, true);
    let small = extended_share(&mut miner, 2, &rolled, false);
    out.clear();
    s.on_frame(big.clone().into(), &tlvs, clock.now(), &mut out);
    s.on_frame(small.into(), &[], clock.now(), &mut out);
    let fw = forwards(&out);
    assert_eq!(
        fw.len(),
        1,
        "only the share meeting the upstream target leaves"
    );
    assert_eq!(fw[0].worker, "alice.rig7", "the worker of the TLV");
    assert_eq!(fw[0].job_id, 77);
    assert_eq!(fw[0].extranonce.as_ref(), [0x01, 0x02, 0x01, 9, 8, 7, 6, 5]);
    validate_upstream(&mut upstream_channel(&w, 1), &fw[0], 1);
    out.clear();
    s.flush_acks(&mut out);
    assert_eq!(names(&out), ["SubmitShares.Success"]);
    // without a TLV the channel's identity names the share
    let plain = extended_share(&mut miner, 2, &[1, 1, 1, 1, 1], true);
    out.clear();
    s.on_frame(plain.into(), &[], clock.now(), &mut out);
    assert_eq!(forwards(&out)[0].worker, "farm-proxy");
    // the same share again is a duplicate
    out.clear();
    s.on_frame(big.into(), &tlvs, clock.now(), &mut out);
    assert_eq!(error_codes(&out), ["duplicate-share"]);

    // failover: a longer upstream prefix, the same space per miner; the extended channel
    // keeps its size under a new prefix and its shares validate on the new upstream
    let w2 = work(2, 1, 500, 0xaa, &[0xcc, 0xdd, 0xee], true);
    out.clear();
    s.on_work(Some(Arc::new(w2.clone())), &mut out);
    assert_eq!(
        names(&out),
        [
            "SetExtranoncePrefix",
            "NewMiningJob",
            "SetNewPrevHash",
            "SetExtranoncePrefix",
            "NewExtendedMiningJob",
            "SetNewPrevHash"
        ]
    );
    miner.feed(&out);
    let share = extended_share(&mut miner, 2, &rolled, true);
    out.clear();
    s.on_frame(share.into(), &[], clock.now(), &mut out);
    let fw = forwards(&out);
    assert_eq!(fw[0].epoch, 2);
    validate_upstream(&mut upstream_channel(&w2, 1), &fw[0], 1);

    // an upstream space too small for the extended channel's size closes it alone
    let mut tight = work(3, 1, 600, 0xaa, &[0xcc], true);
    tight.extranonce_size = 5;
    tight.id_width = 2;
    tight.extranonce2_size = 3;
    out.clear();
    s.on_work(Some(Arc::new(tight)), &mut out);
    assert!(names(&out).contains(&"CloseChannel"), "{:?}", names(&out));
    assert_eq!(s.channel_count(), 1);
    assert!(!s.is_closed());
}
