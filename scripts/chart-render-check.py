#!/usr/bin/env python3
"""Render checks of charts/wasmpod (run by `scripts/chart.sh lint`).

Renders the chart with `helm template` under several value sets and asserts what each value is
for: the CRD gate and keep annotation, the operator's flags (leader election only with
replicas > 1, metrics port, plain-HTTP registries), its restricted security context and probes,
least-privilege RBAC (the exact rules), the RuntimeClass, the installer DaemonSet (privileged,
hostPID, host mounts at the same paths, node name from the downward API, settings as env), the
uninstall and test hooks, the optional ServiceMonitor, and that values.schema.json rejects typos
and bad values. Prints one line per check; exits 1 on the first failure.

Usage: HELM=/path/to/helm [KUBE_VERSION=1.34.4] chart-render-check.py CHART_DIR
"""

import os
import subprocess
import sys

import yaml

HELM = os.environ.get("HELM", "helm")
KUBE_VERSION = os.environ.get("KUBE_VERSION", "1.34.4")
CHART = sys.argv[1] if len(sys.argv) > 1 else "charts/wasmpod"
NS = "wasmpod-system"
passed = 0


def render(*sets, expect_fail=False):
    cmd = [HELM, "template", "wasmpod", CHART, "--namespace", NS, "--kube-version", KUBE_VERSION]
    for s in sets:
        cmd += ["--set", s]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if expect_fail:
        return p
    if p.returncode != 0:
        fail(f"helm template {' '.join(sets)} failed:\n{p.stderr}")
    return [d for d in yaml.safe_load_all(p.stdout) if d]


def fail(msg):
    print(f"FAIL {msg}")
    sys.exit(1)


def check(name, cond, detail=""):
    global passed
    if not cond:
        fail(f"{name}{': ' + str(detail) if detail else ''}")
    passed += 1
    print(f"ok   {name}")


def find(docs, kind, name=None):
    hits = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    return hits[0] if hits else None


def kinds(docs):
    return sorted(f"{d['kind']}/{d['metadata']['name']}" for d in docs)


def container(workload):
    return workload["spec"]["template"]["spec"]["containers"][0]


def env(c):
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c.get("env", [])}


def hook(d):
    return d["metadata"].get("annotations", {}).get("helm.sh/hook")


# --- defaults ---------------------------------------------------------------------------------
docs = render()
crd = find(docs, "CustomResourceDefinition", "wasmapps.wasmpod.io")
check("CRD rendered by default", crd is not None)
check("CRD kept on uninstall (crds.keep)",
      crd["metadata"]["annotations"].get("helm.sh/resource-policy") == "keep")
with open(os.path.join(CHART, "..", "..", "crds", "wasmapp.yaml")) as f:
    source = yaml.safe_load(f)
check("CRD spec identical to crds/wasmapp.yaml", crd["spec"] == source["spec"])

op = find(docs, "Deployment", "wasmpod-operator")
c = container(op)
args = c["args"]
check("one replica: leader election off", "--leader-elect=false" in args, args)
check("one replica: Recreate strategy", op["spec"]["strategy"]["type"] == "Recreate")
check("metrics/health port wired", "--http-addr=0.0.0.0:8080" in args
      and c["ports"][0]["containerPort"] == 8080)
check("probes on /healthz and /readyz",
      c["livenessProbe"]["httpGet"]["path"] == "/healthz"
      and c["readinessProbe"]["httpGet"]["path"] == "/readyz")
sc, psc = c["securityContext"], op["spec"]["template"]["spec"]["securityContext"]
check("restricted security context",
      sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
      and sc["capabilities"]["drop"] == ["ALL"] and psc["runAsNonRoot"] is True
      and psc["seccompProfile"]["type"] == "RuntimeDefault", (sc, psc))
check("resources set", c["resources"]["requests"]["memory"] and c["resources"]["limits"]["memory"])
e = env(c)
check("POD_NAMESPACE/POD_NAME from the downward API",
      e["POD_NAMESPACE"]["fieldRef"]["fieldPath"] == "metadata.namespace"
      and e["POD_NAME"]["fieldRef"]["fieldPath"] == "metadata.name")
check("no plain-HTTP registry by default", "WASMPOD_INSECURE_REGISTRIES" not in e)
check("image tag defaults to appVersion", c["image"] == "ghcr.io/wasmpod/wasmpod-operator:0.1.0")

