//! Unit tests of `inputs.nats_consumer` without a server: its table and
//! what it refuses. Reading from a real server is in `tests/tests/nats.rs`.

use super::*;

fn config(text: &str) -> Result<Config> {
    builtin::validate::<NatsConsumer>(toml::from_str(text).unwrap())
}

fn error(text: &str) -> String {
    format!("{:#}", config(text).unwrap_err())
}

#[test]
fn defaults_are_telegrafs() {
    let c = config("").unwrap();
    let o = &c.own.own.own;
    assert_eq!(o.core_subjects(), ["telegraf"]);
    assert_eq!(o.queue_group, "telegraf_consumers");
    assert_eq!(o.durable(), "telegraf_consumers");
    assert_eq!(o.max_undelivered_messages, 1000);
    assert_eq!(o.pending_message_limit, 65536);
    assert_eq!(o.jetstream_ack_wait, Duration::from_secs(30));
}

#[test]
fn every_part_of_the_table_names_its_bad_keys() {
    assert!(error("subjectz = [\"x\"]").contains("`subjectz`"));
    assert!(error("subjects = [\"a..b\"]").contains("subjects[0]"));
    assert!(error("jetstream_subjects = [\"ok\", \"a b\"]").contains("jetstream_subjects[1]"));
    assert!(error("subjects = []").contains("jetstream_subjects"));
    assert!(error("max_undelivered_messages = 0").contains("max_undelivered_messages"));
    assert!(error("jetstream_ack_wait = \"10ms\"").contains("jetstream_ack_wait"));
    assert!(error("jetstream_deliver_policy = \"last\"").contains("jetstream_deliver_policy"));
    assert!(
        error("queue_group = \"\"\njetstream_subjects = [\"m\"]").contains("jetstream_durable")
    );
    assert!(error("jetstream_durable = \"a.b\"").contains("jetstream_durable"));
    assert!(error("[[subject_parsing]]\nsubject = \"a.b\"").contains("subject_parsing"));
    assert!(error("data_format = \"yaml\"").contains("data_format"));
    assert!(error("servers = [\"nats://[::1\"]").contains("servers[0]"));
    assert!(error("nkey_seed = \"/s\"\ncredentials = \"/c\"").contains("nkey_seed"));
    assert!(error("max_message_size = \"lots\"").contains("max_message_size"));
}

#[test]
fn jetstream_subjects_alone_subscribe_to_no_core_subject() {
    let c = config("jetstream_subjects = [\"m.>\"]").unwrap();
    assert!(c.own.own.own.core_subjects().is_empty());
    let c = config("jetstream_subjects = [\"m.>\"]\nsubjects = [\"c\"]").unwrap();
    assert_eq!(c.own.own.own.core_subjects(), ["c"]);
}

#[test]
fn telegrafs_other_keys_are_taken() {
    let c = config(
        "subjects = []\njetstream_subjects = [\"metrics.>\"]\njetstream_stream = \"METRICS\"\n\
         pending_bytes_limit = 1048576\nmetric_buffer = 100\nsubject_tag = \"subject\"\n\
         jetstream_durable = \"pool\"\nmax_message_size = \"64KiB\"",
    )
    .unwrap();
    let o = &c.own.own.own;
    assert_eq!(o.durable(), "pool");
    assert_eq!(o.max_message_size, 64 << 10);
    assert_eq!(o.subject_tag.as_deref(), Some("subject"));
}

#[test]
fn the_pool_bound_is_larger_than_one_agents_and_holding_is_bounded() {
    let c = config("jetstream_subjects = [\"m\"]\nmax_undelivered_messages = 200").unwrap();
    let o = &c.own.own.own;
    assert_eq!(o.pool_max_ack_pending(), 2000);
    assert_eq!(o.max_hold(), Duration::from_secs(90));
    let c = config(
        "jetstream_subjects = [\"m\"]\njetstream_max_ack_pending = 50\njetstream_ack_wait = \"2s\"\n\
         jetstream_max_hold = \"5s\"",
    )
    .unwrap();
    let o = &c.own.own.own;
    assert_eq!(o.pool_max_ack_pending(), 50);
    assert_eq!(o.max_hold(), Duration::from_secs(5));
    assert!(error("jetstream_max_ack_pending = -1").contains("jetstream_max_ack_pending"));
    assert!(
        error("jetstream_ack_wait = \"10s\"\njetstream_max_hold = \"5s\"")
            .contains("jetstream_max_hold")
    );
}

#[test]
fn bounds_that_would_panic_are_refused_naming_the_key() {
    let huge = u64::MAX / 2;
    assert!(
        error(&format!("max_undelivered_messages = {}", i64::MAX))
            .contains("max_undelivered_messages")
    );
    assert!(
        error(&format!("pending_message_limit = {}", i64::MAX)).contains("pending_message_limit")
    );
    assert!(
        error(&format!("jetstream_max_ack_pending = {huge}")).contains("jetstream_max_ack_pending")
    );
    assert!(error("pending_bytes_limit = 0").contains("pending_bytes_limit"));
    let c = config(&format!(
        "max_undelivered_messages = {}",
        config::MAX_UNDELIVERED
    ))
    .unwrap();
    assert!(c.own.own.own.pool_max_ack_pending() > 0);
}
