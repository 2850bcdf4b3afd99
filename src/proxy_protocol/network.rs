//! Who may send a PROXY header: IP networks (`10.0.0.0/8`, `::1/128`) and a listener's
//! inbound settings ([`Inbound`]: the trusted networks and how long the header may take).
//! Plain values and decisions, no I/O: the configuration's own types.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

/// An IP network: an address and a prefix length. Written `10.0.0.0/8`, `2001:db8::/32`; a
/// bare address (`127.0.0.1`, `::1`) is the network of that address alone (`/32`, `/128`).
/// No bit past the prefix may be set (`10.0.0.1/8` is refused: it reads like a mistake).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Network {
    address: IpAddr,
    prefix: u8,
}

/// Why a string is not a [`Network`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NetworkError {
    #[error(
        "{0:?} is not an IP network: expected an address and a prefix length such as \"10.0.0.0/8\" or \"::1/128\""
    )]
    Syntax(String),
    #[error("{text:?}: the prefix length is more than {max} bits for this family")]
    Prefix { text: String, max: u8 },
    #[error("{text:?} has bits set past its prefix length: did you mean \"{network}\"?")]
    HostBits { text: String, network: Network },
}

impl Network {
    /// The network of `address` with `prefix` leading bits (at most 32 for IPv4, 128 for IPv6),
    /// the bits past the prefix cleared.
    pub fn new(address: IpAddr, prefix: u8) -> Option<Self> {
        let max = max_prefix(address);
        (prefix <= max).then(|| Self {
            address: masked(address, prefix),
            prefix,
        })
    }

    /// Whether `ip` is in the network. An IPv4-mapped IPv6 address (`::ffff:10.1.2.3`, how a
    /// dual-stack socket shows an IPv4 peer) is read as its IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        match (self.address, ip) {
            (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => {
                masked(ip, self.prefix) == self.address
            }
            _ => false,
        }
    }
}

fn max_prefix(address: IpAddr) -> u8 {
    match address {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// `address` with the bits past `prefix` cleared (`prefix` at most the family's width).
fn masked(address: IpAddr, prefix: u8) -> IpAddr {
    match address {
        IpAddr::V4(v4) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((u32::from(v4) & mask).into())
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((u128::from(v6) & mask).into())
        }
    }
}

impl FromStr for Network {
    type Err = NetworkError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let syntax = || NetworkError::Syntax(text.to_owned());
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let address: IpAddr = address.parse().map_err(|_| syntax())?;
        let max = max_prefix(address);
        let prefix = match prefix {
            None => max,
            // Decimal digits only: no sign, no spaces, no leading zero but "0".
            Some(p)
                if !p.is_empty()
                    && p.len() <= 3
                    && p.bytes().all(|b| b.is_ascii_digit())
                    && (p == "0" || !p.starts_with('0')) =>
            {
                p.parse::<u8>().map_err(|_| syntax())?
            }
            Some(_) => return Err(syntax()),
        };
        let network = Network::new(address, prefix).ok_or_else(|| NetworkError::Prefix {
            text: text.to_owned(),
            max,
        })?;
        if network.address != address {
            return Err(NetworkError::HostBits {
                text: text.to_owned(),
                network,
            });
        }
        Ok(network)
    }
}

/// `10.0.0.0/8`, `::1/128`: always with the prefix length.
impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

/// A listener that expects a PROXY header (v1 or v2) before the TLS handshake of every
/// connection: from whom, and how long it may take. The configuration's own type (TOML
/// `proxy_protocol = { trusted = [...], timeout = "5s" }` on a `[[listener]]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inbound {
    /// The sources allowed to connect (the L4 balancers in front): a connection from any other
    /// address is closed at once. At least one.
    pub trusted: Vec<Network>,
    /// From the accept to the end of the header; a connection that has not sent a whole
    /// header by then is closed. Greater than zero. Default [`Inbound::DEFAULT_TIMEOUT`].
    pub timeout: Duration,
}

impl Inbound {
    /// Default of [`Inbound::timeout`].
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

    /// Whether a connection from `ip` may send the header (and so name another client).
    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|network| network.contains(ip))
    }
}
