//! Hedged requests: a second attempt on another backend for an idempotent request whose first
//! attempt sent no byte of answer within `hedge_after`, raced against the first in the same
//! task ([`Session::race_hedge`]).
//!
//! Invariants: a hedge needs an attempt left, another backend and the retry budget; the first
//! response head to arrive wins and the other attempt's future is dropped (its connection
//! closed, never pooled); upgrades are never hedged.

use super::*;

/// A first attempt that may be hedged: its connection and backend, the request (to send
/// again), and how long it may go without a byte of answer.
pub(super) struct Hedge<'a> {
    pub(super) first: &'a BackendConn,
    pub(super) first_backend: usize,
    pub(super) req: &'a [u8],
    pub(super) delay: Duration,
}

/// A hedge's second attempt that answered first: its lease and connection, and the first
/// attempt's failure if it failed before.
pub(super) struct HedgeWon {
    pub(super) lease: Lease,
    pub(super) conn: BackendConn,
    pub(super) first_failed: Option<ProxyError>,
}

/// The second attempt of a hedged request, when it can be had: a backend other than
/// `first`, an attempt left, and the retry budget paying for it.
pub(super) fn start_hedge(
    serving: &Rc<Generation>,
    group: usize,
    key: u64,
    first: usize,
    attempts: &mut Attempts,
) -> Option<Lease> {
    let now = coarse_now();
    let backend = match serving.groups[group].choose(key, Some(first), now) {
        Choice::Backend(i) => i,
        Choice::Unavailable { .. } => return None,
    };
    let lease = Lease::new(serving.clone(), group, backend);
    if backend == first || !serving.groups[group].retry_budget().withdraw(now) {
        return None;
    }
    attempts.uses_pooled(false);
    attempts.start(backend).then_some(lease)
}

/// A connection to `backend` with `req` sent on it, for a hedge: a pooled one if there is
/// one (and no `send_proxy`), else a new one.
pub(super) async fn hedge_connection(
    ctx: &Context,
    serving: &Generation,
    backend: usize,
    req: &[u8],
    send_proxy: Option<SendProxy>,
) -> Result<BackendConn, ProxyError> {
    let (conn, _) =
        backend_connection(ctx, serving, backend, coarse_now(), false, send_proxy).await?;
    let mut copy = buf::take(req.len());
    copy.extend_from_slice(req);
    let mut stream = &conn.stream;
    let BufResult(res, copy) = within(serving.plan.timeouts.body, stream.write_all(copy))
        .await
        .map_err(|_| ProxyError::BackendStalled)?;
    buf::give(copy);
    res.map_err(ProxyError::BackendWrite)?;
    Ok(conn)
}

