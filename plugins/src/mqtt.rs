//! What `outputs.mqtt` and `inputs.mqtt_consumer` share: broker addresses
//! as Telegraf spells them, the MQTT 3.1.1 client options built from a
//! plugin's table (rumqttc's), random client IDs, and failing over from
//! one broker to the next.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail};
use rand::Rng;
use rand::distr::Alphanumeric;
use rumqttc::{MqttOptions, TlsConfiguration, Transport};

/// The largest packet MQTT can frame (its remaining length is at most
/// 268 435 455 bytes).
pub const MAX_PACKET_SIZE: usize = 268_435_455;

/// The longest topic name MQTT can carry, in bytes.
pub const MAX_TOPIC_SIZE: usize = 65_535;

/// One broker of `servers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broker {
    pub host: String,
    pub port: u16,
    /// `ssl://`, `tls://`, `mqtts://`.
    pub tls: bool,
}

impl std::fmt::Display for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.tls { "mqtts" } else { "tcp" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// Read `servers`: `[scheme://]host[:port]` with scheme `tcp`, `mqtt`
/// (plain) or `ssl`, `tls`, `mqtts` (TLS); the port defaults to 1883, or
/// 8883 with TLS. Without a scheme, TLS is used when `tls` is set (as
/// Telegraf does). WebSockets are refused. Errors name the key.
pub fn parse_servers(servers: &[String], tls: bool) -> Result<Vec<Broker>> {
    if servers.is_empty() {
        bail!("servers: at least one broker is needed");
    }
    let brokers = servers
        .iter()
        .map(|s| parse_server(s, tls))
        .collect::<Result<Vec<_>>>()?;
    if brokers.iter().any(|b| b.tls) && brokers.iter().any(|b| !b.tls) {
        bail!("servers: TLS and plain brokers cannot be mixed");
    }
    Ok(brokers)
}

fn parse_server(s: &str, tls_default: bool) -> Result<Broker> {
    let (tls, rest) = match s.split_once("://") {
        None => (tls_default, s),
        Some(("tcp" | "mqtt", rest)) => (false, rest),
        Some(("ssl" | "tls" | "mqtts", rest)) => (true, rest),
        Some((scheme @ ("ws" | "wss"), _)) => {
            bail!("servers: {s:?}: {scheme}:// (MQTT over WebSockets) is not supported")
        }
        Some((scheme, _)) => bail!(
            "servers: {s:?}: unknown scheme {scheme:?}; use tcp://, mqtt://, ssl://, tls:// or mqtts://"
        ),
    };
    let rest = rest.trim_end_matches('/');
    let default_port = if tls { 8883 } else { 1883 };
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        match v6.split_once(']') {
            Some((host, "")) => (host, None),
            Some((host, port)) => (host, Some(port.strip_prefix(':').unwrap_or("x"))),
            None => bail!("servers: {s:?}: unclosed '['"),
        }
    } else {
        match rest.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
        }
    };
    if host.is_empty() || host.contains(['/', '?', '@']) {
        bail!("servers: {s:?} is not [scheme://]host[:port]");
    }
    let port = match port {
        None => default_port,
        Some(p) => match p.parse::<u16>() {
            Ok(p) if p > 0 => p,
            _ => bail!("servers: {s:?}: {p:?} is not a port"),
        },
    };
    Ok(Broker {
        host: host.to_owned(),
        port,
        tls,
    })
}

/// `prefix` and eight random letters and digits: a client ID for a
/// plugin without `client_id`.
pub fn random_client_id(prefix: &str) -> String {
    let suffix: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(8)
        .map(char::from)
        .collect();
    format!("{prefix}{suffix}")
}

/// What a plugin's table says about its connection.
#[derive(Clone)]
pub struct Session {
    pub client_id: String,
    pub username: String,
    pub password: String,
    /// 0 turns keep-alive pings off.
    pub keep_alive: Duration,
    /// False for `persistent_session = true`.
    pub clean_session: bool,
    pub max_incoming_size: usize,
    /// Most QoS 1/2 publishes sent and not yet acknowledged.
    pub inflight: u16,
    /// Incoming QoS 1/2 messages are acknowledged by the plugin.
    pub manual_acks: bool,
    /// From the TLS keys; `None` without them.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl Session {
    /// rumqttc's options to connect to `broker`. Errors when the broker
    /// asks for TLS and no TLS key configures it.
    pub fn options(&self, broker: &Broker) -> Result<MqttOptions> {
        let mut o = MqttOptions::new(self.client_id.clone(), broker.host.clone(), broker.port);
        o.set_keep_alive(self.keep_alive)
            .set_clean_session(self.clean_session)
            .set_max_packet_size(self.max_incoming_size, MAX_PACKET_SIZE)
            .set_inflight(self.inflight.max(1))
            .set_manual_acks(self.manual_acks);
        if !self.username.is_empty() || !self.password.is_empty() {
            o.set_credentials(self.username.clone(), self.password.clone());
        }
        if broker.tls {
            let Some(config) = &self.tls else {
                bail!("servers: {broker} uses TLS; set tls_ca, tls_enable or insecure_skip_verify");
            };
            o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
                config.clone(),
            )));
        }
        Ok(o)
    }
}

