//! `inputs.carbon`: a carbon-compatible receiver, and Telegraf's
//! `inputs.socket_listener` with `data_format = "graphite"` or `"influx"`,
//! or `"collectd"` over UDP (each datagram one collectd packet, read by
//! [`crate::collectd`]; its counters are in `docs/instrumentation.md`).
//!
//! - Plaintext over TCP and UDP (`service_address = ["tcp://:2003",
//!   "udp://:2003"]`): `path value [timestamp]`, `-1` = now, carbon tags
//!   `path;k=v`; Telegraf's templates turn paths into measurement, tags and
//!   field.
//! - Pickle over TCP (`pickle_address = "tcp://:2004"`): 4-byte big-endian
//!   length, then a pickle of protocol 0 to 5 holding `(path, (ts, value))`
//!   items (also go-carbon's `(path, (ts, v), (ts, v)...)`), decoded by a
//!   machine that refuses anything but lists, tuples, strings and numbers.
//! - Everything a peer controls is bounded through the shared listener
//!   layer ([`crate::listener`]): connections per listener
//!   (`max_connections`) and in the process, line length
//!   (`max_line_size`), frame length (`max_frame_size`), pickle nesting,
//!   memo entries, decoded size and points (`max_pickle_depth`,
//!   `max_pickle_memo_entries`, `max_pickle_decoded_size`,
//!   `max_pickle_metrics`), idle time
//!   (`read_timeout`). A bad or over-limit line, item or frame is counted
//!   (`internal_gather.parse_errors`, and the limit's own `*_limit_hits`)
//!   and skipped; the connection and everything else on it survive.

#[cfg(test)]
mod collectd_tests;
mod config;
mod datagram;
mod receive;
mod server;
#[cfg(test)]
mod tests;

use anyhow::Result;
use graft_api::Input;

use crate::builtin::{self, Builtin};
pub use config::{CarbonConfig, OneOrMany, SocketListenerConfig};
pub(crate) use config::{Format, Limits};
pub use server::Carbon;

/// Build `inputs.carbon`.
pub fn build(table: toml::Table) -> Result<Box<dyn Input>> {
    builtin::build::<Carbon>(table)
}

/// `inputs.carbon` as its own type (tests read its bound addresses).
pub fn carbon(table: toml::Table) -> Result<Carbon> {
    let config = builtin::validate::<Carbon>(table)?;
    Ok(Carbon::new(config.resolve()?))
}

/// Build `inputs.socket_listener`.
pub fn build_socket_listener(table: toml::Table) -> Result<Box<dyn Input>> {
    builtin::build::<SocketListener>(table)
}

/// `inputs.carbon`: carbon's plaintext and pickle receivers.
impl Builtin for Carbon {
    const NAME: &'static str = "carbon";
    type Config = CarbonConfig;
    type Plugin = dyn Input;

    fn validate(config: &CarbonConfig) -> Result<()> {
        config.resolve().map(drop)
    }

    fn build(config: CarbonConfig) -> Result<Box<dyn Input>> {
        Ok(Box::new(Carbon::new(config.resolve()?)))
    }
}

/// `inputs.socket_listener`: Telegraf's line listener, for influx or
/// graphite lines, run by the same receiver.
pub struct SocketListener;

impl Builtin for SocketListener {
    const NAME: &'static str = "socket_listener";
    type Config = SocketListenerConfig;
    type Plugin = dyn Input;

    fn validate(config: &SocketListenerConfig) -> Result<()> {
        config.check()
    }

    fn build(config: SocketListenerConfig) -> Result<Box<dyn Input>> {
        Ok(Box::new(Carbon::new(config.resolve()?)))
    }
}
