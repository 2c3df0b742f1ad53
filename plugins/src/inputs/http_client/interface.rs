//! A network interface's addresses, asked of the kernel over rtnetlink
//! (`RTM_GETADDR`), so that a client can connect from the interface's
//! address as Telegraf's `interface` key does.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use anyhow::{Context, Result, bail};
use rustix::net::netlink::SocketAddrNetlink;
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketType};

const RTM_NEWADDR: u16 = 20;
const RTM_GETADDR: u16 = 22;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_DUMP: u16 = 0x300;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
/// `nlmsghdr` and `ifaddrmsg`.
const HEADER: usize = 16;
const IFADDRMSG: usize = 8;

/// The addresses of the interface `name`, in the kernel's order; an
/// error when there is no such interface.
pub fn addresses(name: &str) -> Result<Vec<IpAddr>> {
    let index = index(name)?;
    let socket = rustix::net::socket(AddressFamily::NETLINK, SocketType::RAW, None)
        .context("opening a netlink socket")?;
    let mut request = Vec::with_capacity(HEADER + IFADDRMSG);
    request.extend_from_slice(&((HEADER + IFADDRMSG) as u32).to_ne_bytes());
    request.extend_from_slice(&RTM_GETADDR.to_ne_bytes());
    request.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    request.extend_from_slice(&1u32.to_ne_bytes());
    request.extend_from_slice(&0u32.to_ne_bytes());
    request.extend_from_slice(&[0u8; IFADDRMSG]);
    rustix::net::sendto(
        &socket,
        &request,
        SendFlags::empty(),
        &SocketAddrNetlink::new(0, 0),
    )
    .context("asking the kernel for the addresses")?;
    let mut found = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let (n, _) = rustix::net::recv(&socket, &mut buf[..], RecvFlags::empty())
            .context("reading the kernel's addresses")?;
        if parse(&buf[..n], index, &mut found)? {
            return Ok(found);
        }
    }
}

/// The interface's index, from sysfs.
fn index(name: &str) -> Result<u32> {
    let path = crate::inputs::sys_path("class/net").join(name);
    if name.is_empty() || name.contains('/') {
        bail!("no network interface named {name:?}");
    }
    let text = std::fs::read_to_string(path.join("ifindex"))
        .map_err(|_| anyhow::anyhow!("no network interface named {name:?}"))?;
    text.trim()
        .parse()
        .with_context(|| format!("{name:?}: reading its ifindex"))
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Read one datagram of netlink messages, adding the addresses of the
/// interface `index` to `found`; true once the dump is done.
fn parse(mut b: &[u8], index: u32, found: &mut Vec<IpAddr>) -> Result<bool> {
    while b.len() >= HEADER {
        let len = u32_at(b, 0) as usize;
        if len < HEADER || len > b.len() {
            bail!("a malformed netlink message");
        }
        let message = &b[..len];
        b = &b[len.next_multiple_of(4).min(b.len())..];
        match u16_at(message, 4) {
            NLMSG_DONE => return Ok(true),
            NLMSG_ERROR => bail!("the kernel refused to list the addresses"),
            RTM_NEWADDR if message.len() >= HEADER + IFADDRMSG => {
                let family = message[HEADER];
                if u32_at(message, HEADER + 4) == index {
                    found.extend(address(family, &message[HEADER + IFADDRMSG..]));
                }
            }
            _ => {}
        }
    }
    Ok(false)
}

/// The address in an `RTM_NEWADDR`'s attributes: `IFA_LOCAL` when there is
/// one (the local end of a point-to-point link), else `IFA_ADDRESS`.
fn address(family: u8, mut attributes: &[u8]) -> Option<IpAddr> {
    let (mut local, mut address) = (None, None);
    while attributes.len() >= 4 {
        let len = usize::from(u16_at(attributes, 0));
        if len < 4 || len > attributes.len() {
            break;
        }
        let data = &attributes[4..len];
        let ip = match (family, data.len()) {
            (2, 4) => Some(IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(data).ok()?))),
            (10, 16) => Some(IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(data).ok()?))),
            _ => None,
        };
        match u16_at(attributes, 2) {
            IFA_LOCAL => local = ip,
            IFA_ADDRESS => address = ip,
            _ => {}
        }
        attributes = &attributes[len.next_multiple_of(4).min(attributes.len())..];
    }
    local.or(address)
}

/// The address of the interface `name` to connect to `url`'s host from:
/// an IPv6 one for an IPv6 literal, an IPv4 one otherwise (Telegraf's
/// rule, host names included).
pub fn local_address_for(name: &str, url: &reqwest::Url) -> Result<IpAddr> {
    let v6 = url.host_str().is_some_and(|h| h.starts_with('['));
    let addresses = addresses(name)?;
    addresses
        .into_iter()
        .find(|a| a.is_ipv6() == v6)
        .with_context(|| {
            format!(
                "{name:?} has no {} address to reach {url}",
                if v6 { "IPv6" } else { "IPv4" }
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loopback_has_its_addresses_and_an_unknown_interface_none() {
        let lo = addresses("lo").unwrap();
        assert!(lo.contains(&IpAddr::V4(Ipv4Addr::LOCALHOST)), "{lo:?}");
        let url = reqwest::Url::parse("http://localhost:8080/").unwrap();
        assert_eq!(
            local_address_for("lo", &url).unwrap(),
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        );
        assert!(addresses("graft-no-such0").is_err());
        assert!(addresses("../lo").is_err());
    }
}