rules = {
    (tuple(r["apiGroups"]), tuple(r["resources"])): sorted(r["verbs"])
    for r in find(docs, "ClusterRole", "wasmpod-operator")["rules"]
}
child = sorted(["get", "list", "watch", "create", "patch", "delete"])
expected = {
    (("wasmpod.io",), ("wasmapps",)): sorted(["get", "list", "watch"]),
    (("wasmpod.io",), ("wasmapps/status",)): sorted(["get", "patch"]),
    (("wasmpod.io",), ("wasmapps/finalizers",)): ["update"],
    (("apps",), ("deployments",)): child,
    (("",), ("services",)): child,
    (("autoscaling",), ("horizontalpodautoscalers",)): child,
    (("policy",), ("poddisruptionbudgets",)): child,
    # Scale to zero: the proxy slice (owned), the Services' and the activator's slices (read).
    (("discovery.k8s.io",), ("endpointslices",)): child,
    # ... and the Endpoints object a Service that lost its selector keeps (deleted).
    (("",), ("endpoints",)): ["delete"],
    (("",), ("configmaps", "secrets")): sorted(["get", "list", "watch"]),
    (("events.k8s.io",), ("events",)): sorted(["create", "patch"]),
}
check("operator RBAC is exactly what it uses", rules == expected, rules)
check("no Lease RBAC without leader election",
      find(docs, "Role", "wasmpod-operator-leader-election") is None)
check("operator bound cluster-wide", find(docs, "ClusterRoleBinding", "wasmpod-operator") is not None)
agg = find(docs, "ClusterRole", "wasmpod-wasmapps-edit")
check("admin/edit aggregation for WasmApps",
      agg["metadata"]["labels"].get("rbac.authorization.k8s.io/aggregate-to-edit") == "true")

rc = find(docs, "RuntimeClass", "wasmpod")
check("RuntimeClass wasmpod -> handler wasmpod, selects wasmpod.io/runtime=ready",
      rc["handler"] == "wasmpod"
      and rc["scheduling"]["nodeSelector"] == {"wasmpod.io/runtime": "ready"})

ds = find(docs, "DaemonSet", "wasmpod-node-installer")
pod = ds["spec"]["template"]["spec"]
ic = container(ds)
ie = env(ic)
check("installer privileged with hostPID", pod["hostPID"] is True and ic["securityContext"]["privileged"] is True)
check("installer gets its node name from the downward API",
      ie["NODE_NAME"]["fieldRef"]["fieldPath"] == "spec.nodeName")
check("installer knows its DaemonSet", ie["WASMPOD_DAEMONSET"] == ds["metadata"]["name"])
mounts = {m["name"]: m["mountPath"] for m in ic["volumeMounts"]}
vols = {v["name"]: v.get("hostPath", {}).get("path") for v in pod["volumes"]}
check("containerd config dir and install dir mounted at their host paths",
      mounts["containerd-config"] == vols["containerd-config"] == "/etc/containerd"
      and mounts["install-dir"] == vols["install-dir"] == "/opt/wasmpod/bin", (mounts, vols))
check("config mount sees later node mounts (HostToContainer)",
      [m for m in ic["volumeMounts"] if m["name"] == "containerd-config"][0]["mountPropagation"]
      == "HostToContainer")
check("installer settings passed as env",
      ie["WASMPOD_CONTAINERD_CONFIG"] == "/etc/containerd/config.toml"
      and ie["WASMPOD_RESTART_COMMAND"] == "systemctl restart containerd"
      and ie["WASMPOD_INSTALL_DIR"] == "/opt/wasmpod/bin" and "WASMPOD_CONFIG_VERSION" not in ie
      and ie["WASMPOD_HOST_PID"] == "1")
check("installer runs on every node by default (tolerates all taints)",
      pod["tolerations"] == [{"operator": "Exists"}])
check("readiness from the installer's probe",
      ic["readinessProbe"]["exec"]["command"][-1] == "probe")
irules = find(docs, "ClusterRole", "wasmpod-node-installer")["rules"]
check("installer may only get/patch nodes cluster-wide",
      irules == [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "patch"]}], irules)
rrules = find(docs, "Role", "wasmpod-node-installer")["rules"]
check("installer reads only its own DaemonSet",
      rrules == [{"apiGroups": ["apps"], "resources": ["daemonsets"],
                  "resourceNames": ["wasmpod-node-installer"], "verbs": ["get"]}], rrules)
job = find(docs, "Job", "wasmpod-node-installer-uninstall")
check("uninstall hook runs before delete", job is not None and hook(job) == "pre-delete")
check("uninstall hook asks the installer DaemonSet",
      "--daemonset=wasmpod-node-installer" in container(job)["args"])
hook_rbac = [d for d in docs if d["metadata"]["name"] == "wasmpod-node-installer-uninstall"]
check("uninstall hook's RBAC is part of the hook", all(hook(d) == "pre-delete" for d in hook_rbac)
      and len(hook_rbac) == 6, kinds(hook_rbac))
test_app = find(docs, "WasmApp")
test_pod = find(docs, "Pod", "wasmpod-test-client")
check("helm test deploys a sample and a client",
      hook(test_app) == "test" and hook(test_pod) == "test"
      and test_app["spec"]["image"] == "ghcr.io/wasmpod/samples/hello-http:v1")
