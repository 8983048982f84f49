//! End-to-end tests of the `strata` binary: each runs the real executable in a temporary
//! directory and checks its stdout, stderr, exit status and files.

use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Output};
use strata_noise::{
    AuthorityKeypair, Certificate, Initiator, PublicKey, Responder, SecretKey, StaticKeypair,
    SIGNATURE_NOISE_MESSAGE_LEN,
};
use strata_protocol::extensions::UserIdentity;
use strata_protocol::mining::{NewMiningJob, SubmitSharesExtended};
use strata_protocol::template_distribution::NewTemplate;
use strata_protocol::{
    common::SetupConnection, Message, Seq0_255, Str0_255, TlvField, B0_255, B0_32, B0_64K, U256,
};

// ---------------------------------------------------------------------------------------------
// helpers

/// Run `strata args...` in `dir`.
fn strata_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run the strata binary")
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("create a temporary directory")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("stdout is UTF-8")
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).expect("stderr is UTF-8")
}

/// The command succeeded; its stdout parsed as JSON.
fn ok_json(o: &Output) -> Value {
    assert!(o.status.success(), "failed: {}", stderr(o));
    serde_json::from_slice(&o.stdout).expect("stdout is one JSON value")
}

/// The command failed with exactly one `error: ` line on stderr and nothing on stdout; that
/// line is returned.
fn one_line_error(o: &Output) -> String {
    let err = stderr(o);
    assert!(!o.status.success(), "unexpected success: {}", stdout(o));
    assert!(o.stdout.is_empty(), "stdout not empty: {}", stdout(o));
    assert_eq!(err.lines().count(), 1, "stderr is not one line: {err:?}");
    assert!(err.starts_with("error: "), "stderr: {err:?}");
    assert!(err.ends_with('\n'));
    err
}

fn decode(hex: &str) -> Output {
    strata_in(&std::env::temp_dir(), &["decode", hex])
}

fn decode_ok(hex: &str) -> Value {
    ok_json(&decode(hex))
}

fn frame_hex(m: impl Into<Message>) -> String {
    hex::encode(m.into().to_frame_vec())
}

// ---------------------------------------------------------------------------------------------
// decode

/// A SubmitSharesStandard frame: ext 0x8000 (channel_msg), type 0x1a, length 24, six u32s.
const SUBMIT_SHARES_STANDARD: &str = "00801a180000010000000200000003000000efbeadde00f1536500000020";

