//! The resolver: hickory-resolver built from [`ResolverSettings`], and the lookup of one name
//! (A and AAAA at once, each bounded by the timeout) turned into an [`Answer`]. Runs on a
//! tokio runtime, which only the caller's own thread drives.

use std::net::IpAddr;
use std::time::Duration;

use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts};
use hickory_resolver::lookup::Lookup;
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::{ResolveError, TokioResolver, system_conf};

use super::watch::{Answer, Family};
use super::{DiscoveryError, Name, ResolverSettings};

/// The resolver's configuration: the system's (`/etc/resolv.conf`: name servers, search
/// domains, `ndots`; and `/etc/hosts`) or only the given name servers (UDP, then TCP for a
/// truncated answer; no hosts file, no search domain), with ringway's timeouts and TTL bounds.
/// Reads files but opens no socket.
pub(super) fn configuration(
    settings: &ResolverSettings,
) -> Result<(ResolverConfig, ResolverOpts), DiscoveryError> {
    let (config, mut options) = if settings.nameservers.is_empty() {
        system_conf::read_system_conf().map_err(|source| DiscoveryError::SystemConfig { source })?
    } else {
        let mut config = ResolverConfig::new();
        for &addr in &settings.nameservers {
            config.add_name_server(NameServerConfig::new(addr, Protocol::Udp));
            config.add_name_server(NameServerConfig::new(addr, Protocol::Tcp));
        }
        let mut options = ResolverOpts::default();
        options.use_hosts_file = ResolveHosts::Never;
        (config, options)
    };
    // A lookup sends its query again once when half the timeout passes without an answer;
    // `lookup` bounds the whole by the timeout.
    options.timeout = (settings.timeout / 2).max(Duration::from_millis(1));
    options.attempts = 1;
    // hickory caches answers: bound its cache like the schedule, so that a name looked up
    // again after its (clamped) TTL is asked of the server, not of the cache, and a negative
    // answer is not kept longer than the first retry waits.
    options.positive_min_ttl = Some(settings.min_ttl);
    options.positive_max_ttl = Some(settings.max_ttl.max(settings.min_ttl));
    options.negative_min_ttl = None;
    options.negative_max_ttl = Some(settings.min_ttl);
    Ok((config, options))
}

/// A resolver over `config`. Call it inside the tokio runtime that will drive it.
pub(super) fn resolver(config: ResolverConfig, options: ResolverOpts) -> TokioResolver {
    TokioResolver::builder_with_config(config, TokioConnectionProvider::default())
        .with_options(options)
        .build()
}

/// Looks `name` up: its A and AAAA records at once, each given at most `timeout`.
pub(super) async fn lookup(resolver: &TokioResolver, name: &Name, timeout: Duration) -> Answer {
    let host = name.host.as_str();
    let v4 = async {
        let found = tokio::time::timeout(timeout, resolver.ipv4_lookup(host)).await;
        family(host, timeout, found, |lookup| {
            let ips = lookup.iter().map(|a| IpAddr::V4(a.0)).collect();
            (ips, lookup.as_lookup().clone())
        })
    };
    let v6 = async {
        let found = tokio::time::timeout(timeout, resolver.ipv6_lookup(host)).await;
        family(host, timeout, found, |lookup| {
            let ips = lookup.iter().map(|aaaa| IpAddr::V6(aaaa.0)).collect();
            (ips, lookup.as_lookup().clone())
        })
    };
    let (v4, v6) = tokio::join!(v4, v6);
    Answer { v4, v6 }
}

/// What one family's lookup gave. The TTL is the smallest of the answer's records (the
/// addresses and the CNAMEs that led to them).
fn family<L>(
    host: &str,
    timeout: Duration,
    result: Result<Result<L, ResolveError>, tokio::time::error::Elapsed>,
    addresses: impl FnOnce(&L) -> (Vec<IpAddr>, Lookup),
) -> Family {
    match result {
        Err(_elapsed) => Family::Failed(DiscoveryError::Timeout {
            host: host.to_owned(),
            after: timeout,
        }),
        Ok(Err(error)) if error.is_no_records_found() => Family::Empty {
            nxdomain: error.is_nx_domain(),
        },
        Ok(Err(source)) => Family::Failed(DiscoveryError::Lookup {
            host: host.to_owned(),
            source,
        }),
        Ok(Ok(found)) => {
            let (ips, lookup) = addresses(&found);
            let ttl = lookup.records().iter().map(|record| record.ttl()).min();
            match ttl {
                Some(ttl) if !ips.is_empty() => {
                    Family::Found(ips, Duration::from_secs(u64::from(ttl)))
                }
                _ => Family::Empty { nxdomain: false },
            }
        }
    }
}
