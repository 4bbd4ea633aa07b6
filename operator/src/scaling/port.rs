//! Activator ports: every WasmApp with `spec.scaleToZero` gets its own port on the activator
//! (`status.scaleToZero.activatorPort`), because one activator process listens for all of them on
//! its pod IP.

use std::collections::{BTreeMap, HashSet};

use sha2::{Digest, Sha256};
use wasmpod_oci::names::ACTIVATOR_APP_PORTS;

/// Where the search for `key`'s port starts: a hash of `namespace/name` into the range, stable
/// across operator versions and restarts, so an app usually gets the same port back.
pub fn preferred(key: &str) -> u16 {
    let span = u64::from(ACTIVATOR_APP_PORTS.end() - ACTIVATOR_APP_PORTS.start()) + 1;
    let hash = Sha256::digest(key.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash[..8]);
    let offset = u64::from_be_bytes(first) % span;
    // `offset < span <= u16::MAX`, so the conversion never fails.
    ACTIVATOR_APP_PORTS.start() + u16::try_from(offset).unwrap_or(0)
}

/// The port for the app `key` (`namespace/name`), given the port it holds (`current`) and the
/// ports every other app holds (`others`, keyed the same way).
///
/// An app keeps a port it holds unless it is out of range or an app whose key sorts first holds
/// it too (two reconciles that raced): exactly one of the two keeps it. Otherwise the search
/// starts at [`preferred`] and probes upward, wrapping around, past held ports. `None` when all
/// 10 000 ports are held.
pub fn allocate(key: &str, current: Option<u16>, others: &BTreeMap<String, u16>) -> Option<u16> {
    let others = others.iter().filter(|(k, _)| k.as_str() != key);
    let first_holder_sorts_first =
        |port: u16| others.clone().any(|(k, p)| *p == port && k.as_str() < key);
    if let Some(port) = current
        && ACTIVATOR_APP_PORTS.contains(&port)
        && !first_holder_sorts_first(port)
    {
        return Some(port);
    }
    let held: HashSet<u16> = others.map(|(_, p)| *p).collect();
    let start = preferred(key);
    let (low, high) = (*ACTIVATOR_APP_PORTS.start(), *ACTIVATOR_APP_PORTS.end());
    (start..=high)
        .chain(low..start)
        .find(|port| !held.contains(port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(pairs: &[(&str, u16)]) -> BTreeMap<String, u16> {
        pairs.iter().map(|(k, p)| ((*k).to_string(), *p)).collect()
    }

    #[test]
    fn preferred_is_stable_and_in_range() {
        let a = preferred("apps/hello");
        assert_eq!(a, preferred("apps/hello"));
        assert!(ACTIVATOR_APP_PORTS.contains(&a));
        assert_ne!(a, preferred("apps/other"), "different apps usually differ");
    }

    #[test]
    fn a_free_app_gets_its_preferred_port_and_keeps_it() {
        let p = allocate("apps/hello", None, &BTreeMap::new()).unwrap();
        assert_eq!(p, preferred("apps/hello"));
        let others = held(&[("apps/b", 20000)]);
        assert_eq!(allocate("apps/hello", Some(21234), &others), Some(21234));
    }

    #[test]
    fn held_ports_are_probed_past_upward_and_around_the_end() {
        let key = "apps/hello";
        let start = preferred(key);
        let next = if start == *ACTIVATOR_APP_PORTS.end() {
            *ACTIVATOR_APP_PORTS.start()
        } else {
            start + 1
        };
        let others = held(&[("x/a", start)]);
        assert_eq!(allocate(key, None, &others), Some(next));
        let all_but_first: BTreeMap<String, u16> = ACTIVATOR_APP_PORTS
            .skip(1)
            .map(|p| (format!("x/{p}"), p))
            .collect();
        assert_eq!(
            allocate(key, None, &all_but_first),
            Some(*ACTIVATOR_APP_PORTS.start()),
            "wraps around to the start of the range"
        );
    }

    #[test]
    fn a_duplicate_goes_to_the_later_key_and_out_of_range_ports_are_replaced() {
        let others = held(&[("apps/a", 25000)]);
        assert_ne!(allocate("apps/b", Some(25000), &others), Some(25000));
        let others = held(&[("apps/z", 25000)]);
        assert_eq!(allocate("apps/b", Some(25000), &others), Some(25000));
        let p = allocate("apps/b", Some(80), &BTreeMap::new()).unwrap();
        assert!(ACTIVATOR_APP_PORTS.contains(&p));
    }

    #[test]
    fn a_full_range_yields_none() {
        let all: BTreeMap<String, u16> =
            ACTIVATOR_APP_PORTS.map(|p| (format!("x/{p}"), p)).collect();
        assert_eq!(allocate("apps/hello", None, &all), None);
    }

    #[test]
    fn many_apps_get_distinct_ports() {
        let mut taken = BTreeMap::new();
        for i in 0..500 {
            let key = format!("ns{}/app{i}", i % 7);
            let port = allocate(&key, None, &taken).unwrap();
            assert!(!taken.values().any(|p| *p == port), "{key} got a held port");
            taken.insert(key, port);
        }
    }
}
