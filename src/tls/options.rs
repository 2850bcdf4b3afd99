//! What a listener's configuration may change in its TLS setup: session resumption.
#![forbid(unsafe_code)]

/// Entries of the stateful session cache when the configuration does not say.
pub const DEFAULT_SESSION_CACHE: usize = 4096;

/// TLS session resumption.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsOptions {
    /// Entries of the stateful session cache; 0 disables it. Default [`DEFAULT_SESSION_CACHE`].
    pub session_cache: usize,
    /// Stateless session tickets. Default true.
    pub tickets: bool,
}

impl Default for TlsOptions {
    fn default() -> Self {
        Self {
            session_cache: DEFAULT_SESSION_CACHE,
            tickets: true,
        }
    }
}
