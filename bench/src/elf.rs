//! The section table of a 64-bit little-endian ELF file: just enough to
//! say which section a resident page of a program belongs to.

use std::path::Path;

use anyhow::{Context, Result, bail};

/// One allocated section: its name and where it is loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub name: String,
    pub addr: u64,
    pub size: u64,
}

/// The sections of `path` that occupy memory when it runs.
pub fn sections(path: &Path) -> Result<Vec<Section>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    parse(&bytes).with_context(|| format!("{} is not an ELF file this reads", path.display()))
}

fn parse(b: &[u8]) -> Result<Vec<Section>> {
    if b.len() < 64 || &b[..4] != b"\x7fELF" || b[4] != 2 || b[5] != 1 {
        bail!("not a 64-bit little-endian ELF file");
    }
    let shoff = u64_at(b, 0x28)? as usize;
    let shentsize = u16_at(b, 0x3a)? as usize;
    let shnum = u16_at(b, 0x3c)? as usize;
    let shstrndx = u16_at(b, 0x3e)? as usize;
    let header = |i: usize| shoff + i * shentsize;
    let names_at = u64_at(b, header(shstrndx) + 0x18)? as usize;
    let mut out = Vec::new();
    for i in 0..shnum {
        let h = header(i);
        let flags = u64_at(b, h + 0x08)?;
        let addr = u64_at(b, h + 0x10)?;
        let size = u64_at(b, h + 0x20)?;
        const SHF_ALLOC: u64 = 2;
        if flags & SHF_ALLOC == 0 || size == 0 {
            continue;
        }
        let name_off = names_at + u32_at(b, h)? as usize;
        let name = b
            .get(name_off..)
            .and_then(|s| s.split(|&c| c == 0).next())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .unwrap_or_default();
        out.push(Section { name, addr, size });
    }
    Ok(out)
}

fn field<const N: usize>(b: &[u8], at: usize) -> Result<[u8; N]> {
    b.get(at..at + N)
        .and_then(|s| s.try_into().ok())
        .context("truncated ELF file")
}

fn u16_at(b: &[u8], at: usize) -> Result<u16> {
    Ok(u16::from_le_bytes(field(b, at)?))
}

fn u32_at(b: &[u8], at: usize) -> Result<u32> {
    Ok(u32::from_le_bytes(field(b, at)?))
}

fn u64_at(b: &[u8], at: usize) -> Result<u64> {
    Ok(u64::from_le_bytes(field(b, at)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_test_binary() {
        let exe = std::env::current_exe().unwrap();
        let s = sections(&exe).unwrap();
        let text = s.iter().find(|s| s.name == ".text").expect(".text");
        assert!(text.size > 0);
        assert!(s.iter().all(|s| s.name != ".debug_info"));
    }

    #[test]
    fn refuses_what_is_not_elf() {
        assert!(parse(b"#!/bin/sh\n").is_err());
        let mut b = vec![0u8; 64];
        b[..6].copy_from_slice(b"\x7fELF\x02\x01");
        b[0x28] = 200; // section headers past the end
        b[0x3c] = 1;
        assert!(parse(&b).is_err());
    }
}
