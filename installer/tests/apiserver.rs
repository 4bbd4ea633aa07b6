//! The installer binary's Kubernetes side against a real etcd + kube-apiserver
//! (`e2e/cluster/apiserver-only.sh`; needs `e2e/build-deps.sh etcd kubernetes`): the node label
//! after the install, the uninstall request through the DaemonSet annotation, SIGTERM during a
//! rollout/drain (DaemonSet present: keep everything) and after the DaemonSet's deletion
//! (revert), the pre-delete hook's `uninstall-all`, and one node's own uninstall annotation. The node-local part runs with `--local`
//! on temporary files (the "restart" appends to a file).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config, ResourceExt};
use serde_json::json;
use wasmpod_testkit::apiserver::{self, ApiServer};
use wasmpod_testkit::{Tier, async_tests, wait};

const NS: &str = "wasmpod-system";
const DS: &str = "wasmpod-node-installer";
const NODE: &str = "n1";
const LABEL: &str = "wasmpod.io/runtime";

/// etcd + kube-apiserver on free ports, stopped on drop.
fn apiserver() -> ApiServer {
    ApiServer::start().unwrap_or_else(|e| panic!("{e}"))
}

async fn client(api: &ApiServer) -> Client {
    let kc = Kubeconfig::read_from(&api.kubeconfig).unwrap();
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    Client::try_from(config).unwrap()
}

/// A node's files: containerd config, install dir, the "shim", a restart log.
struct NodeFiles {
    dir: tempfile::TempDir,
    node: &'static str,
}

const ORIGINAL: &str = "version = 2\n\n[plugins.\"io.containerd.grpc.v1.cri\".containerd]\n  default_runtime_name = \"runc\"\n";

impl NodeFiles {
    fn new() -> Self {
        Self::on(NODE)
    }

    /// The files of node `node` (which [`objects`] or the test creates).
    fn on(node: &'static str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.toml"), ORIGINAL).unwrap();
        std::fs::write(
            dir.path().join("shim"),
            "#!/bin/sh\necho containerd-shim-wasmpod-v1 0.1.0\n",
        )
        .unwrap();
        Self { dir, node }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn config(&self) -> String {
        std::fs::read_to_string(self.path("config.toml")).unwrap()
    }

    fn restarts(&self) -> usize {
        std::fs::read_to_string(self.path("restarts"))
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }

    fn installer(&self, api: &ApiServer, args: &[&str]) -> Child {
        self.installer_restarting_with(api, args, "")
    }

    /// Like [`Self::installer`], with `before` run ahead of each "restart" (in its shell).
    fn installer_restarting_with(&self, api: &ApiServer, args: &[&str], before: &str) -> Child {
        Command::new(env!("CARGO_BIN_EXE_wasmpod-node-installer"))
            .args(args)
            .args([
                "--local",
                "--node-name",
                self.node,
                "--namespace",
                NS,
                "--daemonset",
                DS,
            ])
            .arg("--shim-source")
            .arg(self.path("shim"))
            .arg("--install-dir")
            .arg(self.path("bin"))
            .arg("--containerd-config")
            .arg(self.path("config.toml"))
            .arg("--restart-command")
            .arg(format!(
                "{before} echo restart >> {}",
                self.path("restarts").display()
            ))
            .args([
                "--containerd-socket=",
                "--check-config-command=",
                "--poll-interval=1",
            ])
            .arg("--ready-file")
            .arg(self.path("ready"))
            .env("KUBECONFIG", &api.kubeconfig)
            .env_remove("NODE_NAME")
            .env_remove("POD_NAMESPACE")
            .spawn()
            .unwrap()
    }
}

/// Node `n1`, namespace and the installer DaemonSet (no controllers run: it never gets pods).
async fn objects(client: &Client) {
    let nodes: Api<Node> = Api::all(client.clone());
    nodes
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": NODE}})).unwrap(),
        )
        .await
        .unwrap();
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": NS}})).unwrap(),
    )
    .await
    .unwrap();
    let ds: DaemonSet = serde_json::from_value(json!({
        "metadata": {"name": DS},
        "spec": {
            "selector": {"matchLabels": {"app": "installer"}},
            "template": {
                "metadata": {"labels": {"app": "installer"}},
                "spec": {"containers": [{"name": "installer", "image": "installer:test"}]}
            }
        }
    }))
    .unwrap();
    Api::<DaemonSet>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &ds)
        .await
        .unwrap();
}

async fn label(client: &Client) -> Option<String> {
    label_of(client, NODE).await
}

async fn label_of(client: &Client, node: &str) -> Option<String> {
    let node = Api::<Node>::all(client.clone()).get(node).await.unwrap();
    node.labels().get(LABEL).cloned()
}