check("helm test client reaches the sample's Service",
      env(test_pod["spec"]["containers"][0])["URL"]
      == "http://wasmpod-test.wasmpod-system.svc.cluster.local/")
check("no ServiceMonitor by default", find(docs, "ServiceMonitor") is None)
check("no PDB by default", find(docs, "PodDisruptionBudget") is None)

# --- replicas > 1 ---------------------------------------------------------------------------
docs = render("operator.replicas=2", "operator.podDisruptionBudget.enabled=true",
              "operator.insecureRegistries={registry.kube-system.svc:5000,localhost:5000}")
op = find(docs, "Deployment", "wasmpod-operator")
c = container(op)
check("two replicas: leader election on, named Lease",
      "--leader-elect=true" in c["args"] and "--lease-name=wasmpod-operator" in c["args"])
check("two replicas: rolling update without downtime",
      op["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1})
lease = find(docs, "Role", "wasmpod-operator-leader-election")
check("Lease RBAC in the release namespace, named Lease only",
      lease is not None and lease["metadata"]["namespace"] == NS
      and lease["rules"][1]["resourceNames"] == ["wasmpod-operator"])
check("PDB when asked", find(docs, "PodDisruptionBudget", "wasmpod-operator") is not None)
check("plain-HTTP registries reach the operator",
      env(c)["WASMPOD_INSECURE_REGISTRIES"] == "registry.kube-system.svc:5000,localhost:5000")
docs = render("operator.replicas=1", "operator.leaderElection.enabled=true")
check("leader election can be forced on for one replica",
      "--leader-elect=true" in container(find(docs, "Deployment", "wasmpod-operator"))["args"])

# --- toggles ----------------------------------------------------------------------------------
docs = render("crds.keep=false")
crd = find(docs, "CustomResourceDefinition")
check("crds.keep=false drops the keep annotation",
      "helm.sh/resource-policy" not in crd["metadata"].get("annotations", {}))
docs = render("crds.enabled=false", "installer.enabled=false", "runtimeClass.create=false")
names = kinds(docs)
check("crds.enabled=false: no CRD", find(docs, "CustomResourceDefinition") is None)
check("installer.enabled=false: no DaemonSet, installer RBAC or hook",
      not any("node-installer" in n for n in names), names)
check("runtimeClass.create=false: no RuntimeClass", find(docs, "RuntimeClass") is None)
docs = render("operator.metrics.serviceMonitor.enabled=true",
              "operator.metrics.serviceMonitor.labels.release=prom", "operator.watchNamespace=apps")
sm = find(docs, "ServiceMonitor")
check("ServiceMonitor when enabled, scraping the metrics port",
      sm is not None and sm["spec"]["endpoints"][0]["port"] == "http"
      and sm["metadata"]["labels"]["release"] == "prom")
rb = find(docs, "RoleBinding", "wasmpod-operator")
check("watchNamespace: RoleBinding in that namespace, no ClusterRoleBinding",
      rb is not None and rb["metadata"]["namespace"] == "apps"
      and find(docs, "ClusterRoleBinding", "wasmpod-operator") is None
      and "--watch-namespace=apps" in container(find(docs, "Deployment"))["args"])
p = render("operator.metrics.serviceMonitor.enabled=true", "operator.metrics.service.enabled=false",
           expect_fail=True)
check("ServiceMonitor without the Service is refused", p.returncode != 0 and "needs" in p.stderr)

# --- k3s and the test bed -----------------------------------------------------------------------
tmpl = "/var/lib/rancher/k3s/agent/etc/containerd/config-v3.toml.tmpl"
docs = render(f"installer.containerd.configPath={tmpl}",
              "installer.containerd.restartCommand=systemctl restart k3s",
              "installer.containerd.socket=/run/k3s/containerd/containerd.sock",
              "installer.containerd.configVersion=3")
ds = find(docs, "DaemonSet")
ie = env(container(ds))
vols = {v["name"]: v.get("hostPath", {}).get("path") for v in ds["spec"]["template"]["spec"]["volumes"]}
check("k3s: the template's directory is mounted and the template path passed",
      vols["containerd-config"] == "/var/lib/rancher/k3s/agent/etc/containerd"
      and ie["WASMPOD_CONTAINERD_CONFIG"] == tmpl and ie["WASMPOD_CONFIG_VERSION"] == "3"
      and ie["WASMPOD_RESTART_COMMAND"] == "systemctl restart k3s")

# --- schema -------------------------------------------------------------------------------------
for bad in ["operator.replicass=2", "installer.containerd.systemdCgroup=maybe",
            "installer.containerd.configVersion=4", "installer.installDir=opt/wasmpod",
            "operator.logFormat=xml", "crds.enabled=yes", "installer.hostPid=init"]:
    p = render(bad, expect_fail=True)
    check(f"schema rejects {bad}", p.returncode != 0 and "schema" in p.stderr.lower(), p.stderr)

print(f"{passed} render checks passed")
