//! graft's built-in plugins: native Rust behind the same traits as WASM
//! plugins, emitting Telegraf's measurement, tag and field names and types.
//!
//! Each plugin implements [`builtin::Builtin`]: its own table as a serde
//! type (unknown keys are errors), a pure `validate`, and `build`. The
//! host's registry lists them by section name; each module also keeps a
//! `build(table)` function for callers that want the plugin in one step.
//!
//! Layout:
//! - [`inputs::cpu`]: `inputs.cpu`, CPU time and usage from `/proc/stat`
//! - [`inputs::disk`]: `inputs.disk`, filesystem space and inodes
//! - [`inputs::diskio`]: `inputs.diskio`, block-device counters
//! - [`inputs::processes`]: `inputs.processes`, processes by state
//! - [`inputs::mem`]: `inputs.mem`, memory from `/proc/meminfo`
//! - [`inputs::swap`]: `inputs.swap`, swap space and traffic
//! - [`inputs::kernel`]: `inputs.kernel`, `/proc/stat` counters, KSM, PSI
//! - [`inputs::system`]: `inputs.system`, load, CPU counts, users, uptime
//! - [`inputs::postgresql`]: `inputs.postgresql`, PostgreSQL's statistics
//!   views and custom queries
//! - [`inputs::carbon`]: `inputs.carbon` and `inputs.socket_listener`,
//!   carbon plaintext and pickle, influx lines
//! - [`inputs::statsd`]: `inputs.statsd`, a StatsD server
//! - [`processors::rename`]: `processors.rename`, Telegraf's renames of
//!   measurements, tag keys and field keys
//! - [`outputs::file`]: `outputs.file`, line protocol to stdout or files
//! - [`inputs::influxdb_listener`]: `inputs.influxdb_listener`, InfluxDB's
//!   v1 and v2 write APIs served to clients and other agents
//! - [`outputs::influxdb`], [`outputs::influxdb_v2`]: InfluxDB's write APIs
//! - [`outputs::graphite`]: `outputs.graphite`, carbon plaintext or pickle
//! - [`graphite`]: Graphite's protocols (lines, templates, paths, pickle,
//!   the consistent-hash ring) that carbon, statsd and the graphite output
//!   share
//! - [`format`]: data formats on the wire (`data_format`: influx, JSON,
//!   graft's batch), serializers and parsers for the message-bus plugins
//! - [`tls`]: the TLS client keys and the rustls configuration built from
//!   them
//! - [`tls_server`]: the TLS server keys (`tls_cert`, `tls_key`,
//!   `tls_allowed_cacerts`) and the rustls configuration built from them
//! - [`outputs::prometheus_client`]: `outputs.prometheus_client`, a
//!   `/metrics` endpoint Prometheus scrapes
//! - [`outputs::mqtt`], [`inputs::mqtt_consumer`]: `outputs.mqtt` and
//!   `inputs.mqtt_consumer`, MQTT 3.1.1 publishing and consuming with
//!   acknowledgements; [`mqtt`]: what they share (brokers, client options)
//! - [`http`]: the HTTP client options table the HTTP outputs embed
//!   (timeout, proxy, headers, gzip, TLS) and the client built from it
//! - [`listener`]: the listener layer the network inputs share (connection
//!   budget, bounded framing, timeouts, limit counters)
//! - [`fuzzing`]: the fuzz targets' entry points, shared with the corpus
//!   replay test
//! - [`inputs::nats_consumer`], [`outputs::nats`]: NATS subjects and
//!   JetStream streams, read by a durable consumer a pool of agents shares
//! - [`nats`]: the connection keys and client the NATS plugins share
//! - [`prometheus`]: Prometheus names, exposition formats and remote-write
//!   messages, shared by the Prometheus-shaped plugins
//! - [`inputs::opentelemetry`], [`outputs::opentelemetry`]: OTLP metrics
//!   received (gRPC, HTTP) and exported; [`opentelemetry`]: the mapping
//!   between OTLP and graft metrics they share (Telegraf's schemas)
//! - [`backoff`]: the delay before retrying after consecutive failures
//! - [`collectd`]: collectd's binary network protocol (`data_format =
//!   "collectd"`), signed and encrypted packets, types.db
//! - [`builtin`]: what every built-in offers the registry (config type,
//!   pure validate, build)
//! - [`config`]: parsing a plugin's table with errors that name the key
//! - [`duration`]: durations and sizes as Telegraf spells them
//! - [`inputs::exec`]: `inputs.exec`, commands run at every interval,
//!   their output parsed; [`child`]: process groups and bounded output
//!   for the inputs that run programs; [`globpath`]: Telegraf's file globs
//! - [`inputs::execd`]: `inputs.execd`, a long-lived program's output read
//!   as it prints it, the program restarted when it exits; [`lines`]:
//!   splitting a stream into lines of bounded length
//! - [`inputs::tail`]: `inputs.tail`, files followed through rotation, the
//!   position kept across restarts in [`state`] (per-instance state files)

pub mod backoff;
pub mod builtin;
pub mod child;
pub mod collectd;
pub mod config;
pub mod duration;
pub mod format;
pub mod fuzzing;
pub mod globpath;
pub mod graphite;
pub mod http;
pub mod inputs;
pub mod lines;
pub mod listener;
pub mod mqtt;
pub mod nats;
pub mod opentelemetry;
pub mod outputs;
pub mod processors;
pub mod prometheus;
pub mod state;
pub mod tls;
pub mod tls_server;
