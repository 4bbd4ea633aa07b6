#!/usr/bin/env python3
"""Pod start on the local cluster: a Pod created to Ready as a watch sees it, Wasm vs runc.

Both pods serve HTTP on 8080 behind a 1 s readiness probe: the Wasm one is the hello-http
component under RuntimeClass wasmpod, the runc one a static native HTTP server of the same
behaviour (e2e/cluster/images/hello-http.c). Images are pulled once before any timing
(`IfNotPresent`), so both are cached. Each pod is timed from just before its create request
(a POST of the Pod, what `kubectl apply` sends) to the first watch event that shows it Ready.

Two series per runtime: PODS pods one at a time (each Ready before the next is created, the
earlier ones left running), then PODS pods in batches of BATCH created at once. Pods are
deleted, and gone, between series, so each starts on the same node state.

Both series run for two pod shapes, the same for both runtimes: a bare Pod as `kubectl apply`
writes it, which mounts the service-account token volume, and the Pod the operator writes for a
WasmApp, which does not (automountServiceAccountToken: false; a Wasm guest has no use for the
token). They differ by the kubelet's wait for the pod's volumes, which polls every 300 ms and
has nothing to do with the runtime.

Talks to the apiserver through `kubectl proxy`, so the admin kubeconfig is all it needs.
Prints one line per series and the ratios; asserts nothing. With --crictl (the node's crictl
command line) it also splits the one-at-a-time starts into phases from the CRI's own
nanosecond timestamps, to say where a runtime's time goes: create request to sandbox created,
sandbox to container created, container created to started, started to Ready.
"""

import argparse
import datetime
import json
import re
import subprocess
import threading
import time
import urllib.request

LABEL = "wasmpod-bench=pod-start"


class Cluster:
    def __init__(self, kubectl, namespace):
        self.namespace = namespace
        self.proxy = subprocess.Popen(
            kubectl + ["proxy", "--port=0"], stdout=subprocess.PIPE, text=True
        )
        line = self.proxy.stdout.readline()
        port = re.search(r":(\d+)", line)
        if not port:
            raise SystemExit(f"kubectl proxy did not say where it serves: {line!r}")
        self.base = f"http://127.0.0.1:{port.group(1)}/api/v1/namespaces/{namespace}/pods"
        self.ready = {}
        self.ready_wall = {}
        self.cond = threading.Condition()
        threading.Thread(target=self._watch, daemon=True).start()

    def _request(self, method, url, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            url, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.load(resp)

    def _watch(self):
        # A list gives the resourceVersion to watch from; re-list when a watch ends.
        while True:
            listed = self._request("GET", f"{self.base}?labelSelector={LABEL}")
            version = listed["metadata"]["resourceVersion"]
            url = f"{self.base}?watch=1&labelSelector={LABEL}&resourceVersion={version}"
            try:
                with urllib.request.urlopen(url, timeout=600) as stream:
                    for line in stream:
                        self._seen(json.loads(line)["object"], time.monotonic(), time.time())
            except OSError:
                continue

    def _seen(self, pod, now, wall):
        name = pod.get("metadata", {}).get("name")
        conditions = pod.get("status", {}).get("conditions") or []
        if any(c["type"] == "Ready" and c["status"] == "True" for c in conditions):
            with self.cond:
                self.ready.setdefault(name, now)
                self.ready_wall.setdefault(name, wall)
                self.cond.notify_all()

    def create(self, pod):
        self._request("POST", self.base, pod)

    def wait_ready(self, names, timeout=300):
        deadline = time.monotonic() + timeout
        with self.cond:
            while not all(n in self.ready for n in names):
                left = deadline - time.monotonic()
                if left <= 0:
                    missing = [n for n in names if n not in self.ready]
                    raise SystemExit(f"not Ready within {timeout}s: {missing}")
                self.cond.wait(left)
            return [self.ready[n] for n in names]

    def delete_all(self, crictl=None):
        """Deletes the bench pods and waits until the apiserver has none left and, with
        `crictl`, until the node has stopped every sandbox of theirs: the next series starts
        on an idle node, not beside the teardown of the last one."""
        self._request("DELETE", f"{self.base}?labelSelector={LABEL}&gracePeriodSeconds=0")
        deadline = time.monotonic() + 300
        while self._request("GET", f"{self.base}?labelSelector={LABEL}")["items"] or (
            crictl and running_sandboxes(crictl, self.namespace)
        ):
            if time.monotonic() > deadline:
                raise SystemExit("bench pods or their sandboxes still there after 300s")
            time.sleep(0.2)

    def close(self):
        self.proxy.terminate()


SHAPES = {
    "token": {},
    "no token": {"automountServiceAccountToken": False},
}


def pod(name, runtime, image, probe_path, shape):
    spec = {
        "containers": [
            {
                "name": "app",
                "image": image,
                "imagePullPolicy": "IfNotPresent",
                "ports": [{"containerPort": 8080}],
                "readinessProbe": {
                    "httpGet": {"path": probe_path, "port": 8080},
                    "periodSeconds": 1,
                },
            }
        ],
        "terminationGracePeriodSeconds": 0,
        "nodeSelector": {"kubernetes.io/hostname": runtime["node"]},
        **SHAPES[shape],
    }
    if runtime["class"]:
        spec["runtimeClassName"] = runtime["class"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"wasmpod-bench": "pod-start"}},
        "spec": spec,
    }


