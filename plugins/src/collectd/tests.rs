//! The decoder against packets written as collectd writes them: Telegraf's
//! names and types, each security level, and bad parts that cost only
//! themselves.

use graft_core::{Batch, BatchBuilder, FieldRef};

use super::encode::Packet;
use super::wire::{Value, part};
use super::*;

const NOW: i64 = 1_700_000_000_000_000_000;

fn decoder(level: SecurityLevel, mv: MultiValue, db: Option<&str>) -> Decoder {
    Decoder::new(
        level,
        mv,
        db.map(TypesDb::parse),
        AuthFile::from_text("# comment\nalice: w0nderl4nd\n  bob :  bu1|der  \n"),
    )
}

fn decode(d: &Decoder, packet: &[u8]) -> (Batch, Report) {
    let mut out = BatchBuilder::new();
    let r = d.decode(packet, NOW, &mut out);
    (out.finish(), r)
}

/// `name tag=v,... field=value` per metric, in order.
fn lines(b: &Batch) -> Vec<String> {
    b.iter()
        .map(|m| {
            let tags: Vec<String> = m.tags().map(|(k, v)| format!("{k}={v}")).collect();
            let fields: Vec<String> = m
                .fields()
                .map(|(k, v)| match v {
                    FieldRef::Float(x) => format!("{k}={x}"),
                    other => panic!("{k} is not a float: {other:?}"),
                })
                .collect();
            format!(
                "{} {} {} {}",
                m.name(),
                tags.join(","),
                fields.join(","),
                m.timestamp()
            )
        })
        .collect()
}

fn load_packet() -> Packet {
    Packet::new()
        .ident("web-1", "load", "", "load", "")
        .time(1_560_455_990)
        .number(part::INTERVAL, 10)
        .values(&[Value::Gauge(0.5), Value::Gauge(0.25), Value::Gauge(0.125)])
}

#[test]
fn split_without_typesdb_names_values_by_index() {
    let d = decoder(SecurityLevel::None, MultiValue::Split, None);
    let (b, r) = decode(&d, load_packet().bytes());
    let t = 1_560_455_990_000_000_000i64;
    assert_eq!(
        lines(&b),
        [
            format!("load_0 host=web-1,type=load value=0.5 {t}"),
            format!("load_1 host=web-1,type=load value=0.25 {t}"),
            format!("load_2 host=web-1,type=load value=0.125 {t}"),
        ]
    );
    assert_eq!((r.metrics, r.dropped()), (3, 0));
}

#[test]
fn typesdb_names_and_join() {
    let db = "load shortterm:GAUGE:0:5000, midterm:GAUGE:0:5000, longterm:GAUGE:0:5000\n";
    let d = decoder(SecurityLevel::None, MultiValue::Split, Some(db));
    let (b, _) = decode(&d, load_packet().bytes());
    let names: Vec<_> = b.iter().map(|m| m.name().to_owned()).collect();
    assert_eq!(names, ["load_shortterm", "load_midterm", "load_longterm"]);
    let d = decoder(SecurityLevel::None, MultiValue::Join, Some(db));
    let (b, _) = decode(&d, load_packet().bytes());
    assert_eq!(
        lines(&b),
        ["load host=web-1,type=load shortterm=0.5,midterm=0.25,longterm=0.125 1560455990000000000"]
    );
}

#[test]
fn single_value_is_value_and_tags_follow_telegraf() {
    let p = Packet::new()
        .ident("h", "cpu", "0", "cpu", "idle")
        .number(part::TIME_HR, 1_560_455_990u64 << 30 | 1 << 29)
        .values(&[Value::Derive(-7)])
        .string(part::TYPE_INSTANCE, "user")
        .values(&[Value::Counter(u64::MAX)])
        .string(part::TYPE_INSTANCE, "nice")
        .values(&[Value::Absolute(3)]);
    let d = decoder(SecurityLevel::None, MultiValue::Split, None);
    let (b, r) = decode(&d, p.bytes());
    let t = 1_560_455_990_500_000_000i64;
    assert_eq!(
        lines(&b),
        [
            format!("cpu_value host=h,instance=0,type=cpu,type_instance=idle value=-7 {t}"),
            format!(
                "cpu_value host=h,instance=0,type=cpu,type_instance=user value={} {t}",
                u64::MAX as f64
            ),
            format!("cpu_value host=h,instance=0,type=cpu,type_instance=nice value=3 {t}"),
        ]
    );
    assert_eq!(r.metrics, 3);
}

