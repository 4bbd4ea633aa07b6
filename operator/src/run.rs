//! Wires the operator together: client, HTTP server, leader election, controller, shutdown.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::cli::Args;
use crate::controller::{self, Context};
use crate::leader::{self, cancelled};
use crate::metrics::Metrics;
use crate::{Error, Result, server};

/// A client from `--kubeconfig`, else kube's defaults ($KUBECONFIG, ~/.kube/config, in-cluster).
/// The activator connects the same way.
pub async fn client(kubeconfig: Option<&std::path::Path>) -> Result<Client> {
    let config = match kubeconfig {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path)
                .map_err(|e| Error::Config(format!("kubeconfig {}: {e}", path.display())))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .map_err(|e| Error::Config(format!("kubeconfig {}: {e}", path.display())))?
        }
        None => kube::Config::infer()
            .await
            .map_err(|e| Error::Config(format!("no Kubernetes configuration: {e}")))?,
    };
    Ok(Client::try_from(config)?)
}

/// Cancels `token` on SIGTERM or SIGINT.
pub fn cancel_on_signals(token: CancellationToken) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = int.recv() => tracing::info!("SIGINT: shutting down"),
        }
        token.cancel();
    });
    Ok(())
}

/// Runs the operator until SIGTERM/SIGINT (Ok) or a fatal error.
pub async fn run(args: Args) -> Result<()> {
    let client = client(args.kubeconfig.as_deref()).await?;
    let shutdown = CancellationToken::new();
    cancel_on_signals(shutdown.clone())?;

    let metrics = Arc::new(Metrics::new());
    let ready = Arc::new(AtomicBool::new(false));
    let listener = TcpListener::bind(args.http_addr).await?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "serving /metrics, /healthz and /readyz on http://{addr}");
    let server = tokio::spawn(server::serve(
        listener,
        metrics.clone(),
        ready.clone(),
        shutdown.clone().cancelled_owned(),
    ));

    let ctx = Arc::new(Context::new(
        client.clone(),
        args.options(),
        metrics.clone(),
    ));
    let result = if args.leader_elect {
        // A standby is ready: it must not block rollouts of the operator's own Deployment.
        ready.store(true, Ordering::SeqCst);
        let ready = ready.clone();
        leader::run_as_leader(client, args.lease(), metrics, shutdown.clone(), |stop| {
            controller::run(ctx, ready, cancelled(stop))
        })
        .await
    } else {
        controller::run(ctx, ready, cancelled(shutdown.clone())).await
    };
    shutdown.cancel();
    match server.await {
        Ok(Err(e)) => tracing::warn!(error = %e, "HTTP server failed"),
        Err(e) => tracing::warn!(error = %e, "HTTP server task failed"),
        Ok(Ok(())) => {}
    }
    result
}
