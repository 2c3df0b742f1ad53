//! Writes collectd packets, as collectd's `network` plugin does: for the
//! tests, the fuzz seeds and tools that speak to a collectd receiver.

use aes::Aes256;
use hmac::{Hmac, KeyInit, Mac};
use ofb::cipher::{KeyIvInit, StreamCipher};
use sha1::Sha1;
use sha2::Sha256;

use super::wire::{Value, ds, part};

/// A packet being written.
#[derive(Debug, Clone, Default)]
pub struct Packet {
    bytes: Vec<u8>,
}

impl Packet {
    /// An empty packet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes already encoded as parts (to sign or encrypt them as they
    /// are).
    pub fn from_bytes(bytes: &[u8]) -> Self {
        Self {
            bytes: bytes.to_vec(),
        }
    }

    /// A raw part: type, length, payload.
    pub fn part(mut self, kind: u16, payload: &[u8]) -> Self {
        let len = u16::try_from(payload.len() + 4).expect("a part fits in 64 KiB");
        self.bytes.extend_from_slice(&kind.to_be_bytes());
        self.bytes.extend_from_slice(&len.to_be_bytes());
        self.bytes.extend_from_slice(payload);
        self
    }

    /// A string part (`part::HOST`, `part::PLUGIN`, ...), NUL-terminated.
    pub fn string(self, kind: u16, s: &str) -> Self {
        let mut payload = s.as_bytes().to_vec();
        payload.push(0);
        self.part(kind, &payload)
    }

    /// A numeric part (`part::TIME`, `part::INTERVAL_HR`, ...).
    pub fn number(self, kind: u16, n: u64) -> Self {
        self.part(kind, &n.to_be_bytes())
    }

    /// The time in seconds.
    pub fn time(self, seconds: u64) -> Self {
        self.number(part::TIME, seconds)
    }

    /// The five identifier parts at once (empty ones still sent).
    pub fn ident(self, host: &str, plugin: &str, pinst: &str, type_: &str, tinst: &str) -> Self {
        self.string(part::HOST, host)
            .string(part::PLUGIN, plugin)
            .string(part::PLUGIN_INSTANCE, pinst)
            .string(part::TYPE, type_)
            .string(part::TYPE_INSTANCE, tinst)
    }

    /// A `values` part.
    pub fn values(self, values: &[Value]) -> Self {
        let mut payload = (values.len() as u16).to_be_bytes().to_vec();
        payload.extend(values.iter().map(|v| match v {
            Value::Counter(_) => ds::COUNTER,
            Value::Gauge(_) => ds::GAUGE,
            Value::Derive(_) => ds::DERIVE,
            Value::Absolute(_) => ds::ABSOLUTE,
        }));
        for v in values {
            payload.extend_from_slice(&match *v {
                Value::Counter(x) | Value::Absolute(x) => x.to_be_bytes(),
                Value::Gauge(x) => x.to_le_bytes(),
                Value::Derive(x) => x.to_be_bytes(),
            });
        }
        self.part(part::VALUES, &payload)
    }

    /// The bytes as they are.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The packet, signed by `user` with `password`: a signature part
    /// first, covering the user name and the packet.
    pub fn signed(&self, user: &str, password: &str) -> Vec<u8> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(password.as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
        mac.update(user.as_bytes());
        mac.update(&self.bytes);
        let mut payload = mac.finalize().into_bytes().to_vec();
        payload.extend_from_slice(user.as_bytes());
        let mut out = Packet::new().part(part::SIGN_SHA256, &payload).bytes;
        out.extend_from_slice(&self.bytes);
        out
    }

    /// The packet, encrypted for `user` with `password` and `iv`: one
    /// encryption part holding it.
    pub fn encrypted(&self, user: &str, password: &str, iv: [u8; 16]) -> Vec<u8> {
        let key = <Sha256 as sha2::Digest>::digest(password.as_bytes());
        let mut secret = <Sha1 as sha1::Digest>::digest(&self.bytes).to_vec();
        secret.extend_from_slice(&self.bytes);
        let mut cipher = ofb::Ofb::<Aes256>::new_from_slices(key.as_slice(), &iv)
            .unwrap_or_else(|_| unreachable!("a 32-byte key and a 16-byte IV"));
        cipher.apply_keystream(&mut secret);
        let mut payload = (user.len() as u16).to_be_bytes().to_vec();
        payload.extend_from_slice(user.as_bytes());
        payload.extend_from_slice(&iv);
        payload.extend_from_slice(&secret);
        Packet::new().part(part::ENCRYPT_AES256, &payload).bytes
    }
}
