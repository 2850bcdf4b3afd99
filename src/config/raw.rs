//! The document as serde sees it (the `Raw*` structs: every key optional, typed values parsed
//! on the way in) and its conversion to a [`Config`] ([`from_raw`]), and the way back
//! ([`Config::to_toml_string`]).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::invalid;
use super::validate::{KeyNames, Origin};
use super::values::{
    AddressValue, BackendAddressValue, DurationValue, FromStrValue, StatusRangeValue,
};
use crate::proxy::RequestIds;

use super::{
    AccessLogConfig, AccessLogFormat, AdminConfig, BackendConfig, CertificateConfig, CheckKind,
    ClientAuthConfig, ClientAuthMode, Config, ConfigError, DEFAULT_BATCH_WAIT, HashKey,
    HeaderRulesConfig, HealthCheckConfig, LimitsConfig, ListenerConfig, LogConfig, Network,
    OutlierConfig, Policy, PoolConfig, ProxyProtocolConfig, ProxyVersion, ResolverConfig,
    RespondConfig, RetryBudgetConfig, RouteConfig, Timeouts, TlsOptions, UpstreamConfig,
};
use crate::route::HostPattern;

// ---------------------------------------------------------------------------------------------
// The document as serde sees it: every key optional, typed values parsed on the way in

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    workers: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    batch_wait: Option<DurationValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ring_buffers: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ticket_keys: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    request_id: Option<RequestIds>,
    #[serde(default)]
    timeouts: RawTimeouts,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    pool: RawPool,
    #[serde(default)]
    log: RawLog,
    #[serde(default)]
    access_log: RawAccessLog,
    #[serde(default)]
    resolver: RawResolver,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    admin: Option<RawAdmin>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    upstream: Vec<RawUpstream>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    listener: Vec<RawListener>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawTimeouts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    handshake: Option<DurationValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    request_head: Option<DurationValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    keepalive: Option<DurationValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    body: Option<DurationValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    connect: Option<DurationValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    response: Option<DurationValue>,
    #[serde(rename = "try", default, skip_serializing_if = "Option::is_none")]
    per_try: Option<DurationValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    drain: Option<DurationValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tunnel: Option<DurationValue>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    request_line: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    head: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    headers: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    body: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    trailer: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    connections_per_worker: Option<usize>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawPool {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_idle_per_backend: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    idle_timeout: Option<DurationValue>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    level: Option<String>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawAccessLog {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    format: Option<FromStrValue<AccessLogFormat>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    path: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    buffer: Option<usize>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawResolver {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nameservers: Option<Vec<AddressValue>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    min_ttl: Option<DurationValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_ttl: Option<DurationValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    timeout: Option<DurationValue>,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawAdmin {
    address: AddressValue,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token: Option<String>,
}

/// The token is not shown.
impl std::fmt::Debug for RawAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawAdmin")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawUpstream {
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    policy: Option<FromStrValue<Policy>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hash: Option<FromStrValue<HashKey>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    slow_start: Option<DurationValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hedge_after: Option<DurationValue>,
    // Missing and empty (with no long form either) are both "no backend", which validation
    // words better than serde.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    backends: Vec<BackendAddressValue>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    backend: Vec<RawBackend>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    health_check: Option<RawHealthCheck>,
    #[serde(default)]
    outlier: RawOutlier,
    #[serde(default)]
    retries: RawRetries,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    send_proxy_protocol: Option<FromStrValue<ProxyVersion>>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawRetries {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    budget_percent: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    min_per_second: Option<u32>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawBackend {
    address: BackendAddressValue,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    weight: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_connections: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    backup: Option<bool>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawHealthCheck {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    kind: Option<RawCheckType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    interval: Option<DurationValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    jitter: Option<DurationValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    timeout: Option<DurationValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rise: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fall: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expect_status: Option<StatusRangeValue>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
enum RawCheckType {
    Http,
    Tcp,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawOutlier {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    consecutive_failures: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    consecutive_5xx: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    base_ejection: Option<DurationValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_ejection: Option<DurationValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_ejected_percent: Option<u32>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawListener {
    address: AddressValue,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    backlog: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    upstream: Option<String>,
    // Legacy. Given (even empty) it makes an implicit upstream; missing and empty are both
    // "no backend", which validation words better than serde.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    backends: Option<Vec<BackendAddressValue>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    access_log: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    upgrade: Option<bool>,
    #[serde(default, skip_serializing_if = "HeaderRulesConfig::is_empty")]
    request_headers: HeaderRulesConfig,
    #[serde(default, skip_serializing_if = "HeaderRulesConfig::is_empty")]
    response_headers: HeaderRulesConfig,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    route: Vec<RawRoute>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    certificate: Vec<RawCertificate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    redirect_https: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    redirect_https_port: Option<u16>,
    #[serde(default)]
    tls: RawTlsOptions,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_auth: Option<RawClientAuth>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    proxy_protocol: Option<RawProxyProtocol>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawProxyProtocol {
    // Required: a listener that reads the header must say from whom.
    trusted: Vec<FromStrValue<Network>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    timeout: Option<DurationValue>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    host: Option<FromStrValue<HostPattern>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    path_prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    upstream: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    respond: Option<RespondConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    access_log: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    upgrade: Option<bool>,
    #[serde(default, skip_serializing_if = "HeaderRulesConfig::is_empty")]
    request_headers: HeaderRulesConfig,
    #[serde(default, skip_serializing_if = "HeaderRulesConfig::is_empty")]
    response_headers: HeaderRulesConfig,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawCertificate {
    cert: PathBuf,
    key: PathBuf,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ocsp: Option<PathBuf>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawClientAuth {
    ca: PathBuf,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mode: Option<FromStrValue<ClientAuthMode>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    crl: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawTlsOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    session_cache: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tickets: Option<bool>,
}

// ---------------------------------------------------------------------------------------------
// Raw document ⇄ Config

/// The document's values with the defaults filled in, upstream names resolved to indexes and
/// legacy `backends` lists turned into implicit upstreams (appended after the `[[upstream]]`
/// tables), plus how validation should name upstream keys. Checks only what needs the
/// document itself: names that refer to no `[[upstream]]`, and keys that do not go together
/// (`backends` with `upstream`, HTTP check keys with `type = "tcp"`).
pub(super) fn from_raw(raw: RawConfig) -> Result<(Config, KeyNames), ConfigError> {
    let duration = |value: Option<DurationValue>, default: Duration| {
        value.map_or(default, |DurationValue(duration)| duration)
    };
    let t = Timeouts::default();
    let l = LimitsConfig::default();
    let p = PoolConfig::default();

    let mut names = KeyNames::default();
    let mut upstreams = Vec::with_capacity(raw.upstream.len() + raw.listener.len());
    for (index, upstream) in raw.upstream.into_iter().enumerate() {
        names.origins.push(Origin::Table {
            short: upstream.backends.len(),
        });
        upstreams.push(upstream_from_raw(index, upstream)?);
    }
    let declared: Vec<String> = upstreams.iter().map(|u| u.name.clone()).collect();
    let resolve = |name: &str, key: String| -> Result<usize, ConfigError> {
        declared
            .iter()
            .position(|declared| declared == name)
            .ok_or_else(|| invalid(key, unknown_upstream(name, &declared)))
    };

    let mut listeners = Vec::with_capacity(raw.listener.len());
    for (index, listener) in raw.listener.into_iter().enumerate() {
        let default_upstream = match (listener.upstream, listener.backends) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    format!("listener[{index}].backends"),
                    "cannot be given with upstream: name an [[upstream]] or list backends, \
                     not both",
                ));
            }
            (Some(name), None) => Some(resolve(&name, format!("listener[{index}].upstream"))?),
            (None, Some(backends)) => {
                names.origins.push(Origin::Legacy { listener: index });
                upstreams.push(UpstreamConfig::new(
                    format!("listener{index}"),
                    backends
                        .into_iter()
                        .map(|BackendAddressValue(address)| address),
                ));
                Some(upstreams.len() - 1)
            }
            (None, None) => None,
        };
        let routes = listener
            .route
            .into_iter()
            .enumerate()
            .map(|(position, route)| {
                let key = |rest: &str| format!("listener[{index}].route[{position}].{rest}");
                let upstream = match (&route.upstream, &route.respond) {
                    (Some(_), Some(_)) => {
                        return Err(invalid(
                            key("respond"),
                            "cannot be given with upstream: a route sends to an upstream or \
                             answers by itself, not both",
                        ));
                    }
                    (None, None) => {
                        return Err(invalid(
                            key("upstream"),
                            "missing: a route names an upstream (upstream = \"app\") or \
                             answers by itself (respond = { status = 503, body = \"...\" })",
                        ));
                    }
                    (Some(name), None) => Some(resolve(name, key("upstream"))?),
                    (None, Some(_)) => None,
                };
                Ok(RouteConfig {
                    host: route.host.map(|FromStrValue(host)| host),
                    path_prefix: route.path_prefix,
                    upstream,
                    access_log: route.access_log,
                    upgrade: route.upgrade,
                    respond: route.respond,
                    request_headers: route.request_headers,
                    response_headers: route.response_headers,
                })
            })
            .collect::<Result<Vec<_>, ConfigError>>()?;
        let tls = TlsOptions::default();
        listeners.push(ListenerConfig {
            address: listener.address.0,
            backlog: listener.backlog.unwrap_or(ListenerConfig::DEFAULT_BACKLOG),
            certificates: listener
                .certificate
                .into_iter()
                .map(|RawCertificate { cert, key, ocsp }| CertificateConfig { cert, key, ocsp })
                .collect(),
            client_auth: listener.client_auth.map(|auth| ClientAuthConfig {
                ca: auth.ca,
                mode: auth
                    .mode
                    .map_or(ClientAuthMode::Require, |FromStrValue(mode)| mode),
                crl: auth.crl,
            }),
            redirect_https: listener.redirect_https.unwrap_or(false),
            redirect_https_port: listener.redirect_https_port,
            default_upstream,
            routes,
            tls: TlsOptions {
                session_cache: listener.tls.session_cache.unwrap_or(tls.session_cache),
                tickets: listener.tls.tickets.unwrap_or(tls.tickets),
            },
            access_log: listener.access_log,
            upgrade: listener.upgrade.unwrap_or(true),
            request_headers: listener.request_headers,
            response_headers: listener.response_headers,
            proxy_protocol: listener.proxy_protocol.map(|raw| ProxyProtocolConfig {
                trusted: raw
                    .trusted
                    .into_iter()
                    .map(|FromStrValue(network)| network)
                    .collect(),
                timeout: duration(raw.timeout, ProxyProtocolConfig::DEFAULT_TIMEOUT),
            }),
        });
    }

    let config = Config {
        workers: raw.workers,
        batch_wait: duration(raw.batch_wait, DEFAULT_BATCH_WAIT),
        ring_buffers: raw.ring_buffers,
        ticket_keys: raw.ticket_keys,
        request_id: raw.request_id.unwrap_or_default(),
        timeouts: Timeouts {
            handshake: duration(raw.timeouts.handshake, t.handshake),
            request_head: duration(raw.timeouts.request_head, t.request_head),
            keepalive: duration(raw.timeouts.keepalive, t.keepalive),
            body: duration(raw.timeouts.body, t.body),
            connect: duration(raw.timeouts.connect, t.connect),
            response: duration(raw.timeouts.response, t.response),
            // Unset, it is the default or the response timeout, whichever is shorter.
            per_try: duration(
                raw.timeouts.per_try,
                t.per_try.min(duration(raw.timeouts.response, t.response)),
            ),
            drain: duration(raw.timeouts.drain, t.drain),
            tunnel: duration(raw.timeouts.tunnel, t.tunnel),
        },
        limits: LimitsConfig {
            request_line: raw.limits.request_line.unwrap_or(l.request_line),
            head: raw.limits.head.unwrap_or(l.head),
            headers: raw.limits.headers.unwrap_or(l.headers),
            body: raw.limits.body.unwrap_or(l.body),
            trailer: raw.limits.trailer.unwrap_or(l.trailer),
            connections_per_worker: raw
                .limits
                .connections_per_worker
                .unwrap_or(l.connections_per_worker),
        },
        pool: PoolConfig {
            max_idle_per_backend: raw
                .pool
                .max_idle_per_backend
                .unwrap_or(p.max_idle_per_backend),
            idle_timeout: duration(raw.pool.idle_timeout, p.idle_timeout),
        },
        log: raw
            .log
            .level
            .map_or_else(LogConfig::default, |level| LogConfig { level }),
        access_log: access_log_from_raw(raw.access_log),
        resolver: resolver_from_raw(raw.resolver),
        admin: raw.admin.map(|admin| AdminConfig {
            address: admin.address.0,
            token: admin.token,
        }),
        upstreams,
        listeners,
    };
    Ok((config, names))
}

/// `[access_log]` with its defaults filled in.
fn access_log_from_raw(raw: RawAccessLog) -> AccessLogConfig {
    let d = AccessLogConfig::default();
    AccessLogConfig {
        enabled: raw.enabled.unwrap_or(d.enabled),
        format: raw.format.map_or(d.format, |FromStrValue(format)| format),
        path: raw.path,
        buffer: raw.buffer.unwrap_or(d.buffer),
    }
}

/// `[resolver]` with its defaults filled in.
fn resolver_from_raw(raw: RawResolver) -> ResolverConfig {
    let d = ResolverConfig::default();
    ResolverConfig {
        nameservers: raw.nameservers.map_or(d.nameservers, |list| {
            list.into_iter().map(|AddressValue(addr)| addr).collect()
        }),
        min_ttl: raw.min_ttl.map_or(d.min_ttl, |DurationValue(d)| d),
        max_ttl: raw.max_ttl.map_or(d.max_ttl, |DurationValue(d)| d),
        timeout: raw.timeout.map_or(d.timeout, |DurationValue(d)| d),
    }
}

/// Why `name` names no upstream, listing those there are.
fn unknown_upstream(name: &str, declared: &[String]) -> String {
    if declared.is_empty() {
        return format!("no [[upstream]] is named {name:?} (there is no [[upstream]])");
    }
    let known: Vec<String> = declared.iter().map(|name| format!("{name:?}")).collect();
    format!(
        "no [[upstream]] is named {name:?} (upstreams: {})",
        known.join(", ")
    )
}

/// `upstream[index]` with its defaults filled in: the short `backends` list first, then the
/// `[[upstream.backend]]` tables; the hash defaults to the client IP with `consistent_hash`.
fn upstream_from_raw(index: usize, raw: RawUpstream) -> Result<UpstreamConfig, ConfigError> {
    let policy = raw.policy.map_or_else(Policy::default, |FromStrValue(p)| p);
    let hash = match raw.hash {
        Some(FromStrValue(hash)) => Some(hash),
        None if policy == Policy::ConsistentHash => Some(HashKey::ClientIp),
        None => None,
    };
    let backends = raw
        .backends
        .into_iter()
        .map(|BackendAddressValue(address)| BackendConfig::new(address))
        .chain(raw.backend.into_iter().map(|backend| {
            let defaults = BackendConfig::new(backend.address.0);
            BackendConfig {
                weight: backend.weight.unwrap_or(defaults.weight),
                max_connections: backend.max_connections.unwrap_or(defaults.max_connections),
                backup: backend.backup.unwrap_or(defaults.backup),
                ..defaults
            }
        }))
        .collect();
    let health_check = raw
        .health_check
        .map(|check| health_check_from_raw(index, check))
        .transpose()?;
    let o = OutlierConfig::default();
    let outlier = OutlierConfig {
        consecutive_failures: raw
            .outlier
            .consecutive_failures
            .unwrap_or(o.consecutive_failures),
        consecutive_5xx: raw.outlier.consecutive_5xx.unwrap_or(o.consecutive_5xx),
        base_ejection: raw
            .outlier
            .base_ejection
            .map_or(o.base_ejection, |DurationValue(d)| d),
        max_ejection: raw
            .outlier
            .max_ejection
            .map_or(o.max_ejection, |DurationValue(d)| d),
        max_ejected_percent: raw
            .outlier
            .max_ejected_percent
            .unwrap_or(o.max_ejected_percent),
    };
    let r = RetryBudgetConfig::default();
    let retries = RetryBudgetConfig {
        percent: raw.retries.budget_percent.unwrap_or(r.percent),
        min_per_second: raw.retries.min_per_second.unwrap_or(r.min_per_second),
    };
    Ok(UpstreamConfig {
        retries,
        name: raw.name,
        policy,
        hash,
        slow_start: raw.slow_start.map_or(Duration::ZERO, |DurationValue(d)| d),
        hedge_after: raw.hedge_after.map(|DurationValue(d)| d),
        backends,
        health_check,
        outlier,
        send_proxy_protocol: raw.send_proxy_protocol.map(|FromStrValue(v)| v),
    })
}

/// `upstream[index].health_check` with its defaults filled in; HTTP keys with `type = "tcp"`
/// are refused.
fn health_check_from_raw(
    index: usize,
    raw: RawHealthCheck,
) -> Result<HealthCheckConfig, ConfigError> {
    let d = HealthCheckConfig::default();
    let kind = match raw.kind.unwrap_or(RawCheckType::Http) {
        RawCheckType::Tcp => {
            for (name, given) in [
                ("method", raw.method.is_some()),
                ("path", raw.path.is_some()),
                ("host", raw.host.is_some()),
                ("expect_status", raw.expect_status.is_some()),
            ] {
                if given {
                    return Err(invalid(
                        format!("upstream[{index}].health_check.{name}"),
                        "is only used with type = \"http\"",
                    ));
                }
            }
            CheckKind::Tcp
        }
        RawCheckType::Http => CheckKind::Http {
            method: raw.method.unwrap_or_else(|| "GET".to_owned()),
            path: raw.path.unwrap_or_else(|| "/".to_owned()),
            host: raw.host,
            expect_status: raw
                .expect_status
                .map_or(200..=399, |StatusRangeValue(range)| range),
        },
    };
    let duration = |value: Option<DurationValue>, default: Duration| {
        value.map_or(default, |DurationValue(duration)| duration)
    };
    Ok(HealthCheckConfig {
        kind,
        interval: duration(raw.interval, d.interval),
        jitter: duration(raw.jitter, d.jitter),
        timeout: duration(raw.timeout, d.timeout),
        rise: raw.rise.unwrap_or(d.rise),
        fall: raw.fall.unwrap_or(d.fall),
    })
}

// ---------------------------------------------------------------------------------------------
// Config → document

impl Config {
    /// The configuration as TOML, every key written out; parsing it gives back `self`.
    /// Implicit upstreams (from legacy `backends` lists) are written as `[[upstream]]` tables
    /// and backends in the long form. Fails on an upstream index out of range.
    pub fn to_toml_string(&self) -> Result<String, toml::ser::Error> {
        toml::to_string(&raw_config(self)?)
    }
}

/// The document for `config`, every key written out so the TOML shows the effective values:
/// every upstream as an `[[upstream]]` table with long-form backends, listeners naming them.
fn raw_config(config: &Config) -> Result<RawConfig, toml::ser::Error> {
    let name_of = |index: usize| {
        config
            .upstreams
            .get(index)
            .map(|upstream| upstream.name.clone())
            .ok_or_else(|| {
                <toml::ser::Error as serde::ser::Error>::custom(format!(
                    "upstream index {index} is out of range: there are {} upstreams",
                    config.upstreams.len()
                ))
            })
    };
    let t = &config.timeouts;
    let l = &config.limits;
    let mut listeners = Vec::with_capacity(config.listeners.len());
    for listener in &config.listeners {
        listeners.push(RawListener {
            address: AddressValue(listener.address),
            backlog: Some(listener.backlog),
            upstream: listener.default_upstream.map(name_of).transpose()?,
            backends: None,
            access_log: listener.access_log,
            upgrade: Some(listener.upgrade),
            request_headers: listener.request_headers.clone(),
            response_headers: listener.response_headers.clone(),
            route: listener
                .routes
                .iter()
                .map(|route| {
                    Ok(RawRoute {
                        host: route.host.clone().map(FromStrValue),
                        path_prefix: route.path_prefix.clone(),
                        upstream: route.upstream.map(name_of).transpose()?,
                        respond: route.respond.clone(),
                        access_log: route.access_log,
                        upgrade: route.upgrade,
                        request_headers: route.request_headers.clone(),
                        response_headers: route.response_headers.clone(),
                    })
                })
                .collect::<Result<_, toml::ser::Error>>()?,
            certificate: listener
                .certificates
                .iter()
                .map(|certificate| RawCertificate {
                    cert: certificate.cert.clone(),
                    key: certificate.key.clone(),
                    ocsp: certificate.ocsp.clone(),
                })
                .collect(),
            client_auth: listener.client_auth.as_ref().map(|auth| RawClientAuth {
                ca: auth.ca.clone(),
                mode: Some(FromStrValue(auth.mode)),
                crl: auth.crl.clone(),
            }),
            redirect_https: Some(listener.redirect_https),
            redirect_https_port: listener.redirect_https_port,
            tls: RawTlsOptions {
                session_cache: Some(listener.tls.session_cache),
                tickets: Some(listener.tls.tickets),
            },
            proxy_protocol: listener
                .proxy_protocol
                .as_ref()
                .map(|inbound| RawProxyProtocol {
                    trusted: inbound.trusted.iter().copied().map(FromStrValue).collect(),
                    timeout: Some(DurationValue(inbound.timeout)),
                }),
        });
    }
    Ok(RawConfig {
        workers: config.workers,
        batch_wait: Some(DurationValue(config.batch_wait)),
        ring_buffers: config.ring_buffers,
        ticket_keys: config.ticket_keys.clone(),
        request_id: Some(config.request_id),
        timeouts: RawTimeouts {
            handshake: Some(DurationValue(t.handshake)),
            request_head: Some(DurationValue(t.request_head)),
            keepalive: Some(DurationValue(t.keepalive)),
            body: Some(DurationValue(t.body)),
            connect: Some(DurationValue(t.connect)),
            response: Some(DurationValue(t.response)),
            per_try: Some(DurationValue(t.per_try)),
            drain: Some(DurationValue(t.drain)),
            tunnel: Some(DurationValue(t.tunnel)),
        },
        limits: RawLimits {
            request_line: Some(l.request_line),
            head: Some(l.head),
            headers: Some(l.headers),
            body: Some(l.body),
            trailer: Some(l.trailer),
            connections_per_worker: Some(l.connections_per_worker),
        },
        pool: RawPool {
            max_idle_per_backend: Some(config.pool.max_idle_per_backend),
            idle_timeout: Some(DurationValue(config.pool.idle_timeout)),
        },
        log: RawLog {
            level: Some(config.log.level.clone()),
        },
        access_log: RawAccessLog {
            enabled: Some(config.access_log.enabled),
            format: Some(FromStrValue(config.access_log.format)),
            path: config.access_log.path.clone(),
            buffer: Some(config.access_log.buffer),
        },
        resolver: RawResolver {
            nameservers: Some(
                config
                    .resolver
                    .nameservers
                    .iter()
                    .copied()
                    .map(AddressValue)
                    .collect(),
            ),
            min_ttl: Some(DurationValue(config.resolver.min_ttl)),
            max_ttl: Some(DurationValue(config.resolver.max_ttl)),
            timeout: Some(DurationValue(config.resolver.timeout)),
        },
        admin: config.admin.as_ref().map(|admin| RawAdmin {
            address: AddressValue(admin.address),
            token: admin.token.clone(),
        }),
        upstream: config.upstreams.iter().map(raw_upstream).collect(),
        listener: listeners,
    })
}

fn raw_upstream(upstream: &UpstreamConfig) -> RawUpstream {
    let o = &upstream.outlier;
    RawUpstream {
        name: upstream.name.clone(),
        policy: Some(FromStrValue(upstream.policy)),
        hash: upstream.hash.clone().map(FromStrValue),
        slow_start: Some(DurationValue(upstream.slow_start)),
        hedge_after: upstream.hedge_after.map(DurationValue),
        backends: Vec::new(),
        backend: upstream
            .backends
            .iter()
            .map(|backend| RawBackend {
                address: BackendAddressValue(backend.address.clone()),
                weight: Some(backend.weight),
                max_connections: Some(backend.max_connections),
                backup: Some(backend.backup),
            })
            .collect(),
        health_check: upstream.health_check.as_ref().map(|check| {
            let mut raw = RawHealthCheck {
                interval: Some(DurationValue(check.interval)),
                jitter: Some(DurationValue(check.jitter)),
                timeout: Some(DurationValue(check.timeout)),
                rise: Some(check.rise),
                fall: Some(check.fall),
                ..RawHealthCheck::default()
            };
            match &check.kind {
                CheckKind::Tcp => raw.kind = Some(RawCheckType::Tcp),
                CheckKind::Http {
                    method,
                    path,
                    host,
                    expect_status,
                } => {
                    raw.kind = Some(RawCheckType::Http);
                    raw.method = Some(method.clone());
                    raw.path = Some(path.clone());
                    raw.host = host.clone();
                    raw.expect_status = Some(StatusRangeValue(expect_status.clone()));
                }
            }
            raw
        }),
        send_proxy_protocol: upstream.send_proxy_protocol.map(FromStrValue),
        retries: RawRetries {
            budget_percent: Some(upstream.retries.percent),
            min_per_second: Some(upstream.retries.min_per_second),
        },
        outlier: RawOutlier {
            consecutive_failures: Some(o.consecutive_failures),
            consecutive_5xx: Some(o.consecutive_5xx),
            base_ejection: Some(DurationValue(o.base_ejection)),
            max_ejection: Some(DurationValue(o.max_ejection)),
            max_ejected_percent: Some(o.max_ejected_percent),
        },
    }
}
