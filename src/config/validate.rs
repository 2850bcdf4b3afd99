//! Validation: [`Config::validate`] and the listener, upstream and health check parts of it,
//! with how errors name upstream keys ([`KeyNames`]); and [`Config::check`], which also loads
//! every certificate, builds each listener's rustls configuration, reads the ticket key file
//! and checks that the access log file can be written.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use super::error::invalid;
use super::values::{format_duration, format_status_range};
use super::{
    AccessLogConfig, AdminConfig, BackendAddress, BackendConfig, CheckKind, Config, ConfigError,
    HashKey, HealthCheckConfig, ListenerConfig, MAX_ACCESS_LOG_BUFFER, MAX_BATCH_WAIT,
    MAX_CONFIGURED_RING_BUFFERS, Policy, ResolverConfig, TlsOptions, UpstreamConfig, is_token,
};
use crate::access_log;
use crate::tls::{
    self, CertifiedKey, ClientAuth, ClientAuthPolicy, FileKind, TicketKeys, TlsError,
};

impl Config {
    /// The invariants listed in the module doc, for a `Config` built in code (quick start,
    /// demo); [`Config::from_toml_str`] and [`Config::load`] already apply them. Touches no
    /// file. Errors name the key; they carry no position. Keys of upstreams are named by
    /// position: `upstream[1].backend[0].weight`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_named(&KeyNames::default())
    }

    /// [`Config::validate`], naming upstream keys with `names`.
    pub(super) fn validate_named(&self, names: &KeyNames) -> Result<(), ConfigError> {
        if self.workers == Some(0) {
            return Err(invalid(
                "workers",
                "must be at least 1 (leave it out to use every core the process may run on)",
            ));
        }
        if self.batch_wait > MAX_BATCH_WAIT {
            return Err(invalid(
                "batch_wait",
                format!(
                    "must be at most {} (it delays every I/O completion of a busy worker)",
                    format_duration(MAX_BATCH_WAIT)
                ),
            ));
        }
        if let Some(n) = self.ring_buffers
            && !(1..=MAX_CONFIGURED_RING_BUFFERS).contains(&n)
        {
            return Err(invalid(
                "ring_buffers",
                format!(
                    "must be between 1 and {MAX_CONFIGURED_RING_BUFFERS} (leave it out to size the pool \
                     from limits.connections_per_worker)"
                ),
            ));
        }

        if let Some(path) = &self.ticket_keys
            && path.as_os_str().is_empty()
        {
            return Err(invalid(
                "ticket_keys",
                "must be a file path, not empty (leave it out to let the process make its own \
                 ticket keys)",
            ));
        }

        let t = &self.timeouts;
        for (key, value) in [
            ("timeouts.handshake", t.handshake),
            ("timeouts.request_head", t.request_head),
            ("timeouts.keepalive", t.keepalive),
            ("timeouts.body", t.body),
            ("timeouts.connect", t.connect),
            ("timeouts.response", t.response),
            ("timeouts.try", t.per_try),
            ("timeouts.tunnel", t.tunnel),
            ("pool.idle_timeout", self.pool.idle_timeout),
        ] {
            if value.is_zero() {
                return Err(invalid(key, "must be greater than 0"));
            }
        }
        if t.per_try > t.response {
            return Err(invalid(
                "timeouts.try",
                format!(
                    "{} is longer than timeouts.response ({}): an attempt never waits longer \
                     than the response",
                    format_duration(t.per_try),
                    format_duration(t.response)
                ),
            ));
        }

        let l = &self.limits;
        for (key, value) in [
            ("limits.request_line", l.request_line),
            ("limits.head", l.head),
            ("limits.headers", l.headers),
            ("limits.trailer", l.trailer),
            ("limits.connections_per_worker", l.connections_per_worker),
        ] {
            if value == 0 {
                return Err(invalid(key, "must be at least 1"));
            }
        }
        if l.head < l.request_line {
            return Err(invalid(
                "limits.head",
                format!(
                    "{} is smaller than limits.request_line ({}): the request line is part of \
                     the head",
                    l.head, l.request_line
                ),
            ));
        }

        check_log_level(&self.log.level).map_err(|why| invalid("log.level", why))?;
        check_resolver(&self.resolver)?;
        check_access_log(&self.access_log)?;
        if let Some(admin) = &self.admin {
            self.check_admin(admin)?;
        }

        if self.listeners.is_empty() {
            return Err(invalid("listener", "at least one [[listener]] is required"));
        }
        let mut seen: HashMap<SocketAddr, usize> = HashMap::new();
        for (index, listener) in self.listeners.iter().enumerate() {
            listener.validate(index)?;
            self.check_upstream_indexes(index, listener)?;
            self.check_access_log_switches(index, listener)?;
            if let Some(first) = seen.insert(listener.address, index) {
                return Err(invalid(
                    format!("listener[{index}].address"),
                    format!(
                        "{} is already the address of listener[{first}]",
                        listener.address
                    ),
                ));
            }
        }

        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (index, upstream) in self.upstreams.iter().enumerate() {
            upstream.validate_named(index, names)?;
            if let Some(first) = seen.insert(&upstream.name, index) {
                let reason = match names.origin(index) {
                    Origin::Legacy { .. } => format!(
                        "these backends make an implicit upstream named {:?}, which is already \
                         the name of upstream[{first}]: rename upstream[{first}]",
                        upstream.name
                    ),
                    Origin::Table { .. } => format!(
                        "{:?} is already the name of upstream[{first}]",
                        upstream.name
                    ),
                };
                return Err(invalid(names.upstream(index, "name"), reason));
            }
        }
        Ok(())
    }

    /// `[admin]`: a token that can be sent in a header and is not too short, and an address
    /// that no listener holds.
    fn check_admin(&self, admin: &AdminConfig) -> Result<(), ConfigError> {
        if let Some(token) = &admin.token {
            crate::admin::check_token(token)
                .map_err(|why| invalid("admin.token", format!("the token {why}")))?;
            if token.chars().count() < AdminConfig::MIN_TOKEN_LEN {
                return Err(invalid(
                    "admin.token",
                    format!(
                        "is shorter than {} characters: use a random one (openssl rand -base64 \
                         24), or leave it out to serve without a token",
                        AdminConfig::MIN_TOKEN_LEN
                    ),
                ));
            }
        }
        let clashes = |listener: SocketAddr| {
            let address = admin.address;
            address.port() != 0
                && address.port() == listener.port()
                && (address.ip() == listener.ip()
                    || address.ip().is_unspecified()
                    || listener.ip().is_unspecified())
        };
        if let Some(index) = self.listeners.iter().position(|l| clashes(l.address)) {
            return Err(invalid(
                "admin.address",
                format!(
                    "{} is taken by listener[{index}] ({}): the admin server needs a port of \
                     its own",
                    admin.address, self.listeners[index].address
                ),
            ));
        }
        Ok(())
    }

    /// The upstream indexes of `listener` (its default and its routes') are below
    /// `upstreams.len()`.
    fn check_upstream_indexes(
        &self,
        index: usize,
        listener: &ListenerConfig,
    ) -> Result<(), ConfigError> {
        let count = self.upstreams.len();
        let out_of_range = |key: String, upstream: usize| {
            invalid(
                key,
                format!("upstream index {upstream} is out of range: there are {count} upstreams"),
            )
        };
        if let Some(upstream) = listener.default_upstream
            && upstream >= count
        {
            return Err(out_of_range(
                format!("listener[{index}].upstream"),
                upstream,
            ));
        }
        for (position, route) in listener.routes.iter().enumerate() {
            if let Some(upstream) = route.upstream
                && upstream >= count
            {
                return Err(out_of_range(
                    format!("listener[{index}].route[{position}].upstream"),
                    upstream,
                ));
            }
        }
        Ok(())
    }

    /// `access_log = true` on a listener or route only when `[access_log]` is enabled: alone
    /// it would log nothing, and silently.
    fn check_access_log_switches(
        &self,
        index: usize,
        listener: &ListenerConfig,
    ) -> Result<(), ConfigError> {
        if self.access_log.enabled {
            return Ok(());
        }
        let refused = |key: String| {
            invalid(
                key,
                "true logs nothing while [access_log] is not enabled: set enabled = true in                  [access_log] (then every listener logs unless it says access_log = false)",
            )
        };
        if listener.access_log == Some(true) {
            return Err(refused(format!("listener[{index}].access_log")));
        }
        for (position, route) in listener.routes.iter().enumerate() {
            if route.access_log == Some(true) {
                return Err(refused(format!(
                    "listener[{index}].route[{position}].access_log"
                )));
            }
        }
        Ok(())
    }

    /// Everything `run` would refuse at startup: [`Config::validate`], then every fixed
    /// response's `body_file` is read (an error names the route and the file), every certificate
    /// and key is loaded (a missing file, a file without a key, an unsupported key or a
    /// key/certificate mismatch is reported naming the key path and the file), each
    /// listener's rustls configuration is built, and the ticket key file, when there is one,
    /// is read (an error names the file and the line), and the access log file, when the log
    /// is enabled and has one, is checked for writing without being created
    /// ([`access_log::check_path`]). Stops at the first error. Backend names
    /// are checked as names but not resolved: `ringway check` must pass on a machine without
    /// the DNS the configuration will run with (resolving is `run`'s, at startup and reload).
    pub fn check(&self) -> Result<(), ConfigError> {
        self.validate()?;
        for (index, listener) in self.listeners.iter().enumerate() {
            for (position, route) in listener.routes.iter().enumerate() {
                if let Some(respond) = &route.respond {
                    respond.response().map_err(|e| {
                        invalid(
                            format!("listener[{index}].route[{position}].respond"),
                            e.to_string(),
                        )
                    })?;
                }
            }
            if !listener.is_plain() {
                listener.server_config(index, None)?;
            }
        }
        self.load_ticket_keys()?;
        self.check_access_log_path()?;
        Ok(())
    }

    /// When the access log is enabled and writes to a file: that the file can be opened for
    /// appending, or, missing, created ([`access_log::check_path`]: nothing is created here).
    /// Errors are [`ConfigError::AccessLog`] with the key `access_log.path`.
    pub fn check_access_log_path(&self) -> Result<(), ConfigError> {
        match &self.access_log.path {
            Some(path) if self.access_log.enabled => {
                access_log::check_path(path).map_err(|source| ConfigError::AccessLog {
                    key: "access_log.path".to_owned(),
                    source,
                })
            }
            _ => Ok(()),
        }
    }

    /// Reads the `ticket_keys` file into the ticketer every listener shares; `None` when the
    /// configuration has none. Errors are [`ConfigError::Tls`] with the key `ticket_keys` and
    /// name the file and the line.
    pub fn load_ticket_keys(&self) -> Result<Option<Arc<TicketKeys>>, ConfigError> {
        self.ticket_keys
            .as_deref()
            .map(|path| {
                tls::ticket_keys::load(path).map_err(|error| ConfigError::Tls {
                    key: "ticket_keys".to_owned(),
                    source: TlsError::TicketKeys(error),
                })
            })
            .transpose()
    }
}

