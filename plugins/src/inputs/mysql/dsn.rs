//! The Go MySQL driver's DSN, as Telegraf's `servers` holds it:
//! `[user[:password]@][net[(addr)]]/[dbname][?param=value&...]`, read the
//! way go-sql-driver's `ParseDSN` reads it, and the `server` tag Telegraf
//! derives from it (the address only: never the user or password).

use std::time::Duration;

use anyhow::{Result, bail};

/// How TLS is asked for by the DSN's `tls` parameter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Tls {
    /// `tls=false` or none (`preferred` too: graft does not fall back).
    Off,
    /// `tls=true`: verified against the system's roots.
    Verified,
    /// `tls=skip-verify`: encrypted, not authenticated.
    SkipVerify,
    /// `tls=custom`: the plugin's TLS keys.
    Custom,
}

/// A parsed DSN.
#[derive(Debug, Clone, PartialEq)]
pub struct Dsn {
    pub user: String,
    pub password: String,
    /// `tcp` or `unix`.
    pub net: String,
    /// `host:port` or a socket path.
    pub addr: String,
    pub dbname: String,
    pub tls: Tls,
    /// `timeout` (default 5 s, as Telegraf sets it).
    pub timeout: Duration,
}

impl Dsn {
    /// Parse `dsn`. The error never repeats the DSN (it may hold a password).
    pub fn parse(dsn: &str) -> Result<Self> {
        let mut d = Dsn {
            user: String::new(),
            password: String::new(),
            net: String::new(),
            addr: String::new(),
            dbname: String::new(),
            tls: Tls::Off,
            timeout: Duration::from_secs(5),
        };
        let Some(slash) = dsn.rfind('/') else {
            if dsn.is_empty() {
                return d.normalized();
            }
            bail!("invalid DSN: missing the slash separating the database name");
        };
        let left = &dsn[..slash];
        let right = &dsn[slash + 1..];
        if !left.is_empty() {
            let (creds, net_addr) = match left.rfind('@') {
                Some(at) => (Some(&left[..at]), &left[at + 1..]),
                None => (None, left),
            };
            if let Some(creds) = creds {
                match creds.split_once(':') {
                    Some((u, p)) => {
                        d.user = u.to_owned();
                        d.password = p.to_owned();
                    }
                    None => d.user = creds.to_owned(),
                }
            }
            match net_addr.find('(') {
                Some(open) => {
                    let Some(addr) = net_addr[open + 1..].strip_suffix(')') else {
                        bail!(
                            "invalid DSN: the network address is not terminated (missing closing brace)"
                        );
                    };
                    d.net = net_addr[..open].to_owned();
                    d.addr = addr.to_owned();
                }
                None => d.net = net_addr.to_owned(),
            }
        }
        let (db, params) = right.split_once('?').unwrap_or((right, ""));
        d.dbname = db.to_owned();
        for kv in params.split('&').filter(|s| !s.is_empty()) {
            let Some((k, v)) = kv.split_once('=') else {
                bail!("invalid DSN: parameter {kv:?} has no value");
            };
            match k {
                "tls" => {
                    d.tls = match v.to_ascii_lowercase().as_str() {
                        "false" | "0" | "preferred" => Tls::Off,
                        "true" | "1" => Tls::Verified,
                        "skip-verify" => Tls::SkipVerify,
                        _ => Tls::Custom,
                    }
                }
                "timeout" => {
                    d.timeout = crate::duration::parse_duration(v)
                        .map_err(|e| anyhow::anyhow!("invalid DSN: timeout={v:?}: {e}"))?;
                }
                // charset, parseTime, loc, readTimeout, allowNativePasswords...:
                // the driver's own knobs, without meaning here.
                _ => {}
            }
        }
        d.normalized()
    }

    fn normalized(mut self) -> Result<Self> {
        if self.net.is_empty() {
            "tcp".clone_into(&mut self.net);
        }
        match self.net.as_str() {
            "tcp" | "tcp4" | "tcp6" => {
                if self.addr.is_empty() {
                    "127.0.0.1:3306".clone_into(&mut self.addr);
                } else if split_host_port(&self.addr).is_none() {
                    self.addr = if self.addr.contains(':') {
                        format!("[{}]:3306", self.addr.trim_matches(['[', ']']))
                    } else {
                        format!("{}:3306", self.addr)
                    };
                }
            }
            "unix" => {
                if self.addr.is_empty() {
                    "/tmp/mysql.sock".clone_into(&mut self.addr);
                }
            }
            other => bail!("invalid DSN: network {other:?} (tcp or unix)"),
        }
        Ok(self)
    }

    /// Host and port of a TCP address.
    pub fn host_port(&self) -> Option<(String, u16)> {
        split_host_port(&self.addr)
    }

    /// Telegraf's `server` tag: the address (`127.0.0.1:3306`, or the
    /// socket path).
    pub fn server_tag(&self) -> &str {
        &self.addr
    }
}

/// `host:port` or `[v6]:port`.
fn split_host_port(addr: &str) -> Option<(String, u16)> {
    let (host, port) = addr.rsplit_once(':')?;
    if host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) {
        return None;
    }
    Some((host.trim_matches(['[', ']']).to_owned(), port.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dsns_read_as_the_go_driver_reads_them() {
        let d = Dsn::parse("user:p@ss:w/rd@tcp(127.0.0.1:3307)/?tls=false").unwrap();
        assert_eq!(
            (d.user.as_str(), d.password.as_str()),
            ("user", "p@ss:w/rd")
        );
        assert_eq!((d.net.as_str(), d.server_tag()), ("tcp", "127.0.0.1:3307"));
        assert_eq!(d.host_port(), Some(("127.0.0.1".into(), 3307)));
        let d = Dsn::parse("tcp(127.0.0.1:3306)/").unwrap();
        assert_eq!((d.user.as_str(), d.server_tag()), ("", "127.0.0.1:3306"));
        assert_eq!(Dsn::parse("").unwrap().server_tag(), "127.0.0.1:3306");
        assert_eq!(
            Dsn::parse("u@tcp(db.example)/app").unwrap().server_tag(),
            "db.example:3306"
        );
        assert_eq!(
            Dsn::parse("u@tcp([::1]:3306)/").unwrap().host_port(),
            Some(("::1".into(), 3306))
        );
        let d =
            Dsn::parse("root@unix(/run/mysqld/mysqld.sock)/?timeout=2s&tls=skip-verify").unwrap();
        assert_eq!(
            (d.net.as_str(), d.server_tag()),
            ("unix", "/run/mysqld/mysqld.sock")
        );
        assert_eq!(
            (d.timeout, d.tls),
            (Duration::from_secs(2), Tls::SkipVerify)
        );
        assert_eq!(
            Dsn::parse("u@tcp(h:1)/?tls=custom").unwrap().tls,
            Tls::Custom
        );
        let e = Dsn::parse("secretpw@tcp(h:1)").unwrap_err().to_string();
        assert!(e.contains("slash") && !e.contains("secretpw"), "{e}");
        assert!(Dsn::parse("u@tcp(h:1/").is_err());
        assert!(Dsn::parse("u@udp(h:1)/").is_err());
    }
}
