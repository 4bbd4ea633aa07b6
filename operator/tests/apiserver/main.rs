//! Integration tests against a real etcd + kube-apiserver (`e2e/cluster/apiserver-only.sh`).
//!
//! One apiserver serves every test of this binary; each test gets its own namespace, registry
//! and in-process operator. Without the script or the Kubernetes binaries the tests are reported
//! as ignored ("SKIPPED: why"), or fail when `WASMPOD_REQUIRE_APISERVER=1` or `CI=true`
//! (wasmpod-testkit's tier harness).
//!
//! Run: `cargo test --release -p wasmpod-operator --test apiserver`.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is the failure report"
)]

mod capabilities;
mod children;
mod conditions;
mod env;
mod leader;
mod scale_to_zero;
#[path = "../support/mod.rs"]
mod support;
mod validation;

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::time::Duration;

use env::{Cluster, TestEnv};
use wasmpod_testkit::{Test, Tier, apiserver};

/// A test case: gets a fresh namespace and registry; starts the operator itself if it needs one.
pub type Case =
    for<'a> fn(&'a mut TestEnv) -> Pin<Box<dyn Future<Output = anyhow::Result<()>> + 'a>>;

const CASES: &[(&str, Case)] = &[
    (
        "crd_installs_with_client_side_apply_and_prints_columns",
        validation::crd_installs_with_client_side_apply_and_prints_columns,
    ),
    (
        "samples_pass_server_side_validation",
        validation::samples_pass_server_side_validation,
    ),
    (
        "invalid_wasmapps_are_rejected_with_the_field_message",
        validation::invalid_wasmapps_are_rejected_with_the_field_message,
    ),
    (
        "children_are_created_with_the_right_fields",
        children::children_are_created_with_the_right_fields,
    ),
    (
        "scale_subresource_moves_the_deployment",
        children::scale_subresource_moves_the_deployment,
    ),
    (
        "deleted_or_edited_children_are_repaired",
        children::deleted_or_edited_children_are_repaired,
    ),
    (
        "config_edits_change_the_pod_template",
        children::config_edits_change_the_pod_template,
    ),
    (
        "unwanted_children_are_removed",
        children::unwanted_children_are_removed,
    ),
    (
        "conditions_follow_the_deployment_status",
        conditions::conditions_follow_the_deployment_status,
    ),
    (
        "image_problems_set_image_valid_without_stalling_others",
        conditions::image_problems_set_image_valid_without_stalling_others,
    ),
    (
        "capability_rules_reject_nonsense_with_the_field_message",
        capabilities::capability_rules_reject_nonsense_with_the_field_message,
    ),
    (
        "missing_capability_secret_is_a_condition_until_it_exists",
        capabilities::missing_capability_secret_is_a_condition_until_it_exists,
    ),
    (
        "two_operators_elect_one_leader",
        leader::two_operators_elect_one_leader,
    ),
    (
        "readyz_turns_ready_and_the_controller_still_reconciles",
        leader::readyz_turns_ready_and_the_controller_still_reconciles,
    ),
    (
        "activator_ports_are_unique_and_opt_out_apps_stay_plain",
        scale_to_zero::activator_ports_are_unique_and_opt_out_apps_stay_plain,
    ),
    (
        "an_idle_app_hands_its_service_to_the_activator_and_back",
        scale_to_zero::an_idle_app_hands_its_service_to_the_activator_and_back,
    ),
];

static CLUSTER: OnceLock<Result<&'static Cluster, String>> = OnceLock::new();

fn cluster() -> Result<&'static Cluster, String> {
    CLUSTER
        .get_or_init(|| {
            Cluster::start()
                .map(|c| &*Box::leak(Box::new(c)))
                .map_err(|e| format!("{e:#}"))
        })
        .clone()
}

fn run_case(cluster: &'static Cluster, name: &str, case: Case) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let ns: String = format!("t-{}", name.replace('_', "-"))
            .chars()
            .take(60)
            .collect();
        let ns = ns.trim_end_matches('-').to_string();
        let mut env = TestEnv::new(cluster, &ns).await?;
        let outcome = tokio::time::timeout(Duration::from_secs(240), case(&mut env)).await;
        env.stop_operator().await;
        outcome.map_err(|_| anyhow::anyhow!("test timed out after 240s"))?
    })
}

fn main() {
    let tier = Tier {
        name: "operator against a real kube-apiserver",
        require_var: apiserver::REQUIRE_VAR,
    };
    let tests = CASES
        .iter()
        .map(|&(name, case)| Test {
            name,
            body: Box::new(move || {
                let cluster =
                    cluster().unwrap_or_else(|e| panic!("cannot start the apiserver: {e}"));
                if let Err(e) = run_case(cluster, name, case) {
                    panic!("{e:#}");
                }
            }),
        })
        .collect();
    let conclusion = tier.conclude(apiserver::missing_prerequisites(), tests);
    if let Some(Ok(c)) = CLUSTER.get() {
        c.stop();
    }
    conclusion.exit();
}