#[test]
fn decode_submit_shares_standard() {
    let expected = json!({
        "extension_type": 0,
        "msg_type": 0x1a,
        "channel_msg": true,
        "message": "SubmitSharesStandard",
        "fields": {
            "channel_id": 1,
            "sequence_number": 2,
            "job_id": 3,
            "nonce": 0xdead_beef_u32,
            "ntime": 1_700_000_000,
            "version": 0x2000_0000,
        },
    });
    assert_eq!(decode_ok(SUBMIT_SHARES_STANDARD), expected);
    // whitespace, 0x and stdin
    assert_eq!(
        decode_ok(&format!(
            "0x{} {}",
            &SUBMIT_SHARES_STANDARD[..12],
            &SUBMIT_SHARES_STANDARD[12..]
        )),
        expected
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["decode", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn strata");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("piped stdin");
        writeln!(stdin, "{SUBMIT_SHARES_STANDARD}").expect("write stdin");
    }
    let out = child.wait_with_output().expect("wait for strata");
    assert_eq!(ok_json(&out), expected);
}

#[test]
fn decode_new_template_u64_seq_and_bytes() {
    let big = (1u64 << 53) + 1;
    let msg = NewTemplate {
        template_id: 1 << 53, // still exact as a JSON number
        future_template: true,
        version: 0x2000_0000,
        coinbase_tx_version: 2,
        coinbase_prefix: B0_255::new(vec![0x03, 0xaa, 0xbb]).expect("short"),
        coinbase_tx_input_sequence: 0xffff_ffff,
        coinbase_tx_value_remaining: big,
        coinbase_tx_outputs_count: 1,
        coinbase_tx_outputs: B0_64K::new(vec![0x01, 0x02]).expect("short"),
        coinbase_tx_locktime: 0,
        merkle_path: Seq0_255::new(vec![U256([0x11; 32]), U256([0x22; 32])]).expect("short"),
    };
    let v = decode_ok(&frame_hex(msg));
    assert_eq!(v["message"], "NewTemplate");
    assert_eq!(v["msg_type"], 0x71);
    assert_eq!(v["channel_msg"], false);
    assert_eq!(
        v["fields"],
        json!({
            "template_id": 9_007_199_254_740_992_u64,
            "future_template": true,
            "version": 0x2000_0000,
            "coinbase_tx_version": 2,
            "coinbase_prefix": "03aabb",
            "coinbase_tx_input_sequence": 0xffff_ffff_u32,
            "coinbase_tx_value_remaining": "9007199254740993",
            "coinbase_tx_outputs_count": 1,
            "coinbase_tx_outputs": "0102",
            "coinbase_tx_locktime": 0,
            "merkle_path": ["11".repeat(32), "22".repeat(32)],
        })
    );
}

#[test]
fn decode_option_null_and_value() {
    let job = |min_ntime| NewMiningJob {
        channel_id: 9,
        job_id: 4,
        min_ntime,
        version: 0x2000_0000,
        merkle_root: U256([0xab; 32]),
    };
    let expected = |min_ntime: Value| {
        json!({
            "extension_type": 0,
            "msg_type": 0x15,
            "channel_msg": true,
            "message": "NewMiningJob",
            "fields": {
                "channel_id": 9,
                "job_id": 4,
                "min_ntime": min_ntime,
                "version": 0x2000_0000,
                "merkle_root": "ab".repeat(32),
            },
        })
    };
    assert_eq!(decode_ok(&frame_hex(job(None))), expected(Value::Null));
    assert_eq!(
        decode_ok(&frame_hex(job(Some(1_700_000_000)))),
        expected(json!(1_700_000_000))
    );
}

fn setup_connection(vendor: &str) -> SetupConnection {
    SetupConnection {
        protocol: 0,
        min_version: 2,
        max_version: 2,
        flags: 1,
        endpoint_host: Str0_255::new("pool.example").expect("short"),
        endpoint_port: 3333,
        vendor: Str0_255::new(vendor).expect("short"),
        hardware_version: Str0_255::new("").expect("short"),
        firmware: Str0_255::new("fw 1.0 \u{2713}").expect("short"),
        device_id: Str0_255::new("").expect("short"),
    }
}

#[test]
fn decode_strings() {
    let v = decode_ok(&frame_hex(setup_connection("Bitmain")));
    assert_eq!(
        v,
        json!({
            "extension_type": 0,
            "msg_type": 0,
            "channel_msg": false,
            "message": "SetupConnection",
            "fields": {
                "protocol": 0,
                "min_version": 2,
                "max_version": 2,
                "flags": 1,
                "endpoint_host": "pool.example",
                "endpoint_port": 3333,
                "vendor": "Bitmain",
                "hardware_version": "",
                "firmware": "fw 1.0 \u{2713}",
                "device_id": "",
            },
        })
    );
}

#[test]
fn decode_user_identity_tlv() {
    let share = || SubmitSharesExtended {
        channel_id: 1,
        sequence_number: 7,
        job_id: 2,
        nonce: 3,
        ntime: 4,
        version: 5,
        extranonce: B0_32::new(&[0xee, 0xff]).expect("short"),
    };
    let id = UserIdentity::new("Worker_001").expect("short name");
    let other = strata_protocol::Tlv::new(0x0003, 0x07, vec![0x01, 0x02]).expect("short");
    let mut frame = Vec::new();
    Message::from(share())
        .encode_frame_with_tlvs(&[id.to_tlv(), other], &mut frame)
        .expect("small frame");
    let v = decode_ok(&hex::encode(&frame));
    assert_eq!(v["message"], "SubmitSharesExtended");
    assert_eq!(v["fields"]["extranonce"], "eeff");
    assert_eq!(
        v["tlvs"],
        json!([
            {
                "extension_type": 2,
                "field_type": 1,
                "value": hex::encode("Worker_001"),
                "user_identity": "Worker_001",
            },
            { "extension_type": 3, "field_type": 7, "value": "0102" },
        ])
    );
    // no TLVs: no "tlvs" key
    let plain = decode_ok(&frame_hex(share()));
    assert!(plain.get("tlvs").is_none(), "{plain}");

    // a user_identity that is not UTF-8 is refused
    let bad = strata_protocol::Tlv::new(0x0002, 0x01, vec![0xff, 0xfe]).expect("short");
    let mut frame = Vec::new();
    Message::from(share())
        .encode_frame_with_tlvs(&[bad], &mut frame)
        .expect("small frame");
    let err = one_line_error(&decode(&hex::encode(&frame)));
    assert!(err.contains("user_identity"), "{err}");
}

/// Replace the U24 msg_length of a frame given as hex.
fn with_len(frame_hex: &str, len: u32) -> String {
    let l = len.to_le_bytes();
    format!(
        "{}{}{}",
        &frame_hex[..6],
        hex::encode(&l[..3]),
        &frame_hex[12..]
    )
}

#[test]
fn decode_bad_inputs_are_one_line_errors() {
    let s = SUBMIT_SHARES_STANDARD;
    // odd hex, not hex, empty
    assert!(one_line_error(&decode(&s[1..])).contains("hex"));
    assert!(one_line_error(&decode("zz")).contains("hex"));
    one_line_error(&decode(""));
    one_line_error(&decode("   "));
    // truncated: header only, part of a header, and payload shorter than declared
    one_line_error(&decode(&s[..12]));
    one_line_error(&decode(&s[..6]));
    one_line_error(&decode(&s[..s.len() - 2]));
    // a frame whose length covers a message cut short
    one_line_error(&decode(&with_len(&s[..s.len() - 2], 23)));
    // trailing bytes, counted by msg_length, that are not a TLV list
    for tail in ["ff", "020001", "0200010500616263"] {
        let err = one_line_error(&decode(&with_len(
            &format!("{s}{tail}"),
            24 + tail.len() as u32 / 2,
        )));
        assert!(err.contains("TLV"), "{err}");
    }
    // trailing bytes not counted by msg_length
    one_line_error(&decode(&format!("{s}00")));
    // unknown message type (0x7f in the base protocol) and unknown extension
    let err = one_line_error(&decode("00007f000000"));
    assert!(err.contains("unknown message type"), "{err}");
    one_line_error(&decode("341200000000"));
    // invalid UTF-8 in a STR0_255 (the vendor field of SetupConnection)
    let good = frame_hex(setup_connection("ABC"));
    let bad = good.replacen(&hex::encode("ABC"), "41ff43", 1);
    assert_ne!(good, bad);
    let err = one_line_error(&decode(&bad));
    assert!(err.contains("utf-8"), "{err}");
    // a SetupConnection for no sub-protocol: 3 (the spec table's "Job Distribution") like 7
    for protocol in [3u8, 7, 255] {
        let mut m = setup_connection("ABC");
        m.protocol = protocol;
        let err = one_line_error(&decode(&frame_hex(m)));
        assert!(err.contains(&format!("protocol {protocol}")), "{err}");
        assert!(err.contains("unsupported-protocol"), "{err}");
    }
    for protocol in [1u8, 2] {
        let mut m = setup_connection("ABC");
        m.protocol = protocol;
        assert_eq!(
            decode_ok(&frame_hex(m))["fields"]["protocol"],
            json!(protocol)
        );
    }
    // unknown subcommand and missing argument: clap errors are one line too
    one_line_error(&strata_in(&std::env::temp_dir(), &["decoder"]));
    one_line_error(&strata_in(&std::env::temp_dir(), &["decode"]));
}

// ---------------------------------------------------------------------------------------------
// keygen

fn read_trimmed(p: &Path) -> String {
    std::fs::read_to_string(p)
        .expect("read a file strata wrote")
        .trim()
        .to_owned()
}

/// Run `strata keygen --out NAME` in `dir`; returns the printed public key.
fn keygen(dir: &Path, name: &str) -> PublicKey {
    let o = strata_in(dir, &["keygen", "--out", name]);
    assert!(o.status.success(), "keygen failed: {}", stderr(&o));
    let out = stdout(&o);
    assert_eq!(out.lines().count(), 1, "stdout: {out:?}");
    out.trim().parse().expect("keygen prints a public key")
}

#[test]
fn keygen_writes_keys() {
    let dir = tempdir();
    let o = strata_in(dir.path(), &["keygen"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let printed: PublicKey = stdout(&o).trim().parse().expect("a base58check public key");
    assert_eq!(stdout(&o), format!("{printed}\n"));

    let secret_path = dir.path().join("authority.key");
    let secret: SecretKey = read_trimmed(&secret_path)
        .parse()
        .expect("the secret file holds a key");
    assert_eq!(secret.public_key(), printed);
    assert_eq!(
        read_trimmed(&secret_path),
        secret.encode().as_str(),
        "SRI's base58check form"
    );
    let public: PublicKey = read_trimmed(&dir.path().join("authority.key.pub"))
        .parse()
        .expect("the .pub file holds a public key");
    assert_eq!(public, printed);

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&secret_path)
            .expect("stat the secret")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // two runs give two different keys
    let other = keygen(dir.path(), "other.key");
    assert_ne!(other, printed);
}

#[test]
fn keygen_refuses_to_overwrite() {
    let dir = tempdir();
    let first = keygen(dir.path(), "ca.key");
    let before = read_trimmed(&dir.path().join("ca.key"));

    let err = one_line_error(&strata_in(dir.path(), &["keygen", "--out", "ca.key"]));
    assert!(err.contains("--force"), "{err}");
    assert_eq!(read_trimmed(&dir.path().join("ca.key")), before);

    // an existing .pub alone also stops it, before the secret is written
    std::fs::write(dir.path().join("new.key.pub"), "keep me").expect("write");
    one_line_error(&strata_in(dir.path(), &["keygen", "--out", "new.key"]));
    assert!(!dir.path().join("new.key").exists());
    assert_eq!(read_trimmed(&dir.path().join("new.key.pub")), "keep me");

    // --force replaces both and restores mode 0600
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            dir.path().join("ca.key"),
            std::fs::Permissions::from_mode(0o644),
        )
        .expect("chmod");
    }
    let o = strata_in(dir.path(), &["keygen", "--out", "ca.key", "--force"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let second: PublicKey = stdout(&o).trim().parse().expect("a public key");
    assert_ne!(second, first);
    let secret: SecretKey = read_trimmed(&dir.path().join("ca.key"))
        .parse()
        .expect("a secret");
    assert_eq!(secret.public_key(), second);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("ca.key"))
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

// ---------------------------------------------------------------------------------------------
// cert

fn now() -> u32 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    u32::try_from(secs).expect("before 2106")
}

/// Parse the certificate JSON and check it against the keys; returns the certificate.
fn check_cert_json(v: &Value, authority: &PublicKey, server: &PublicKey) -> Certificate {
    let obj = v.as_object().expect("a JSON object");
    let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "version",
            "valid_from",
            "not_valid_after",
            "server_public_key",
            "authority_public_key",
            "signature",
            "signature_noise_message"
        ]
    );
    assert_eq!(v["version"], 0);
    assert_eq!(v["server_public_key"], server.to_string());
    assert_eq!(v["authority_public_key"], authority.to_string());

    let raw =
        hex::decode(v["signature_noise_message"].as_str().expect("hex string")).expect("valid hex");
    let raw: [u8; SIGNATURE_NOISE_MESSAGE_LEN] = raw.try_into().expect("74 bytes");
    let cert = Certificate::from_bytes(&raw);
    assert_eq!(v["signature"], hex::encode(cert.signature()));
    assert_eq!(v["valid_from"], cert.valid_from());
    assert_eq!(v["not_valid_after"], cert.not_valid_after());
    cert.verify(authority, server, now(), 0)
        .expect("the certificate verifies under the authority key");
    // not under another authority
    assert!(cert
        .verify(&AuthorityKeypair::generate().public_key(), server, now(), 0)
        .is_err());
    cert
}

