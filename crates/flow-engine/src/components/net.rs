//! Outbound network guard: which destination addresses are refused unless private networks
//! are allowed, and a DNS resolver for `reqwest` that enforces it at connect time (so a name
//! cannot be re-pointed to a private address between the check and the connection).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Whether `ip` is loopback, private, link-local, unspecified, shared (CGNAT), broadcast,
/// multicast, reserved or otherwise not a public destination. An IPv6 address that embeds an
/// IPv4 one is judged by the IPv4 address it reaches: IPv4-mapped (`::ffff:0:0/96`),
/// IPv4-translated (`::ffff:0:0:0/96`), NAT64 well-known prefix (`64:ff9b::/96`), 6to4
/// (`2002::/16`) and Teredo (`2001::/32`, its client). The deprecated IPv4-compatible
/// range (`::/96`, which holds `::` and `::1` too) and the local-use NAT64 prefix
/// (`64:ff9b:1::/48`, translated as the local network decides) are refused whole.
pub fn is_forbidden_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Embedded::V4(v4) => forbidden_v4(v4),
            Embedded::Refused => true,
            Embedded::Plain => forbidden_v6(v6),
        },
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || a == 0
        || a >= 240 // reserved 240.0.0.0/4
        || (a == 100 && (64..128).contains(&b)) // shared 100.64.0.0/10
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments 192.0.0.0/24
        || (a == 198 && (b == 18 || b == 19)) // benchmarking 198.18.0.0/15
}

fn forbidden_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (first & 0xffc0) == 0xfec0 // deprecated site-local fec0::/10
}

/// What an IPv6 address says about an IPv4 address inside it.
enum Embedded {
    /// It reaches this IPv4 address.
    V4(Ipv4Addr),
    /// It is of a translation range refused whatever it embeds.
    Refused,
    /// A plain IPv6 address.
    Plain,
}

fn embedded_v4(ip: Ipv6Addr) -> Embedded {
    let o = ip.octets();
    let last_32 = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    match ip.segments() {
        // IPv4-mapped ::ffff:a.b.c.d, and IPv4-translated ::ffff:0:a.b.c.d (SIIT)
        [0, 0, 0, 0, 0, 0xffff, _, _] | [0, 0, 0, 0, 0xffff, 0, _, _] => Embedded::V4(last_32),
        // IPv4-compatible ::a.b.c.d (deprecated), with :: and ::1
        [0, 0, 0, 0, 0, 0, _, _] => Embedded::Refused,
        // NAT64 well-known prefix 64:ff9b::a.b.c.d
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Embedded::V4(last_32),
        // NAT64 local-use prefix 64:ff9b:1::/48
        [0x64, 0xff9b, 1, ..] => Embedded::Refused,
        // 6to4 2002:a.b.c.d::/48
        [0x2002, ..] => Embedded::V4(Ipv4Addr::new(o[2], o[3], o[4], o[5])),
        // Teredo 2001:0::/32: the client's address, inverted, in the last 32 bits
        [0x2001, 0, ..] => Embedded::V4(!last_32),
        _ => Embedded::Plain,
    }
}

/// The error a refused destination produces.
#[derive(Debug, Clone)]
pub(crate) struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "destination {} is a private, loopback or link-local address", self.0)
    }
}

impl std::error::Error for Refused {}

/// Resolves `host` and fails with [`Refused`] when any of its addresses is forbidden.
pub(crate) async fn resolve_checked(
    host: &str,
    port: u16,
) -> Result<Vec<SocketAddr>, Box<dyn std::error::Error + Send + Sync>> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port)).await?.collect();
    if let Some(bad) = addrs.iter().find(|a| is_forbidden_address(a.ip())) {
        return Err(Box::new(Refused(format!("{host} ({})", bad.ip()))));
    }
    Ok(addrs)
}

/// A `reqwest` resolver refusing forbidden addresses.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GuardedResolver;

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs = resolve_checked(&host, 0).await?;
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every form of a non-public destination, IPv4 and IPv6, including each IPv6 form that
    /// embeds an IPv4 address.
    const REFUSED: &[&str] = &[
        // IPv4
        "127.0.0.1",
        "127.255.255.254",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "0.0.0.0",
        "0.1.2.3",
        "100.64.0.1",
        "100.127.255.254",
        "192.0.0.1",
        "198.18.0.1",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        // IPv6
        "::1",
        "::",
        "fc00::1",
        "fd12::1",
        "fe80::1",
        "fec0::1",
        "ff02::1",
        // IPv4-mapped ::ffff:0:0/96
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "::ffff:0.0.0.0",
        "::ffff:0:127.0.0.1",
        // IPv4-compatible ::/96, whatever it embeds
        "::127.0.0.1",
        "::10.0.0.1",
        "::8.8.8.8",
        "::0.0.0.2",
        // NAT64 well-known prefix 64:ff9b::/96
        "64:ff9b::127.0.0.1",
        "64:ff9b::7f00:1",
        "64:ff9b::10.0.0.1",
        "64:ff9b::169.254.169.254",
        // NAT64 local-use prefix 64:ff9b:1::/48, whatever it embeds
        "64:ff9b:1::1",
        "64:ff9b:1:7f00:1::",
        "64:ff9b:1:ffff:ffff:ffff:ffff:ffff",
        // 6to4 2002::/16 of a private IPv4 address
        "2002:7f00:1::1",
        "2002:a00:1::",
        "2002:a9fe:a9fe::1",
        // Teredo 2001:0::/32 of a private client (127.0.0.1, inverted)
        "2001:0:4136:e378:8000:63bf:80ff:fffe",
    ];

    /// Public destinations, in every form, stay allowed.
    const ALLOWED: &[&str] = &[
        "8.8.8.8",
        "1.1.1.1",
        "100.128.0.1",
        "172.32.0.1",
        "2606:4700::1111",
        "2001:4860:4860::8888",
        "::ffff:8.8.8.8",
        "64:ff9b::8.8.8.8",
        "64:ff9b::808:808",
        "2002:808:808::1",
        "2001:0:4136:e378:8000:63bf:f7f7:f7f7",
    ];

    #[test]
    fn refuses_every_form_of_a_non_public_destination() {
        for ip in REFUSED {
            let parsed: IpAddr = ip.parse().unwrap_or_else(|e| panic!("{ip}: {e}"));
            assert!(is_forbidden_address(parsed), "{ip} must be refused");
        }
        for ip in ALLOWED {
            let parsed: IpAddr = ip.parse().unwrap_or_else(|e| panic!("{ip}: {e}"));
            assert!(!is_forbidden_address(parsed), "{ip} must be allowed");
        }
    }
}
