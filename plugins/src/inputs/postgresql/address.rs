//! The `address` of `inputs.postgresql` (a URL or `key=value` words):
//! what tokio-postgres connects with, and the `server` tag (without the
//! password and TLS settings, or `outputaddress`).

use std::collections::BTreeMap;

use anyhow::{Result, bail};

/// A checked address.
pub(super) struct Address {
    /// `key='value'` words for tokio-postgres.
    pub connect: String,
    /// The `server` tag.
    pub server: String,
    /// The database connected to (for `withdbname`).
    pub dbname: String,
}

/// Check `address` (empty: `host=localhost sslmode=disable`) and resolve
/// it. Pure: nothing is connected.
pub(super) fn resolve(address: &str, outputaddress: &str) -> Result<Address> {
    let address = if address.is_empty() {
        "host=localhost sslmode=disable".to_owned()
    } else {
        address.to_owned()
    };
    let pairs = address_pairs(&address)?;
    match pairs.get("sslmode").map(String::as_str) {
        None | Some("disable" | "allow" | "prefer") => {}
        Some(other) => bail!(
            "address: sslmode={other} is not supported yet (graft connects without TLS); use sslmode=disable or prefer"
        ),
    }
    let server = if outputaddress.is_empty() {
        pairs
            .iter()
            .filter(|(k, _)| {
                !matches!(
                    k.as_str(),
                    "password" | "sslcert" | "sslkey" | "sslmode" | "sslrootcert"
                )
            })
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    } else {
        outputaddress.to_owned()
    };
    // tokio-postgres takes key=value; TLS is off ("prefer" falls back).
    let connect = pairs
        .iter()
        .filter(|(k, _)| k.as_str() != "sslmode")
        .map(|(k, v)| format!("{k}='{}'", v.replace('\\', "\\\\").replace('\'', "\\'")))
        .collect::<Vec<_>>()
        .join(" ");
    connect
        .parse::<tokio_postgres::Config>()
        .map_err(|e| anyhow::anyhow!("address: {e}"))?;
    let dbname = pairs
        .get("dbname")
        .or_else(|| pairs.get("user"))
        .cloned()
        .unwrap_or_else(|| "postgres".into());
    Ok(Address {
        connect,
        server,
        dbname,
    })
}

/// The address as key=value pairs.
fn address_pairs(address: &str) -> Result<BTreeMap<String, String>> {
    let mut pairs = BTreeMap::new();
    if let Some(rest) = address
        .strip_prefix("postgres://")
        .or_else(|| address.strip_prefix("postgresql://"))
    {
        let (main, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (auth, hostpart) = match main.rsplit_once('@') {
            Some((a, h)) => (Some(a), h),
            None => (None, main),
        };
        if let Some(a) = auth {
            let (u, p) = a.split_once(':').unwrap_or((a, ""));
            pairs.insert("user".into(), u.to_owned());
            if !p.is_empty() {
                pairs.insert("password".into(), p.to_owned());
            }
        }
        let (hostport, db) = hostpart.split_once('/').unwrap_or((hostpart, ""));
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || hostport.starts_with('[') => (h, Some(p)),
            _ => (hostport, None),
        };
        if !host.is_empty() {
            pairs.insert("host".into(), host.trim_matches(['[', ']']).to_owned());
        }
        if let Some(p) = port {
            pairs.insert("port".into(), p.to_owned());
        }
        if !db.is_empty() {
            pairs.insert("dbname".into(), db.to_owned());
        }
        for kv in query.split('&').filter(|s| !s.is_empty()) {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            pairs.insert(k.to_owned(), v.to_owned());
        }
    } else {
        for word in address.split_whitespace() {
            let Some((k, v)) = word.split_once('=') else {
                bail!("address: {word:?} is not key=value");
            };
            pairs.insert(k.to_owned(), v.trim_matches('\'').to_owned());
        }
    }
    Ok(pairs)
}
