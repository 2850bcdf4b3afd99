//! The decisions of watching a name, without I/O or a clock: what an answer means given the
//! last good set ([`merge`]), when to look again ([`clamp_ttl`], [`retry_delay`]), and what to
//! report and log ([`Watch::apply`]). Time comes in as an [`Instant`] argument.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::{DiscoveryError, Name, Resolved, ResolverSettings};

/// What the lookup of one address family (A or AAAA) found.
#[derive(Debug)]
pub(super) enum Family {
    /// These addresses (at least one), and the smallest TTL of the records that gave them.
    Found(Vec<IpAddr>, Duration),
    /// No record of this family: the name has none (NODATA), or does not exist at all
    /// (NXDOMAIN, `nxdomain: true`).
    Empty { nxdomain: bool },
    /// No answer: a timeout, a server failure, a network error.
    Failed(DiscoveryError),
}

/// An answer for both families of a name.
#[derive(Debug)]
pub(super) struct Answer {
    pub(super) v4: Family,
    pub(super) v6: Family,
}

/// What an answer means, given the last good set.
#[derive(Debug)]
pub(super) struct Merged {
    /// Sorted, without duplicates. A family that failed keeps its addresses from the last good
    /// set; one that is empty has none. May be empty.
    pub(super) addrs: Vec<SocketAddr>,
    /// The smallest TTL of the families found; `None` when none was.
    pub(super) ttl: Option<Duration>,
    /// Why the lookup counts as failed: a family failed (even when the other answered), or
    /// the name has no address at all.
    pub(super) error: Option<DiscoveryError>,
}

/// Sorts and deduplicates a set of addresses (IPv4 before IPv6).
pub(super) fn normalize(mut addrs: Vec<SocketAddr>) -> Vec<SocketAddr> {
    addrs.sort_unstable();
    addrs.dedup();
    addrs
}

/// What `answer` for `name` means, given `last`, the last good set: each family that failed
/// keeps its addresses from `last`, so a lost AAAA answer does not drop the IPv6 backends.
pub(super) fn merge(name: &Name, last: &[SocketAddr], answer: Answer) -> Merged {
    let mut addrs = Vec::new();
    let mut ttl: Option<Duration> = None;
    let mut error = None;
    let mut nxdomain = false;
    for (family, v6) in [(answer.v4, false), (answer.v6, true)] {
        match family {
            Family::Found(ips, found_ttl) => {
                addrs.extend(ips.into_iter().map(|ip| SocketAddr::new(ip, name.port)));
                ttl = Some(ttl.map_or(found_ttl, |ttl| ttl.min(found_ttl)));
            }
            Family::Empty { nxdomain: nx } => nxdomain |= nx,
            Family::Failed(why) => {
                addrs.extend(last.iter().filter(|a| a.is_ipv6() == v6));
                error.get_or_insert(why);
            }
        }
    }
    let addrs = normalize(addrs);
    if addrs.is_empty() && error.is_none() {
        error = Some(DiscoveryError::NoAddress {
            host: name.host.clone(),
            nxdomain,
        });
    }
    Merged { addrs, ttl, error }
}

/// A TTL within the settings' bounds.
pub(super) fn clamp_ttl(ttl: Duration, settings: &ResolverSettings) -> Duration {
    ttl.max(settings.min_ttl)
        .min(settings.max_ttl.max(settings.min_ttl))
}

/// How long to wait after the `failures`-th failed lookup in a row (from 1): `min_ttl`, then
/// twice as long after each further failure, at most `max_ttl`.
pub(super) fn retry_delay(failures: u32, settings: &ResolverSettings) -> Duration {
    let doublings = failures.saturating_sub(1).min(31);
    settings
        .min_ttl
        .saturating_mul(1 << doublings)
        .min(settings.max_ttl)
        .max(settings.min_ttl)
}

/// What a startup lookup gives: the set and when to look again, with the error of a family
/// that failed while the other answered (the name has addresses: the caller logs it); or why
/// there is no address.
pub(super) fn first_answer(
    name: &Name,
    answer: Answer,
    settings: &ResolverSettings,
) -> Result<(Resolved, Option<DiscoveryError>), DiscoveryError> {
    let merged = merge(name, &[], answer);
    match merged.error {
        Some(error) if merged.addrs.is_empty() => Err(error),
        partial => {
            let ttl = match partial {
                Some(_) => retry_delay(1, settings),
                None => clamp_ttl(merged.ttl.unwrap_or(settings.min_ttl), settings),
            };
            let resolved = Resolved {
                name: name.clone(),
                addrs: merged.addrs,
                ttl,
            };
            Ok((resolved, partial))
        }
    }
}

