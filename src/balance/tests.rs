//! Tests of what every policy shares: the trait's contract, names, [`build`] and hashing.

use super::*;

fn ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("10.0.0.{i}:80")).collect()
}

#[test]
fn hash_key_is_pinned() {
    // FNV-1a 64 + fmix64, checked against an independent implementation. A change here moves
    // every consistent-hash key: it must be deliberate.
    assert_eq!(hash_key(b""), 0xefd0_1f60_ba99_2926);
    assert_eq!(hash_key(b"10.0.0.1:80#0"), 0xd988_28fa_0576_6dd3);
    assert_eq!(hash_key(&[192, 168, 1, 7]), 0x7205_853c_fbe4_a0e6);
}

#[test]
fn hash_ip_hashes_octets_and_unmaps_v4() {
    let v4: IpAddr = "192.168.1.7".parse().unwrap();
    let mapped: IpAddr = "::ffff:192.168.1.7".parse().unwrap();
    let v6: IpAddr = "2001:db8::1".parse().unwrap();
    assert_eq!(hash_ip(v4), 0x7205_853c_fbe4_a0e6);
    assert_eq!(hash_ip(mapped), 0x7205_853c_fbe4_a0e6);
    assert_eq!(
        hash_ip(v6),
        hash_key(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])
    );
}

#[test]
fn policy_names_round_trip() {
    let names: Vec<String> = PolicyKind::ALL.iter().map(|k| k.to_string()).collect();
    assert_eq!(
        names,
        [
            "round_robin",
            "weighted_round_robin",
            "random",
            "least_connections",
            "peak_ewma",
            "consistent_hash"
        ]
    );
    for kind in PolicyKind::ALL {
        assert_eq!(kind.name().parse::<PolicyKind>(), Ok(kind));
    }
}

#[test]
fn unknown_policy_lists_the_valid_names() {
    let err = "leastconn".parse::<PolicyKind>().unwrap_err();
    assert_eq!(err, UnknownPolicy("leastconn".to_owned()));
    assert_eq!(
        err.to_string(),
        "unknown balancing policy \"leastconn\": expected one of round_robin, \
         weighted_round_robin, random, least_connections, peak_ewma, consistent_hash"
    );
    assert!("RoundRobin".parse::<PolicyKind>().is_err());
    assert!("".parse::<PolicyKind>().is_err());
}

#[test]
fn policy_deserializes_from_its_config_name() {
    #[derive(serde::Deserialize)]
    struct Pool {
        policy: PolicyKind,
    }
    let pool: Pool = toml::from_str("policy = \"peak_ewma\"").unwrap();
    assert_eq!(pool.policy, PolicyKind::PeakEwma);
    assert!(toml::from_str::<Pool>("policy = \"fastest\"").is_err());
}

#[test]
fn only_round_robin_ignores_weights() {
    let weighted: Vec<bool> = PolicyKind::ALL.iter().map(|k| k.uses_weights()).collect();
    assert_eq!(weighted, [false, true, true, true, true, true]);
}

#[test]
fn nothing_to_pick_is_none_for_every_policy() {
    let now = Instant::now();
    for kind in PolicyKind::ALL {
        let p = build(kind, &ids(3), &[1, 1, 1], 7);
        assert_eq!(p.pick(&[], 1, now), None, "{kind}: empty pool");
        assert_eq!(
            p.pick(&candidates(&[0, 0, 0]), 1, now),
            None,
            "{kind}: all 0"
        );
        let empty = build(kind, &[], &[], 7);
        assert_eq!(empty.pick(&[], 0, now), None, "{kind}: built empty");
    }
}

#[test]
fn the_only_usable_backend_is_always_picked() {
    let now = Instant::now();
    for kind in PolicyKind::ALL {
        let p = build(kind, &ids(4), &[1, 1, 1, 1], 3);
        let c = candidates(&[0, 0, 70, 0]);
        for key in 0..200u64 {
            assert_eq!(
                p.pick(&c, hash_key(&key.to_le_bytes()), now),
                Some(2),
                "{kind}"
            );
        }
    }
}

#[test]
fn no_policy_picks_a_zero_weight() {
    // Random pools (seeded), some backends at 0, with the policies' state carried over.
    let mut rng = fastrand::Rng::with_seed(99);
    let now = Instant::now();
    for kind in PolicyKind::ALL {
        let p = build(kind, &ids(6), &[1, 2, 3, 1, 2, 3], 11);
        let mut picks = 0;
        for step in 0..5000u64 {
            let c: Vec<Candidate> = (0..6)
                .map(|_| Candidate {
                    weight: if rng.u8(..4) == 0 {
                        0
                    } else {
                        rng.u32(1..1000)
                    },
                    in_flight: rng.u32(..5),
                })
                .collect();
            match p.pick(&c, hash_key(&step.to_le_bytes()), now) {
                Some(i) => {
                    assert!(c[i].weight > 0, "{kind} picked a zero weight");
                    p.observe(i, Duration::from_micros(rng.u64(100..5000)), now);
                    picks += 1;
                }
                None => assert!(c.iter().all(|c| c.weight == 0), "{kind} gave up"),
            }
        }
        assert!(picks > 4900, "{kind}: {picks}");
    }
}

#[test]
fn build_starts_rotations_at_seed_modulo_pool_size() {
    let now = Instant::now();
    let c = candidates(&[100, 100, 100]);
    for (kind, seed, first) in [
        (PolicyKind::RoundRobin, 0, 0),
        (PolicyKind::RoundRobin, 1, 1),
        (PolicyKind::WeightedRoundRobin, 5, 2),
        (PolicyKind::LeastConnections, 0, 0),
        (PolicyKind::LeastConnections, 4, 1),
    ] {
        let p = build(kind, &ids(3), &[1, 1, 1], seed);
        assert_eq!(p.pick(&c, 0, now), Some(first), "{kind} seed {seed}");
    }
}