impl ListenerConfig {
    /// The listener part of [`Config::validate`]; `index` is the listener's position in
    /// [`Config::listeners`], for the key path in errors.
    pub fn validate(&self, index: usize) -> Result<(), ConfigError> {
        let key = |rest: &str| format!("listener[{index}].{rest}");
        if self.backlog == 0 {
            return Err(invalid(key("backlog"), "must be at least 1"));
        }
        for (name, rules) in [
            ("request_headers", &self.request_headers),
            ("response_headers", &self.response_headers),
        ] {
            rules
                .rules()
                .map_err(|e| invalid(key(name), e.to_string()))?;
        }
        if let Some(inbound) = &self.proxy_protocol {
            if inbound.trusted.is_empty() {
                return Err(invalid(
                    key("proxy_protocol.trusted"),
                    "must list at least one network (\"10.0.0.0/8\", \"127.0.0.1\"): the \
                     proxies or load balancers that send the header",
                ));
            }
            if inbound.timeout.is_zero() {
                return Err(invalid(
                    key("proxy_protocol.timeout"),
                    "must be greater than 0",
                ));
            }
        }
        if self.default_upstream.is_none() && self.routes.is_empty() && !self.redirect_https {
            return Err(invalid(
                key("backends"),
                "at least one backend is required: list them (backends = [\"127.0.0.1:8080\"]), \
                 name an [[upstream]] (upstream = \"app\") or add [[listener.route]] entries",
            ));
        }
        for (position, route) in self.routes.iter().enumerate() {
            let key = |rest: &str| key(&format!("route[{position}].{rest}"));
            if let Some(prefix) = &route.path_prefix {
                check_path(prefix).map_err(|why| invalid(key("path_prefix"), why))?;
            }
            if let Some(respond) = &route.respond {
                respond
                    .check()
                    .map_err(|e| invalid(key("respond"), e.to_string()))?;
            }
            for (name, rules) in [
                ("request_headers", &route.request_headers),
                ("response_headers", &route.response_headers),
            ] {
                rules
                    .rules()
                    .map_err(|e| invalid(key(name), e.to_string()))?;
            }
        }
        if self.is_plain() && self.tls != TlsOptions::default() {
            return Err(invalid(
                key("tls"),
                "TLS options on a listener without certificates (it serves plain HTTP): add \
                 [[listener.certificate]] or remove [listener.tls]",
            ));
        }
        if self.is_plain() && self.client_auth.is_some() {
            return Err(invalid(
                key("client_auth"),
                "client certificates on a listener without certificates (it serves plain \
                 HTTP): add [[listener.certificate]] or remove client_auth",
            ));
        }
        if self.redirect_https && !self.is_plain() {
            return Err(invalid(
                key("redirect_https"),
                "only on a plain-HTTP listener (one without [[listener.certificate]]): this one \
                 serves HTTPS already",
            ));
        }
        match self.redirect_https_port {
            Some(_) if !self.redirect_https => {
                return Err(invalid(
                    key("redirect_https_port"),
                    "given without redirect_https = true",
                ));
            }
            Some(0) => return Err(invalid(key("redirect_https_port"), "must not be 0")),
            _ => {}
        }
        for (position, certificate) in self.certificates.iter().enumerate() {
            let paths = [
                ("cert", Some(&certificate.cert)),
                ("key", Some(&certificate.key)),
                ("ocsp", certificate.ocsp.as_ref()),
            ];
            for (name, path) in paths {
                if path.is_some_and(|path| path.as_os_str().is_empty()) {
                    return Err(invalid(
                        key(&format!("certificate[{position}].{name}")),
                        "must be a file path, not empty",
                    ));
                }
            }
        }
        if let Some(auth) = &self.client_auth {
            for (name, path) in [("ca", Some(&auth.ca)), ("crl", auth.crl.as_ref())] {
                if path.is_some_and(|path| path.as_os_str().is_empty()) {
                    return Err(invalid(
                        key(&format!("client_auth.{name}")),
                        "must be a file path, not empty",
                    ));
                }
            }
        }
        Ok(())
    }

