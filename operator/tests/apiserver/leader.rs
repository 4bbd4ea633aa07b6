//! Two operator processes, one Lease: one leads, the other stands by and takes over on SIGTERM.

use std::future::Future;
use std::pin::Pin;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

use crate::children::wait_child;
use crate::env::{TestEnv, spec, wait_for};
use crate::support::registry;

type Fut<'a> = Pin<Box<dyn Future<Output = anyhow::Result<()>> + 'a>>;

const LEASE: &str = "wasmpod-operator-test";

/// An operator process; killed on drop, its log kept for failure messages.
struct Operator {
    id: String,
    child: Child,
    addr: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

impl Operator {
    async fn start(env: &TestEnv, id: &str) -> anyhow::Result<Self> {
        Self::start_with(env, id, &[]).await
    }

    async fn start_with(env: &TestEnv, id: &str, extra: &[&str]) -> anyhow::Result<Self> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_wasmpod-operator"))
            .arg("--kubeconfig")
            .arg(&env.cluster.kubeconfig)
            .args(["--http-addr", "127.0.0.1:0", "--log-format", "json"])
            .args([
                "--lease-name",
                LEASE,
                "--lease-namespace",
                &env.ns,
                "--identity",
                id,
            ])
            .args(["--lease-duration", "4", "--lease-grace", "2"])
            .args(["--watch-namespace", &env.ns])
            .arg(format!("--insecure-registry={}", env.registry.host()))
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let mut lines = BufReader::new(child.stderr.take().context("stderr")?).lines();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let sink = log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                    && let Some(addr) = v.get("addr").and_then(|a| a.as_str())
                {
                    let _ = tx.send(addr.to_string());
                }
                sink.lock().unwrap().push(line);
            }
        });
        let addr = tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .ok()
            .flatten()
            .with_context(|| format!("{id} never logged its address: {:?}", log.lock().unwrap()))?;
        Ok(Self {
            id: id.into(),
            child,
            addr,
            log,
        })
    }

    async fn get(&self, path: &str) -> anyhow::Result<(u16, String)> {
        let mut s = tokio::net::TcpStream::connect(&self.addr).await?;
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
            .await?;
        let mut text = String::new();
        s.read_to_string(&mut text).await?;
        let code = text
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .context("status line")?;
        Ok((code, text))
    }

    async fn leading(&self) -> anyhow::Result<bool> {
        let (_, body) = self.get("/metrics").await?;
        let line = format!("leader_election_master_status{{name=\"{LEASE}\"}} 1");
        Ok(body.contains(&line))
    }

    async fn terminate(&mut self) -> anyhow::Result<ExitStatus> {
        let pid = self.child.id().context("pid")?;
        std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()?;
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .with_context(|| format!("{} ignored SIGTERM; its log:\n{}", self.id, self.log()))??;
        Ok(status)
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

async fn holder(env: &TestEnv) -> anyhow::Result<Option<String>> {
    let lease = env.api::<Lease>().get_opt(LEASE).await?;
    Ok(lease.and_then(|l| l.spec).and_then(|s| s.holder_identity))
}

pub fn two_operators_elect_one_leader(env: &mut TestEnv) -> Fut<'_> {
    Box::pin(async move {
        env.registry
            .push("apps/hello", "v1", registry::http_artifact());
        let a = Operator::start(env, "op-a").await?;
        let b = Operator::start(env, "op-b").await?;

        let first = wait_for("a lease holder", 30, || holder(env)).await?;
        ensure!(first == "op-a" || first == "op-b", "holder {first}");
        let (mut leader, standby) = if first == "op-a" { (a, b) } else { (b, a) };
        wait_for("the leader's metric", 20, || async {
            Ok(leader.leading().await?.then_some(()))
        })
        .await?;
        ensure!(
            !standby.leading().await?,
            "only one leader: {}",
            standby.log()
        );
        for op in [&leader, &standby] {
            for path in ["/healthz", "/readyz"] {
                let (code, _) = op.get(path).await?;
                ensure!(code == 200, "{} {path} answered {code}", op.id);
            }
        }

        env.create_app("hello", spec(&env.image("apps/hello:v1")))
            .await?;
        wait_child(
            &env.api::<Deployment>(),
            "hello",
            "the leader reconciling",
            |_| true,
        )
        .await?;

        let status = leader.terminate().await?;
        ensure!(
            status.success(),
            "{} exits cleanly on SIGTERM: {status}\n{}",
            leader.id,
            leader.log()
        );
        let standby_id = standby.id.clone();
        let took_over = wait_for("the standby taking over", 30, || async {
            Ok((holder(env).await?.as_deref() == Some(standby_id.as_str())).then_some(()))
        })
        .await;
        if let Err(e) = took_over {
            bail!("{e}\nstandby log:\n{}", standby.log());
        }
        wait_for("the new leader's metric", 20, || async {
            Ok(standby.leading().await?.then_some(()))
        })
        .await?;
        let mut standby = standby;
        let status = standby.terminate().await?;
        ensure!(
            status.success(),
            "second operator exits cleanly: {status}\n{}",
            standby.log()
        );
        Ok(())
    })
}

/// Without leader election, `/readyz` must follow the app cache: 503 before it syncs, then 200,
/// with the controller still reconciling (a readiness waiter once stole the controller's wake-up,
/// or stayed pending forever itself, so `helm install --wait` timed out).
pub fn readyz_turns_ready_and_the_controller_still_reconciles(env: &mut TestEnv) -> Fut<'_> {
    Box::pin(async move {
        env.registry
            .push("apps/hello", "v1", registry::http_artifact());
        env.create_app("before", spec(&env.image("apps/hello:v1")))
            .await?;
        let op = Operator::start_with(env, "op-solo", &["--leader-elect=false"]).await?;
        let ready = wait_for("/readyz to answer 200", 20, || async {
            let (code, _) = op.get("/readyz").await?;
            Ok((code == 200).then_some(()))
        })
        .await;
        if let Err(e) = ready {
            bail!("{e}\noperator log:\n{}", op.log());
        }
        ensure!(
            op.log().contains("WasmApp cache synced"),
            "the ready log line: {}",
            op.log()
        );
        for name in ["before", "after"] {
            if name == "after" {
                env.create_app(name, spec(&env.image("apps/hello:v1")))
                    .await?;
            }
            wait_child(
                &env.api::<Deployment>(),
                name,
                "the operator reconciling",
                |_| true,
            )
            .await
            .with_context(|| format!("operator log:\n{}", op.log()))?;
        }
        Ok(())
    })
}
