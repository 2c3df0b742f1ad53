//! `inputs.http_response` against a real nginx (started by the test on a
//! free loopback port): each of Telegraf's results (`success`,
//! `response_string_mismatch`, `body_read_error`, `connection_failed`,
//! `timeout`, `response_status_code_mismatch`) with its `result_code`,
//! redirects followed or not, headers, tokens and basic authentication as
//! nginx saw them, a huge body read no further than the bound, every field
//! with Telegraf's type; through the real agent, failing URLs counted and
//! logged once.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use graft_api::Input;
use graft_core::{Batch, FieldRef};
use graft_test_support::graft_agent::{Agent, internal_gather};
use graft_test_support::nginx::{Nginx, USER};
use graft_test_support::servers::{free_port, http};

/// One gathered metric: tags and fields (typed).
#[derive(Debug)]
struct M {
    tags: BTreeMap<String, String>,
    fields: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, PartialEq)]
enum Value {
    F(f64),
    I(i64),
    U(u64),
    S(String),
    B(bool),
}

fn gather_with(config: &str) -> Vec<M> {
    let mut input: Box<dyn Input> =
        graft_plugins::inputs::http_response::build(toml::from_str(config).expect("TOML"))
            .expect("http_response input");
    let batch: Batch = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(input.gather())
        .expect("gather");
    batch
        .iter()
        .map(|m| {
            assert_eq!(m.name(), "http_response");
            M {
                tags: m
                    .tags()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect(),
                fields: m
                    .fields()
                    .map(|(k, v)| {
                        let v = match v {
                            FieldRef::Float(x) => Value::F(x),
                            FieldRef::Int(x) => Value::I(x),
                            FieldRef::Uint(x) => Value::U(x),
                            FieldRef::Str(s) => Value::S(s.to_owned()),
                            FieldRef::Bool(b) => Value::B(b),
                        };
                        (k.to_owned(), v)
                    })
                    .collect(),
            }
        })
        .collect()
}

/// The single metric of a config.
fn one(config: &str) -> M {
    let mut all = gather_with(config);
    assert_eq!(all.len(), 1, "{all:?}");
    all.remove(0)
}

impl M {
    fn int(&self, k: &str) -> i64 {
        match self.fields.get(k) {
            Some(Value::I(v)) => *v,
            other => panic!("{k}: {other:?} is not an int in {self:?}"),
        }
    }

    /// `result` tag, `result_type` and `result_code` agree with Telegraf's
    /// table.
    fn assert_result(&self, result: &str, code: i64) {
        assert_eq!(self.tags["result"], result, "{self:?}");
        assert_eq!(
            self.fields["result_type"],
            Value::S(result.into()),
            "{self:?}"
        );
        assert_eq!(self.int("result_code"), code, "{self:?}");
    }
}

/// Telegraf's README: each field's type.
fn assert_schema(m: &M) {
    for (k, v) in &m.fields {
        let ok = match k.as_str() {
            "response_time" => matches!(v, Value::F(_)),
            "http_response_code"
            | "content_length"
            | "response_string_match"
            | "response_status_code_match"
            | "result_code" => matches!(v, Value::I(_)),
            "result_type" | "body" => matches!(v, Value::S(_)),
            other => panic!("field {other} is not in Telegraf's schema"),
        };
        assert!(ok, "{k}: {v:?}");
    }
    for k in m.tags.keys() {
        assert!(
            ["server", "method", "status_code", "result", "srv"].contains(&k.as_str()),
            "tag {k}"
        );
    }
}

#[test]
fn success_and_string_match_with_the_servers_own_numbers() {
    let nginx = Nginx::shared();
    let url = nginx.write_file("page.txt", b"service_status: up\nmore text\n");
    let own = http().get(&url).send().unwrap();
    let own_status = own.status().as_u16();
    let own_len = own.bytes().unwrap().len() as i64;
    let m = one(&format!(
        "urls = [\"{url}\"]\nresponse_string_match = \"status: (up|down)\"\n\
         response_status_code = 200\nhttp_header_tags = {{ X-Graft-Server = \"srv\" }}"
    ));
    assert_schema(&m);
    // With both checks on, every field of Telegraf's README is there.
    assert_eq!(
        m.fields.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "content_length",
            "http_response_code",
            "response_status_code_match",
            "response_string_match",
            "response_time",
            "result_code",
            "result_type"
        ]
    );
    m.assert_result("success", 0);
    assert_eq!(m.tags["server"], url);
    assert_eq!(m.tags["method"], "GET");
    assert_eq!(m.tags["status_code"], own_status.to_string());
    assert_eq!(m.tags["srv"], "nginx-test");
    assert_eq!(m.int("http_response_code"), i64::from(own_status));
    assert_eq!(m.int("content_length"), own_len);
    assert_eq!(m.int("response_string_match"), 1);
    assert_eq!(m.int("response_status_code_match"), 1);
    let Value::F(t) = m.fields["response_time"] else {
        panic!()
    };
    assert!(t > 0.0 && t < 5.0, "{t}");

    // From the loopback interface, by name; an unknown one is refused.
    let m = one(&format!("urls = [\"{url}\"]\ninterface = \"lo\""));
    m.assert_result("success", 0);
    let e = graft_plugins::inputs::http_response::build(
        toml::from_str("interface = \"graft-no-such0\"").unwrap(),
    )
    .err()
    .expect("an unknown interface is refused");
    assert!(format!("{e:#}").contains("interface"), "{e:#}");

    let m = one(&format!(
        "urls = [\"{url}\"]\nresponse_string_match = \"status: down\""
    ));
    assert_schema(&m);
    m.assert_result("response_string_mismatch", 1);
    assert_eq!(m.int("response_string_match"), 0);
}