    /// Loads this listener's certificates, in order, each with its OCSP response when it has
    /// one. `index` is the listener's position in [`Config::listeners`], for the key path in
    /// errors.
    pub fn load_certificates(&self, index: usize) -> Result<Vec<Arc<CertifiedKey>>, ConfigError> {
        self.certificates
            .iter()
            .enumerate()
            .map(|(position, certificate)| {
                let error = |source: TlsError| {
                    let file = match source.file_kind() {
                        Some(FileKind::Certificate) => ".cert",
                        Some(FileKind::PrivateKey) => ".key",
                        Some(FileKind::Ocsp) => ".ocsp",
                        _ => "",
                    };
                    ConfigError::Certificate {
                        key: format!("listener[{index}].certificate[{position}]{file}"),
                        source,
                    }
                };
                let key =
                    tls::load_certified_key(&certificate.cert, &certificate.key).map_err(error)?;
                let Some(ocsp) = &certificate.ocsp else {
                    return Ok(key);
                };
                let mut key = Arc::unwrap_or_clone(key);
                key.ocsp = Some(tls::load_ocsp(ocsp).map_err(error)?);
                Ok(Arc::new(key))
            })
            .collect()
    }

    /// Loads this listener's client authentication (its CA and CRL files), when it has one.
    /// Errors name the key (`listener[0].client_auth.ca`) and the file.
    pub fn load_client_auth(&self, index: usize) -> Result<Option<ClientAuth>, ConfigError> {
        let Some(auth) = &self.client_auth else {
            return Ok(None);
        };
        tls::load_client_auth(&auth.ca, auth.crl.as_deref(), auth.mode)
            .map(Some)
            .map_err(|source| {
                let file = match source.file_kind() {
                    Some(FileKind::Crl) => "crl",
                    _ => "ca",
                };
                ConfigError::Certificate {
                    key: format!("listener[{index}].client_auth.{file}"),
                    source,
                }
            })
    }

