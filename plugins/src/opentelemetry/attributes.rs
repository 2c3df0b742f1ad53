//! OTLP attribute values as the tag strings Telegraf makes of them
//! (pdata's `Value.AsString`), and the tag keys that go back to an OTLP
//! resource (the semantic conventions' resource attributes, v1.16, as
//! influxdb-observability's `ResourceNamespace` matches them).

use base64::Engine as _;

use super::proto::common::{AnyValue, KeyValue, any_value::Value};

/// The text of an attribute value: strings as they are, numbers in
/// decimal, booleans `true`/`false`, bytes in base64, arrays and maps as
/// JSON; an empty value is the empty string.
pub fn value_string(v: Option<&AnyValue>) -> String {
    match v.and_then(|v| v.value.as_ref()) {
        None => String::new(),
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(f)) => double_string(*f),
        Some(Value::BytesValue(b)) => base64::engine::general_purpose::STANDARD.encode(b),
        Some(Value::StringValueStrindex(i)) => i.to_string(),
        Some(other @ (Value::ArrayValue(_) | Value::KvlistValue(_))) => {
            json(Some(other)).to_string()
        }
    }
}

/// A double as pdata writes it (ECMAScript's number to string: no
/// exponent between 1e-6 and 1e21).
fn double_string(f: f64) -> String {
    if !f.is_finite() {
        return format!("json: unsupported value: {}", super::format_bound(f));
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        // Go's 'e' format: mantissa, then e+XX / e-XX.
        let s = format!("{f:e}");
        match s.split_once('e') {
            Some((m, e)) if e.starts_with('-') => format!("{m}e-{}", &e[1..]),
            Some((m, e)) => format!("{m}e+{e}"),
            None => s,
        }
    } else {
        format!("{f}")
    }
}

fn json(v: Option<&Value>) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        None => J::Null,
        Some(Value::StringValue(s)) => J::String(s.clone()),
        Some(Value::BoolValue(b)) => J::Bool(*b),
        Some(Value::IntValue(i)) => J::from(*i),
        Some(Value::DoubleValue(f)) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        Some(Value::BytesValue(b)) => {
            J::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
        Some(Value::StringValueStrindex(i)) => J::from(*i),
        Some(Value::ArrayValue(a)) => {
            J::Array(a.values.iter().map(|v| json(v.value.as_ref())).collect())
        }
        Some(Value::KvlistValue(l)) => J::Object(
            l.values
                .iter()
                .map(|kv| {
                    let v = kv.value.as_ref().and_then(|v| v.value.as_ref());
                    (kv.key.clone(), json(v))
                })
                .collect(),
        ),
    }
}

/// A string attribute.
pub fn string_attribute(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(value.to_owned())),
        }),
        ..Default::default()
    }
}

