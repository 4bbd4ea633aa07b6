//! Prometheus metrics, named as controller-runtime names them so existing dashboards work.

use std::sync::Arc;
use std::sync::atomic::AtomicI64;
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

/// Name of the controller in metric labels.
pub const CONTROLLER: &str = "wasmapp";

/// Labels `{controller}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabels {
    /// Controller name.
    pub controller: String,
}

/// Labels `{controller, result}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// Controller name.
    pub controller: String,
    /// `success`, `error` or `requeue_after`.
    pub result: String,
}

/// Labels `{name}` of leader election.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LeaseLabels {
    /// Lease name.
    pub name: String,
}

/// Labels `{result}` of image inspections.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InspectionLabels {
    /// `valid`, `invalid` or `unknown`.
    pub result: String,
}

type HistogramFamily = Family<ControllerLabels, Histogram, fn() -> Histogram>;

/// All metrics of the operator.
#[derive(Debug)]
pub struct Metrics {
    /// The registry, for `/metrics`.
    pub registry: Registry,
    reconcile_total: Family<ResultLabels, Counter>,
    reconcile_errors: Family<ControllerLabels, Counter>,
    reconcile_time: HistogramFamily,
    active_workers: Family<ControllerLabels, Gauge<i64, AtomicI64>>,
    max_concurrent: Family<ControllerLabels, Gauge<i64, AtomicI64>>,
    retries: Family<ControllerLabels, Counter>,
    leader: Family<LeaseLabels, Gauge<i64, AtomicI64>>,
    inspections: Family<InspectionLabels, Counter>,
}

fn reconcile_histogram() -> Histogram {
    // 5 ms … ~41 s, like controller-runtime's 0.005 … 60 s.
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let reconcile_total = Family::<ResultLabels, Counter>::default();
        let reconcile_errors = Family::<ControllerLabels, Counter>::default();
        let reconcile_time: HistogramFamily = Family::new_with_constructor(reconcile_histogram);
        let active_workers = Family::default();
        let max_concurrent = Family::default();
        let retries = Family::default();
        let leader = Family::default();
        let inspections = Family::default();
        registry.register(
            "controller_runtime_reconcile",
            "Total number of reconciliations per controller",
            reconcile_total.clone(),
        );
        registry.register(
            "controller_runtime_reconcile_errors",
            "Total number of reconciliation errors per controller",
            reconcile_errors.clone(),
        );
        registry.register_with_unit(
            "controller_runtime_reconcile_time",
            "Length of time per reconciliation per controller",
            Unit::Seconds,
            reconcile_time.clone(),
        );
        registry.register(
            "controller_runtime_active_workers",
            "Number of currently used workers per controller",
            active_workers.clone(),
        );
        registry.register(
            "controller_runtime_max_concurrent_reconciles",
            "Maximum number of concurrent reconciles per controller",
            max_concurrent.clone(),
        );
        registry.register(
            "workqueue_retries",
            "Total number of retries handled by workqueue",
            retries.clone(),
        );
        registry.register(
            "leader_election_master_status",
            "Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master",
            leader.clone(),
        );
        registry.register(
            "wasmpod_image_inspections",
            "Image inspections in registries by result",
            inspections.clone(),
        );
        Self {
            registry,
            reconcile_total,
            reconcile_errors,
            reconcile_time,
            active_workers,
            max_concurrent,
            retries,
            leader,
            inspections,
        }
    }

    fn controller() -> ControllerLabels {
        ControllerLabels {
            controller: CONTROLLER.into(),
        }
    }

    /// Starts timing one reconcile; finish it with [`ReconcileTimer::finish`].
    pub fn start_reconcile(self: &Arc<Self>) -> ReconcileTimer {
        self.active_workers.get_or_create(&Self::controller()).inc();
        ReconcileTimer {
            metrics: Arc::clone(self),
            start: Instant::now(),
        }
    }

    /// Records the configured concurrency.
    pub fn set_max_concurrent(&self, n: usize) {
        self.max_concurrent
            .get_or_create(&Self::controller())
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Counts a retry scheduled by the error policy.
    pub fn retry(&self) {
        self.retries.get_or_create(&Self::controller()).inc();
    }

    /// Records whether this instance leads `lease`.
    pub fn set_leader(&self, lease: &str, leading: bool) {
        self.leader
            .get_or_create(&LeaseLabels { name: lease.into() })
            .set(i64::from(leading));
    }

    /// Counts an image inspection.
    pub fn inspection(&self, result: &str) {
        self.inspections
            .get_or_create(&InspectionLabels {
                result: result.into(),
            })
            .inc();
    }

    /// The registry as OpenMetrics text.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Times one reconcile and records its result.
#[derive(Debug)]
pub struct ReconcileTimer {
    metrics: Arc<Metrics>,
    start: Instant,
}

impl ReconcileTimer {
    /// Records the result: `success`, `error` or `requeue_after`.
    pub fn finish(self, result: &str) {
        let m = &self.metrics;
        let labels = Metrics::controller();
        m.reconcile_time
            .get_or_create(&labels)
            .observe(self.start.elapsed().as_secs_f64());
        m.reconcile_total
            .get_or_create(&ResultLabels {
                controller: CONTROLLER.into(),
                result: result.into(),
            })
            .inc();
        if result == "error" {
            m.reconcile_errors.get_or_create(&labels).inc();
        }
    }
}

impl Drop for ReconcileTimer {
    fn drop(&mut self) {
        self.metrics
            .active_workers
            .get_or_create(&Metrics::controller())
            .dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exports_controller_runtime_names() {
        let m = Arc::new(Metrics::new());
        m.start_reconcile().finish("success");
        m.start_reconcile().finish("error");
        m.set_leader("wasmpod-operator", true);
        let text = m.encode();
        for line in [
            "controller_runtime_reconcile_total{controller=\"wasmapp\",result=\"success\"} 1",
            "controller_runtime_reconcile_total{controller=\"wasmapp\",result=\"error\"} 1",
            "controller_runtime_reconcile_errors_total{controller=\"wasmapp\"} 1",
            "controller_runtime_reconcile_time_seconds_count{controller=\"wasmapp\"} 2",
            "controller_runtime_active_workers{controller=\"wasmapp\"} 0",
            "leader_election_master_status{name=\"wasmpod-operator\"} 1",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        assert!(text.trim_end().ends_with("# EOF"));
    }
}