    /// Loads the certificates and builds this listener's rustls configuration with
    /// [`tls::server_config`]. Pass the process's one [`tls::ticketer`] to enable tickets.
    pub fn server_config(
        &self,
        index: usize,
        ticketer: Option<Arc<dyn rustls::server::ProducesTickets>>,
    ) -> Result<Arc<rustls::ServerConfig>, ConfigError> {
        self.tls_config(index, ticketer).map(|(config, _)| config)
    }

    /// [`ListenerConfig::server_config`], with the client authentication policy it verifies
    /// clients under (`None`: it asks for no certificate).
    pub fn tls_config(
        &self,
        index: usize,
        ticketer: Option<Arc<dyn rustls::server::ProducesTickets>>,
    ) -> Result<(Arc<rustls::ServerConfig>, Option<ClientAuthPolicy>), ConfigError> {
        let keys = self.load_certificates(index)?;
        let client_auth = self.load_client_auth(index)?;
        let config = tls::server_config_with(keys, &self.tls, ticketer, client_auth.as_ref())
            .map_err(|source| ConfigError::Tls {
                key: format!("listener[{index}]"),
                source,
            })?;
        Ok((config, client_auth.map(|auth| auth.policy())))
    }
}

impl UpstreamConfig {
    /// The upstream part of [`Config::validate`] (all but name uniqueness); `index` is the
    /// upstream's position in [`Config::upstreams`], for the key path in errors.
    pub fn validate(&self, index: usize) -> Result<(), ConfigError> {
        self.validate_named(index, &KeyNames::default())
    }

