//! Signed and encrypted collectd packets: the auth file of `user: password`
//! lines (read again when it changes), HMAC-SHA-256 signatures, and
//! AES-256-OFB encryption keyed with the SHA-256 of the password, behind a
//! SHA-1 checksum of the plaintext.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::SystemTime;

use aes::Aes256;
use hmac::{Hmac, KeyInit, Mac};
use ofb::cipher::{KeyIvInit, StreamCipher};
use sha1::Sha1;
use sha2::Sha256;

/// The least protection a value list needs to be kept, and the protection
/// a part of a packet had (ordered: none < sign < encrypt).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SecurityLevel {
    None,
    Sign,
    Encrypt,
}

/// Why a signed or encrypted part was refused.
#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    #[error("part too short")]
    Short,
    #[error("bad user name length")]
    UserLength,
    #[error("user {0:?} is not in the auth file")]
    UnknownUser(String),
    #[error("cannot read the auth file {path:?}: {error}")]
    AuthFile { path: String, error: String },
    #[error("signature does not match (user {0:?}): wrong password?")]
    Mismatch(String),
    #[error("checksum does not match after decryption (user {0:?}): wrong password?")]
    Checksum(String),
}

/// collectd's auth file: `user: password` per line, `#` comments; read
/// when first needed and again whenever its modification time changes.
#[derive(Debug)]
pub struct AuthFile {
    path: String,
    cache: Mutex<Cache>,
}

#[derive(Debug, Default)]
struct Cache {
    modified: Option<SystemTime>,
    users: HashMap<String, String>,
}

impl AuthFile {
    /// The auth file at `path` (not read yet).
    pub fn new(path: &str) -> Self {
        Self {
            path: path.to_owned(),
            cache: Mutex::default(),
        }
    }

    /// An auth file held in memory (tests, fuzzing).
    pub fn from_text(text: &str) -> Self {
        Self {
            path: String::new(),
            cache: Mutex::new(Cache {
                modified: None,
                users: parse_users(text),
            }),
        }
    }

    /// Whether the file can be read now.
    pub fn check(&self) -> Result<(), SecurityError> {
        self.password("").map(drop).or_else(|e| match e {
            SecurityError::UnknownUser(_) => Ok(()),
            e => Err(e),
        })
    }

    /// The password of `user`.
    pub fn password(&self, user: &str) -> Result<String, SecurityError> {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if !self.path.is_empty() {
            self.refresh(&mut cache)?;
        }
        cache
            .users
            .get(user)
            .cloned()
            .ok_or_else(|| SecurityError::UnknownUser(user.to_owned()))
    }

    fn refresh(&self, cache: &mut Cache) -> Result<(), SecurityError> {
        let failed = |e: std::io::Error| SecurityError::AuthFile {
            path: self.path.clone(),
            error: e.to_string(),
        };
        let modified = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .map_err(failed)?;
        if cache.modified != Some(modified) {
            let text = std::fs::read_to_string(&self.path).map_err(failed)?;
            cache.users = parse_users(&text);
            cache.modified = Some(modified);
        }
        Ok(())
    }
}

/// `user: password` lines; blank lines, lines without a colon and lines
/// whose user starts with `#` are skipped. Both sides are trimmed.
fn parse_users(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|line| {
            let (user, password) = line.split_once(':')?;
            let user = user.trim();
            (!user.is_empty() && !user.starts_with('#'))
                .then(|| (user.to_owned(), password.trim().to_owned()))
        })
        .collect()
}

/// Check a signature part (`payload`: 32 bytes of HMAC, then the user
/// name) over the user name and `signed`, the rest of the packet.
pub fn verify(payload: &[u8], signed: &[u8], auth: &AuthFile) -> Result<(), SecurityError> {
    if payload.len() <= 32 {
        return Err(SecurityError::Short);
    }
    let (hash, user) = payload.split_at(32);
    let user = String::from_utf8_lossy(user).into_owned();
    let password = auth.password(&user)?;
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(password.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
    mac.update(user.as_bytes());
    mac.update(signed);
    mac.verify_slice(hash)
        .map_err(|_| SecurityError::Mismatch(user))
}

/// Decrypt an encryption part (`payload`: user name length, user name,
/// 16 bytes of IV, then the encrypted SHA-1 checksum and packet); the
/// packet inside when its checksum holds.
pub fn decrypt(payload: &[u8], auth: &AuthFile) -> Result<Vec<u8>, SecurityError> {
    let Some((len, rest)) = payload.split_first_chunk::<2>() else {
        return Err(SecurityError::Short);
    };
    let user_len = usize::from(u16::from_be_bytes(*len));
    // At least one byte of packet after the user, IV and checksum.
    if user_len == 0 || rest.len() <= user_len + 16 + 20 {
        return Err(SecurityError::UserLength);
    }
    let (user, rest) = rest.split_at(user_len);
    let (iv, encrypted) = rest.split_at(16);
    let user = String::from_utf8_lossy(user).into_owned();
    let password = auth.password(&user)?;
    let key = <Sha256 as sha2::Digest>::digest(password.as_bytes());
    let mut cipher = ofb::Ofb::<Aes256>::new_from_slices(key.as_slice(), iv)
        .unwrap_or_else(|_| unreachable!("a 32-byte key and a 16-byte IV"));
    let mut plain = encrypted.to_vec();
    cipher.apply_keystream(&mut plain);
    let (checksum, packet) = plain.split_at(20);
    if <Sha1 as sha1::Digest>::digest(packet).as_slice() != checksum {
        return Err(SecurityError::Checksum(user));
    }
    Ok(packet.to_vec())
}
