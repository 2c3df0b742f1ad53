//! Test guest: a processor that misbehaves on command. The measurement name
//! of a batch's first metric says how: `panic`, `loop` (forever), `grow`
//! (allocate until memory runs out), `fail` (return an error); anything else
//! passes. It counts its calls, so a test can tell a fresh instance.

use graft_sdk::{Batch, FromConfig, PluginError, Processor};

struct Faulty {
    calls: u64,
    hoard: Vec<Vec<u8>>,
}

impl FromConfig for Faulty {
    type Config = serde::de::IgnoredAny;

    fn from_config(_: serde::de::IgnoredAny) -> Result<Self, PluginError> {
        Ok(Faulty {
            calls: 0,
            hoard: Vec::new(),
        })
    }
}

impl Processor for Faulty {
    fn process(&mut self, mut batch: Batch) -> Result<Batch, PluginError> {
        self.calls += 1;
        let command = if batch.is_empty() {
            ""
        } else {
            batch.get(0).name()
        };
        match command {
            "panic" => panic!("asked to panic on call {}", self.calls),
            "loop" => {
                let mut x: u64 = 0;
                loop {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            }
            "grow" => loop {
                self.hoard.push(vec![1u8; 1 << 20]);
            },
            "fail" => Err(PluginError::new(format!(
                "asked to fail on call {}",
                self.calls
            ))),
            _ => {
                batch.set_tag("calls", &self.calls.to_string());
                Ok(batch)
            }
        }
    }
}

graft_sdk::export_processor!(Faulty);