#[test]
fn no_time_part_means_now_and_nan_is_left_out() {
    let p = Packet::new()
        .ident("", "memory", "", "memory", "used")
        .values(&[Value::Gauge(f64::NAN)])
        .values(&[Value::Gauge(1.0)]);
    let d = decoder(SecurityLevel::None, MultiValue::Split, None);
    let (b, r) = decode(&d, p.bytes());
    assert_eq!(
        lines(&b),
        [format!(
            "memory_value type=memory,type_instance=used value=1 {NOW}"
        )]
    );
    assert_eq!(r.dropped(), 0);
}

#[test]
fn unknown_type_with_typesdb_is_dropped_and_counted() {
    let d = decoder(
        SecurityLevel::None,
        MultiValue::Split,
        Some("memory value:GAUGE:0:U\n"),
    );
    let p = Packet::new()
        .ident("h", "x", "", "nosuch", "")
        .values(&[Value::Gauge(1.0)])
        .string(part::TYPE, "memory")
        .values(&[Value::Gauge(1.0), Value::Gauge(2.0)])
        .values(&[Value::Gauge(3.0)]);
    let (b, r) = decode(&d, p.bytes());
    assert_eq!(lines(&b).len(), 1);
    assert_eq!(r.unknown_types, 2);
}

#[test]
fn typesdb_reads_collectd_lines_and_skips_bad_ones() {
    let db = TypesDb::parse(
        "# c\nabsolute value:ABSOLUTE:0:U\nif_octets rx:DERIVE:0:U, tx:DERIVE:0:U\nbad x:NOPE:0:U\nworse\n",
    );
    assert_eq!(db.len(), 2);
    let names: Vec<_> = db
        .get("if_octets")
        .unwrap()
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(names, ["rx", "tx"]);
}

#[test]
fn debian_types_db_is_read_whole() {
    let Ok(text) = std::fs::read_to_string("/usr/share/collectd/types.db") else {
        return; // collectd-core is not installed here
    };
    let lines = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .count();
    assert_eq!(TypesDb::parse(&text).len(), lines);
}

#[test]
fn bad_part_costs_only_itself() {
    let p = Packet::new()
        .ident("h", "p", "", "t", "")
        .part(part::VALUES, &[0, 2, 1]) // count says 2, payload short
        .values(&[Value::Gauge(1.0)])
        .part(part::HOST, b"no-nul") // bad host: the next values are lost
        .values(&[Value::Gauge(2.0)])
        .string(part::HOST, "h2")
        .values(&[Value::Gauge(3.0)])
        .part(part::TIME, &[1, 2, 3]) // bad time
        .values(&[Value::Gauge(4.0)])
        .time(5)
        .part(0x7777, b"future part")
        .values(&[Value::Gauge(5.0)]);
    let d = decoder(SecurityLevel::None, MultiValue::Split, None);
    let (b, r) = decode(&d, p.bytes());
    let values: Vec<String> = lines(&b)
        .iter()
        .map(|l| l.split(' ').nth(2).unwrap().to_owned())
        .collect();
    assert_eq!(values, ["value=1", "value=3", "value=5"]);
    assert_eq!(r.malformed, 5, "{r:?}");
}

#[test]
fn bad_length_ends_the_packet_keeping_what_came_before() {
    let mut bytes = Packet::new()
        .ident("h", "p", "", "t", "")
        .values(&[Value::Gauge(1.0)])
        .bytes()
        .to_vec();
    bytes.extend_from_slice(&[0, 6, 0xff, 0xff, 1, 2]);
    let d = decoder(SecurityLevel::None, MultiValue::Split, None);
    let (b, r) = decode(&d, &bytes);
    assert_eq!((b.len(), r.malformed), (1, 1));
    let (b, r) = decode(&d, &[0, 0, 0, 2, 9]);
    assert_eq!((b.len(), r.malformed), (0, 1));
    let (b, r) = decode(&d, &[1, 2, 3]);
    assert_eq!((b.len(), r.malformed), (0, 1));
}