/// One watched name: its last good set, when to look again, and the current failure episode.
#[derive(Debug)]
pub(super) struct Watch {
    pub(super) name: Name,
    /// The last good set: sorted, without duplicates; never replaced by an empty one.
    pub(super) addrs: Vec<SocketAddr>,
    /// When to look the name up again.
    pub(super) due: Instant,
    /// Failed lookups in a row; 0 while the name resolves.
    failures: u32,
}

/// What to do after a lookup.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Step {
    /// The set changed: report it.
    pub(super) changed: bool,
    pub(super) log: Log,
}

/// What to log after a lookup.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Log {
    /// Nothing: the name resolved, as it did last time.
    Quiet,
    /// The first failure of an episode (a warning), with the error.
    Failing(String),
    /// A further failure of the same episode (debug only), with the error.
    StillFailing(String),
    /// The name resolves again after this many failed lookups (info).
    Recovered { failures: u32 },
}

impl Watch {
    /// Watches `resolved`, looking again once its TTL has passed from `now`.
    pub(super) fn new(resolved: Resolved, now: Instant) -> Watch {
        Watch {
            name: resolved.name,
            addrs: normalize(resolved.addrs),
            due: now + resolved.ttl,
            failures: 0,
        }
    }

    /// Takes in `answer`, received at `now`: replaces the set when the answer gives another
    /// non-empty one, and sets the next lookup: at the clamped TTL after a success, after
    /// [`retry_delay`] after a failure.
    pub(super) fn apply(
        &mut self,
        now: Instant,
        answer: Answer,
        settings: &ResolverSettings,
    ) -> Step {
        let merged = merge(&self.name, &self.addrs, answer);
        let changed = !merged.addrs.is_empty() && merged.addrs != self.addrs;
        if changed {
            self.addrs = merged.addrs;
        }
        let log = match merged.error {
            Some(error) => {
                self.failures = self.failures.saturating_add(1);
                self.due = now + retry_delay(self.failures, settings);
                if self.failures == 1 {
                    Log::Failing(error.to_string())
                } else {
                    Log::StillFailing(error.to_string())
                }
            }
            None => {
                let failures = std::mem::take(&mut self.failures);
                self.due = now + clamp_ttl(merged.ttl.unwrap_or(settings.min_ttl), settings);
                if failures > 0 {
                    Log::Recovered { failures }
                } else {
                    Log::Quiet
                }
            }
        };
        Step { changed, log }
    }
}

