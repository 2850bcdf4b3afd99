//! What a request came to, for the counters and the access log: the request's [`Trace`],
//! filled as the exchange goes, and the session's accounting at its end (the access-log line
//! of a request or of a connection that ended without one, the worker's and upstream's
//! counters, the client traffic).
//!
//! Invariants: a trace holds plain values and no allocation but the logged fields; a request's
//! line and counts are written once, when it ends (a tunnel's when the tunnel ends).

use super::*;

/// What the request in progress came to, filled as the exchange goes: for the counters and
/// the access log at its end. Plain values, no allocation.
#[derive(Default)]
pub(super) struct Trace {
    /// When its head was complete.
    pub(super) started: Option<Instant>,
    /// Its upstream, once routed.
    pub(super) group: Option<usize>,
    /// The route that took it (its position in the listener's router), for its header rules.
    pub(super) route: Option<usize>,
    /// The backend of its last attempt.
    pub(super) backend: Option<usize>,
    /// Attempts sent to backends (retries and hedges included).
    pub(super) attempts: u32,
    /// The status of the response head sent to the client; 0 when none was.
    pub(super) status: u16,
    /// Getting the last attempt's backend connection (0 when one was pooled).
    pub(super) connect: Option<Duration>,
    /// From the last attempt's request sent to its response head.
    pub(super) first_byte: Option<Duration>,
    /// What ended it, when not a complete exchange: the side and a short reason.
    pub(super) ended_by: Option<(Side, &'static str)>,
    /// Its fields for the access log, when it is logged.
    pub(super) fields: Option<Fields>,
    /// When its 101 went to the client and its tunnel began: the request's latency ends
    /// there (the access log's duration covers the tunnel).
    pub(super) switched: Option<Instant>,
}

/// The access log's termination for what ended a request (`None`: it ran to its end).
pub(super) fn termination(ended_by: Option<(Side, &'static str)>) -> Termination {
    match ended_by {
        None => Termination::COMPLETE,
        Some((Side::Client, reason)) => Termination::client(reason),
        Some((Side::Backend, reason)) => Termination::backend(reason),
        Some((Side::Internal, reason)) => Termination::proxy(reason),
    }
}

impl Session {
    /// Starts the trace of a request whose head is complete.
    pub(super) fn begin_request(&mut self) {
        self.trace = Trace {
            started: Some(Instant::now()),
            ..Trace::default()
        };
        self.began = true;
        self.ctx.metrics.requests.inc();
    }

    /// Adds the client traffic since the last call to the worker's counters.
    pub(super) fn count_traffic(&mut self) {
        let (received, sent) = self.conn.traffic();
        let metrics = &self.ctx.metrics;
        metrics.bytes_received.add(received - self.counted.0);
        metrics.bytes_sent.add(sent - self.counted.1);
        self.counted = (received, sent);
    }

    /// The listener's access-log rule.
    pub(super) fn log_rule(&self) -> LogRule {
        self.listener_plan().log
    }

    /// Whether the request in `self.head` is written to the access log.
    pub(super) fn logs_request(&self) -> bool {
        match self.log_rule() {
            LogRule::Off => false,
            LogRule::On => true,
            LogRule::Routes { default } => {
                let buf = self.inbuf.bytes();
                let (host, path) = (self.head.host(buf), self.head.path(buf));
                self.listener_plan()
                    .router
                    .logs(host, path)
                    .unwrap_or(default)
            }
        }
    }

    /// Writes the access-log line of the request that ended at `end` (logged requests, and
    /// refused heads on a logged listener).
    pub(super) fn log_request(&mut self, end: Instant) {
        let fields = self.trace.fields.take();
        let refused = fields.is_none() && self.trace.group.is_none() && self.trace.status != 0;
        if fields.is_none() && !(refused && self.log_rule() != LogRule::Off) {
            return;
        }
        let Some(log) = &self.ctx.access_log else {
            if let Some(fields) = fields {
                fields.release();
            }
            return;
        };
        let trace = &self.trace;
        let (received, sent) = self.conn.traffic();
        let handshake = self.conn.handshake_summary();
        let upstream = trace
            .group
            .map(|g| self.serving.groups[g].spec().name.as_str());
        let backend = trace
            .backend
            .map(|b| self.serving.plan.table.backend(b).address);
        self.conn.with_server_name(|sni| {
            let mut record = Record::new(self.ctx.wall_time(end), self.peer);
            record.tls_version = handshake.map(|h| h.version.name());
            record.cipher = handshake.map(|h| h.cipher);
            record.resumed = handshake.is_some_and(|h| h.resumed);
            record.sni = sni;
            if let Some(fields) = &fields {
                record.method = fields.method();
                record.host = fields.host();
                record.target = fields.target();
                record.user_agent = fields.agent();
                record.request_id = fields.request_id();
            }
            record.status = trace.status;
            // Since the previous request ended (the first: since the accept, handshake included).
            record.bytes_in = received - self.counted.0;
            record.bytes_out = sent - self.counted.1;
            record.upstream = upstream;
            record.backend = backend;
            record.attempts = trace.attempts;
            record.total = trace
                .started
                .map_or(Duration::ZERO, |s| end.saturating_duration_since(s));
            record.connect = trace.connect;
            record.first_byte = trace.first_byte;
            record.termination = termination(trace.ended_by);
            log.borrow_mut().push(&record);
        });
        if let Some(fields) = fields {
            fields.release();
        }
    }

    /// Writes the access-log line of a connection that ended without a request.
    pub(super) fn log_connection(&self, accepted: Instant, reason: &'static str) {
        let (Some(log), true) = (&self.ctx.access_log, self.log_rule() != LogRule::Off) else {
            return;
        };
        let (received, sent) = self.conn.traffic();
        let handshake = self.conn.handshake_summary();
        self.conn.with_server_name(|sni| {
            let mut record = Record::connection(
                SystemTime::now(),
                self.peer,
                accepted.elapsed(),
                Termination::client(reason),
            );
            (record.bytes_in, record.bytes_out) = (received, sent);
            record.tls_version = handshake.map(|h| h.version.name());
            record.cipher = handshake.map(|h| h.cipher);
            record.resumed = handshake.is_some_and(|h| h.resumed);
            record.sni = sni;
            log.borrow_mut().push(&record);
        });
    }

    /// Counts the request that ended: the worker's and its upstream's counters.
    pub(super) fn finish_request(&mut self) {
        let end = Instant::now();
        self.log_request(end);
        self.count_traffic();
        let trace = &self.trace;
        self.ctx.metrics.requests_done.inc();
        let Some(group) = trace.group else {
            return;
        };
        let counters = self.serving.groups[group].upstream_counters();
        if trace.status != 0 {
            counters.requests[crate::metrics::class(trace.status)].inc();
        }
        if let Some((_, "no_backend")) = trace.ended_by {
            counters.no_backend.inc();
        }
        counters
            .retries
            .add(u64::from(trace.attempts.saturating_sub(1)));
        if let Some(started) = trace.started {
            // A tunnel's hours are not a request's latency.
            let answered = trace.switched.unwrap_or(end);
            counters
                .request_seconds
                .record(answered.saturating_duration_since(started));
        }
        if let Some(first_byte) = trace.first_byte {
            counters.backend_seconds.record(first_byte);
        }
    }
}
