//! Scale benchmark: N WasmApps (default 1000) against etcd + kube-apiserver.
//!
//! Runs the real operator binary (no leader election, all namespaces), creates the apps 32 at a
//! time (HTTP components with headless Services: apiserver-only's /24 service range holds only
//! ~250 virtual IPs), and reports the time until every Deployment exists, the time until every app has a
//! status, and the operator's peak resident memory (VmHWM). Targets: < 30 s and < 64 MB; a miss
//! exits non-zero.
//!
//! `cargo bench -p wasmpod-operator --bench apps` (env: WASMPOD_BENCH_APPS=N).

#![allow(
    clippy::unwrap_used,
    reason = "benchmark driver: a panic is the failure report"
)]

#[path = "../tests/apiserver/env.rs"]
#[allow(
    dead_code,
    reason = "shared with the integration tests; the bench uses part of it"
)]
mod env;
#[path = "../tests/support/mod.rs"]
mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams, PostParams};
use tokio::io::{AsyncBufReadExt, BufReader};
use wasmpod_operator::crd::{WasmApp, WasmAppSpec};
use wasmpod_operator::resources::labels;
use wasmpod_testkit::apiserver;

const TARGET_SECONDS: f64 = 30.0;
const TARGET_RSS_MB: f64 = 64.0;
const NAMESPACE: &str = "bench";

fn peak_rss_mb(pid: u32) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("VmHWM")?;
    Ok(kb / 1024.0)
}

async fn bench(cluster: &'static env::Cluster, n: usize) -> anyhow::Result<bool> {
    let client = cluster.client().await?;
    let registry = support::registry::FakeRegistry::start().await;
    registry.push("apps/hello", "v1", support::registry::http_artifact());
    let image = format!("{}/apps/hello:v1", registry.host());
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let mut ns = Namespace::default();
    ns.metadata.name = Some(NAMESPACE.into());
    namespaces.create(&PostParams::default(), &ns).await?;

    let mut operator = tokio::process::Command::new(env!("CARGO_BIN_EXE_wasmpod-operator"))
        .arg("--kubeconfig")
        .arg(&cluster.kubeconfig)
        .args([
            "--leader-elect=false",
            "--http-addr",
            "127.0.0.1:0",
            "--log-format",
            "json",
        ])
        .arg(format!("--insecure-registry={}", registry.host()))
        .env("RUST_LOG", "warn,wasmpod_operator::run=info")
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let pid = operator.id().context("pid")?;
    let mut lines = BufReader::new(operator.stderr.take().context("stderr")?).lines();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("\"level\":\"WARN\"") || line.contains("\"level\":\"ERROR\"") {
                eprintln!("operator: {line}");
            }
        }
    });

    let apps: Api<WasmApp> = Api::namespaced(client.clone(), NAMESPACE);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NAMESPACE);
    let start = Instant::now();
    futures::stream::iter(0..n)
        .map(|i| {
            let apps = apps.clone();
            let spec: WasmAppSpec = serde_json::from_value(
                serde_json::json!({"image": image, "service": {"type": "Headless"}}),
            )
            .unwrap();
            async move {
                apps.create(
                    &PostParams::default(),
                    &WasmApp::new(&format!("app-{i:04}"), spec),
                )
                .await
            }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<_>>()
        .await?;
    let created = start.elapsed();

    let managed = ListParams::default().labels(&labels::managed_selector());
    let deadline = Duration::from_secs(300);
    let all_deployments = loop {
        let count = deployments.list_metadata(&managed).await?.items.len();
        if count >= n {
            break start.elapsed();
        }
        if start.elapsed() > deadline {
            bail!("only {count}/{n} Deployments after {deadline:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let all_status = loop {
        let list = apps.list(&ListParams::default()).await?;
        let done = list.items.iter().filter(|a| a.status.is_some()).count();
        if done >= n {
            break start.elapsed();
        }
        if start.elapsed() > deadline {
            bail!("only {done}/{n} apps have a status after {deadline:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Let follow-up reconciles (status writes, child events) settle before reading the peak.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss = peak_rss_mb(pid)?;
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = tokio::time::timeout(Duration::from_secs(20), operator.wait()).await;

    let secs = all_deployments.as_secs_f64();
    let ok = secs < TARGET_SECONDS && rss < TARGET_RSS_MB;
    println!("wasmpod-operator scale benchmark: {n} WasmApps against etcd + kube-apiserver");
    println!(
        "  created all WasmApps        {:>8.2} s",
        created.as_secs_f64()
    );
    println!("  all Deployments exist       {secs:>8.2} s   (target < {TARGET_SECONDS} s)");
    println!(
        "  all statuses written        {:>8.2} s",
        all_status.as_secs_f64()
    );
    println!("  operator peak RSS (VmHWM)   {rss:>8.1} MB  (target < {TARGET_RSS_MB} MB)");
    println!(
        "  result: {}",
        if ok {
            "within targets"
        } else {
            "MISSED a target"
        }
    );
    Ok(ok)
}

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` does not: stay out of test runs.
    if !std::env::args().any(|a| a == "--bench") {
        println!(
            "operator scale benchmark: run it with `cargo bench -p wasmpod-operator --bench apps`"
        );
        return Ok(());
    }
    if let Some(reason) = apiserver::missing_prerequisites() {
        if std::env::var(apiserver::REQUIRE_VAR).is_ok_and(|v| v == "1") {
            bail!("{}=1 but {reason}", apiserver::REQUIRE_VAR);
        }
        println!("SKIPPED: operator scale benchmark: {reason}");
        return Ok(());
    }
    let n: usize = std::env::var("WASMPOD_BENCH_APPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let cluster: &'static env::Cluster = Box::leak(Box::new(env::Cluster::start()?));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let result = rt.block_on(bench(cluster, n));
    cluster.stop();
    if !result? {
        std::process::exit(1);
    }
    Ok(())
}
