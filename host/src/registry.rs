//! The one list of built-in plugins, per kind: section name to a pure
//! `validate` and a `build`. WASM plugins (`[[kind.wasm]]`) are not here;
//! the topology's builder makes them from their section.

use std::sync::Arc;

use anyhow::Result;
use graft_api::{Aggregator, Input, Output, Processor};
use graft_plugins::builtin::{self, Builtin};
use graft_plugins::{inputs, outputs, processors};

use crate::kind::{Kind, WASM};
use crate::stats::StatsRegistry;

/// What a built-in may need from the agent besides its own table.
pub struct BuildContext {
    /// Every plugin's counters (for `inputs.internal`).
    pub stats: Arc<StatsRegistry>,
}

/// One built-in plugin of the kind whose trait object is `P`.
pub struct Entry<P: ?Sized> {
    /// The section name: `cpu` in `[[inputs.cpu]]`.
    pub name: &'static str,
    /// Check the plugin's own table without building anything: no I/O.
    pub validate: fn(toml::Table) -> Result<()>,
    /// Build the plugin from its own table (validated again).
    pub build: fn(toml::Table, &BuildContext) -> Result<Box<P>>,
    /// Keys Telegraf deprecated or dropped in its table: warned about.
    pub deprecated: &'static [builtin::Deprecated],
}

impl<P: ?Sized + 'static> Entry<P> {
    /// The entry of a built-in of the plugins crate: its name, its pure
    /// validation and its build, all from its [`Builtin`] impl.
    const fn builtin<B: Builtin<Plugin = P>>() -> Self {
        Entry {
            name: B::NAME,
            validate: validate::<B>,
            build: build::<B>,
            deprecated: B::DEPRECATED,
        }
    }
}

fn validate<B: Builtin>(table: toml::Table) -> Result<()> {
    builtin::validate::<B>(table).map(drop)
}

fn build<B: Builtin>(table: toml::Table, _: &BuildContext) -> Result<Box<B::Plugin>> {
    builtin::build::<B>(table)
}

/// Built-in inputs, by section name.
pub const INPUTS: &[Entry<dyn Input>] = &[
    Entry::builtin::<inputs::carbon::Carbon>(),
    Entry::builtin::<inputs::cpu::Cpu>(),
    Entry::builtin::<inputs::disk::Disk>(),
    Entry::builtin::<inputs::diskio::DiskIo>(),
    Entry::builtin::<inputs::exec::Exec>(),
    Entry::builtin::<inputs::execd::Execd>(),
    Entry::builtin::<inputs::http::Http>(),
    Entry::builtin::<inputs::http_listener_v2::HttpListenerV2>(),
    Entry::builtin::<inputs::http_response::HttpResponse>(),
    Entry::builtin::<inputs::influxdb_listener::Listener>(),
    Entry::builtin::<inputs::influxdb_listener::ListenerV2>(),
    Entry {
        name: "internal",
        validate: |t| crate::internal::validate(t).map(drop),
        build: |t, cx| crate::internal::build(t, cx.stats.clone()),
        deprecated: &[],
    },
    Entry::builtin::<inputs::interrupts::Interrupts>(),
    Entry::builtin::<inputs::kernel::Kernel>(),
    Entry::builtin::<inputs::linux_sysctl_fs::LinuxSysctlFs>(),
    Entry::builtin::<inputs::mem::Mem>(),
    Entry::builtin::<inputs::mqtt_consumer::Consumer>(),
    Entry::builtin::<inputs::mysql::Mysql>(),
    Entry::builtin::<inputs::nats_consumer::NatsConsumer>(),
    Entry::builtin::<inputs::net::Net>(),
    Entry::builtin::<inputs::netstat::Netstat>(),
    Entry::builtin::<inputs::nstat::Nstat>(),
    Entry::builtin::<inputs::nginx::Nginx>(),
    Entry::builtin::<inputs::opentelemetry::OpenTelemetry>(),
    Entry::builtin::<inputs::postgresql::Postgresql>(),
    Entry::builtin::<inputs::processes::Processes>(),
    Entry::builtin::<inputs::procstat::Procstat>(),
    Entry::builtin::<inputs::prometheus::Prometheus>(),
    Entry::builtin::<inputs::redis::Redis>(),
    Entry::builtin::<inputs::carbon::SocketListener>(),
    Entry::builtin::<inputs::statsd::Statsd>(),
    Entry::builtin::<inputs::swap::Swap>(),
    Entry::builtin::<inputs::system::System>(),
    Entry::builtin::<inputs::tail::Tail>(),
];

/// Built-in processors, by section name.
pub const PROCESSORS: &[Entry<dyn Processor>] = &[Entry::builtin::<processors::rename::Rename>()];

/// Built-in aggregators, by section name (none yet: WASM only).
pub const AGGREGATORS: &[Entry<dyn Aggregator>] = &[];

/// Built-in outputs, by section name.
pub const OUTPUTS: &[Entry<dyn Output>] = &[
    Entry::builtin::<outputs::file::FileOutput>(),
    Entry::builtin::<outputs::graphite::Graphite>(),
    Entry::builtin::<outputs::http::Http>(),
    Entry::builtin::<outputs::influxdb::InfluxDb>(),
    Entry::builtin::<outputs::influxdb_v2::InfluxDbV2>(),
    Entry::builtin::<outputs::mqtt::Mqtt>(),
    Entry::builtin::<outputs::nats::Nats>(),
    Entry::builtin::<outputs::prometheus_client::PrometheusClient>(),
    Entry::builtin::<outputs::opentelemetry::OpenTelemetry>(),
];

/// Look an entry up by section name.
pub fn find<'a, P: ?Sized>(list: &'a [Entry<P>], name: &str) -> Option<&'a Entry<P>> {
    list.iter().find(|e| e.name == name)
}

/// The keys Telegraf deprecated in built-in `name`'s table (none for an
/// unknown name or `wasm`).
pub fn deprecated(kind: Kind, name: &str) -> &'static [builtin::Deprecated] {
    fn of<P: ?Sized>(list: &[Entry<P>], name: &str) -> &'static [builtin::Deprecated] {
        find(list, name).map_or(&[], |e| e.deprecated)
    }
    match kind {
        Kind::Input => of(INPUTS, name),
        Kind::Processor => of(PROCESSORS, name),
        Kind::Aggregator => of(AGGREGATORS, name),
        Kind::Output => of(OUTPUTS, name),
    }
}

/// Every section name of `kind`, `wasm` last: what `graft plugins` lists
/// and "unknown plugin" errors offer.
pub fn names(kind: Kind) -> Vec<&'static str> {
    fn of<P: ?Sized>(list: &[Entry<P>]) -> Vec<&'static str> {
        list.iter().map(|e| e.name).collect()
    }
    let mut names = match kind {
        Kind::Input => of(INPUTS),
        Kind::Processor => of(PROCESSORS),
        Kind::Aggregator => of(AGGREGATORS),
        Kind::Output => of(OUTPUTS),
    };
    names.push(WASM);
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_are_unique_per_kind_and_wasm_is_reserved() {
        for kind in Kind::ALL {
            let names = names(kind);
            let unique: HashSet<_> = names.iter().collect();
            assert_eq!(unique.len(), names.len(), "{kind}: a name twice");
            assert_eq!(names.iter().filter(|n| **n == WASM).count(), 1);
        }
    }
}
