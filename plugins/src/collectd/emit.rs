//! Value lists as Telegraf's metrics: `<plugin>_<data source>` with a
//! `value` field each (split) or `<plugin>` with a field per data source
//! (join); tags `host`, `instance`, `type`, `type_instance` when set; every
//! value a float.

use graft_core::BatchBuilder;

use super::MultiValue;
use super::typesdb::{DsKind, TypesDb};
use super::values::{Report, Value, ValueList};

/// Where value lists go.
pub struct Emitter<'a> {
    pub multivalue: MultiValue,
    pub typesdb: Option<&'a TypesDb>,
    pub now_ns: i64,
    pub out: &'a mut BatchBuilder,
}

impl Emitter<'_> {
    /// Add the metrics of one value list (none when types.db lacks its
    /// type or has another number of values for it).
    pub fn value_list(&mut self, vl: &ValueList<'_>, report: &mut Report) {
        let sources = match self.typesdb {
            None => None,
            Some(db) => match db.get(vl.type_) {
                Some(s) if s.len() == vl.values.len() => Some(s),
                found => {
                    report.unknown_types += 1;
                    report.note(match found {
                        None => format!("type {:?} is not in types.db", vl.type_),
                        Some(s) => format!(
                            "type {:?} has {} data sources in types.db, the value list {}",
                            vl.type_,
                            s.len(),
                            vl.values.len()
                        ),
                    });
                    return;
                }
            },
        };
        let name_of = |i: usize| -> String {
            match sources {
                Some(s) => s[i].name.clone(),
                None if vl.values.len() == 1 => "value".to_owned(),
                None => i.to_string(),
            }
        };
        let value_of = |i: usize| -> f64 {
            let v = vl.values[i];
            match sources {
                Some(s) => convert(v, s[i].kind),
                None => as_f64(v),
            }
        };
        let time = vl.time_ns.unwrap_or(self.now_ns);
        match self.multivalue {
            MultiValue::Split => {
                for i in 0..vl.values.len() {
                    let name = format!("{}_{}", vl.plugin, name_of(i));
                    let mut m = self.out.metric(&name, time);
                    tags(&mut m, vl);
                    m.field("value", value_of(i));
                }
            }
            MultiValue::Join => {
                let mut m = self.out.metric(vl.plugin, time);
                tags(&mut m, vl);
                for i in 0..vl.values.len() {
                    m.field(&name_of(i), value_of(i));
                }
            }
        }
    }
}

fn tags(m: &mut graft_core::builder::MetricBuilder<'_>, vl: &ValueList<'_>) {
    for (key, value) in [
        ("host", vl.host),
        ("instance", vl.plugin_instance),
        ("type", vl.type_),
        ("type_instance", vl.type_instance),
    ] {
        if !value.is_empty() {
            m.tag(key, value);
        }
    }
}

fn as_f64(v: Value) -> f64 {
    match v {
        Value::Counter(x) | Value::Absolute(x) => x as f64,
        Value::Gauge(x) => x,
        Value::Derive(x) => x as f64,
    }
}

/// The value as the data source's kind would hold it (types.db says what
/// the sender should have sent; Telegraf converts to it), then a float.
fn convert(v: Value, kind: DsKind) -> f64 {
    match (kind, v) {
        // An unknown gauge (NaN) stays unknown: the field is left out.
        (_, Value::Gauge(x)) if !x.is_finite() => x,
        (DsKind::Gauge, v) => as_f64(v),
        (DsKind::Derive, Value::Gauge(x)) => (x as i64) as f64,
        (DsKind::Derive, Value::Counter(x) | Value::Absolute(x)) => (x as i64) as f64,
        (DsKind::Counter | DsKind::Absolute, Value::Gauge(x)) => (x as u64) as f64,
        (DsKind::Counter | DsKind::Absolute, Value::Derive(x)) => (x as u64) as f64,
        (_, v) => as_f64(v),
    }
}