#[test]
fn limits_are_counted() {
    let d = decoder(SecurityLevel::None, MultiValue::Split, None);
    let big = vec![0u8; MAX_PACKET_SIZE + 1];
    assert_eq!(decode(&d, &big).1.packet_size_limit_hits, 1);
    let long = "x".repeat(MAX_STRING_SIZE);
    let (_, r) = decode(&d, Packet::new().string(part::HOST, &long).bytes());
    assert_eq!((r.string_size_limit_hits, r.malformed), (1, 1));
    let many = vec![Value::Gauge(1.0); MAX_VALUES + 1];
    let (b, r) = decode(&d, Packet::new().values(&many).bytes());
    assert_eq!((b.len(), r.values_limit_hits), (0, 1));
    let mut p = Packet::new();
    for _ in 0..=MAX_PARTS {
        p = p.part(0x7777, &[]);
    }
    assert_eq!(decode(&d, p.bytes()).1.parts_limit_hits, 1);
}

fn one_value() -> Packet {
    Packet::new()
        .ident("h", "p", "", "t", "")
        .time(1)
        .values(&[Value::Gauge(42.0)])
}

#[test]
fn security_levels_accept_as_telegraf_does() {
    let plain = one_value().bytes().to_vec();
    let signed = one_value().signed("alice", "w0nderl4nd");
    let encrypted = one_value().encrypted("bob", "bu1|der", [7; 16]);
    let kept = |level, packet: &[u8]| {
        let d = decoder(level, MultiValue::Split, None);
        decode(&d, packet).0.len()
    };
    assert_eq!(
        [
            kept(SecurityLevel::None, &plain),
            kept(SecurityLevel::None, &signed),
            kept(SecurityLevel::None, &encrypted)
        ],
        [1, 1, 1]
    );
    assert_eq!(
        [
            kept(SecurityLevel::Sign, &plain),
            kept(SecurityLevel::Sign, &signed),
            kept(SecurityLevel::Sign, &encrypted)
        ],
        [0, 1, 1]
    );
    assert_eq!(
        [
            kept(SecurityLevel::Encrypt, &plain),
            kept(SecurityLevel::Encrypt, &signed),
            kept(SecurityLevel::Encrypt, &encrypted)
        ],
        [0, 0, 1]
    );
    let d = decoder(SecurityLevel::Sign, MultiValue::Split, None);
    assert_eq!(decode(&d, &plain).1.insecure, 1);
}

#[test]
fn wrong_password_or_user_is_refused_at_every_level() {
    for level in [SecurityLevel::None, SecurityLevel::Sign] {
        let d = decoder(level, MultiValue::Split, None);
        let (b, r) = decode(&d, &one_value().signed("alice", "guess"));
        assert_eq!((b.len(), r.bad_signatures), (0, 1));
        let (b, r) = decode(&d, &one_value().signed("mallory", "x"));
        assert_eq!((b.len(), r.bad_signatures), (0, 1));
        let (b, r) = decode(&d, &one_value().encrypted("bob", "guess", [1; 16]));
        assert_eq!((b.len(), r.decrypt_failures), (0, 1));
    }
    // A signed packet altered on the way.
    let mut signed = one_value().signed("alice", "w0nderl4nd");
    *signed.last_mut().unwrap() ^= 1;
    let d = decoder(SecurityLevel::None, MultiValue::Split, None);
    assert_eq!(decode(&d, &signed).1.bad_signatures, 1);
}

#[test]
fn signed_packet_is_read_once() {
    let d = decoder(SecurityLevel::None, MultiValue::Split, None);
    let (b, _) = decode(&d, &one_value().signed("alice", "w0nderl4nd"));
    assert_eq!(b.len(), 1);
}

#[test]
fn auth_file_is_read_again_when_it_changes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth");
    let auth = AuthFile::new(path.to_str().unwrap());
    assert!(auth.check().is_err());
    std::fs::write(&path, "alice: one\n").unwrap();
    assert_eq!(auth.password("alice").unwrap(), "one");
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
    std::fs::write(&path, "alice: two").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(later)
        .unwrap();
    assert_eq!(auth.password("alice").unwrap(), "two");
}

