//! One connection of `outputs.mqtt` to a broker: the rumqttc client, the
//! task that drives its event loop, and the number of publishes the broker
//! has finished with (QoS 0: written to the socket; 1: PUBACK; 2: PUBCOMP),
//! which a write waits on.
//!
//! A link is used by one write at a time and a write either sees every
//! one of its publishes finished or drops the link; so the count of a live
//! link never mixes two writes. A link whose connection fails is dead for
//! good (its unacknowledged publishes die with it): the output opens a new
//! one and the host writes the whole batch again.

use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until};
use tracing::Instrument;

/// Requests queued between the output and the event loop.
const REQUEST_CAPACITY: usize = 1024;

#[derive(Debug, Clone, Default)]
struct State {
    connected: bool,
    /// Publishes the broker has finished with since the link opened.
    done: u64,
    failed: Option<Arc<str>>,
}

/// A live connection.
pub struct Link {
    client: AsyncClient,
    task: JoinHandle<()>,
    state: watch::Receiver<State>,
    qos: QoS,
    retain: bool,
}

impl Drop for Link {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Link {
    /// Connect with `options`; returns once the broker accepted the
    /// session, or with why not, within `timeout`.
    pub async fn open(
        options: MqttOptions,
        qos: QoS,
        retain: bool,
        timeout: Duration,
    ) -> Result<Self, String> {
        let (client, mut events) = AsyncClient::new(options, REQUEST_CAPACITY);
        let mut network = events.network_options();
        network.set_connection_timeout(timeout.as_secs().max(1));
        events.set_network_options(network);
        let (tx, rx) = watch::channel(State::default());
        let task = tokio::spawn(drive(events, qos, tx).in_current_span());
        let mut link = Self {
            client,
            task,
            state: rx,
            qos,
            retain,
        };
        let ready = tokio::time::timeout(
            timeout,
            link.state.wait_for(|s| s.connected || s.failed.is_some()),
        )
        .await
        .map(|r| r.map(|s| (s.connected, s.failed.clone())));
        match ready {
            Ok(Ok((true, _))) => {}
            Ok(Ok((false, failed))) => return Err(failed.as_deref().unwrap_or("failed").into()),
            Ok(Err(_)) => return Err("the connection task ended".into()),
            Err(_) => return Err(format!("no CONNACK within {timeout:?}")),
        }
        Ok(link)
    }

    /// Whether the connection has failed since it opened.
    pub fn is_dead(&self) -> bool {
        self.state.borrow().failed.is_some() || self.task.is_finished()
    }

    /// Publish every message and return once the broker has finished with
    /// all of them. Fails when the connection fails, or when the broker
    /// finishes none for `timeout`; the link is then not to be used again.
    pub async fn send(
        &mut self,
        messages: impl IntoIterator<Item = (String, Vec<u8>)>,
        timeout: Duration,
    ) -> Result<(), String> {
        let mut progress = Progress::new(self.state.borrow().done, timeout);
        for (topic, payload) in messages {
            let publish = self.client.publish(topic, self.qos, self.retain, payload);
            tokio::pin!(publish);
            loop {
                tokio::select! {
                    sent = &mut publish => {
                        sent.map_err(|e| format!("publishing: {e}"))?;
                        break;
                    }
                    changed = self.state.changed() => {
                        if changed.is_err() {
                            return Err("the connection task ended".into());
                        }
                        progress.check(&self.state.borrow_and_update())?;
                    }
                    () = sleep_until(progress.deadline) => return Err(progress.timed_out()),
                }
            }
            progress.target += 1;
        }
        loop {
            if progress.check(&self.state.borrow_and_update())? {
                return Ok(());
            }
            tokio::select! {
                changed = self.state.changed() => {
                    if changed.is_err() {
                        return Err("the connection task ended".into());
                    }
                }
                () = sleep_until(progress.deadline) => return Err(progress.timed_out()),
            }
        }
    }

    /// Say goodbye to the broker (DISCONNECT), waiting at most `timeout`.
    pub async fn close(self, timeout: Duration) {
        if self.client.try_disconnect().is_ok() {
            let mut state = self.state.clone();
            let _ = tokio::time::timeout(timeout, state.wait_for(|s| s.failed.is_some())).await;
        }
    }
}

/// How far a send has got, and until when it may wait for the next
/// acknowledgement.
struct Progress {
    target: u64,
    seen: u64,
    deadline: Instant,
    timeout: Duration,
}

impl Progress {
    fn new(done: u64, timeout: Duration) -> Self {
        Self {
            target: done,
            seen: done,
            deadline: Instant::now() + timeout,
            timeout,
        }
    }

    /// True once everything sent so far is finished; an acknowledgement
    /// moves the deadline on.
    fn check(&mut self, s: &State) -> Result<bool, String> {
        if let Some(e) = &s.failed {
            return Err(format!("the connection failed: {e}"));
        }
        if s.done > self.seen {
            self.seen = s.done;
            self.deadline = Instant::now() + self.timeout;
        }
        Ok(s.done >= self.target)
    }

    fn timed_out(&self) -> String {
        format!(
            "the broker acknowledged nothing for {:?} ({} of the publishes waiting)",
            self.timeout,
            self.target.saturating_sub(self.seen)
        )
    }
}

/// Poll the event loop until the connection fails, counting finished
/// publishes.
async fn drive(mut events: rumqttc::EventLoop, qos: QoS, tx: watch::Sender<State>) {
    loop {
        match events.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => tx.send_modify(|s| s.connected = true),
            Ok(Event::Incoming(Packet::PubAck(_))) if qos == QoS::AtLeastOnce => {
                tx.send_modify(|s| s.done += 1);
            }
            Ok(Event::Incoming(Packet::PubComp(_))) if qos == QoS::ExactlyOnce => {
                tx.send_modify(|s| s.done += 1);
            }
            Ok(Event::Outgoing(Outgoing::Publish(_))) if qos == QoS::AtMostOnce => {
                tx.send_modify(|s| s.done += 1);
            }
            Ok(Event::Outgoing(Outgoing::Disconnect)) => {
                tx.send_modify(|s| s.failed = Some("disconnected".into()));
                return;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::debug!(error = %e, "MQTT connection ended");
                tx.send_modify(|s| s.failed = Some(e.to_string().into()));
                return;
            }
        }
    }
}
