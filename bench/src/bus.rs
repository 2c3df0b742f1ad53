//! Scale-out throughput: the relay of [`crate::relay`] split over a message
//! bus. An edge graft takes carbon plaintext and publishes it to a NATS
//! JetStream stream (each publish acknowledged by the stream); a consumer
//! graft reads the stream through a durable consumer (each message
//! acknowledged once written) and writes graphite plaintext to the
//! harness's sink, which checks every line. The figure is the CPU of the
//! three processes together (edge, nats-server, consumer) per million
//! metrics, beside graft relaying carbon directly, alternating passes in
//! one run, for each wire format: line protocol one metric a message
//! (Telegraf's default), line protocol a batch a message, and graft's
//! columnar batch.

use std::path::Path;

use anyhow::Result;

use crate::net::LineSink;
use crate::peers::{self, Running};
use crate::relay::{self, Input, Row};

/// Alternating passes per chain.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    pub rounds: usize,
    /// Metrics per pass for the one-metric-a-message chain, far slower.
    pub per_message_metrics: usize,
}

/// The edge's output: `{nats}` is the server's port, `{format}` and
/// `{batch}` the wire format.
fn edge_output(nats: u16, format: &str, batch: bool) -> String {
    format!(
        r#"[[outputs.nats]]
  servers = ["nats://127.0.0.1:{nats}"]
  subject = "metrics.bench"
  data_format = "{format}"
  use_batch_format = {batch}
  [outputs.nats.jetstream]
    name = "METRICS"
    subjects = ["metrics.>"]
    # Every pass sends the same metrics again: by default the stream would
    # take them for retries of the first pass (the same content within
    # its duplicate window) and store them once.
    message_id = "none"
"#
    )
}

/// The consumer: the stream through a durable consumer, to the sink.
fn consumer_config(nats: u16, sink: u16, format: &str) -> String {
    format!(
        r#"[agent]
  interval = "1h"
  flush_interval = "100ms"
  metric_batch_size = 10000
  metric_buffer_limit = 4000000
  omit_hostname = true
[[inputs.nats_consumer]]
  servers = ["nats://127.0.0.1:{nats}"]
  jetstream_subjects = ["metrics.>"]
  jetstream_durable = "bench"
  max_undelivered_messages = 20000
  data_format = "{format}"
[[outputs.graphite]]
  servers = ["127.0.0.1:{sink}"]
  template = "measurement"
"#
    )
}

/// Start one chain: the edge (returned, with the server and the consumer
/// as its companions) and the edge's carbon port.
fn chain(
    name: &str,
    graft_bin: &Path,
    sink: u16,
    format: &str,
    batch: bool,
) -> Result<(Running, u16)> {
    let (nats, nats_port) = peers::nats_server()?;
    let (mut edge, port) =
        relay::start_graft_with_output(name, graft_bin, &edge_output(nats_port, format, batch))?;
    // The edge creates the stream; the consumer binds to it.
    let mut consumer = peers::graft(
        &format!("{name} (consumer)"),
        graft_bin,
        &consumer_config(nats_port, sink, format),
    )?;
    std::thread::sleep(std::time::Duration::from_millis(500));
    consumer.check_alive()?;
    edge.companions = vec![nats, consumer];
    Ok((edge, port))
}

/// graft relaying directly, and through JetStream in each wire format.
pub fn run(graft_bin: &Path, input: &Input, opts: Options) -> Result<Vec<Row>> {
    let sink = LineSink::start("servers.")?;
    let (mut direct, direct_port) =
        relay::start_graft("graft, carbon → graphite", graft_bin, sink.port, "")?;
    let (mut lines, lines_port) = chain(
        "graft → JetStream → graft, influx, a metric a message",
        graft_bin,
        sink.port,
        "influx",
        false,
    )?;
    let (mut lines_batch, lines_batch_port) = chain(
        "graft → JetStream → graft, influx, a batch a message",
        graft_bin,
        sink.port,
        "influx",
        true,
    )?;
    let (mut columns, columns_port) = chain(
        "graft → JetStream → graft, graft format, a batch a message",
        graft_bin,
        sink.port,
        "graft",
        true,
    )?;
    let per_message = opts.per_message_metrics.min(input.n);
    relay::compare(
        // One metric a message last: it runs once.
        &mut [
            (&mut direct, direct_port, input.n),
            (&mut lines_batch, lines_batch_port, input.n),
            (&mut columns, columns_port, input.n),
            (&mut lines, lines_port, per_message),
        ],
        &sink,
        input,
        false,
        opts.rounds,
    )
}
