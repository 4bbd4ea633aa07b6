//! Leader election through a `coordination.k8s.io` Lease: only the holder reconciles.

use std::future::Future;
use std::sync::Arc;

use kube::Client;
use kube_lease_manager::LeaseManagerBuilder;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::{Error, Result};

/// Lease settings.
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    /// Lease name.
    pub name: String,
    /// Namespace of the Lease (the operator's own).
    pub namespace: String,
    /// This instance's identity (the pod name).
    pub identity: String,
    /// Seconds a lease stays valid after its last renewal.
    pub duration: u64,
    /// Seconds before expiry at which the holder renews.
    pub grace: u64,
}

/// A future that resolves when `token` is cancelled and is `Sync`, as the controller's shutdown
/// trigger must be.
pub fn cancelled(token: CancellationToken) -> impl Future<Output = ()> + Send + Sync + 'static {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        token.cancelled().await;
        let _ = tx.send(());
    });
    async move {
        let _ = rx.await;
    }
}

async fn until(rx: &mut watch::Receiver<bool>, leading: bool) -> Result<()> {
    rx.wait_for(|v| *v == leading)
        .await
        .map(|_| ())
        .map_err(|_| Error::Config("the lease manager stopped".into()))
}

/// Waits for the lease, then runs `work` until `shutdown` (Ok, lease released for a fast
/// failover) or until the lease is lost (`Err(LeadershipLost)`: exit and restart, as
/// controller-runtime does). `work` gets a token that stops it.
pub async fn run_as_leader<F, Fut>(
    client: Client,
    config: LeaseConfig,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
    work: F,
) -> Result<()>
where
    F: FnOnce(CancellationToken) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let manager = LeaseManagerBuilder::new(client, &config.name)
        .with_namespace(&config.namespace)
        .with_identity(&config.identity)
        .with_duration(config.duration)
        .with_grace(config.grace)
        // One field manager per replica: the lease is taken with a server-side apply, and only
        // distinct managers make two replicas' simultaneous takes conflict. A shared manager
        // let both applies succeed, and both replicas led until the next renewal.
        .with_field_manager(format!(
            "{}-lease-{}",
            crate::apply::FIELD_MANAGER,
            config.identity
        ))
        .build()
        .await?;
    let (mut rx, task) = manager.watch().await;
    metrics.set_leader(&config.name, false);
    tracing::info!(lease = %config.name, namespace = %config.namespace, identity = %config.identity, "waiting for the leader lease");

    let release = |rx: watch::Receiver<bool>, task: tokio::task::JoinHandle<_>| async move {
        drop(rx);
        match task.await {
            Ok(Ok(_)) => tracing::info!("released the leader lease"),
            Ok(Err(e)) => tracing::warn!(error = %e, "releasing the leader lease failed"),
            Err(e) => tracing::warn!(error = %e, "lease task failed"),
        }
    };

    tokio::select! {
        () = shutdown.cancelled() => {
            release(rx, task).await;
            return Ok(());
        }
        r = until(&mut rx, true) => r?,
    }
    metrics.set_leader(&config.name, true);
    tracing::info!(identity = %config.identity, "became leader");

    let stop = CancellationToken::new();
    let work = work(stop.clone());
    tokio::pin!(work);
    let outcome = tokio::select! {
        r = &mut work => r,
        () = shutdown.cancelled() => {
            stop.cancel();
            (&mut work).await
        }
        lost = until(&mut rx, false) => {
            tracing::error!("lost the leader lease; stopping");
            stop.cancel();
            (&mut work).await?;
            lost.and(Err(Error::LeadershipLost))
        }
    };
    metrics.set_leader(&config.name, false);
    release(rx, task).await;
    outcome
}