#[test]
fn http_errors_are_a_success_unless_a_status_is_expected() {
    let nginx = Nginx::shared();
    let url = nginx.url("/status/404");
    let m = one(&format!("urls = [\"{url}\"]"));
    m.assert_result("success", 0);
    assert_eq!(m.tags["status_code"], "404");
    assert_eq!(m.int("http_response_code"), 404);
    assert!(!m.fields.contains_key("response_status_code_match"));
    let m = one(&format!("urls = [\"{url}\"]\nresponse_status_code = 200"));
    assert_schema(&m);
    m.assert_result("response_status_code_mismatch", 6);
    assert_eq!(m.int("response_status_code_match"), 0);
    // Both checks fail: the status code's result wins, as in Telegraf.
    let m = one(&format!(
        "urls = [\"{url}\"]\nresponse_status_code = 200\nresponse_string_match = \"^nothing$\""
    ));
    m.assert_result("response_status_code_mismatch", 6);
    assert_eq!(m.int("response_string_match"), 0);
}

#[test]
fn redirects_are_followed_only_when_asked() {
    let nginx = Nginx::shared();
    let url = nginx.url("/redirect");
    let m = one(&format!("urls = [\"{url}\"]"));
    assert_eq!(m.int("http_response_code"), 302);
    let hello = http()
        .get(nginx.url("/static/hello.txt"))
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    let m = one(&format!("urls = [\"{url}\"]\nfollow_redirects = true"));
    assert_eq!(m.int("http_response_code"), 200);
    assert_eq!(m.int("content_length"), hello.len() as i64);
    assert_eq!(m.tags["server"], url, "the tag keeps the URL as written");
}

#[test]
fn headers_tokens_body_and_basic_authentication_reach_nginx() {
    let nginx = Nginx::shared();
    let echo = nginx.url("/echo");
    let m = one(&format!(
        "urls = [\"{echo}\"]\nmethod = \"POST\"\nbody = \"a=1\"\ntoken = \"tok\"\n\
         response_body_field = \"body\"\n\
         headers = {{ X-Graft = \"hello\", Content-Type = \"application/x-www-form-urlencoded\" }}"
    ));
    assert_schema(&m);
    assert_eq!(
        m.fields["body"],
        Value::S("POST|hello|Bearer tok|application/x-www-form-urlencoded\n".into())
    );
    assert_eq!(m.tags["method"], "POST");
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "from-file\n").unwrap();
    let m = one(&format!(
        "urls = [\"{echo}\"]\nbearer_token = \"{}\"\nresponse_body_field = \"body\"",
        token.display()
    ));
    assert_eq!(
        m.fields["body"],
        Value::S("GET||Bearer from-file|\n".into())
    );

    let private = nginx.url("/private/data.txt");
    assert_eq!(
        one(&format!("urls = [\"{private}\"]")).int("http_response_code"),
        401
    );
    let m = one(&format!(
        "urls = [\"{private}\"]\nusername = \"{}\"\npassword = \"{}\"\nresponse_string_match = \"private\"",
        USER.0, USER.1
    ));
    assert_eq!(m.int("http_response_code"), 200);
    m.assert_result("success", 0);
}

