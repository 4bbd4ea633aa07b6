//! What the operator knows of each app's traffic, from the counters its pods and the activator
//! report (`wasmpod_oci::activity`), and the activator's latest report per endpoint.
//!
//! Counters only grow while a process lives; a new `instance` means the process restarted. A
//! request is "seen" when a counter grew for the same instance, when requests are in flight, or
//! when a source that appeared after the first poll round reports requests. The first round after
//! the operator starts is only a baseline: missing history never counts as traffic, and the
//! operator's start counts as the last request (see [`Tracker::idle_base`]).

use std::collections::{HashMap, HashSet};

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use wasmpod_oci::activity::{ActivatorReport, Activity};

/// An app: `(namespace, name)`.
pub type AppKey = (String, String);

#[derive(Clone, Debug)]
struct Counter {
    instance: String,
    requests: u64,
    /// When the source last answered.
    heard: Timestamp,
}

#[derive(Clone, Debug, Default)]
struct Traffic {
    last_seen: Option<Timestamp>,
    /// By source: `pod@<ip>` or `activator@<ip>`.
    sources: HashMap<String, Counter>,
}

/// Traffic per app and the activator's reports; shared by the poller (writes) and reconciles
/// (reads).
#[derive(Debug)]
pub struct Tracker {
    started: Timestamp,
    warmed_up: bool,
    apps: HashMap<AppKey, Traffic>,
    activators: HashMap<String, ActivatorReport>,
}

impl Tracker {
    /// A tracker for an operator that started at `started`.
    pub fn new(started: Timestamp) -> Self {
        Self {
            started,
            warmed_up: false,
            apps: HashMap::new(),
            activators: HashMap::new(),
        }
    }

    /// Marks the end of the first poll round: from now on a new source with requests is traffic.
    pub fn warm_up(&mut self) {
        self.warmed_up = true;
    }

    /// Records one reading of `source`'s counters for `app`; returns whether it shows a request.
    pub fn observe(
        &mut self,
        app: &AppKey,
        source: &str,
        reading: &Activity,
        now: Timestamp,
    ) -> bool {
        let warmed_up = self.warmed_up;
        let traffic = self.apps.entry(app.clone()).or_default();
        let grew = match traffic.sources.get(source) {
            Some(c) if c.instance == reading.instance => reading.requests > c.requests,
            // A restarted process: whatever it counted happened since.
            Some(_) => reading.requests > 0,
            // A pod that started or an activator that joined after the operator's first round.
            None => warmed_up && reading.requests > 0,
        };
        traffic.sources.insert(
            source.to_string(),
            Counter {
                instance: reading.instance.clone(),
                requests: reading.requests,
                heard: now,
            },
        );
        let seen = grew || reading.in_flight > 0;
        if seen {
            traffic.last_seen = Some(now);
        }
        seen
    }

    /// Records a reading of a pod that left the Service's endpoints (see
    /// [`Self::lingering_pods`]): only growth of the same process counts, since a new process
    /// at that address may be another app's pod that got the IP. Returns whether it shows a
    /// request.
    pub fn observe_lingering(
        &mut self,
        app: &AppKey,
        address: &str,
        reading: &Activity,
        now: Timestamp,
    ) -> bool {
        let source = format!("pod@{address}");
        let same_process = self
            .apps
            .get(app)
            .and_then(|t| t.sources.get(&source))
            .is_some_and(|c| c.instance == reading.instance);
        same_process && self.observe(app, &source, reading, now)
    }

    /// Pods of `app` heard from within `grace` of `now` that are not among `current` (the ready
    /// endpoints behind its Service). A pod leaves the endpoints when the app goes to zero, but
    /// kube-proxy and clients can still reach it until it exits (the preStop delay keeps it
    /// answering): a request it served then must still count, or it would be served and never
    /// seen, and the app would stay at zero as if nobody had asked.
    pub fn lingering_pods(
        &self,
        app: &AppKey,
        current: &[String],
        now: Timestamp,
        grace: SignedDuration,
    ) -> Vec<String> {
        let Some(traffic) = self.apps.get(app) else {
            return Vec::new();
        };
        let mut pods: Vec<String> = traffic
            .sources
            .iter()
            .filter_map(|(s, c)| Some((s.strip_prefix("pod@")?, c)))
            .filter(|(a, c)| !current.iter().any(|x| x == a) && now < c.heard + grace)
            .map(|(a, _)| a.to_string())
            .collect();
        pods.sort();
        pods
    }