/// The resource attributes of the semantic conventions (v1.16). A tag
/// whose key is one of them, or one of them followed by `.`-separated
/// lower-case words, goes to the OTLP resource.
const RESOURCE_ATTRIBUTES: &[&str] = &[
    "browser.brands",
    "browser.platform",
    "browser.mobile",
    "browser.user_agent",
    "browser.language",
    "cloud.provider",
    "cloud.account.id",
    "cloud.region",
    "cloud.resource_id",
    "cloud.availability_zone",
    "cloud.platform",
    "aws.ecs.container.arn",
    "aws.ecs.cluster.arn",
    "aws.ecs.launchtype",
    "aws.ecs.task.arn",
    "aws.ecs.task.family",
    "aws.ecs.task.revision",
    "aws.eks.cluster.arn",
    "aws.log.group.names",
    "aws.log.group.arns",
    "aws.log.stream.names",
    "aws.log.stream.arns",
    "gcp.cloud_run.job.execution",
    "gcp.cloud_run.job.task_index",
    "gcp.gce.instance.name",
    "gcp.gce.instance.hostname",
    "heroku.release.creation_timestamp",
    "heroku.release.commit",
    "heroku.app.id",
    "container.name",
    "container.id",
    "container.runtime",
    "container.image.name",
    "container.image.tag",
    "deployment.environment",
    "device.id",
    "device.model.identifier",
    "device.model.name",
    "device.manufacturer",
    "faas.name",
    "faas.version",
    "faas.instance",
    "faas.max_memory",
    "host.id",
    "host.name",
    "host.type",
    "host.arch",
    "host.image.name",
    "host.image.id",
    "host.image.version",
    "k8s.cluster.name",
    "k8s.node.name",
    "k8s.node.uid",
    "k8s.namespace.name",
    "k8s.pod.uid",
    "k8s.pod.name",
    "k8s.container.name",
    "k8s.container.restart_count",
    "k8s.replicaset.uid",
    "k8s.replicaset.name",
    "k8s.deployment.uid",
    "k8s.deployment.name",
    "k8s.statefulset.uid",
    "k8s.statefulset.name",
    "k8s.daemonset.uid",
    "k8s.daemonset.name",
    "k8s.job.uid",
    "k8s.job.name",
    "k8s.cronjob.uid",
    "k8s.cronjob.name",
    "os.type",
    "os.description",
    "os.name",
    "os.version",
    "process.pid",
    "process.parent_pid",
    "process.executable.name",
    "process.executable.path",
    "process.command",
    "process.command_line",
    "process.command_args",
    "process.owner",
    "process.runtime.name",
    "process.runtime.version",
    "process.runtime.description",
    "service.name",
    "service.namespace",
    "service.instance.id",
    "service.version",
    "telemetry.sdk.name",
    "telemetry.sdk.language",
    "telemetry.sdk.version",
    "telemetry.auto.version",
    "webengine.name",
    "webengine.version",
    "webengine.description",
];

/// Whether the tag `key` is a resource attribute.
pub fn is_resource_attribute(key: &str) -> bool {
    RESOURCE_ATTRIBUTES.iter().any(|name| {
        let Some(rest) = key.strip_prefix(name) else {
            return false;
        };
        rest.is_empty()
            || rest.strip_prefix('.').is_some_and(|rest| {
                rest.split('.').all(|w| {
                    !w.is_empty()
                        && w.bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                })
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::opentelemetry::proto::common::{ArrayValue, KeyValueList};

    fn any(v: Value) -> AnyValue {
        AnyValue { value: Some(v) }
    }

    #[test]
    fn values_read_as_pdata_writes_them() {
        let s = |v| value_string(Some(&any(v)));
        assert_eq!(s(Value::StringValue("a b".into())), "a b");
        assert_eq!(s(Value::IntValue(-42)), "-42");
        assert_eq!(s(Value::BoolValue(true)), "true");
        assert_eq!(s(Value::DoubleValue(1.5)), "1.5");
        assert_eq!(s(Value::DoubleValue(100.0)), "100");
        assert_eq!(s(Value::DoubleValue(1e21)), "1e+21");
        assert_eq!(s(Value::DoubleValue(1.5e-7)), "1.5e-7");
        assert_eq!(s(Value::BytesValue(vec![0, 1, 2])), "AAEC");
        let array = Value::ArrayValue(ArrayValue {
            values: vec![any(Value::IntValue(1)), any(Value::StringValue("x".into()))],
        });
        assert_eq!(s(array), r#"[1,"x"]"#);
        let map = Value::KvlistValue(KeyValueList {
            values: vec![string_attribute("k", "v")],
        });
        assert_eq!(s(map), r#"{"k":"v"}"#);
        assert_eq!(value_string(None), "");
    }

    #[test]
    fn resource_attributes_are_the_conventions_and_their_extensions() {
        assert!(is_resource_attribute("service.name"));
        assert!(is_resource_attribute("host.name"));
        assert!(is_resource_attribute("telemetry.sdk.language"));
        assert!(is_resource_attribute("k8s.pod.name.extra1"));
        assert!(!is_resource_attribute("service.name.Upper"));
        assert!(!is_resource_attribute("service.names"));
        assert!(!is_resource_attribute("host"));
        assert!(!is_resource_attribute("cpu"));
        assert!(!is_resource_attribute("otel.library.name"));
    }
}
