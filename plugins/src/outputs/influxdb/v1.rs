//! InfluxDB 1.x's write API as `outputs.influxdb` speaks it: the request
//! (`db`, `rp`, `consistency`, basic auth), what each answer means for the
//! metrics, and `CREATE DATABASE` when a write finds the database missing.

use std::collections::HashSet;
use std::sync::Mutex;

use super::SEP;
use crate::http;
use crate::outputs::influx_http::{Endpoint, Reply, error_chain};

/// InfluxDB 1.x's write API.
pub(super) struct V1 {
    pub consistency: Option<String>,
    pub username: String,
    pub password: String,
    pub skip_database_creation: bool,
    /// Databases created (or found) at `url\ndb`.
    pub created: Mutex<HashSet<String>>,
}

impl V1 {
    fn auth(&self, r: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        if self.username.is_empty() && self.password.is_empty() {
            r
        } else {
            r.basic_auth(&self.username, Some(&self.password))
        }
    }
}

fn split_target(target: &str) -> (&str, &str) {
    target.split_once(SEP).unwrap_or((target, ""))
}

/// `"name"` with `"` and `\` escaped, for InfluxQL.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
}

impl Endpoint for V1 {
    fn request(
        &self,
        client: &reqwest::Client,
        url: &str,
        target: &str,
        body: Vec<u8>,
        encoding: Option<&'static str>,
    ) -> reqwest::RequestBuilder {
        let (db, rp) = split_target(target);
        let mut query = vec![("db", db)];
        if !rp.is_empty() {
            query.push(("rp", rp));
        }
        if let Some(c) = &self.consistency {
            query.push(("consistency", c));
        }
        let mut r = client
            .post(format!("{}/write", url.trim_end_matches('/')))
            .query(&query)
            .header("Content-Type", "text/plain; charset=utf-8")
            .body(body);
        if let Some(e) = encoding {
            r = r.header("Content-Encoding", e);
        }
        self.auth(r)
    }

    fn classify(&self, status: u16, headers: &reqwest::header::HeaderMap, body: &str) -> Reply {
        let message = http::server_error(headers, body);
        match status {
            200..=299 => Reply::Written,
            413 => Reply::TooLarge,
            401 => Reply::Unavailable(format!(
                "401 unauthorized: {message}; check username and password (metrics are kept)"
            )),
            403 => Reply::Unavailable(format!(
                "403 forbidden: {message}; the user may not write to this database (metrics are kept)"
            )),
            _ if message.contains("database not found") => Reply::NotFound(format!(
                "{status}: {message}{}",
                if self.skip_database_creation {
                    " (skip_database_creation is set: create it, or unset that option)"
                } else {
                    ""
                }
            )),
            400 if message.contains("partial write") || message.contains("unable to parse") => {
                Reply::Partial {
                    bad_lines: unparsable_lines(&message),
                    dropped: dropped_count(&message),
                    message,
                }
            }
            404 => Reply::Unavailable(format!(
                "404 not found: {message}; is this URL an InfluxDB 1.x server? (metrics are kept)"
            )),
            503 | 429 => Reply::Throttle {
                message: format!("{status}: {message}"),
                retry_after: http::retry_after(headers),
            },
            400..=499 => Reply::Reject(format!("{status}: {message}")),
            _ => Reply::Unavailable(format!("{status}: {message}")),
        }
    }

    async fn create_target(&self, client: &reqwest::Client, url: &str, target: &str) -> bool {
        let (db, _) = split_target(target);
        if self.skip_database_creation {
            return false;
        }
        let key = format!("{url}\n{db}");
        if self
            .created
            .lock()
            .map(|c| c.contains(&key))
            .unwrap_or(false)
        {
            // Created before and missing again: someone dropped it; create
            // it again below.
            tracing::info!(
                %url,
                database = db,
                "database missing again; creating it again"
            );
        }
        let q = format!("CREATE DATABASE {}", quote_ident(db));
        let r = self.auth(
            client
                .post(format!("{}/query", url.trim_end_matches('/')))
                .query(&[("q", q.as_str())]),
        );
        match r.send().await {
            Ok(resp) if resp.status().is_success() => {
                let text = resp.text().await.unwrap_or_default();
                if text.contains("\"error\"") {
                    tracing::warn!(
                        %url,
                        database = db,
                        error = http::server_error(&Default::default(), &text),
                        "creating the database failed; the metrics are kept"
                    );
                    return false;
                }
                if let Ok(mut c) = self.created.lock() {
                    c.insert(key);
                }
                tracing::info!(%url, database = db, "database created (or already there)");
                true
            }
            Ok(resp) => {
                let status = resp.status().as_u16();
                let headers = resp.headers().clone();
                let text = resp.text().await.unwrap_or_default();
                let error = http::server_error(&headers, &text);
                if status == 401 || status == 403 {
                    tracing::warn!(
                        %url,
                        database = db,
                        status,
                        %error,
                        "creating the database was refused; the metrics are kept (the user needs admin rights, or set skip_database_creation = true)"
                    );
                } else {
                    tracing::warn!(
                        %url,
                        database = db,
                        status,
                        %error,
                        "creating the database failed; the metrics are kept"
                    );
                }
                false
            }
            Err(e) => {
                tracing::warn!(
                    %url,
                    database = db,
                    error = error_chain(&e),
                    "creating the database failed; the metrics are kept"
                );
                false
            }
        }
    }
}

/// The lines InfluxDB 1.x quotes in `unable to parse '<line>': <reason>`.
fn unparsable_lines(message: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut rest = message;
    while let Some(at) = rest.find("unable to parse '") {
        rest = &rest[at + "unable to parse '".len()..];
        // The line ends at the last `': ` before the next report.
        let next = rest.find("unable to parse '").unwrap_or(rest.len());
        if let Some(end) = rest[..next].rfind("': ") {
            lines.push(rest[..end].to_owned());
        }
        rest = &rest[next..];
    }
    lines
}

/// The `dropped=N` count of a partial write.
fn dropped_count(message: &str) -> usize {
    message
        .rfind("dropped=")
        .map(|at| &message[at + "dropped=".len()..])
        .and_then(|s| {
            s[..s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len())]
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_influxdb_partial_write_messages() {
        let m = "partial write: unable to parse 'bad line 1': invalid field format\nunable to parse 'x,a=\\'b\\' y=': missing fields dropped=0";
        assert_eq!(unparsable_lines(m), vec!["bad line 1", "x,a=\\'b\\' y="]);
        assert_eq!(dropped_count(m), 0);
        let m = "partial write: field type conflict: input field \"v\" on measurement \"m\" is type float, already exists as type integer dropped=3";
        assert!(unparsable_lines(m).is_empty());
        assert_eq!(dropped_count(m), 3);
    }
}