#[test]
fn network_failures_are_results_without_a_response() {
    let nginx = Nginx::shared();
    // Accepts (the kernel completes the handshake) and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("http://{}/", silent.local_addr().unwrap());
    let refused = format!("http://127.0.0.1:{}/", free_port());
    // 64 KiB at 1 KiB/s: the headers come at once, the body does not.
    let slow = nginx.write_file("slow.bin", &vec![b'x'; 64 * 1024]);
    let slow = slow.replace("/static/", "/slow/");
    let start = Instant::now();
    let all = gather_with(&format!(
        "urls = [\"{silent_url}\", \"{refused}\", \"{slow}\"]\nresponse_timeout = \"1s\"\n\
         response_string_match = \"x\""
    ));
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(all.len(), 3);
    all[0].assert_result("timeout", 4);
    all[1].assert_result("connection_failed", 3);
    for m in &all[..2] {
        assert_schema(m);
        assert!(!m.tags.contains_key("status_code"), "{m:?}");
        assert!(!m.fields.contains_key("response_time"), "{m:?}");
        assert!(!m.fields.contains_key("http_response_code"), "{m:?}");
    }
    // A body cut by the timeout is a body read error, after a 200.
    all[2].assert_result("body_read_error", 2);
    assert_eq!(all[2].int("http_response_code"), 200);
    assert_eq!(all[2].int("response_string_match"), 0);
    assert!(all[2].int("content_length") < 64 * 1024);
    drop(silent);
}

#[test]
fn a_huge_body_is_read_no_further_than_the_bound() {
    let nginx = Nginx::shared();
    let url = nginx.write_file("huge.bin", &vec![b'y'; 8 * 1024 * 1024]);
    let m = one(&format!(
        "urls = [\"{url}\"]\nresponse_body_max_size = \"1MiB\"\nresponse_string_match = \"y\""
    ));
    assert_schema(&m);
    m.assert_result("body_read_error", 2);
    assert_eq!(m.int("http_response_code"), 200);
    assert_eq!(m.int("response_string_match"), 0);
    // As Telegraf, which reads one byte past the bound and stops.
    assert_eq!(m.int("content_length"), 1024 * 1024 + 1, "{m:?}");
    let m = one(&format!(
        "urls = [\"{url}\"]\nresponse_body_max_size = \"16MiB\""
    ));
    m.assert_result("success", 0);
    assert_eq!(m.int("content_length"), 8 * 1024 * 1024);
}

#[test]
fn the_agent_counts_failures_and_logs_each_failing_url_once() {
    let nginx = Nginx::shared();
    let good = nginx.url("/static/hello.txt");
    let huge = nginx.write_file("huge2.bin", &vec![b'z'; 2 * 1024 * 1024]);
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("http://{}/", silent.local_addr().unwrap());
    let refused = format!("http://127.0.0.1:{}/", free_port());
    let agent = Agent::start(&format!(
        r#"[agent]
  interval = "1s"
  flush_interval = "200ms"
  omit_hostname = true
[[inputs.http_response]]
  address = "{good}"
  urls = ["{huge}", "{silent_url}", "{refused}"]
  response_timeout = "1s"
  response_body_max_size = "1MiB"
[[inputs.internal]]
[[outputs.file]]
  files = ["{{dir}}/out.lp"]
"#
    ));
    let counters = || internal_gather(&agent.path("out.lp"), "http_response");
    let start = Instant::now();
    while counters().is_none_or(|g| g.int("requests").unwrap_or(0) < 12) {
        assert!(
            start.elapsed() < Duration::from_secs(40),
            "no three rounds: {}",
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let g = counters().unwrap();
    let requests = g.int("requests").unwrap();
    assert_eq!(requests % 4, 0, "{g:?}");
    let rounds = requests / 4;
    assert_eq!(g.int("request_errors").unwrap(), 2 * rounds, "{g:?}");
    assert_eq!(g.int("timeouts").unwrap(), rounds, "{g:?}");
    assert_eq!(g.int("body_size_limit_hits").unwrap(), rounds, "{g:?}");
    let points = agent.points("out.lp");
    let results = |server: &str| -> Vec<String> {
        points
            .iter()
            .filter(|p| p.name == "http_response" && p.tags["server"] == server)
            .map(|p| p.tags["result"].clone())
            .collect()
    };
    // The deprecated `address` is one more URL.
    for (server, result) in [
        (&good, "success"),
        (&huge, "body_read_error"),
        (&silent_url, "timeout"),
        (&refused, "connection_failed"),
    ] {
        let r = results(server);
        assert!(r.len() as i64 >= rounds, "{server}: {r:?}");
        assert!(r.iter().all(|x| x == result), "{server}: {r:?}");
    }
    let log = agent.log();
    for url in [&huge, &silent_url, &refused] {
        let n = log
            .lines()
            .filter(|l| l.contains("endpoint failed;") && l.contains(url.as_str()))
            .count();
        assert_eq!(n, 1, "{url}:\n{log}");
    }
    drop(silent);
}
