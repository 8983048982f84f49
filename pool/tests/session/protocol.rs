//! Protocol violations and sub-protocols the pool does not serve.

use super::*;

#[test]
fn protocol_violations_close_the_session() {
    let clock = Clock::new();
    // a share before SetupConnection
    let mut s = session(false);
    let mut ev = vec![];
    s.on_message(
        SubmitSharesStandard {
            channel_id: 1,
            sequence_number: 1,
            job_id: 1,
            nonce: 0,
            ntime: 0,
            version: 0,
        }
        .into(),
        &[],
        clock.now(),
        &mut ev,
    );
    assert!(matches!(ev.last(), Some(Event::Close(_))));
    assert!(s.is_closed());

    // a pool-to-miner message from the miner
    let mut s = session(false);
    let mut ev = vec![];
    s.on_message(setup(0), &[], clock.now(), &mut ev);
    s.on_message(
        Message::Common(CommonMessage::Reconnect(
            strata_protocol::common::Reconnect {
                new_host: Str0_255::default(),
                new_port: 0,
            },
        )),
        &[],
        clock.now(),
        &mut ev,
    );
    assert!(matches!(ev.last(), Some(Event::Close(_))));

    // template distribution instead of mining
    let mut s = session(false);
    let mut ev = vec![];
    let Message::Common(CommonMessage::SetupConnection(mut bad)) = setup(0) else {
        panic!()
    };
    bad.protocol = 2;
    s.on_message(bad.into(), &[], clock.now(), &mut ev);
    assert_eq!(names(&ev), ["SetupConnection.Error"]);
    assert!(s.is_closed());
}

/// Every `SetupConnection.protocol` but Mining is refused with `unsupported-protocol`: the
/// other two sub-protocols, 3 (listed in the spec's table as "Job Distribution", defined
/// nowhere) and the values no table lists.
#[test]
fn setup_for_another_or_no_sub_protocol_is_unsupported_protocol() {
    let clock = Clock::new();
    for protocol in [1, 2, 3, 4, 255] {
        let mut s = session(false);
        let mut ev = vec![];
        let Message::Common(CommonMessage::SetupConnection(mut bad)) = setup(0) else {
            panic!()
        };
        bad.protocol = protocol;
        s.on_message(bad.into(), &[], clock.now(), &mut ev);
        let sent = sent(&ev);
        let [Message::Common(CommonMessage::SetupConnectionError(e))] = &sent[..] else {
            panic!("protocol {protocol}: {sent:?}")
        };
        assert_eq!(
            e.error_code.as_str(),
            "unsupported-protocol",
            "protocol {protocol}"
        );
        assert_eq!(e.flags, 0);
        assert!(matches!(ev.last(), Some(Event::Close(_))));
        assert!(s.is_closed(), "protocol {protocol}");
    }
}
