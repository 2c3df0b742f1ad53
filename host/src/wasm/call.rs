//! One call into a plugin instance, under its timer.
//!
//! Instances run with wasmtime's async support: a call is a future that
//! runs the guest on a fiber of its own and parks whenever the guest waits
//! in a host function (a WASI sleep or poll, a socket, an HTTP request) or
//! reaches an epoch tick (every [`super::EPOCH_TICK`] of guest code). The
//! calling thread blocks on that future under a `tokio::time::timeout` of
//! the plugin's `call_timeout`; past it, the future is dropped, which takes
//! the call back wherever the guest is. Callers are never on the reactor:
//! inputs and outputs call from tokio's blocking pool, processors and
//! aggregators from their own threads.
//!
//! When the agent stops, [`end_calls_by`] sets a time by which every call,
//! running or yet to come, ends: shutdown never waits a whole
//! `call_timeout` on a stuck plugin.
//!
//! [`Export`] names each export of the four worlds with its arguments, so
//! that every call, `init` included, goes through [`timed`].

use std::future::Future;
use std::sync::OnceLock;
use std::task::Poll;
use std::time::{Duration, Instant};

use tokio::runtime::{Handle, Runtime};
use tokio::sync::watch;
use wasmtime::Store;
use wasmtime::component::{Instance, InstancePre};

use super::bindings::{aggregator, input, output, processor, types};
use super::state::HostState;
use crate::kind::Kind;

/// A call that did not finish within its time.
#[derive(Debug)]
pub(crate) struct Elapsed;

/// Run `call` on this thread until it finishes or `limit` has passed; in
/// that case the call's future is dropped before this returns.
///
/// Timers and I/O are driven by the tokio runtime this thread belongs to
/// (a blocking-pool thread of the agent's), or else by a small runtime
/// kept for WASM calls. Must not be called on a runtime's worker thread.
pub(crate) fn timed<F: Future>(limit: Duration, call: F) -> Result<F::Output, Elapsed> {
    let deadline = Instant::now().checked_add(limit);
    let handle = Handle::try_current().unwrap_or_else(|_| own_runtime().handle().clone());
    handle.block_on(async {
        let mut call = std::pin::pin!(call);
        // Most calls finish without ever waiting: they cost no timer.
        if let Poll::Ready(out) =
            std::future::poll_fn(|cx| Poll::Ready(call.as_mut().poll(cx))).await
        {
            return Ok(out);
        }
        let mut end = calls_end().subscribe();
        let timer = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            out = call => Ok(out),
            () = timer => Err(Elapsed),
            () = reached(&mut end) => Err(Elapsed),
        }
    })
}

/// When every call must have ended, once the agent is stopping.
fn calls_end() -> &'static watch::Sender<Option<Instant>> {
    static END: OnceLock<watch::Sender<Option<Instant>>> = OnceLock::new();
    END.get_or_init(|| watch::Sender::new(None))
}

/// Resolves once the time set by [`end_calls_by`] has come; never before.
async fn reached(end: &mut watch::Receiver<Option<Instant>>) {
    loop {
        let at = *end.borrow_and_update();
        match at {
            Some(at) => return tokio::time::sleep_until(at.into()).await,
            None => {
                if end.changed().await.is_err() {
                    return std::future::pending().await;
                }
            }
        }
    }
}

/// End every WASM call of this process by `at`: the calls running now and
/// every later one (past `at`, a call that has to wait fails at once, as
/// past its deadline). For a bounded shutdown.
pub fn end_calls_by(at: Instant) {
    calls_end().send_replace(Some(at));
}

/// The runtime that drives timers and I/O of calls made outside any tokio
/// runtime (the processor chain's thread, tests, `graft plugin test`).
fn own_runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("graft-wasm-io")
            .enable_all()
            .build()
            .expect("starting the runtime for WASM calls")
    })
}