    fn validate_named(&self, index: usize, names: &KeyNames) -> Result<(), ConfigError> {
        let key = |rest: &str| names.upstream(index, rest);
        if !Self::is_valid_name(&self.name) {
            return Err(invalid(
                key("name"),
                format!(
                    "{:?} is not a valid upstream name: use letters, digits, '_', '.' and '-'",
                    self.name
                ),
            ));
        }
        match (&self.hash, self.policy) {
            (None, Policy::ConsistentHash) => {
                return Err(invalid(
                    key("hash"),
                    "is required with policy = \"consistent_hash\" (\"client_ip\", \
                     \"header:<name>\" or \"cookie:<name>\")",
                ));
            }
            (Some(_), policy) if policy != Policy::ConsistentHash => {
                return Err(invalid(
                    key("hash"),
                    format!(
                        "is only used with policy = \"consistent_hash\", not {:?}",
                        policy.name()
                    ),
                ));
            }
            (Some(HashKey::Header(name)), _)
                if !is_token(name) || name.bytes().any(|b| b.is_ascii_uppercase()) =>
            {
                return Err(invalid(
                    key("hash"),
                    format!("header name {name:?} must be a lowercase token"),
                ));
            }
            (Some(HashKey::Cookie(name)), _) if !is_token(name) => {
                return Err(invalid(
                    key("hash"),
                    format!("cookie name {name:?} must be a token"),
                ));
            }
            _ => {}
        }

        if self.backends.is_empty() {
            let example = match names.origin(index) {
                Origin::Legacy { .. } => "(backends = [\"127.0.0.1:8080\"])",
                Origin::Table { .. } => "(backends = [\"127.0.0.1:8080\"] or [[upstream.backend]])",
            };
            return Err(invalid(
                names.backend_list(index),
                format!("at least one backend is required {example}"),
            ));
        }
        let mut seen: HashMap<&BackendAddress, usize> = HashMap::new();
        for (position, backend) in self.backends.iter().enumerate() {
            let address = &backend.address;
            if address.port() == 0 {
                return Err(invalid(
                    names.backend(index, position, "address"),
                    format!("{address}: port 0 cannot be connected to"),
                ));
            }
            if let BackendAddress::Name(name) = address {
                name.check().map_err(|why| {
                    invalid(
                        names.backend(index, position, "address"),
                        format!("{address} is not a host:port address: {why}"),
                    )
                })?;
            }
            if !(1..=BackendConfig::MAX_WEIGHT).contains(&backend.weight) {
                return Err(invalid(
                    names.backend(index, position, "weight"),
                    format!(
                        "{} is out of range: must be 1 to {}",
                        backend.weight,
                        BackendConfig::MAX_WEIGHT
                    ),
                ));
            }
            if let Some(first) = seen.insert(address, position) {
                return Err(invalid(
                    names.backend(index, position, "address"),
                    format!(
                        "{address} is already {}",
                        names.backend(index, first, "address")
                    ),
                ));
            }
        }
        if self.backends.iter().all(|backend| backend.backup) {
            return Err(invalid(
                key("backend"),
                "every backend is a backup (backup = true): at least one primary backend is \
                 required",
            ));
        }

        if let Some(check) = &self.health_check {
            check.validate(&key("health_check"))?;
        }

        let outlier = &self.outlier;
        if outlier.base_ejection.is_zero() {
            return Err(invalid(
                key("outlier.base_ejection"),
                "must be greater than 0",
            ));
        }
        if outlier.max_ejection < outlier.base_ejection {
            return Err(invalid(
                key("outlier.max_ejection"),
                format!(
                    "{} is shorter than base_ejection ({})",
                    format_duration(outlier.max_ejection),
                    format_duration(outlier.base_ejection)
                ),
            ));
        }
        if outlier.max_ejected_percent > 100 {
            return Err(invalid(
                key("outlier.max_ejected_percent"),
                "must be at most 100",
            ));
        }
        if self.hedge_after.is_some_and(|d| d.is_zero()) {
            return Err(invalid(key("hedge_after"), "must be greater than 0"));
        }
        if self.retries.percent > 100 {
            return Err(invalid(
                key("retries.budget_percent"),
                "must be at most 100",
            ));
        }
        Ok(())
    }
}

