//! Wires the activator: client, engine, the apps, the WasmApp watch and the admin server.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt, reflector};
use tokio::net::TcpListener;
use wasmpod_operator::crd::WasmApp;
use wasmpod_runtime::WasmEngine;

use crate::apps::Apps;
use crate::cli::Args;
use crate::env::PodFacts;
use crate::error::{Error, IoContext, Result};
use crate::prepare::Host;
use crate::pull::Registries;

/// What the downward API tells the activator about its own pod.
fn own_pod() -> PodFacts {
    let var = |n: &str| std::env::var(n).unwrap_or_default();
    PodFacts {
        pod_name: var("POD_NAME"),
        pod_ip: var("POD_IP"),
        node_name: var("NODE_NAME"),
        host_ip: var("HOST_IP"),
        ..PodFacts::default()
    }
}

/// Runs until the WasmApp watch ends or the admin server fails.
pub async fn run(args: Args) -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = wasmpod_operator::run::client(args.kubeconfig.as_deref())
        .await
        .map_err(|e| Error::Config(e.to_string()))?;
    std::fs::create_dir_all(&args.state_dir)
        .io_context(|| format!("create {}", args.state_dir.display()))?;
    let engine = WasmEngine::new(&args.state_dir.join("compiled"))?;
    let host = Arc::new(Host {
        client: client.clone(),
        engine,
        registries: Registries {
            insecure: args.insecure_registries.clone(),
        },
        state_dir: args.state_dir.clone(),
        cluster_domain: args.cluster_domain.clone(),
        pod: own_pod(),
        max_held: args.max_held_per_app,
        instance_cpu: Duration::from_millis(args.request_cpu_ms),
    });
    let apps = Apps::new(host);
    let ready = Arc::new(AtomicBool::new(false));
    let listener = TcpListener::bind(args.admin_addr)
        .await
        .io_context(|| format!("listen on {}", args.admin_addr))?;
    tracing::info!(addr = %args.admin_addr, "serving /healthz, /readyz and /apps");
    let admin = tokio::spawn(crate::admin::serve(listener, apps.clone(), ready.clone()));

    let api: Api<WasmApp> = match &args.watch_namespace {
        Some(ns) => Api::namespaced(client, ns),
        None => Api::all(client),
    };
    let (store, writer) = reflector::store();
    let retry = {
        let (apps, store) = (apps.clone(), store.clone());
        let every = Duration::from_secs(args.retry_seconds.max(1));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                for app in store.state() {
                    apps.update(&app, true);
                }
            }
        })
    };
    let mut events = watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .boxed();
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .io_context(|| "listen for SIGTERM".into())?;
    loop {
        let event = tokio::select! {
            event = events.next() => match event {
                Some(e) => e,
                None => break,
            },
            _ = terminate.recv() => {
                // Not ready at once, so the operator and kube-proxy take this pod out of the
                // apps' endpoints; keep answering meanwhile, then go.
                tracing::info!(delay = ?args.shutdown_delay(), "SIGTERM: leaving the endpoints, then exiting");
                ready.store(false, Ordering::SeqCst);
                tokio::time::sleep(args.shutdown_delay()).await;
                retry.abort();
                admin.abort();
                return Ok(());
            }
        };
        match event {
            Ok(Event::Apply(app) | Event::InitApply(app)) => apps.update(&app, false),
            Ok(Event::Delete(app)) => {
                let key = (app.namespace().unwrap_or_default(), app.name_any());
                let live: Vec<_> = store
                    .state()
                    .iter()
                    .map(|a| (a.namespace().unwrap_or_default(), a.name_any()))
                    .filter(|k| *k != key)
                    .collect();
                apps.retain(&live);
            }
            Ok(Event::Init) => {}
            Ok(Event::InitDone) => {
                let live: Vec<_> = store
                    .state()
                    .iter()
                    .map(|a| (a.namespace().unwrap_or_default(), a.name_any()))
                    .collect();
                apps.retain(&live);
                ready.store(true, Ordering::SeqCst);
            }
            Err(e) => tracing::warn!(error = %e, "watching WasmApps"),
        }
    }
    retry.abort();
    admin.abort();
    Err(Error::Config("the WasmApp watch ended".into()))
}
