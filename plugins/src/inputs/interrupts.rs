//! `inputs.interrupts`: `$HOST_PROC/interrupts` as `interrupts` and
//! `$HOST_PROC/softirqs` as `soft_interrupts`, one metric per IRQ (tags
//! `irq`, `type`, `device`; int fields `CPU0`, `CPU1`, ... and `total`) or,
//! with `cpu_as_tag = true`, one per IRQ and CPU (tag `cpu`, field
//! `count`), as Telegraf reads them. IRQs are chosen with the host's
//! `tagpass`/`tagdrop` on `irq`.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use async_trait::async_trait;
use graft_api::{CallError, Input};
use graft_core::{Batch, BatchBuilder};
use serde::Deserialize;

use super::{now_ns, proc_path};
use crate::builtin::{self, Builtin};

/// `[[inputs.interrupts]]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `cpu_as_tag` (default false): a metric per CPU with a `cpu` tag and
    /// a `count` field, instead of a `CPU<n>` field per CPU.
    #[serde(default)]
    pub cpu_as_tag: bool,
}

/// The `interrupts` input.
pub struct Interrupts {
    cpu_as_tag: bool,
    /// `$HOST_PROC/interrupts` and `$HOST_PROC/softirqs`.
    files: [(&'static str, PathBuf); 2],
}

/// Build from the plugin's table.
pub fn build(table: toml::Table) -> Result<Box<dyn Input>> {
    builtin::build::<Interrupts>(table)
}

impl Builtin for Interrupts {
    const NAME: &'static str = "interrupts";
    type Config = Config;
    type Plugin = dyn Input;

    fn build(config: Config) -> Result<Box<dyn Input>> {
        Ok(Box::new(Interrupts::new(
            &config,
            proc_path("interrupts"),
            proc_path("softirqs"),
        )))
    }
}

/// One line of the file: an IRQ and its counts per CPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Irq {
    pub id: String,
    pub type_: String,
    pub device: String,
    pub cpus: Vec<i64>,
}

impl Interrupts {
    /// Read `interrupts` and `softirqs` (files in `/proc`'s format).
    pub fn new(config: &Config, interrupts: PathBuf, softirqs: PathBuf) -> Self {
        Self {
            cpu_as_tag: config.cpu_as_tag,
            files: [("interrupts", interrupts), ("soft_interrupts", softirqs)],
        }
    }

    /// One sample, stamped `ts`. A file that cannot be read fails the
    /// gather after the other file's metrics are taken.
    pub fn sample(&self, ts: i64) -> (Batch, Option<anyhow::Error>) {
        let mut b = BatchBuilder::new();
        let mut error = None;
        for (measurement, path) in &self.files {
            let irqs = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))
                .and_then(|text| parse(&text).with_context(|| format!("{}", path.display())));
            match irqs {
                Ok(irqs) => self.add(&mut b, measurement, &irqs, ts),
                Err(e) => error = Some(e),
            }
        }
        (b.finish(), error)
    }

    fn add(&self, b: &mut BatchBuilder, measurement: &str, irqs: &[Irq], ts: i64) {
        let tags = |m: &mut graft_core::MetricBuilder<'_>, irq: &Irq| {
            m.tag("irq", &irq.id);
            for (key, value) in [("type", &irq.type_), ("device", &irq.device)] {
                if !value.is_empty() {
                    m.tag(key, value);
                }
            }
        };
        for irq in irqs {
            if self.cpu_as_tag {
                for (cpu, count) in irq.cpus.iter().enumerate() {
                    let mut m = b.metric(measurement, ts);
                    tags(&mut m, irq);
                    m.tag("cpu", &format!("cpu{cpu}")).field("count", *count);
                }
            } else {
                let mut m = b.metric(measurement, ts);
                tags(&mut m, irq);
                for (cpu, count) in irq.cpus.iter().enumerate() {
                    m.field(&format!("CPU{cpu}"), *count);
                }
                // Saturating: counts near i64::MAX (odd or forged /proc
                // content) must not panic the sum.
                let total = irq.cpus.iter().fold(0i64, |t, c| t.saturating_add(*c));
                m.field("total", total);
            }
        }
    }
}

/// Parse `/proc/interrupts` or `/proc/softirqs`: a header of `CPU<n>`
/// columns, then `id: counts... [type [device]]` lines. A line with a
/// count that is not a number is skipped, as Telegraf skips it.
pub fn parse(text: &str) -> Result<Vec<Irq>> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    if header.first() != Some(&"CPU0") {
        bail!("the first line does not start with CPU0");
    }
    let ncpu = header.len();
    let mut irqs = Vec::new();
    'lines: for line in lines {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(id) = fields.first().and_then(|f| f.strip_suffix(':')) else {
            continue;
        };
        let mut cpus = Vec::with_capacity(ncpu);
        for v in fields[1..].iter().take(ncpu) {
            match v.parse::<i64>() {
                Ok(n) => cpus.push(n),
                Err(_) => continue 'lines,
            }
        }
        let (type_, device) = if id.parse::<i64>().is_ok() && fields.len() >= ncpu + 2 {
            (fields[ncpu + 1].to_owned(), fields[ncpu + 2..].join(" "))
        } else if fields.len() > ncpu {
            (fields[ncpu + 1..].join(" "), String::new())
        } else {
            (String::new(), String::new())
        };
        irqs.push(Irq {
            id: id.to_owned(),
            type_,
            device,
            cpus,
        });
    }
    Ok(irqs)
}

#[async_trait]
impl Input for Interrupts {
    async fn gather(&mut self) -> Result<Batch, CallError> {
        match self.sample(now_ns()) {
            (batch, None) => Ok(batch),
            // One file read: keep its metrics, as Telegraf does.
            (batch, Some(e)) if !batch.is_empty() => {
                tracing::warn!(error = %format!("{e:#}"), "one of the interrupt files could not be read");
                Ok(batch)
            }
            (_, Some(e)) => Err(super::failed(e)),
        }
    }
}

#[cfg(test)]
mod tests;
