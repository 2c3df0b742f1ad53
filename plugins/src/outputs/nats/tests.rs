//! Unit tests of `outputs.nats` without a server: its table, the messages
//! a batch becomes, message ids and the host's answer. The server side is
//! in `tests/tests/nats.rs`.

use graft_core::{BatchBuilder, WriteError};

use super::publish::{batched, content_id, outcome, per_metric};
use super::*;

fn config(text: &str) -> Result<Config> {
    builtin::validate::<Nats>(toml::from_str(text).unwrap())
}

fn error(text: &str) -> String {
    format!("{:#}", config(text).unwrap_err())
}

fn numbered(n: usize) -> Batch {
    let mut b = BatchBuilder::new();
    for i in 0..n {
        b.metric("seq", i as i64).field("seq", i as i64);
    }
    b.finish()
}

#[test]
fn defaults_are_telegrafs() {
    let c = config("").unwrap();
    assert_eq!(c.own.own.own.subject, "telegraf");
    assert!(c.own.own.own.jetstream.is_none());
    assert_eq!(c.own.own.shared.servers, ["nats://localhost:4222"]);
}

#[test]
fn every_part_of_the_table_names_its_bad_keys() {
    assert!(error("subjekt = \"x\"").contains("`subjekt`"));
    assert!(error("servers = [\"nats://[::1\"]").contains("servers[0]"));
    assert!(error("data_format = \"xml\"").contains("data_format"));
    assert!(error("tls_cert = \"/c.pem\"").contains("tls_key"));
    assert!(error("subject = \"a.*\"").contains("subject"));
    assert!(error("subject = \"a..b\"").contains("subject"));
    assert!(error("with_subject_layout = [\"{{ .Name }}\"]").contains("with_subject_layout"));
    assert!(error("[jetstream]\nsubjects = [\"x\"]").contains("jetstream.name"));
    assert!(
        error("[jetstream]\nname = \"S\"\nretention = \"forever\"").contains("jetstream.retention")
    );
    assert!(error("[jetstream]\nname = \"S\"\nstorage = \"tape\"").contains("jetstream.storage"));
    assert!(error("[jetstream]\nname = \"S\"\nnum_replicas = 7").contains("num_replicas"));
    assert!(error("[jetstream]\nname = \"S\"\nno_ack = true").contains("no_ack"));
    assert!(error("[jetstream]\nname = \"S\"\ncompression = \"s2\"").contains("compression"));
    assert!(error("[jetstream]\nname = \"S\"\nmax_age = \"forever\"").contains("max_age"));
    assert!(error("[jetstream]\nname = \"S\"\nbogus = 1").contains("`bogus`"));
    assert!(error("[jetstream]\nname = \"a.b\"").contains("jetstream.name"));
    assert!(
        error(&format!(
            "[jetstream]\nname = \"S\"\nmax_ack_pending = {}",
            i64::MAX
        ))
        .contains("jetstream.max_ack_pending")
    );
    assert!(
        error("[jetstream]\nname = \"S\"\nmax_ack_pending = 0")
            .contains("jetstream.max_ack_pending")
    );
}

#[test]
fn the_stream_takes_the_subject_and_telegrafs_options() {
    let c = config(
        "subject = \"metrics.edge\"\n[jetstream]\nname = \"METRICS\"\nsubjects = [\"other\"]\n\
         retention = \"workqueue\"\nmax_age = \"1h\"\nreplicas = 3\nstorage = \"memory\"\n\
         duplicate_window = \"5m\"\ndiscard = \"new\"",
    )
    .unwrap();
    let own = &c.own.own.own;
    let (s, ids) = own
        .jetstream
        .as_ref()
        .unwrap()
        .resolve(&own.subject)
        .unwrap();
    assert_eq!(s.name, "METRICS");
    assert_eq!(s.subjects, ["other", "metrics.edge"]);
    assert_eq!(s.retention, jetstream::stream::RetentionPolicy::WorkQueue);
    assert_eq!(s.max_age, std::time::Duration::from_secs(3600));
    assert_eq!(s.num_replicas, 3);
    assert_eq!(s.storage, jetstream::stream::StorageType::Memory);
    assert_eq!(s.discard, jetstream::stream::DiscardPolicy::New);
    assert_eq!(s.duplicate_window, std::time::Duration::from_secs(300));
    assert_eq!(ids, MessageId::Content);
    let c = config("subject = \"m.a\"\n[jetstream]\nname = \"M\"\nsubjects = [\"m.>\"]").unwrap();
    let own = &c.own.own.own;
    let (s, _) = own
        .jetstream
        .as_ref()
        .unwrap()
        .resolve(&own.subject)
        .unwrap();
    assert_eq!(
        s.subjects,
        ["m.>"],
        "a wildcard that takes the subject is enough"
    );
    let c = config("[jetstream]\nname = \"M\"\nmessage_id = \"none\"").unwrap();
    let own = &c.own.own.own;
    let (s, ids) = own
        .jetstream
        .as_ref()
        .unwrap()
        .resolve(&own.subject)
        .unwrap();
    assert_eq!(s.subjects, ["telegraf"]);
    assert_eq!(ids, MessageId::None);
}