#[test]
fn cert_end_to_end_handshake() {
    let dir = tempdir();
    let authority = keygen(dir.path(), "authority.key");
    // the server's static key, from keygen too (any secret key will do)
    let server_pub = keygen(dir.path(), "server.key");
    let server_secret: SecretKey = read_trimmed(&dir.path().join("server.key"))
        .parse()
        .expect("server secret");

    let before = now();
    let v = ok_json(&strata_in(
        dir.path(),
        &[
            "cert",
            "--authority-secret",
            "@authority.key",
            "--server-secret",
            "@server.key",
            "--valid-for",
            "365d",
        ],
    ));
    let cert = check_cert_json(&v, &authority, &server_pub);
    // default start: now - 60 s
    let from = cert.valid_from();
    assert!(
        from + 60 >= before && from + 60 <= now(),
        "{from} vs {before}"
    );
    assert_eq!(cert.not_valid_after(), from + 365 * 86_400);

    // a handshake with that certificate, the initiator pinning the authority key
    let responder = Responder::new(StaticKeypair::from_secret(server_secret), cert);
    let (waiting, act1) = Initiator::new(authority);
    let (server, act2) = responder.respond(&act1).expect("act 2");
    let client = waiting
        .read_act2(&act2, now())
        .expect("certificate accepted");
    let (mut sealer, _) = client.split();
    let (_, mut opener) = server.split();
    let mut buf = bytes::BytesMut::from(&hex::decode(SUBMIT_SHARES_STANDARD).expect("hex")[..]);
    sealer.seal_frame(&mut buf).expect("seal");
    let frame = opener
        .decode(&mut buf)
        .expect("open")
        .expect("a whole frame");
    assert_eq!(frame.header.msg_type, 0x1a);

    // an initiator pinning another authority refuses it
    let (waiting, act1) = Initiator::new(AuthorityKeypair::generate().public_key());
    let (_, act2) = responder.respond(&act1).expect("act 2");
    assert!(waiting.read_act2(&act2, now()).is_err());
}