    /// A ready pod of `app` did not answer its poll: not knowing is not idleness, so the app
    /// counts as active now (a pod that never answers keeps its app from going to zero; a
    /// slow poll under load must not scale a serving app down).
    pub fn unheard(&mut self, app: &AppKey, now: Timestamp) {
        self.apps.entry(app.clone()).or_default().last_seen = Some(now);
    }

    /// Keeps the latest report of the activator endpoint `address` and records its counters.
    /// Returns the apps it shows a request for.
    pub fn activator_report(
        &mut self,
        address: &str,
        report: ActivatorReport,
        now: Timestamp,
    ) -> Vec<AppKey> {
        let source = format!("activator@{address}");
        let mut seen = Vec::new();
        for app in &report.apps {
            let key = (app.namespace.clone(), app.name.clone());
            let reading = Activity {
                instance: report.instance.clone(),
                requests: app.requests,
                in_flight: app.in_flight,
            };
            if self.observe(&key, &source, &reading, now) {
                seen.push(key);
            }
        }
        self.activators.insert(address.to_string(), report);
        seen
    }

    /// Forgets activator endpoints that are gone, and the apps' counters from them.
    pub fn retain_activators(&mut self, addresses: &HashSet<String>) {
        self.activators.retain(|a, _| addresses.contains(a));
        for traffic in self.apps.values_mut() {
            traffic
                .sources
                .retain(|s, _| match s.strip_prefix("activator@") {
                    Some(a) => addresses.contains(a),
                    None => true,
                });
        }
    }

    /// Forgets pods of `app` other than `addresses`, unless heard from within `grace` of `now`
    /// (they may be lingering: see [`Self::lingering_pods`]).
    pub fn retain_pods(
        &mut self,
        app: &AppKey,
        addresses: &HashSet<String>,
        now: Timestamp,
        grace: SignedDuration,
    ) {
        if let Some(traffic) = self.apps.get_mut(app) {
            traffic.sources.retain(|s, c| match s.strip_prefix("pod@") {
                Some(a) => addresses.contains(a) || now < c.heard + grace,
                None => true,
            });
        }
    }

    /// Forgets apps that no longer exist.
    pub fn retain_apps(&mut self, apps: &HashSet<AppKey>) {
        self.apps.retain(|k, _| apps.contains(k));
    }

    /// When a request for `app` was last seen by this operator.
    pub fn last_seen(&self, app: &AppKey) -> Option<Timestamp> {
        self.apps.get(app).and_then(|t| t.last_seen)
    }

    /// What idleness is measured from: the last request seen, the last one recorded in the
    /// status (`recorded`), or the operator's start, whichever is latest.
    pub fn idle_base(&self, app: &AppKey, recorded: Option<Timestamp>) -> Timestamp {
        [self.last_seen(app), recorded]
            .into_iter()
            .flatten()
            .fold(self.started, Timestamp::max)
    }

    /// The activator endpoints heard from, sorted.
    pub fn addresses(&self) -> Vec<String> {
        let mut all: Vec<_> = self.activators.keys().cloned().collect();
        all.sort();
        all
    }

    /// The latest report of each of `addresses` (`None` for endpoints not heard from yet).
    pub fn reports<'a>(
        &'a self,
        addresses: &'a [String],
    ) -> impl Iterator<Item = (&'a str, Option<&'a ActivatorReport>)> + 'a {
        addresses
            .iter()
            .map(|a| (a.as_str(), self.activators.get(a)))
    }
}