/// `10.0.0.1:80, [fd00::1]:80`.
pub(super) fn list(addrs: &[SocketAddr]) -> String {
    addrs
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ResolverSettings {
        ResolverSettings {
            min_ttl: Duration::from_secs(1),
            max_ttl: Duration::from_secs(300),
            ..ResolverSettings::default()
        }
    }

    fn name() -> Name {
        Name::new("app.internal", 8080).expect("a name")
    }

    fn addr(text: &str) -> SocketAddr {
        text.parse().expect("an address")
    }

    fn ips(texts: &[&str]) -> Vec<IpAddr> {
        texts.iter().map(|t| t.parse().expect("an ip")).collect()
    }

    fn found(texts: &[&str], secs: u64) -> Family {
        Family::Found(ips(texts), Duration::from_secs(secs))
    }

    fn failed() -> Family {
        Family::Failed(DiscoveryError::Timeout {
            host: "app.internal".into(),
            after: Duration::from_secs(2),
        })
    }

    fn empty() -> Family {
        Family::Empty { nxdomain: false }
    }

    fn nxdomain() -> Family {
        Family::Empty { nxdomain: true }
    }

    #[test]
    fn ttls_are_clamped_to_the_settings() {
        let s = settings();
        assert_eq!(clamp_ttl(Duration::ZERO, &s), Duration::from_secs(1));
        assert_eq!(
            clamp_ttl(Duration::from_secs(30), &s),
            Duration::from_secs(30)
        );
        assert_eq!(
            clamp_ttl(Duration::from_secs(86400), &s),
            Duration::from_secs(300)
        );
        // A configuration built in code with min > max: min wins, no panic.
        let odd = ResolverSettings {
            min_ttl: Duration::from_secs(10),
            max_ttl: Duration::from_secs(5),
            ..s
        };
        assert_eq!(
            clamp_ttl(Duration::from_secs(7), &odd),
            Duration::from_secs(10)
        );
    }

    #[test]
    fn retries_back_off_from_min_ttl_to_max_ttl() {
        let s = settings();
        let delays: Vec<u64> = (1..=11).map(|n| retry_delay(n, &s).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(retry_delay(u32::MAX, &s), Duration::from_secs(300));
        assert_eq!(retry_delay(0, &s), Duration::from_secs(1));
    }

    #[test]
    fn an_answer_gives_both_families_sorted_with_the_smallest_ttl() {
        let merged = merge(
            &name(),
            &[],
            Answer {
                v4: found(&["10.0.0.2", "10.0.0.1", "10.0.0.2"], 30),
                v6: found(&["fd00::1"], 10),
            },
        );
        assert_eq!(
            merged.addrs,
            [
                addr("10.0.0.1:8080"),
                addr("10.0.0.2:8080"),
                addr("[fd00::1]:8080")
            ]
        );
        assert_eq!(merged.ttl, Some(Duration::from_secs(10)));
        assert!(merged.error.is_none());

        let v4_only = merge(
            &name(),
            &[],
            Answer {
                v4: found(&["10.0.0.1"], 5),
                v6: empty(),
            },
        );
        assert_eq!(v4_only.addrs, [addr("10.0.0.1:8080")]);
        assert!(v4_only.error.is_none(), "no AAAA record is no error");
    }

    #[test]
    fn a_failed_family_keeps_its_last_addresses() {
        let last = [addr("10.0.0.1:8080"), addr("[fd00::1]:8080")];
        let merged = merge(
            &name(),
            &last,
            Answer {
                v4: found(&["10.0.0.9"], 5),
                v6: failed(),
            },
        );
        assert_eq!(
            merged.addrs,
            [addr("10.0.0.9:8080"), addr("[fd00::1]:8080")]
        );
        assert!(matches!(merged.error, Some(DiscoveryError::Timeout { .. })));
    }

    #[test]
    fn no_address_is_an_error_naming_the_host() {
        let merged = merge(
            &name(),
            &[addr("10.0.0.1:8080")],
            Answer {
                v4: nxdomain(),
                v6: nxdomain(),
            },
        );
        assert!(merged.addrs.is_empty());
        let error = merged.error.expect("an error");
        assert_eq!(
            error.to_string(),
            "no address for app.internal: the name does not exist (NXDOMAIN)"
        );
        let merged = merge(
            &name(),
            &[],
            Answer {
                v4: empty(),
                v6: empty(),
            },
        );
        assert_eq!(
            merged.error.expect("an error").to_string(),
            "no address for app.internal: no A or AAAA record"
        );
    }

    fn partial_error_of(first: &(Resolved, Option<DiscoveryError>)) -> Option<&DiscoveryError> {
        first.1.as_ref()
    }

    #[test]
    fn the_first_answer_needs_an_address() {
        let s = settings();
        let resolved = first_answer(
            &name(),
            Answer {
                v4: found(&["10.0.0.1"], 0),
                v6: found(&["fd00::1"], 0),
            },
            &s,
        )
        .expect("resolved");
        assert!(partial_error_of(&resolved).is_none());
        let resolved = resolved.0;
        assert_eq!(resolved.addrs.len(), 2);
        assert_eq!(
            resolved.ttl,
            Duration::from_secs(1),
            "clamped up to min_ttl"
        );

        let error = first_answer(
            &name(),
            Answer {
                v4: failed(),
                v6: nxdomain(),
            },
            &s,
        )
        .expect_err("no address");
        assert!(matches!(error, DiscoveryError::Timeout { .. }), "{error}");

        // One family answered: usable, and looked at again soon.
        let partial = first_answer(
            &name(),
            Answer {
                v4: found(&["10.0.0.1"], 600),
                v6: failed(),
            },
            &s,
        )
        .expect("resolved");
        assert!(
            partial_error_of(&partial).is_some(),
            "the failed family is reported"
        );
        let partial = partial.0;
        assert_eq!(partial.addrs, [addr("10.0.0.1:8080")]);
        assert_eq!(partial.ttl, Duration::from_secs(1));
    }

    #[test]
    fn a_watch_reports_changes_only_and_logs_once_per_episode() {
        let s = settings();
        let t0 = Instant::now();
        let mut watch = Watch::new(
            Resolved {
                name: name(),
                addrs: vec![addr("[fd00::1]:8080"), addr("10.0.0.1:8080")],
                ttl: Duration::from_secs(5),
            },
            t0,
        );
        assert_eq!(watch.due, t0 + Duration::from_secs(5));
        assert_eq!(watch.addrs[0], addr("10.0.0.1:8080"), "sorted");

        // The same set: nothing to report.
        let t1 = t0 + Duration::from_secs(5);
        let same = Answer {
            v4: found(&["10.0.0.1"], 20),
            v6: found(&["fd00::1"], 20),
        };
        assert_eq!(
            watch.apply(t1, same, &s),
            Step {
                changed: false,
                log: Log::Quiet
            }
        );
        assert_eq!(watch.due, t1 + Duration::from_secs(20));

        // Another set: reported.
        let t2 = t1 + Duration::from_secs(20);
        let other = Answer {
            v4: found(&["10.0.0.2"], 1000),
            v6: found(&["fd00::1"], 1000),
        };
        assert!(watch.apply(t2, other, &s).changed);
        assert_eq!(watch.addrs, [addr("10.0.0.2:8080"), addr("[fd00::1]:8080")]);
        assert_eq!(
            watch.due,
            t2 + Duration::from_secs(300),
            "clamped to max_ttl"
        );

        // The name disappears: the last good set stays, one warning, then debug, backing off.
        let kept = watch.addrs.clone();
        let mut t = t2 + Duration::from_secs(300);
        let gone = || Answer {
            v4: nxdomain(),
            v6: nxdomain(),
        };
        let step = watch.apply(t, gone(), &s);
        assert!(!step.changed);
        assert!(matches!(&step.log, Log::Failing(e) if e.contains("no address for app.internal")));
        assert_eq!(watch.due, t + Duration::from_secs(1));
        t += Duration::from_secs(1);
        let step = watch.apply(t, gone(), &s);
        assert!(!step.changed);
        assert!(matches!(step.log, Log::StillFailing(_)));
        assert_eq!(watch.due, t + Duration::from_secs(2));
        t += Duration::from_secs(2);
        let step = watch.apply(
            t,
            Answer {
                v4: failed(),
                v6: failed(),
            },
            &s,
        );
        assert!(!step.changed);
        assert!(matches!(step.log, Log::StillFailing(_)));
        assert_eq!(watch.addrs, kept);

        // It comes back: one info line; the set is the same, so nothing to report.
        t += Duration::from_secs(4);
        let step = watch.apply(
            t,
            Answer {
                v4: found(&["10.0.0.2"], 60),
                v6: found(&["fd00::1"], 60),
            },
            &s,
        );
        assert_eq!(
            step,
            Step {
                changed: false,
                log: Log::Recovered { failures: 3 }
            }
        );
        assert_eq!(watch.due, t + Duration::from_secs(60));

        // A new episode warns again.
        let step = watch.apply(t, gone(), &s);
        assert!(matches!(step.log, Log::Failing(_)));
    }

    #[test]
    fn a_partial_failure_updates_the_answered_family_and_counts_as_a_failure() {
        let s = settings();
        let t0 = Instant::now();
        let mut watch = Watch::new(
            Resolved {
                name: name(),
                addrs: vec![addr("10.0.0.1:8080"), addr("[fd00::1]:8080")],
                ttl: Duration::from_secs(5),
            },
            t0,
        );
        let step = watch.apply(
            t0,
            Answer {
                v4: found(&["10.0.0.3"], 30),
                v6: failed(),
            },
            &s,
        );
        assert!(step.changed);
        assert!(matches!(step.log, Log::Failing(_)));
        assert_eq!(watch.addrs, [addr("10.0.0.3:8080"), addr("[fd00::1]:8080")]);
        assert_eq!(
            watch.due,
            t0 + Duration::from_secs(1),
            "looked at again soon"
        );
    }
}