#[test]
fn cert_with_server_public_and_literal_secrets() {
    let dir = tempdir();
    let authority = AuthorityKeypair::generate();
    let server = StaticKeypair::generate();
    let hex_secret = hex::encode(*authority.secret_key().to_bytes());
    let out_file = dir.path().join("cert.json");
    let o = strata_in(
        dir.path(),
        &[
            "cert",
            "--authority-secret",
            &hex_secret,
            "--server-public",
            &server.public_key().to_string(),
            "--valid-for",
            "3600",
            "--valid-from",
            &(now() - 10).to_string(),
            "--out",
            out_file.to_str().expect("UTF-8 path"),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(o.stdout.is_empty());
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(&out_file).expect("read")).expect("JSON");
    let cert = check_cert_json(&v, &authority.public_key(), &server.public_key());
    assert_eq!(cert.not_valid_after(), cert.valid_from() + 3600);

    // base58check literal; --server-public and --server-secret together must agree
    let b58 = authority.secret_key().encode();
    let server_b58 = server.secret_key().encode();
    let args = |public: &str| {
        strata_in(
            dir.path(),
            &[
                "cert",
                "--authority-secret",
                b58.as_str(),
                "--server-secret",
                server_b58.as_str(),
                "--server-public",
                public,
                "--valid-for",
                "12h",
            ],
        )
    };
    let v = ok_json(&args(&server.public_key().to_string()));
    check_cert_json(&v, &authority.public_key(), &server.public_key());
    let err = one_line_error(&args(&StaticKeypair::generate().public_key().to_string()));
    assert!(err.contains("--server-secret"), "{err}");
}

#[test]
fn cert_durations_and_windows() {
    let dir = tempdir();
    keygen(dir.path(), "authority.key");
    let server = StaticKeypair::generate().public_key().to_string();
    let cert = |extra: &[&str]| {
        let mut args = vec![
            "cert",
            "--authority-secret",
            "@authority.key",
            "--server-public",
            &server,
        ];
        args.extend_from_slice(extra);
        strata_in(dir.path(), &args)
    };
    for (d, secs) in [
        ("365d", 365 * 86_400),
        ("12h", 43_200),
        ("30m", 1_800),
        ("90s", 90),
        ("7", 7),
    ] {
        let v = ok_json(&cert(&["--valid-for", d, "--valid-from", "2000000000"]));
        assert_eq!(v["valid_from"], 2_000_000_000_u32);
        assert_eq!(v["not_valid_after"], 2_000_000_000_u32 + secs, "{d}");
    }
    for bad in [
        "0",
        "0d",
        "-1",
        "1w",
        "1.5h",
        "h",
        "",
        "12 h",
        "99999999999999999999",
    ] {
        let err = one_line_error(&cert(&["--valid-for", bad]));
        assert!(err.contains("--valid-for"), "{bad}: {err}");
    }
    // the window must fit a u32
    let err = one_line_error(&cert(&["--valid-for", "1s", "--valid-from", "4294967295"]));
    assert!(err.contains("4294967295"), "{err}");
    one_line_error(&cert(&["--valid-for", "200000d"]));
    one_line_error(&cert(&["--valid-for", "1d", "--valid-from", "4294967296"]));
    one_line_error(&cert(&["--valid-for", "1d", "--valid-from", "-5"]));
    // a window that ended already
    let err = one_line_error(&cert(&["--valid-for", "1h", "--valid-from", "1000"]));
    assert!(err.contains("expired"), "{err}");
    // a window in the future is issued, with a note
    let o = cert(&["--valid-for", "1h", "--valid-from", "4000000000"]);
    assert_eq!(ok_json(&o)["valid_from"], 4_000_000_000_u32);
    assert!(stderr(&o).starts_with("note: "));
    // missing options
    one_line_error(&cert(&[]));
    one_line_error(&strata_in(
        dir.path(),
        &[
            "cert",
            "--authority-secret",
            "@authority.key",
            "--valid-for",
            "1d",
        ],
    ));
}

#[test]
fn cert_bad_secrets() {
    let dir = tempdir();
    keygen(dir.path(), "authority.key");
    let server = StaticKeypair::generate().public_key().to_string();
    let cert = |secret: &str, public: &str| {
        strata_in(
            dir.path(),
            &[
                "cert",
                "--authority-secret",
                secret,
                "--server-public",
                public,
                "--valid-for",
                "1d",
            ],
        )
    };
    let missing = one_line_error(&cert("@missing.key", &server));
    assert!(missing.contains("missing.key"), "{missing}");
    // a public key is not a secret key; the error names the file, not its content
    let content = read_trimmed(&dir.path().join("authority.key.pub"));
    let err = one_line_error(&cert("@authority.key.pub", &server));
    assert!(!err.contains(&content), "{err}");
    // a bad literal secret is not echoed
    let literal = "11".repeat(31) + "zz";
    let err = one_line_error(&cert(&literal, &server));
    assert!(!err.contains(&literal), "{err}");
    // the zero key is out of range
    one_line_error(&cert(&"00".repeat(32), &server));
    // a bad server public key
    one_line_error(&cert("@authority.key", "not-a-key"));
    let secret_text = read_trimmed(&dir.path().join("authority.key"));
    let err = one_line_error(&cert("@authority.key", &secret_text));
    assert!(err.contains("--server-public"), "{err}");
}

#[test]
fn help_explains_every_option() {
    let dir = tempdir();
    for (sub, words) in [
        ("decode", &["<HEX>", "tlvs", "user_identity", "stdin"][..]),
        ("keygen", &["--out", "--force", "0600", ".pub"][..]),
        (
            "cert",
            &[
                "--authority-secret",
                "--server-public",
                "--server-secret",
                "--valid-for",
                "--valid-from",
                "--out",
                "@FILE",
                "`ps`",
                "365d",
                "60 s",
            ][..],
        ),
    ] {
        let o = strata_in(dir.path(), &[sub, "--help"]);
        assert!(o.status.success());
        let help = stdout(&o);
        for w in words {
            assert!(
                help.contains(w),
                "`strata {sub} --help` lacks {w:?}:\n{help}"
            );
        }
    }
}
