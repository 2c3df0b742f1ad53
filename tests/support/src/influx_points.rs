//! What a real `influxd` stored, in a form tests compare: every point of
//! every measurement of a database as (measurement, tags, time, fields),
//! numbers compared by value.

use std::collections::{BTreeMap, BTreeSet};

use crate::servers::InfluxD;

/// One point: name, tags (empty ones left out), time, fields as text.
pub type Point = (
    String,
    BTreeMap<String, String>,
    i64,
    BTreeMap<String, String>,
);

/// A field value as text; numbers by value (InfluxDB prints 3.0 as 3).
pub fn norm(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Number(n) => format!("{:?}", n.as_f64().unwrap_or(f64::NAN)),
        other => other.to_string(),
    }
}

/// Every point of every measurement in `db`, through `/query`.
pub fn stored_points(influx: &InfluxD, db: &str) -> BTreeSet<Point> {
    let v = influx.query(db, "SELECT * FROM /.*/ GROUP BY *");
    let mut points = BTreeSet::new();
    for s in v["results"][0]["series"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let name = s["name"].as_str().unwrap_or_default().to_owned();
        let tags: BTreeMap<String, String> = s["tags"]
            .as_object()
            .map(|o| {
                o.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                    .filter(|(_, v)| !v.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let columns: Vec<String> = s["columns"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| c.as_str().unwrap_or_default().to_owned())
            .collect();
        for row in s["values"].as_array().into_iter().flatten() {
            let Some(row) = row.as_array() else { continue };
            let time = row[0].as_i64().unwrap_or_default();
            let fields = columns[1..]
                .iter()
                .zip(&row[1..])
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), norm(v)))
                .collect();
            points.insert((name.clone(), tags.clone(), time, fields));
        }
    }
    points
}