def percentile(p, values):
    ordered = sorted(values)
    return ordered[max(0, -(-p * len(ordered) // 100) - 1)]


def cri_time(stamp):
    """Seconds since the epoch of a CRI timestamp (RFC 3339, nanoseconds) or of its integer ns."""
    if isinstance(stamp, (int, float)) or str(stamp).isdigit():
        return int(stamp) / 1e9
    head, _, frac = stamp.rstrip("Z").partition(".")
    whole = datetime.datetime.fromisoformat(head).replace(tzinfo=datetime.timezone.utc)
    return whole.timestamp() + (float("0." + frac) if frac else 0.0)


def cri_phases(crictl, namespace, name, created, ready):
    """The phases in ms of one pod's start, from the CRI's timestamps of its sandbox and
    container, between the wall clock of its create request and of the watch seeing it Ready."""

    def run(*words):
        return subprocess.run(crictl + list(words), check=True, capture_output=True, text=True).stdout

    # --name is a regular expression: wasm-1-1 would also match wasm-1-10.
    sandbox = run("pods", "--namespace", namespace, "--name", f"^{name}$", "-q").split()[0]
    container = run("ps", "-a", "--pod", sandbox, "-q").split()[0]
    sandbox_at = cri_time(json.loads(run("inspectp", "-o", "json", sandbox))["status"]["createdAt"])
    status = json.loads(run("inspect", "-o", "json", container))["status"]
    points = [created, sandbox_at, cri_time(status["createdAt"]), cri_time(status["startedAt"]), ready]
    return [(b - a) * 1000 for a, b in zip(points, points[1:])]


def running_sandboxes(crictl, namespace):
    out = subprocess.run(
        crictl + ["pods", "--namespace", namespace, "--state", "ready", "-q"],
        check=True, capture_output=True, text=True,
    ).stdout
    return out.split()


PHASES = ["create to sandbox", "sandbox to container created", "created to started", "started to Ready"]


def series(cluster, kind, runtime, count, batch, round_no, shape, crictl=None, phases_too=False):
    """Start times in ms of `count` pods of `shape` created `batch` at a time, and with
    `phases_too`, each pod's phases (cri_phases). Ends with the pods gone (`delete_all`)."""
    times, phases = [], []
    for first in range(0, count, batch):
        names = [f"{kind}-{round_no}-{i}" for i in range(first, min(first + batch, count))]
        started, created_wall = {}, {}
        for name in names:
            started[name] = time.monotonic()
            created_wall[name] = time.time()
            cluster.create(pod(name, runtime, runtime["image"], runtime["probe"], shape))
        for name, ready in zip(names, cluster.wait_ready(names)):
            times.append((ready - started[name]) * 1000)
            if phases_too:
                phases.append(
                    cri_phases(crictl, cluster.namespace, name, created_wall[name], cluster.ready_wall[name])
                )
    cluster.delete_all(crictl)
    return times, phases


def report(cluster, runtimes, shape, shape_no, a, crictl):
    """Runs and prints both series of one pod shape, and its phases."""
    results, phases = {}, {}
    batches = (("one at a time", 1), (f"{a.batch} at once", a.batch))
    for label, batch in batches:
        for kind, runtime in runtimes.items():
            # Phases one at a time only: 10 at once, they measure the queue.
            with_phases = bool(crictl) and batch == 1
            round_no = f"{shape_no}{batch}"
            times, kind_phases = series(
                cluster, kind, runtime, a.pods, batch, round_no, shape, crictl, with_phases
            )
            results[(label, kind)] = times
            if with_phases:
                phases[kind] = kind_phases
    print(f"-- pod shape: {shape} ({'service-account token volume' if shape == 'token' else 'as the operator writes a WasmApp pod'})")
    for label, _ in batches:
        for kind in runtimes:
            t = results[(label, kind)]
            print(
                f"{kind + ', ' + label:<32} p50 {percentile(50, t):8.0f} ms   "
                f"p99 {percentile(99, t):8.0f} ms"
            )
        w50 = percentile(50, results[(label, "wasm")])
        r50 = percentile(50, results[(label, "runc")])
        print(f"{'ratio wasm/runc, ' + label:<32} {w50 / r50:.2f}x at p50 (goal: <= 0.8x; Wasm p99 < 1000 ms)")
    if crictl:
        print("   one at a time, phases from the CRI's timestamps: p50 (p99) in ms")
        print(f"{'':<30}" + "".join(f"{k:>20}" for k in runtimes))
        for i, phase in enumerate(PHASES):
            cells = ""
            for kind in runtimes:
                values = [p[i] for p in phases[kind]]
                cells += f"{percentile(50, values):>11.0f} ({percentile(99, values):>5.0f})"
            print(f"{phase:<30}{cells}")
        # The kubelet triggers a readiness probe as soon as a status it builds shows the
        # container running, but the probe worker reads the status manager's copy, which may
        # not have it yet: that probe is skipped and the next comes a period (1 s) later.
        missed = "".join(
            f"{sum(1 for p in phases[kind] if p[3] > 500):>11} of {len(phases[kind]):<5}" for kind in runtimes
        )
        print(f"{'first probe a period late':<30}{missed}")


def main():
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--kubectl", required=True, help="kubectl command line (quoted words)")
    args.add_argument("--namespace", required=True)
    args.add_argument("--node", required=True, help="the node both runtimes run on")
    args.add_argument("--wasm-image", required=True)
    args.add_argument("--runc-image", required=True)
    args.add_argument("--pods", type=int, default=30)
    args.add_argument("--batch", type=int, default=10)
    args.add_argument("--crictl", help="the node's crictl command line (quoted words): phases")
    a = args.parse_args()
    crictl = a.crictl.split() if a.crictl else None
    runtimes = {
        "wasm": {"class": "wasmpod", "image": a.wasm_image, "probe": "/", "node": a.node},
        "runc": {"class": None, "image": a.runc_image, "probe": "/ready", "node": a.node},
    }
    cluster = Cluster(a.kubectl.split(), a.namespace)
    try:
        cluster.delete_all(crictl)
        # Pull both images (and compile the component into the shim's cache) before timing.
        for kind, runtime in runtimes.items():
            series(cluster, kind, runtime, 1, 1, "warm", "token", crictl)
        print(f"== pod start: create to Ready (watch), {a.pods} pods per series, node {a.node}")
        for n, shape in enumerate(SHAPES):
            report(cluster, runtimes, shape, n, a, crictl)
    finally:
        cluster.close()


if __name__ == "__main__":
    main()