impl HealthCheckConfig {
    /// Checks timings and HTTP fields; `prefix` is the section's key path
    /// (`upstream[0].health_check`).
    fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        let key = |rest: &str| format!("{prefix}.{rest}");
        for (name, value) in [("interval", self.interval), ("timeout", self.timeout)] {
            if value.is_zero() {
                return Err(invalid(key(name), "must be greater than 0"));
            }
        }
        if self.timeout >= self.interval {
            return Err(invalid(
                key("timeout"),
                format!(
                    "{} must be shorter than interval ({})",
                    format_duration(self.timeout),
                    format_duration(self.interval)
                ),
            ));
        }
        if self.jitter > self.interval {
            return Err(invalid(
                key("jitter"),
                format!(
                    "{} must not exceed interval ({})",
                    format_duration(self.jitter),
                    format_duration(self.interval)
                ),
            ));
        }
        for (name, value) in [("rise", self.rise), ("fall", self.fall)] {
            if value == 0 {
                return Err(invalid(key(name), "must be at least 1"));
            }
        }
        if let CheckKind::Http {
            method,
            path,
            host,
            expect_status,
        } = &self.kind
        {
            if !is_token(method) {
                return Err(invalid(
                    key("method"),
                    format!("{method:?} is not an HTTP method (a token such as \"GET\")"),
                ));
            }
            check_path(path).map_err(|why| invalid(key("path"), why))?;
            if let Some(host) = host
                && !is_host_value(host)
            {
                return Err(invalid(
                    key("host"),
                    format!("{host:?} is not a host name or address, with an optional port"),
                ));
            }
            if expect_status.start() < &100
                || expect_status.end() > &599
                || expect_status.start() > expect_status.end()
            {
                return Err(invalid(
                    key("expect_status"),
                    format!(
                        "{:?} is not a status or range of statuses within 100-599 (low-high)",
                        format_status_range(expect_status)
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// `[resolver]`: `0 < min_ttl <= max_ttl`, `timeout > 0`, name server ports not 0. Names
/// are not resolved here: a configuration checks on a machine without the DNS.
fn check_resolver(resolver: &ResolverConfig) -> Result<(), ConfigError> {
    for (key, value) in [
        ("resolver.min_ttl", resolver.min_ttl),
        ("resolver.max_ttl", resolver.max_ttl),
        ("resolver.timeout", resolver.timeout),
    ] {
        if value.is_zero() {
            return Err(invalid(key, "must be greater than 0"));
        }
    }
    if resolver.min_ttl > resolver.max_ttl {
        return Err(invalid(
            "resolver.min_ttl",
            format!(
                "{} is longer than resolver.max_ttl ({}): a name is looked up again at least \
                 min_ttl and at most max_ttl after the last lookup",
                format_duration(resolver.min_ttl),
                format_duration(resolver.max_ttl)
            ),
        ));
    }
    for (position, server) in resolver.nameservers.iter().enumerate() {
        if server.port() == 0 {
            return Err(invalid(
                format!("resolver.nameservers[{position}]"),
                format!("{server}: port 0 cannot be asked"),
            ));
        }
    }
    Ok(())
}

/// `[access_log]`: `buffer` in range, `path` not empty. Whether the file can be written is
/// [`Config::check`]'s.
fn check_access_log(access_log: &AccessLogConfig) -> Result<(), ConfigError> {
    if !(1..=MAX_ACCESS_LOG_BUFFER).contains(&access_log.buffer) {
        return Err(invalid(
            "access_log.buffer",
            format!(
                "must be between 1 and {MAX_ACCESS_LOG_BUFFER} (batches of lines queued for the \
                 log thread)"
            ),
        ));
    }
    if access_log
        .path
        .as_ref()
        .is_some_and(|path| path.as_os_str().is_empty())
    {
        return Err(invalid(
            "access_log.path",
            "must be a file path, not empty (leave it out to log to standard output)",
        ));
    }
    Ok(())
}

/// A request target prefix or path: starts with `/`, visible ASCII only.
fn check_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!("{path:?} must start with '/'"));
    }
    if !path.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "{path:?} may only hold visible ASCII characters (no spaces)"
        ));
    }
    Ok(())
}