/// Sets (`Some`) or removes (`None`) the uninstall annotation of node `node`.
async fn annotate_node_uninstall(client: &Client, node: &str, value: Option<&str>) {
    Api::<Node>::all(client.clone())
        .patch(
            node,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"wasmpod.io/uninstall": value}}})),
        )
        .await
        .unwrap();
}

/// Polls `cond` for up to 30 s.
async fn wait_for<F, Fut>(what: &str, cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    wait::until_async(what, Duration::from_secs(30), cond).await;
}

fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits for the process to exit and returns whether it exited 0.
async fn exited_ok(child: &mut Child) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.success();
        }
        assert!(Instant::now() < deadline, "installer did not exit");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn annotate_uninstall(client: &Client) {
    Api::<DaemonSet>::namespaced(client.clone(), NS)
        .patch(
            DS,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"wasmpod.io/uninstall": "true"}}})),
        )
        .await
        .unwrap();
}

async fn label_set_after_install_and_removed_on_uninstall_request() {
    let api = apiserver();
    let client = client(&api).await;
    objects(&client).await;
    let node = NodeFiles::new();
    let mut installer = node.installer(&api, &["install", "--wait"]);

    wait_for("label ready", || async {
        label(&client).await.as_deref() == Some("ready")
    })
    .await;
    assert!(
        node.config().contains("runtimes.wasmpod"),
        "{}",
        node.config()
    );
    assert!(node.path("ready").exists(), "readiness file written");
    assert_eq!(node.restarts(), 1);

    annotate_uninstall(&client).await;
    wait_for("label no longer ready", || async {
        label(&client).await.as_deref() != Some("ready")
    })
    .await;
    wait_for("label removed", || async { label(&client).await.is_none() }).await;
    // The label goes last: once it is gone, the node is clean.
    assert_eq!(node.config(), ORIGINAL, "config restored");
    assert!(!node.path("bin").exists(), "binaries removed");
    assert_eq!(node.restarts(), 2);
    assert!(
        !node.path("ready").exists(),
        "not ready after the uninstall"
    );
    assert!(
        installer.try_wait().unwrap().is_none(),
        "idles after the uninstall"
    );

    // A restarted pod sees the annotation and does not install again.
    sigterm(&installer);
    assert!(exited_ok(&mut installer).await);
    let mut again = node.installer(&api, &["install", "--wait"]);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(node.config(), ORIGINAL);
    assert_eq!(label(&client).await, None);
    sigterm(&again);
    assert!(exited_ok(&mut again).await);
}

async fn sigterm_keeps_the_runtime_unless_the_daemonset_is_gone() {
    let api = apiserver();
    let client = client(&api).await;
    objects(&client).await;
    let node = NodeFiles::new();

    // Rollout, drain or reboot: the DaemonSet is still there.
    let mut installer = node.installer(&api, &["install", "--wait"]);
    wait_for("label ready", || async {
        label(&client).await.as_deref() == Some("ready")
    })
    .await;
    sigterm(&installer);
    assert!(exited_ok(&mut installer).await);
    assert_eq!(label(&client).await.as_deref(), Some("ready"), "label kept");
    assert!(node.config().contains("runtimes.wasmpod"), "runtime kept");
    assert!(node.path("bin/containerd-shim-wasmpod-v1").exists());

    // The next pod finds everything in place: no restart. The first pod's ready file is still
    // there: without removing it, the wait below would pass before this pod even set up its
    // SIGTERM handler, and the signal sent next would kill it.
    std::fs::remove_file(node.path("ready")).unwrap();
    let mut installer = node.installer(&api, &["install", "--wait"]);
    wait_for("ready file", || async { node.path("ready").exists() }).await;
    assert_eq!(node.restarts(), 1, "re-run restarted nothing");

    // The DaemonSet is deleted: SIGTERM reverts the node.
    Api::<DaemonSet>::namespaced(client.clone(), NS)
        .delete(DS, &DeleteParams::default())
        .await
        .unwrap();
    sigterm(&installer);
    assert!(exited_ok(&mut installer).await);
    assert_eq!(label(&client).await, None, "label removed");
    assert_eq!(node.config(), ORIGINAL, "config restored");
    assert!(!node.path("bin").exists(), "binaries removed");
    assert_eq!(node.restarts(), 2);
}

