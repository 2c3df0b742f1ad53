//! `outputs.nats` in this process against a real `nats-server`: what the
//! stream acknowledges decides what the host keeps; a batch written again
//! is stored once.

use graft_test_support::nats::{NatsServer, stream_messages};

/// `outputs.nats` in this process, connected to `server`.
fn output(table: &str, rt: &tokio::runtime::Runtime) -> Box<dyn graft_api::Output> {
    let mut out = graft_plugins::outputs::nats::build(toml::from_str(table).unwrap()).unwrap();
    rt.block_on(out.connect()).expect("connecting");
    out
}

fn numbered(range: std::ops::Range<i64>) -> graft_core::Batch {
    let mut b = graft_core::BatchBuilder::new();
    for n in range {
        b.metric("seq", n).field("seq", n);
    }
    b.finish()
}

#[test]
fn a_batch_written_again_is_stored_once() {
    let _serial = graft_test_support::nats::one_at_a_time();
    let server = NatsServer::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut out = output(
        &format!(
            "servers = [\"{}\"]\nsubject = \"again\"\n[jetstream]\nname = \"AGAIN\"",
            server.url()
        ),
        &rt,
    );
    let batch = numbered(0..500);
    rt.block_on(out.write(&batch)).expect("the first write");
    // As the host does after a write whose acknowledgements were lost.
    rt.block_on(out.write(&batch))
        .expect("the same batch again");
    rt.block_on(out.write(&numbered(500..600)))
        .expect("new metrics");
    assert_eq!(stream_messages(&server, "AGAIN"), Some(600));
}

#[test]
fn publishes_the_stream_refuses_are_kept_for_a_retry_never_dropped() {
    let _serial = graft_test_support::nats::one_at_a_time();
    let server = NatsServer::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    // A stream that takes 10 messages and refuses more.
    let mut out = output(
        &format!(
            "servers = [\"{}\"]\nsubject = \"full\"\n[jetstream]\nname = \"FULL\"\nmax_msgs = 10\ndiscard = \"new\"",
            server.url()
        ),
        &rt,
    );
    match rt.block_on(out.write(&numbered(0..15))) {
        Err(graft_api::CallError::Returned(graft_core::WriteError::Partial {
            accepted,
            rejected,
            message,
        })) => {
            assert_eq!(accepted.len(), 10, "{message}");
            assert!(rejected.is_empty(), "nothing dropped for good: {message}");
            assert!(message.contains("not acknowledged"), "{message}");
        }
        other => panic!("a partial write was expected: {other:?}"),
    }
    // The next write of only what is kept fails whole: retried, then
    // buffered by the host.
    match rt.block_on(out.write(&numbered(10..15))) {
        Err(graft_api::CallError::Returned(graft_core::WriteError::Retry(m))) => {
            assert!(m.contains("5 of 5"), "{m}");
        }
        other => panic!("a retry was expected: {other:?}"),
    }
    assert_eq!(stream_messages(&server, "FULL"), Some(10));
}

#[test]
fn tls_and_credentials_are_used_and_their_absence_refused() {
    let _serial = graft_test_support::nats::one_at_a_time();
    let certs = tempfile::tempdir().unwrap();
    let (ca, cert, key) = graft_test_support::nats::tls_files(certs.path());
    let server = NatsServer::start_with(&format!(
        "tls {{\n  cert_file: \"{}\"\n  key_file: \"{}\"\n}}\n\
         authorization {{\n  user: graft\n  password: s3cret\n}}\n",
        cert.display(),
        key.display()
    ));
    let url = format!("tls://127.0.0.1:{}", server.port);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let table = |extra: &str| {
        format!(
            "servers = [\"{url}\"]\nsubject = \"secure\"\n{extra}\n[jetstream]\nname = \"SECURE\""
        )
    };
    let good = format!(
        "tls_ca = \"{}\"\nusername = \"graft\"\npassword = \"s3cret\"",
        ca.display()
    );
    let mut out = output(&table(&good), &rt);
    rt.block_on(out.write(&numbered(0..10)))
        .expect("writing over TLS");
    assert_eq!(stream_messages(&server, "SECURE"), Some(10));

    let refused = |extra: &str| {
        let mut o =
            graft_plugins::outputs::nats::build(toml::from_str(&table(extra)).unwrap()).unwrap();
        format!("{}", rt.block_on(o.probe()).expect_err(extra))
    };
    // Unreachable at the start: the output starts, and every write fails
    // (kept by the host for a retry) until it can connect.
    let mut o = graft_plugins::outputs::nats::build(
        toml::from_str(&table("username = \"graft\"\npassword = \"s3cret\"")).unwrap(),
    )
    .unwrap();
    rt.block_on(o.connect()).expect("the output starts anyway");
    match rt.block_on(o.write(&numbered(0..1))) {
        Err(graft_api::CallError::Returned(graft_core::WriteError::Retry(m))) => {
            assert!(m.contains("not connected to NATS"), "{m}");
        }
        other => panic!("a retry was expected: {other:?}"),
    }
    let e = refused("username = \"graft\"\npassword = \"s3cret\"");
    assert!(
        e.contains("cannot connect") && e.contains("certificate"),
        "a CA the system does not know: {e}"
    );
    let e = refused(&format!(
        "tls_ca = \"{}\"\nusername = \"graft\"\npassword = \"wrong\"",
        ca.display()
    ));
    assert!(
        e.contains("authorization violation"),
        "a wrong password: {e}"
    );
}

