//! ringway: an HTTPS load balancer for Linux.
//!
//! TLS is terminated with rustls, HTTP/1.1 is parsed with httparse plus the RFC 9112 framing
//! rules in [`http1`], requests are spread over backend pools by [`balance`] and relayed over
//! kept-alive backend connections. Each worker thread is pinned to one core and drives its own
//! io_uring ring. See `docs/ARCHITECTURE.md` for the architecture as built: its layers, from
//! `app` down to `buf`, and the guard (`tests/layers.rs`) that keeps imports going down them.
//!
//! Public are only what the binary, the tests, the benches and the fuzz targets use; the rest
//! is private, so that the compiler reports what nothing uses.

pub mod access_log;
mod admin;
pub mod app;
pub mod balance;
mod buf;
pub mod config;
mod demo;
pub mod discovery;
#[doc(hidden)]
pub mod fuzzing;
pub mod http1;
mod metrics;
mod proxy;
pub mod proxy_protocol;
mod route;
pub mod runtime;
pub mod tls;
mod upstream;