async fn uninstall_all_returns_once_the_nodes_are_reverted() {
    let api = apiserver();
    let client = client(&api).await;
    objects(&client).await;
    // The DaemonSet's pod on n1, as the DaemonSet controller would have made it.
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "installer-n1", "labels": {"app": "installer"}},
        "spec": {"nodeName": NODE, "containers": [{"name": "installer", "image": "installer:test"}]}
    }))
    .unwrap();
    Api::<Pod>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &pod)
        .await
        .unwrap();
    let node = NodeFiles::new();
    // The uninstall's containerd restart takes 3 s (longer than the hook's poll), as a real one
    // can: the hook must wait for it, not only for scheduling to stop.
    let slow_uninstall_restart = format!(
        "grep -q runtimes.wasmpod {} || sleep 3;",
        node.path("config.toml").display()
    );
    let mut installer =
        node.installer_restarting_with(&api, &["install", "--wait"], &slow_uninstall_restart);
    wait_for("label ready", || async {
        label(&client).await.as_deref() == Some("ready")
    })
    .await;

    let start = Instant::now();
    let hook = Command::new(env!("CARGO_BIN_EXE_wasmpod-node-installer"))
        .args([
            "uninstall-all",
            "--namespace",
            NS,
            "--daemonset",
            DS,
            "--timeout",
            "60",
        ])
        .env("KUBECONFIG", &api.kubeconfig)
        .output()
        .unwrap();
    assert!(
        hook.status.success(),
        "{}",
        String::from_utf8_lossy(&hook.stderr)
    );
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "did not wait for the timeout"
    );
    assert_eq!(
        label(&client).await,
        None,
        "returned only after the label was gone"
    );
    assert_eq!(
        node.restarts(),
        2,
        "returned before the uninstall's containerd restart finished"
    );
    assert_eq!(
        node.config(),
        ORIGINAL,
        "config restored when the hook returned"
    );
    assert!(
        !node.path("bin").exists(),
        "binaries removed when the hook returned"
    );
    let ds = Api::<DaemonSet>::namespaced(client.clone(), NS)
        .get(DS)
        .await
        .unwrap();
    assert_eq!(
        ds.annotations()
            .get("wasmpod.io/uninstall")
            .map(String::as_str),
        Some("true")
    );
    sigterm(&installer);
    assert!(exited_ok(&mut installer).await);
}

async fn node_annotation_uninstalls_that_node_only_and_removing_it_reinstalls() {
    let api = apiserver();
    let client = client(&api).await;
    objects(&client).await;
    Api::<Node>::all(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "n2"}})).unwrap(),
        )
        .await
        .unwrap();
    let (n1, n2) = (NodeFiles::new(), NodeFiles::on("n2"));
    let on_n1 = n1.installer(&api, &["install", "--wait"]);
    let mut on_n2 = n2.installer(&api, &["install", "--wait"]);
    for n in [NODE, "n2"] {
        wait_for("label ready", || async {
            label_of(&client, n).await.as_deref() == Some("ready")
        })
        .await;
    }

    annotate_node_uninstall(&client, "n2", Some("true")).await;
    wait_for("n2 label removed", || async {
        label_of(&client, "n2").await.is_none()
    })
    .await;
    assert_eq!(n2.config(), ORIGINAL, "n2's config restored");
    assert!(!n2.path("bin").exists(), "n2's binaries removed");
    assert!(n2.path("ready").exists(), "n2's pod is done, so Ready");
    assert!(on_n2.try_wait().unwrap().is_none(), "n2's pod idles");
    assert_eq!(
        label(&client).await.as_deref(),
        Some("ready"),
        "n1 kept its label"
    );
    assert!(
        n1.config().contains("runtimes.wasmpod"),
        "n1 kept its runtime"
    );
    assert_eq!(n1.restarts(), 1, "n1's containerd was not restarted");

    // A restarted pod on n2 keeps away while the annotation is there.
    sigterm(&on_n2);
    assert!(exited_ok(&mut on_n2).await);
    // The earlier pod's ready file would satisfy the wait before this one decided anything.
    std::fs::remove_file(n2.path("ready")).unwrap();
    let on_n2 = n2.installer(&api, &["install", "--wait"]);
    wait_for("n2 ready file", || async { n2.path("ready").exists() }).await;
    assert_eq!(n2.config(), ORIGINAL, "a restarted pod did not reinstall");

    annotate_node_uninstall(&client, "n2", None).await;
    wait_for("n2 label ready again", || async {
        label_of(&client, "n2").await.as_deref() == Some("ready")
    })
    .await;
    assert!(n2.config().contains("runtimes.wasmpod"), "n2 reinstalled");
    for mut child in [on_n1, on_n2] {
        sigterm(&child);
        assert!(exited_ok(&mut child).await);
    }
}

fn main() {
    let tier = Tier {
        name: "installer against a real kube-apiserver",
        require_var: apiserver::REQUIRE_VAR,
    };
    tier.run(
        apiserver::missing_prerequisites(),
        async_tests![
            label_set_after_install_and_removed_on_uninstall_request,
            sigterm_keeps_the_runtime_unless_the_daemonset_is_gone,
            uninstall_all_returns_once_the_nodes_are_reverted,
            node_annotation_uninstalls_that_node_only_and_removing_it_reinstalls,
        ],
    );
}
