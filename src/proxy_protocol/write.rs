//! Writing a PROXY header, for a backend that wants the client's address at L4 (TOML
//! `send_proxy_protocol = "v1" | "v2"` on an `[[upstream]]`): the header ringway sends first
//! on each new connection to such a backend, and the LOCAL form its health checks send.

use std::fmt;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use super::{AF_INET, AF_INET6, LOCAL, PROXY, ProxyHeader, STREAM, V2_SIGNATURE};

/// Which version of the header to write. TOML and [`FromStr`]/[`fmt::Display`]: `"v1"` (text)
/// and `"v2"` (binary).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    V1,
    V2,
}

/// Why a string is not a [`Version`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a PROXY protocol version (expected \"v1\" or \"v2\")")]
pub struct UnknownVersion(pub String);

impl FromStr for Version {
    type Err = UnknownVersion;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "v1" => Ok(Version::V1),
            "v2" => Ok(Version::V2),
            _ => Err(UnknownVersion(text.to_owned())),
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Version::V1 => "v1",
            Version::V2 => "v2",
        })
    }
}

/// Longest header [`write`] appends (a v1 line of two IPv6 addresses; a v2 header of two IPv6
/// addresses is 52 bytes).
pub const MAX_WRITTEN: usize = super::V1_MAX_LEN;

/// Appends `header` to `out` in `version`:
/// - [`ProxyHeader::Proxied`]: a TCP connection from `source` to `destination` (v1
///   `PROXY TCP4 ...`/`TCP6`, v2 PROXY over TCP, no TLV). Both addresses are written in one
///   family: when one is IPv4 and the other IPv6, the IPv4 one is written IPv4-mapped.
/// - [`ProxyHeader::Local`]: v1 `PROXY UNKNOWN`, v2 LOCAL (what a proxy's own health check
///   sends: "use the connection's addresses").
///
/// What [`super::parse`] reads back as the same header (a v4-mapped address stays IPv6).
pub fn write(version: Version, header: &ProxyHeader, out: &mut Vec<u8>) {
    let (source, destination) = match *header {
        ProxyHeader::Proxied {
            source,
            destination,
        } => one_family(source, destination),
        ProxyHeader::Local => {
            match version {
                Version::V1 => out.extend_from_slice(b"PROXY UNKNOWN\r\n"),
                Version::V2 => {
                    out.extend_from_slice(V2_SIGNATURE);
                    // Version 2, LOCAL; family and protocol UNSPEC; no address block.
                    out.extend_from_slice(&[0x20 | LOCAL, 0x00, 0x00, 0x00]);
                }
            }
            return;
        }
    };
    match version {
        Version::V1 => {
            let family = if source.is_ipv4() { "TCP4" } else { "TCP6" };
            // Writing into a Vec cannot fail.
            let _ = write!(
                out,
                "PROXY {family} {} {} {} {}\r\n",
                source.ip(),
                destination.ip(),
                source.port(),
                destination.port()
            );
        }
        Version::V2 => {
            out.extend_from_slice(V2_SIGNATURE);
            match (source.ip(), destination.ip()) {
                (IpAddr::V4(s), IpAddr::V4(d)) => {
                    out.extend_from_slice(&[0x20 | PROXY, AF_INET << 4 | STREAM]);
                    out.extend_from_slice(&(super::INET_BLOCK as u16).to_be_bytes());
                    out.extend_from_slice(&s.octets());
                    out.extend_from_slice(&d.octets());
                }
                (s, d) => {
                    let v6 = |ip: IpAddr| match ip {
                        IpAddr::V6(v6) => v6,
                        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
                    };
                    out.extend_from_slice(&[0x20 | PROXY, AF_INET6 << 4 | STREAM]);
                    out.extend_from_slice(&(super::INET6_BLOCK as u16).to_be_bytes());
                    out.extend_from_slice(&v6(s).octets());
                    out.extend_from_slice(&v6(d).octets());
                }
            }
            out.extend_from_slice(&source.port().to_be_bytes());
            out.extend_from_slice(&destination.port().to_be_bytes());
        }
    }
}

/// The two addresses in one family: both IPv4, or both IPv6 (an IPv4 one mapped).
fn one_family(source: SocketAddr, destination: SocketAddr) -> (SocketAddr, SocketAddr) {
    let v6 = |addr: SocketAddr| match addr.ip() {
        IpAddr::V4(v4) => SocketAddr::new(IpAddr::V6(v4.to_ipv6_mapped()), addr.port()),
        IpAddr::V6(_) => addr,
    };
    if source.is_ipv4() == destination.is_ipv4() {
        (source, destination)
    } else {
        (v6(source), v6(destination))
    }
}