/// The typed exports of an instance, by kind.
pub(crate) enum Exports {
    Input(input::Guest),
    Processor(processor::Guest),
    Aggregator(aggregator::Guest),
    Output(output::Guest),
}

impl Exports {
    /// Find the exports of `kind` in an instance.
    pub(crate) fn load(
        kind: Kind,
        pre: &InstancePre<HostState>,
        store: &mut Store<HostState>,
        instance: &Instance,
    ) -> wasmtime::Result<Self> {
        Ok(match kind {
            Kind::Input => Self::Input(input::GuestIndices::new(pre)?.load(store, instance)?),
            Kind::Processor => {
                Self::Processor(processor::GuestIndices::new(pre)?.load(store, instance)?)
            }
            Kind::Aggregator => {
                Self::Aggregator(aggregator::GuestIndices::new(pre)?.load(store, instance)?)
            }
            Kind::Output => Self::Output(output::GuestIndices::new(pre)?.load(store, instance)?),
        })
    }
}

fn wrong_kind() -> wasmtime::Error {
    wasmtime::format_err!("plugin does not export this kind")
}

/// One export of a plugin kind, with its arguments.
pub(crate) trait Export {
    /// What the export returns.
    type Output;
    /// Call it (a trap or a missing export is the `Err`).
    async fn call(
        &self,
        exports: &Exports,
        store: &mut Store<HostState>,
    ) -> wasmtime::Result<Self::Output>;
}

/// `init(config)`, of every kind.
pub(crate) struct Init<'a>(pub &'a str);
/// `input.gather()`.
pub(crate) struct Gather;
/// `processor.process(batch)`.
pub(crate) struct Process<'a>(pub &'a types::Batch);
/// `aggregator.add(batch)`.
pub(crate) struct Add<'a>(pub &'a types::Batch);
/// `aggregator.push()`.
pub(crate) struct Push;
/// `aggregator.reset()`.
pub(crate) struct Reset;
/// `output.write(batch)`.
pub(crate) struct Write<'a>(pub &'a types::Batch);

impl Export for Init<'_> {
    type Output = Result<(), types::PluginError>;
    async fn call(
        &self,
        ex: &Exports,
        store: &mut Store<HostState>,
    ) -> wasmtime::Result<Self::Output> {
        match ex {
            Exports::Input(g) => g.call_init(store, self.0).await,
            Exports::Processor(g) => g.call_init(store, self.0).await,
            Exports::Aggregator(g) => g.call_init(store, self.0).await,
            Exports::Output(g) => g.call_init(store, self.0).await,
        }
    }
}

/// `impl Export` for an export that only one kind has: `$kind`'s guest,
/// bound to `$g`, is called as `$call`.
macro_rules! export_of_one_kind {
    ($ty:ty => $out:ty, $kind:ident, |$g:ident, $store:ident, $this:ident| $call:expr) => {
        impl Export for $ty {
            type Output = $out;
            async fn call(
                &self,
                ex: &Exports,
                $store: &mut Store<HostState>,
            ) -> wasmtime::Result<Self::Output> {
                let $this = self;
                match ex {
                    Exports::$kind($g) => $call.await,
                    _ => Err(wrong_kind()),
                }
            }
        }
    };
}

export_of_one_kind!(Gather => Result<types::Batch, types::PluginError>, Input,
    |g, store, _this| g.call_gather(store));
export_of_one_kind!(Process<'_> => Result<types::Batch, types::PluginError>, Processor,
    |g, store, this| g.call_process(store, this.0));
export_of_one_kind!(Add<'_> => Result<(), types::PluginError>, Aggregator,
    |g, store, this| g.call_add(store, this.0));
export_of_one_kind!(Push => types::Batch, Aggregator, |g, store, _this| g.call_push(store));
export_of_one_kind!(Reset => (), Aggregator, |g, store, _this| g.call_reset(store));
export_of_one_kind!(Write<'_> => Result<(), types::WriteError>, Output,
    |g, store, this| g.call_write(store, this.0));