/// A keep-alive in Telegraf's whole seconds: rumqttc refuses less than a
/// second, so anything above 0 is at least 1 s.
pub fn keep_alive_seconds(key: &str, seconds: i64) -> Result<Duration> {
    match seconds {
        s if s < 0 => bail!("{key}: {s} is negative; use 0 to turn keep-alive off"),
        s if s > i64::from(u16::MAX) => {
            bail!("{key}: {s} s is more than MQTT allows (65535)")
        }
        s => Ok(Duration::from_secs(s as u64)),
    }
}

/// Check `qos` (0, 1 or 2) and turn it into rumqttc's.
pub fn qos(value: u8) -> Result<rumqttc::QoS> {
    match value {
        0 => Ok(rumqttc::QoS::AtMostOnce),
        1 => Ok(rumqttc::QoS::AtLeastOnce),
        2 => Ok(rumqttc::QoS::ExactlyOnce),
        q => bail!("qos: {q} is not 0, 1 or 2"),
    }
}

/// Check `protocol`: only MQTT 3.1.1 is spoken.
pub fn protocol(value: &str) -> Result<()> {
    match value {
        "" | "3.1.1" | "3.1" => Ok(()),
        "5" | "5.0" => bail!("protocol: MQTT 5 is not supported by graft; use \"3.1.1\""),
        other => bail!("protocol: {other:?} is not \"3.1.1\""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &str, tls: bool) -> Result<Broker> {
        parse_servers(&[s.to_owned()], tls).map(|mut v| v.remove(0))
    }

    #[test]
    fn servers_are_read_as_telegraf_spells_them() {
        let b = one("tcp://127.0.0.1:1884", false).unwrap();
        assert_eq!((b.host.as_str(), b.port, b.tls), ("127.0.0.1", 1884, false));
        let b = one("localhost", false).unwrap();
        assert_eq!((b.port, b.tls), (1883, false));
        let b = one("mqtts://broker.example", false).unwrap();
        assert_eq!((b.port, b.tls), (8883, true));
        let b = one("127.0.0.1:1883", true).unwrap();
        assert!(b.tls, "no scheme with TLS keys: TLS, as Telegraf does");
        let b = one("ssl://[::1]:9000", false).unwrap();
        assert_eq!((b.host.as_str(), b.port), ("::1", 9000));
        assert_eq!(b.to_string(), "mqtts://[::1]:9000");
    }

    #[test]
    fn bad_servers_are_named() {
        for bad in [
            "ws://h:1",
            "http://h:1",
            "h:0",
            "h:port",
            "tcp://:1883",
            "[::1",
        ] {
            let e = one(bad, false).unwrap_err().to_string();
            assert!(e.starts_with("servers:"), "{bad}: {e}");
        }
        let mixed = parse_servers(&["tcp://a:1".into(), "ssl://b:2".into()], false);
        assert!(mixed.unwrap_err().to_string().contains("mixed"));
        assert!(parse_servers(&[], false).is_err());
    }

    #[test]
    fn tls_brokers_need_tls_keys() {
        let s = Session {
            client_id: "c".into(),
            username: String::new(),
            password: String::new(),
            keep_alive: Duration::from_secs(30),
            clean_session: true,
            max_incoming_size: 1024,
            inflight: 10,
            manual_acks: false,
            tls: None,
        };
        let e = s.options(&one("mqtts://h", false).unwrap()).unwrap_err();
        assert!(e.to_string().contains("tls_ca"), "{e}");
        assert!(s.options(&one("tcp://h", false).unwrap()).is_ok());
    }

    #[test]
    fn protocol_qos_and_keep_alive_are_checked() {
        assert!(protocol("3.1.1").is_ok());
        assert!(protocol("5").unwrap_err().to_string().contains("MQTT 5"));
        assert!(qos(3).unwrap_err().to_string().starts_with("qos:"));
        assert_eq!(qos(1).unwrap(), rumqttc::QoS::AtLeastOnce);
        assert!(keep_alive_seconds("keep_alive", -1).is_err());
        assert_eq!(keep_alive_seconds("keep_alive", 0).unwrap(), Duration::ZERO);
        let id = random_client_id("graft-");
        assert_eq!(id.len(), 14);
        assert_ne!(id, random_client_id("graft-"));
    }
}
