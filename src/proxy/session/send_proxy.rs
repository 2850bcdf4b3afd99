//! The PROXY protocol in a session: the header read before TLS on a listener that expects one
//! (the client it names becomes the connection's peer), and the header sent on each new
//! backend connection of an upstream with `send_proxy_protocol`.
//!
//! Invariants: a connection that carried a client's header is that client's alone: never
//! taken from nor returned to the shared pool; at most one is kept by the session, for the
//! same client's next request to the same backend on the same plan.

use super::*;

/// A backend connection that carried a client's PROXY header, kept for that client's next
/// request: valid for its backend in the plan generation it was chosen from.
pub(super) struct PrivateConn {
    pub(super) generation: u64,
    pub(super) backend: usize,
    pub(super) conn: BackendConn,
}

/// The PROXY header a new backend connection starts with (an upstream with
/// `send_proxy_protocol`).
#[derive(Clone, Copy)]
pub(super) struct SendProxy {
    pub(super) version: proxy_protocol::Version,
    pub(super) header: ProxyHeader,
}

impl Session {
    /// Reads the connection's PROXY header within `timeout` (a listener with
    /// `proxy_protocol`); a header that relays a client makes its address the connection's
    /// peer (LOCAL keeps the socket's). `Some`: read, with the bytes that came after it (the
    /// start of the ClientHello, for TLS). `None`: missing, malformed, too slow or cut short;
    /// counted and logged, the caller closes the connection.
    pub(super) async fn read_proxy_header(
        &mut self,
        timeout: Duration,
        accepted: Instant,
    ) -> Option<Option<Vec<u8>>> {
        let mut read = 0;
        let outcome = within(
            timeout,
            proxy_header::read_header(self.conn.tcp(), &mut read),
        )
        .await;
        self.conn.count_received(read);
        let (counter, reason) = match outcome {
            Ok(Ok(received)) => {
                if let ProxyHeader::Proxied {
                    source,
                    destination,
                } = received.header
                {
                    self.peer = source;
                    self.destination = Some(destination);
                }
                return Some(received.rest);
            }
            Ok(Err(failure)) => {
                tracing::debug!(peer = %self.peer, "PROXY header refused: {}", failure.detail());
                let counter = match failure {
                    proxy_header::HeaderFailure::Invalid(_) => PROXY_INVALID,
                    _ => PROXY_CLOSED,
                };
                (counter, failure.reason())
            }
            Err(_) => {
                tracing::debug!(peer = %self.peer, "no PROXY header within {timeout:?}");
                (PROXY_TIMEOUT, proxy_header::TIMEOUT_REASON)
            }
        };
        self.ctx.metrics.proxy_header_failures[counter].inc();
        self.log_connection(accepted, reason);
        None
    }

    /// A connection to `backend` of upstream `group` for an attempt (see
    /// [`backend_connection`]); for an upstream that sends a PROXY header, the connection kept
    /// from this client's previous request to the same backend on the same plan, when the
    /// backend has not closed it, else a new one with the header (never a pooled one).
    pub(super) async fn backend_connection(
        &mut self,
        group: usize,
        backend: usize,
        now: Instant,
        trust_recent: bool,
    ) -> Result<(BackendConn, Option<Duration>), ProxyError> {
        let sends_proxy = self.serving.groups[group].spec().send_proxy.is_some();
        if let Some(private) = self.private.take()
            && sends_proxy
            && private.generation == self.serving.number
            && private.backend == backend
            && private.conn.is_reusable()
        {
            // Kept, like a pooled connection (no connect, no header to write).
            return Ok((private.conn, None));
        }
        let send_proxy = self.send_proxy(group);
        backend_connection(
            &self.ctx,
            &self.serving,
            backend,
            now,
            trust_recent,
            send_proxy,
        )
        .await
    }

    /// The PROXY header that opens a new connection to upstream `group`'s backends, when the
    /// upstream sends one: the client's address, and the address it connected to (the PROXY
    /// header's destination, else the socket's local address, read once per connection).
    pub(super) fn send_proxy(&mut self, group: usize) -> Option<SendProxy> {
        let version = self.serving.groups[group].spec().send_proxy?;
        if self.destination.is_none() {
            self.destination = self.conn.tcp().local_addr().ok();
        }
        let destination = self.destination;
        let header = match destination {
            Some(destination) => ProxyHeader::Proxied {
                source: self.peer,
                destination,
            },
            None => ProxyHeader::Local,
        };
        Some(SendProxy { version, header })
    }
}