/// A Host header value: a name or address, optional `:port` (`app.internal`, `10.0.0.1:80`,
/// `[fd00::1]:8080`).
fn is_host_value(text: &str) -> bool {
    !text.is_empty()
        && text.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b':' | b'[' | b']')
        })
}

/// How validation errors name the keys of upstreams and their backends: as the TOML document
/// wrote them, or by position in [`Config::upstreams`] (the default, for a config built in
/// code).
#[derive(Debug, Default)]
pub(super) struct KeyNames {
    /// Where each upstream came from, by index; missing entries are [`Origin::Table`] with no
    /// short list.
    pub(super) origins: Vec<Origin>,
}

/// Where an upstream of a parsed document came from.
#[derive(Debug, Clone, Copy)]
pub(super) enum Origin {
    /// An `[[upstream]]` table whose short `backends` list held `short` backends (they come
    /// first in [`UpstreamConfig::backends`]).
    Table { short: usize },
    /// The legacy `backends` list of `listener[listener]`.
    Legacy { listener: usize },
}

impl KeyNames {
    fn origin(&self, upstream: usize) -> Origin {
        self.origins
            .get(upstream)
            .copied()
            .unwrap_or(Origin::Table { short: 0 })
    }

    /// `upstream[i].rest`; for an implicit upstream, the legacy list that made it (its other
    /// keys are not in the document).
    fn upstream(&self, upstream: usize, rest: &str) -> String {
        match self.origin(upstream) {
            Origin::Table { .. } => format!("upstream[{upstream}].{rest}"),
            Origin::Legacy { listener } => format!("listener[{listener}].backends"),
        }
    }

    /// Where the upstream's backends are listed.
    fn backend_list(&self, upstream: usize) -> String {
        match self.origin(upstream) {
            Origin::Table { .. } => format!("upstream[{upstream}].backends"),
            Origin::Legacy { listener } => format!("listener[{listener}].backends"),
        }
    }

    /// The key of `field` of backend `backend` (its index in [`UpstreamConfig::backends`]):
    /// `upstream[i].backends[j]` in the short list (which only has addresses),
    /// `upstream[i].backend[j].field` in the long form, `listener[i].backends[j]` in a legacy
    /// list.
    fn backend(&self, upstream: usize, backend: usize, field: &str) -> String {
        match self.origin(upstream) {
            Origin::Table { short } if backend < short => {
                format!("upstream[{upstream}].backends[{backend}]")
            }
            Origin::Table { short } => {
                format!("upstream[{upstream}].backend[{}].{field}", backend - short)
            }
            Origin::Legacy { listener } => format!("listener[{listener}].backends[{backend}]"),
        }
    }
}

/// Checks the shape of an `EnvFilter` directive list: non-empty directives, and where a
/// directive names a level (`target=level`), a known one. A bare word that is not a level is a
/// target name, which `EnvFilter` accepts.
fn check_log_level(level: &str) -> Result<(), String> {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    if level.trim().is_empty() {
        return Err("must not be empty (e.g. \"info\")".to_owned());
    }
    for directive in level.split(',') {
        let directive = directive.trim();
        if directive.is_empty() {
            return Err(format!("{level:?} has an empty directive"));
        }
        if let Some((_, name)) = directive.rsplit_once('=')
            && !LEVELS.iter().any(|known| known.eq_ignore_ascii_case(name))
        {
            return Err(format!(
                "{name:?} in {directive:?} is not a level (off, error, warn, info, debug, trace)"
            ));
        }
    }
    Ok(())
}
