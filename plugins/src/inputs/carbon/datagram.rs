//! Binary formats over UDP for `inputs.socket_listener`: each datagram is
//! one message, read whole (collectd's packets), never split into lines.

use std::sync::Arc;

use graft_core::BatchBuilder;

use super::receive::Ctx;
use crate::collectd::{CollectdStats, Decoder};
use crate::listener::udp::Datagrams;

/// collectd packets, one per datagram: each decoded, what it cost counted
/// (and logged once per sender and kind), its metrics delivered.
pub(super) async fn collectd(mut socket: Datagrams, ctx: Arc<Ctx>, decoder: Arc<Decoder>) {
    let stats = CollectdStats::for_sink(&ctx.sink);
    while let Some((data, peer)) = socket.next().await {
        let mut out = BatchBuilder::new();
        let report = decoder.decode(data, crate::inputs::now_ns(), &mut out);
        stats.record(&report, peer.ip());
        if !ctx.deliver(out, 0).await {
            return;
        }
    }
}