/// Sends `signal` (`-STOP`, `-CONT`) to the server process.
fn signal(server: &NatsServer, signal: &str) {
    let pid = server.pid().expect("the server runs").to_string();
    let status = std::process::Command::new("kill")
        .args([signal, &pid])
        .status()
        .expect("kill");
    assert!(status.success(), "kill {signal} {pid}");
}

#[test]
fn lost_acknowledgements_cost_a_write_one_timeout_not_one_per_message() {
    let _serial = graft_test_support::nats::one_at_a_time();
    let mut server = NatsServer::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut out = output(
        &format!(
            "servers = [\"{}\"]\nsubject = \"lost\"\n[jetstream]\nname = \"LOST\"\nasync_ack_timeout = \"1s\"",
            server.url()
        ),
        &rt,
    );
    // The server stops reading: no publish of this write is acknowledged.
    signal(&server, "-STOP");
    let started = std::time::Instant::now();
    let result = rt.block_on(out.write(&numbered(0..200)));
    let took = started.elapsed();
    signal(&server, "-CONT");
    match result {
        Err(graft_api::CallError::Returned(graft_core::WriteError::Retry(m))) => {
            // Graft's deadline for the write or the client's own ack
            // timeout (the same `async_ack_timeout`), whichever ends first.
            assert!(m.contains("200 of 200"), "{m}");
            assert!(m.contains("not acknowledged"), "{m}");
        }
        other => panic!("a retry of the whole write was expected: {other:?}"),
    }
    // One deadline for the write: one at a time it took 200 × 1 s.
    assert!(
        took < std::time::Duration::from_secs(15),
        "the write took {took:?}"
    );
    server.wait_ready();
    // The retry stores each metric once (the stream may already hold
    // what it had read before it stopped).
    rt.block_on(out.write(&numbered(0..200)))
        .expect("the retry once the server answers");
    assert_eq!(stream_messages(&server, "LOST"), Some(200));
}

/// Metrics `sized` with a string field of `pad` bytes each (`seq` = n).
fn padded(pads: &[usize]) -> graft_core::Batch {
    let mut b = graft_core::BatchBuilder::new();
    for (n, pad) in pads.iter().enumerate() {
        let s = "x".repeat(*pad);
        b.metric("sized", n as i64)
            .field("seq", n as i64)
            .field("s", s.as_str());
    }
    b.finish()
}

/// A write whose metrics `too_large` (rows) can never be published: they
/// are rejected for good, the others accepted.
fn assert_rejected_for_size(
    result: Result<(), graft_api::CallError<graft_core::WriteError>>,
    total: usize,
    too_large: &[u32],
) {
    match result {
        Err(graft_api::CallError::Returned(graft_core::WriteError::Partial {
            accepted,
            rejected,
            message,
        })) => {
            assert_eq!(rejected, too_large, "{message}");
            assert_eq!(accepted.len(), total - too_large.len(), "{message}");
        }
        other => panic!("a partial write with rejections was expected: {other:?}"),
    }
}

#[test]
fn messages_too_large_for_the_server_or_stream_are_rejected_not_retried() {
    let _serial = graft_test_support::nats::one_at_a_time();
    // max_payload 1024: a body of ~1000 bytes passes it once the
    // Nats-Msg-Id header (59 bytes) is added.
    let server = NatsServer::start_with("max_payload: 1024\n");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut out = output(
        &format!(
            "servers = [\"{}\"]\nsubject = \"big\"\n[jetstream]\nname = \"BIG\"",
            server.url()
        ),
        &rt,
    );
    let batch = padded(&[10, 980, 850, 2000]);
    assert_rejected_for_size(rt.block_on(out.write(&batch)), 4, &[1, 3]);
    assert_eq!(stream_messages(&server, "BIG"), Some(2));

    // A stream whose max_msg_size (400) is below max_payload.
    let mut out = output(
        &format!(
            "servers = [\"{}\"]\nsubject = \"small\"\n[jetstream]\nname = \"SMALL\"\nmax_msg_size = 400",
            server.url()
        ),
        &rt,
    );
    let batch = padded(&[10, 300, 380, 600]);
    assert_rejected_for_size(rt.block_on(out.write(&batch)), 4, &[2, 3]);
    assert_eq!(stream_messages(&server, "SMALL"), Some(2));
}