#[test]
fn keys_are_checked_and_named() {
    let keys = |t: &str| -> Keys { toml::from_str(t).unwrap() };
    let s = keys("").settings().unwrap();
    assert_eq!(
        (s.security, s.multivalue),
        (SecurityLevel::None, MultiValue::Split)
    );
    assert_eq!(s.auth_file, DEFAULT_AUTH_FILE);
    let e = keys("collectd_security_level = \"encrypted\"")
        .settings()
        .unwrap_err();
    assert!(e.to_string().contains("collectd_security_level"), "{e}");
    let e = keys("collectd_parse_multivalue = \"both\"")
        .settings()
        .unwrap_err();
    assert!(e.to_string().contains("collectd_parse_multivalue"), "{e}");
    let s = keys("collectd_typesdb = [\"/nonexistent/types.db\"]")
        .settings()
        .unwrap();
    let e = Decoder::load(&s).unwrap_err();
    assert!(format!("{e:#}").contains("collectd_typesdb[0]"), "{e:#}");
}

/// go-collectd's `TestSign` (network/crypto_test.go): user and password
/// "admin" over the payload "collectd". A vector from outside, so a
/// mistake shared by our encoder and decoder cannot pass unseen.
#[test]
fn signature_matches_go_collectd_vector() {
    let want: Vec<u8> = [
        &[2, 0, 0, 41][..],
        &[
            0xcd, 0xa5, 0x9a, 0x37, 0xb0, 0x81, 0xc2, 0x31, 0x24, 0x2a, 0x6d, 0xbd, 0xfb, 0x44,
            0xdb, 0xd7, 0x41, 0x2a, 0xf4, 0x29, 0x83, 0xde, 0xa5, 0x11, 0x96, 0xd2, 0xe9, 0x30,
            0x21, 0xae, 0xc5, 0x45,
        ],
        b"admin",
        b"collectd",
    ]
    .concat();
    assert_eq!(
        Packet::from_bytes(b"collectd").signed("admin", "admin"),
        want
    );
    let verify = |auth: &str, packet: &[u8]| {
        let d = Decoder::new(
            SecurityLevel::Sign,
            MultiValue::Split,
            None,
            AuthFile::from_text(auth),
        );
        decode(&d, packet).1.bad_signatures
    };
    assert_eq!(verify("admin: admin\n", &want), 0);
    let mut swapped = want.clone();
    swapped.swap(41, 42);
    assert_eq!(verify("admin: admin\n", &swapped), 1);
    assert_eq!(verify("admin: test123\n", &want), 1);
}

/// Packets a real collectd 5 (network plugin, user "fuzz", password
/// "secret") sent signed and encrypted: at the level each meets, they
/// decode to metrics with that password and to none with another.
#[test]
fn real_collectd_signed_and_encrypted_packets_decode() {
    let seeds: [(&str, SecurityLevel, &[u8]); 2] = [
        (
            "sign",
            SecurityLevel::Sign,
            include_bytes!("../../../fuzz/corpus/collectd/seed-collectd-sign"),
        ),
        (
            "encrypt",
            SecurityLevel::Encrypt,
            include_bytes!("../../../fuzz/corpus/collectd/seed-collectd-encrypt"),
        ),
    ];
    for (kind, level, packet) in seeds {
        let with = |auth: &str| {
            let d = Decoder::new(level, MultiValue::Split, None, AuthFile::from_text(auth));
            decode(&d, packet)
        };
        let (b, r) = with("fuzz: secret\n");
        assert!(!b.is_empty(), "{kind}: {r:?}");
        assert_eq!(
            (r.bad_signatures, r.decrypt_failures, r.malformed),
            (0, 0, 0),
            "{kind}: {r:?}"
        );
        assert_eq!(r.insecure, 0, "{kind}: {r:?}");
        let (b, r) = with("fuzz: wrong\n");
        assert!(b.is_empty(), "{kind}: {r:?}");
        assert_eq!(r.bad_signatures + r.decrypt_failures, 1, "{kind}: {r:?}");
    }
}