impl Session {
    /// Waits for the first response head on `hedge.first`; if none has started after
    /// `hedge.delay`, sends the request to a second backend (when one is usable and the retry
    /// budget allows) and waits for both: the first head to arrive wins. `Ok(None)`: the first
    /// attempt's head is in `self.rbuf`; `Ok(Some(..))`: the second's is, and its lease and
    /// connection replace the first's (which is closed). Either attempt failing leaves the
    /// other; both failing, or the response timeout, is the error.
    pub(super) async fn race_hedge(
        &mut self,
        hedge: Hedge<'_>,
        method: Method,
        target: &Target<'_>,
        attempts: &mut Attempts,
    ) -> Result<Option<HedgeWon>, ProxyError> {
        let ctx = self.ctx.clone();
        let serving = self.serving.clone();
        let limits = serving.plan.limits;
        let response_at = after(serving.plan.timeouts.response);
        let (group, label) = (target.group, target.label);
        let mut rbuf_b = LazyBuf::new(HEAD_BUFFER);
        let mut rhead_b = ResponseHead::new();
        let (answered_a, answered_b) = (Cell::new(false), Cell::new(false));
        let peer = self.peer;
        let send_proxy = self.send_proxy(group);
        let outcome = {
            let Session { rbuf, rhead, .. } = self;
            let stream_a = &hedge.first.stream;
            // Never an upgrade: those are not hedged.
            let mut head_a = pin!(read_response_head(
                stream_a,
                rbuf,
                rhead,
                (method, false),
                &limits,
                &answered_a
            ));
            let hedge_at = after(hedge.delay).min(response_at);
            if let Ok(read) = until(hedge_at, head_a.as_mut()).await {
                return read.map(|()| None);
            }
            // Not one byte from the first backend: a second attempt, if it can be had.
            let second = if answered_a.get() {
                None
            } else {
                start_hedge(&serving, group, target.key, hedge.first_backend, attempts)
            };
            let Some(lease_b) = second else {
                return match until(response_at, head_a.as_mut()).await {
                    Ok(read) => read.map(|()| None),
                    Err(_) => Err(ProxyError::ResponseTimeout),
                };
            };
            tracing::debug!(upstream = %serving.groups[group].spec().name, request = %label,
                backend = %serving.plan.table.backend(lease_b.backend()).address,
                "no answer yet: hedging");
            // The second attempt is set up while the first may still answer.
            let setup = pin!(hedge_connection(
                &ctx,
                &serving,
                lease_b.backend(),
                hedge.req,
                send_proxy
            ));
            let conn_b = match until(response_at, select(head_a.as_mut(), setup)).await {
                Err(_) => return Err(ProxyError::ResponseTimeout),
                Ok(Either::Left((read, _))) => return read.map(|()| None),
                Ok(Either::Right((Err(e), _))) => {
                    lease_b.report_error(&e);
                    log_failure(&serving, peer, &e, group, lease_b.backend(), label, "");
                    return match until(response_at, head_a.as_mut()).await {
                        Ok(read) => read.map(|()| None),
                        Err(_) => Err(ProxyError::ResponseTimeout),
                    };
                }
                Ok(Either::Right((Ok(conn), _))) => conn,
            };
            // Which attempt's head came first (`Some`: the second's, with the first's failure
            // if it failed first), or the error.
            let second_won: Result<Option<Option<ProxyError>>, ProxyError> = {
                let head_b = pin!(read_response_head(
                    &conn_b.stream,
                    &mut rbuf_b,
                    &mut rhead_b,
                    (method, false),
                    &limits,
                    &answered_b
                ));
                match until(response_at, select(head_a.as_mut(), head_b)).await {
                    Err(_) => Err(ProxyError::ResponseTimeout),
                    Ok(Either::Left((Ok(()), _))) => Ok(None),
                    Ok(Either::Right((Ok(()), _))) => Ok(Some(None)),
                    Ok(Either::Left((Err(e), head_b))) => {
                        // The first failed: the second alone.
                        match until(response_at, head_b).await {
                            Ok(Ok(())) => Ok(Some(Some(e))),
                            Ok(Err(second)) => {
                                lease_b.report_error(&second);
                                Err(e)
                            }
                            Err(_) => Err(ProxyError::ResponseTimeout),
                        }
                    }
                    Ok(Either::Right((Err(e), _))) => {
                        lease_b.report_error(&e);
                        log_failure(&serving, peer, &e, group, lease_b.backend(), label, "");
                        match until(response_at, head_a.as_mut()).await {
                            Ok(read) => read.map(|()| None),
                            Err(_) => Err(ProxyError::ResponseTimeout),
                        }
                    }
                }
            };
            second_won.map(|won| {
                won.map(|first_failed| HedgeWon {
                    lease: lease_b,
                    conn: conn_b,
                    first_failed,
                })
            })
        };
        if let Ok(Some(_)) = &outcome {
            // The second attempt won: its head is the response.
            std::mem::swap(&mut self.rbuf, &mut rbuf_b);
            std::mem::swap(&mut self.rhead, &mut rhead_b);
        }
        outcome
    }
}
