//! Group channels: jobs and prevhashes for standard and extended members.

use super::*;

#[test]
fn group_job_ids_skip_ids_in_use_on_members() {
    let mut chans = Channels::new();
    let mut a =
        Channel::new_standard(1, &[0; 4], easy_target(), ChannelConfig::default()).expect("valid");
    a.on_new_mining_job(&std_job(1, 1, None, 1))
        .expect("own job");
    a.on_new_mining_job(&std_job(1, 2, None, 1))
        .expect("own job");
    chans.insert(a).expect("new");
    chans.create_group(100, Some(4)).expect("group");
    chans.add_to_group(100, 1).expect("size 4");
    assert_eq!(chans.next_job_id(100).expect("group"), 3);
}

#[test]
fn group_channel_with_standard_and_extended_members() {
    let cb = coinbase(8);
    let path = [[3u8; 32], [4; 32]];
    let mut chans = Channels::new();
    chans
        .insert(
            Channel::new_standard(
                1,
                &[1, 1, 1, 1, 1, 1, 1, 1],
                easy_target(),
                ChannelConfig::default(),
            )
            .expect("valid"),
        )
        .expect("new");
    chans
        .insert(
            Channel::new_extended(2, &[2, 2, 2, 2], 4, easy_target(), ChannelConfig::default())
                .expect("valid"),
        )
        .expect("new");
    chans
        .insert(
            Channel::new_extended(3, &[3, 3], 4, easy_target(), ChannelConfig::default())
                .expect("valid"),
        )
        .expect("new");
    chans
        .on_set_group_channel(&SetGroupChannel {
            group_channel_id: 100,
            channel_ids: Seq0_64K::new(vec![1, 2]).expect("small"),
        })
        .expect("same full extranonce size 8");
    assert!(matches!(
        chans.add_to_group(100, 3),
        Err(ChannelError::ExtranonceSizeMismatch {
            expected: 8,
            got: 6,
            ..
        })
    ));
    let id = chans.next_job_id(100).expect("group");
    chans
        .on_new_extended_mining_job(&ext_job(100, id, None, &cb, &path, true))
        .expect("to members");
    chans
        .on_set_new_prev_hash(&prevhash(100, id, NBITS_HARD))
        .expect("to members");
    // the standard member's merkle root is that of its prefix
    let root = merkle_root_from_path(cb.txid(&[&[1u8; 8]]).expect("8 bytes"), path.iter());
    assert_eq!(
        chans
            .get(1)
            .expect("ch")
            .job(id)
            .expect("job")
            .merkle_root(),
        root
    );
    let mut accepted = 0;
    for n in 0..200 {
        if chans.validate_standard(&share(1, id, n), 0).is_ok() {
            accepted += 1;
        }
        if chans
            .validate_extended(&ext_share(2, id, n, &[0, 0, 0, 1]), 0)
            .is_ok()
        {
            accepted += 1;
        }
    }
    assert!(accepted > 5);
    // SetExtranoncePrefix must keep the group's size
    assert!(matches!(
        chans.on_set_extranonce_prefix(&SetExtranoncePrefix {
            channel_id: 2,
            extranonce_prefix: B0_32::new(&[9; 5]).expect("small"),
        }),
        Err(ChannelError::ExtranonceSizeMismatch { .. })
    ));
    chans
        .on_set_extranonce_prefix(&SetExtranoncePrefix {
            channel_id: 2,
            extranonce_prefix: B0_32::new(&[9; 4]).expect("small"),
        })
        .expect("same size");
    // earlier jobs keep the old prefix
    assert_eq!(
        chans
            .get(2)
            .expect("ch")
            .job(id)
            .expect("job")
            .extranonce_prefix(),
        &[2, 2, 2, 2]
    );
    // closing the group closes its members
    let mut closed = chans.close(100);
    closed.sort_unstable();
    assert_eq!(closed, vec![1, 2]);
    assert!(chans.get(3).is_some());
}