#[test]
fn one_message_per_metric_and_too_large_ones_rejected() {
    let s = SerializerConfig::default().build().unwrap();
    let batch = numbered(5);
    let p = per_metric(&batch, &s, 1 << 20);
    assert_eq!(p.messages.len(), 5);
    assert_eq!(p.messages[3].rows, 3..4);
    assert_eq!(&p.messages[3].body[..], b"seq seq=3i 3\n");
    assert!(p.rejected.is_empty());
    // "seq seq=10i 10\n" is 15 bytes; "seq seq=3i 3\n" 13.
    let mut b = BatchBuilder::new();
    b.metric("seq", 3).field("seq", 3i64);
    b.metric("seq", 10).field("seq", 10i64);
    let p = per_metric(&b.finish(), &s, 13);
    assert_eq!(p.messages.len(), 1);
    assert_eq!(p.rejected, [1]);
    assert!(p.first_rejection.unwrap().contains("max_payload"));
}

#[test]
fn a_batch_is_halved_until_each_part_fits() {
    let s = SerializerConfig::default().build().unwrap();
    let batch = numbered(100);
    let whole = batched(&batch, &s, 1 << 20);
    assert_eq!(whole.messages.len(), 1);
    assert_eq!(whole.messages[0].rows, 0..100);
    let total = whole.messages[0].body.len();
    let split = batched(&batch, &s, total / 3);
    assert!(split.messages.len() >= 3, "{}", split.messages.len());
    let mut rows: Vec<usize> = split.messages.iter().flat_map(|m| m.rows.clone()).collect();
    rows.sort_unstable();
    assert_eq!(rows, (0..100).collect::<Vec<_>>(), "every metric once");
    assert!(split.messages.iter().all(|m| m.body.len() <= total / 3));
    let joined: Vec<u8> = split
        .messages
        .iter()
        .flat_map(|m| m.body.to_vec())
        .collect();
    assert_eq!(joined.len(), total);
    // A single metric larger than the limit is rejected, the rest goes.
    let tiny = batched(&batch, &s, 14);
    assert_eq!(tiny.rejected.len(), 90, "the two-digit ones");
    assert_eq!(tiny.messages.len(), 10);
}

#[test]
fn message_ids_are_the_content_and_the_subject() {
    let a = content_id("s", b"x 1\n");
    assert_eq!(a, content_id("s", b"x 1\n"));
    assert_eq!(a.len(), 32);
    assert_ne!(a, content_id("t", b"x 1\n"));
    assert_ne!(a, content_id("s", b"x 2\n"));
}

#[test]
fn stream_subjects_match_with_wildcards() {
    assert!(subject_matches("metrics.>", "metrics.edge.1"));
    assert!(subject_matches("metrics.*", "metrics.edge"));
    assert!(!subject_matches("metrics.*", "metrics.edge.1"));
    assert!(subject_matches("telegraf", "telegraf"));
    assert!(!subject_matches("telegraf", "telegraf.x"));
    assert!(!subject_matches("metrics.>", "metrics"));
}

#[test]
fn the_hosts_answer_keeps_exactly_the_unacknowledged() {
    assert_eq!(outcome(3, vec![0, 1, 2], vec![], String::new()), Ok(()));
    assert!(matches!(
        outcome(3, vec![], vec![], "down".into()),
        Err(WriteError::Retry(m)) if m == "down"
    ));
    assert!(matches!(
        outcome(2, vec![], vec![0, 1], "big".into()),
        Err(WriteError::Reject(_))
    ));
    match outcome(4, vec![0, 2], vec![3], "x".into()) {
        Err(WriteError::Partial {
            accepted, rejected, ..
        }) => {
            assert_eq!(accepted, [0, 2]);
            assert_eq!(rejected, [3]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn go_durations_of_the_stream_are_nanoseconds_as_in_telegraf() {
    let stream = |keys: &str| {
        let c = config(&format!("[jetstream]\nname = \"S\"\n{keys}")).unwrap();
        c.own
            .own
            .own
            .jetstream
            .unwrap()
            .resolve("telegraf")
            .unwrap()
            .0
    };
    // Telegraf's README sample.
    let s = stream("duplicate_window = 120000000000\nmax_age = 0");
    assert_eq!(s.duplicate_window, Duration::from_secs(120));
    assert_eq!(s.max_age, Duration::ZERO);
    let s = stream("duplicate_window = \"2m\"\nmax_age = \"24h\"");
    assert_eq!(s.duplicate_window, Duration::from_secs(120));
    assert_eq!(s.max_age, Duration::from_secs(86400));
    assert_eq!(
        stream("max_age = 3600000000000").max_age,
        Duration::from_secs(3600)
    );
    // Telegraf's other defaults: direct gets allowed, -1 for no limit.
    let s = stream("max_msgs = -1\nmax_bytes = -1\nmax_msg_size = -1\nmax_consumers = -1");
    assert!(s.allow_direct);
    assert_eq!(s.max_messages, -1);
    assert!(error("[jetstream]\nname = \"S\"\nmax_age = 1.5").contains("max_age"));
    assert!(error("[jetstream]\nname = \"S\"\nduplicate_window = -5").contains("duplicate_window"));
}
