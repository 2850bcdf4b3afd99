//! ringway: an HTTPS load balancer for Linux.
//!
//! TLS is terminated with rustls, HTTP/1.1 is parsed with httparse plus the RFC 9112 framing
//! rules in [`http1`], requests are spread over backend pools by [`balance`] and relayed over
//! kept-alive backend connections from [`upstream`]. Each worker thread is pinned to one core
//! and drives its own io_uring ring ([`runtime`]); the per-connection task lives in [`proxy`].
//! See `docs/ARCHITECTURE.md` for the architecture as built.

pub mod app;
pub mod balance;
pub mod buf;
pub mod config;
pub mod demo;
#[doc(hidden)]
pub mod fuzzing;
pub mod http1;
pub mod proxy;
pub mod route;
pub mod runtime;
pub mod tls;
pub mod upstream;