#[cfg(test)]
mod tests {
    use wasmpod_oci::activity::{ActivatorApp, ActivatorAppState};

    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_000_000 + secs).unwrap()
    }

    fn reading(instance: &str, requests: u64, in_flight: u64) -> Activity {
        Activity {
            instance: instance.into(),
            requests,
            in_flight,
        }
    }

    fn key() -> AppKey {
        ("apps".into(), "hello".into())
    }

    #[test]
    fn the_first_round_is_a_baseline_and_the_start_counts_as_the_last_request() {
        let mut t = Tracker::new(at(0));
        assert!(!t.observe(&key(), "pod@10.0.0.1", &reading("a", 40, 0), at(1)));
        assert_eq!(t.last_seen(&key()), None);
        assert_eq!(t.idle_base(&key(), None), at(0));
        assert_eq!(t.idle_base(&key(), Some(at(-50))), at(0));
        assert_eq!(t.idle_base(&key(), Some(at(7))), at(7));
    }

    #[test]
    fn growth_in_flight_and_restarts_are_requests_but_a_steady_counter_is_not() {
        let mut t = Tracker::new(at(0));
        t.observe(&key(), "pod@p", &reading("a", 5, 0), at(1));
        t.warm_up();
        assert!(!t.observe(&key(), "pod@p", &reading("a", 5, 0), at(2)));
        assert!(t.observe(&key(), "pod@p", &reading("a", 6, 0), at(3)));
        assert_eq!(t.last_seen(&key()), Some(at(3)));
        assert!(
            t.observe(&key(), "pod@p", &reading("a", 6, 1), at(4)),
            "in flight"
        );
        assert!(
            !t.observe(&key(), "pod@p", &reading("b", 0, 0), at(5)),
            "a restart with nothing served"
        );
        assert!(
            t.observe(&key(), "pod@p", &reading("c", 2, 0), at(6)),
            "restart that served"
        );
        assert!(
            t.observe(&key(), "pod@q", &reading("x", 1, 0), at(7)),
            "a pod that appeared after the first round and served"
        );
        assert_eq!(t.idle_base(&key(), Some(at(1))), at(7));
    }

    #[test]
    fn a_pod_that_left_the_endpoints_still_counts_until_it_goes_quiet() {
        let grace = SignedDuration::from_secs(10);
        let mut t = Tracker::new(at(0));
        t.warm_up();
        t.observe(&key(), "pod@p", &reading("a", 5, 0), at(1));
        // The app went to zero: p is no longer behind the Service, but still answers.
        assert_eq!(t.lingering_pods(&key(), &[], at(2), grace), ["p"]);
        assert_eq!(
            t.lingering_pods(&key(), &["p".into()], at(2), grace),
            Vec::<String>::new()
        );
        assert!(
            t.observe_lingering(&key(), "p", &reading("a", 6, 0), at(3)),
            "served while leaving"
        );
        assert_eq!(t.last_seen(&key()), Some(at(3)));
        assert!(
            !t.observe_lingering(&key(), "p", &reading("z", 9, 0), at(4)),
            "another process at that address is not this app's pod"
        );
        t.retain_pods(&key(), &HashSet::new(), at(12), grace);
        assert_eq!(
            t.lingering_pods(&key(), &[], at(12), grace),
            ["p"],
            "heard at 3, kept until 13"
        );
        t.retain_pods(&key(), &HashSet::new(), at(13), grace);
        assert!(t.lingering_pods(&key(), &[], at(13), grace).is_empty());
    }

    #[test]
    fn activator_reports_count_per_endpoint_and_are_forgotten_with_it() {
        let mut t = Tracker::new(at(0));
        let report = |requests, state| ActivatorReport {
            instance: "act-1".into(),
            apps: vec![ActivatorApp {
                namespace: "apps".into(),
                name: "hello".into(),
                port: 20001,
                digest: Some("sha256:1".into()),
                state,
                error: None,
                requests,
                in_flight: 0,
            }],
        };
        assert!(
            t.activator_report("10.1.0.1", report(3, ActivatorAppState::Ready), at(1))
                .is_empty()
        );
        t.warm_up();
        assert_eq!(
            t.activator_report("10.1.0.1", report(4, ActivatorAppState::Ready), at(2)),
            vec![key()]
        );
        let addrs = ["10.1.0.1".to_string(), "10.1.0.2".to_string()];
        let got: Vec<_> = t.reports(&addrs).map(|(a, r)| (a, r.is_some())).collect();
        assert_eq!(got, [("10.1.0.1", true), ("10.1.0.2", false)]);
        t.retain_activators(&HashSet::from(["10.1.0.2".to_string()]));
        assert!(t.reports(&addrs).all(|(_, r)| r.is_none()));
        t.retain_apps(&HashSet::new());
        assert_eq!(t.last_seen(&key()), None);
    }
}
