//! The shim under a real containerd (2.x by default; `WASMPOD_TEST_CONTAINERD=1.7` for 1.7),
//! driven with `ctr`. Needs root, runc, docker-registry and skopeo (make deps); without them
//! every test is reported ignored with the reason, or fails under `WASMPOD_REQUIRE_CONTAINERD=1`
//! or `CI=true` (wasmpod-testkit's tier harness).

// Test code: a failed unwrap is a failed test, with its location.
#![allow(clippy::unwrap_used)]

#[path = "containerd/sandbox.rs"]
mod sandbox;
mod support;

use containerd_shim_protos::protobuf::Message;

use std::time::Duration;

use sandbox::native_containers_of_a_pod_the_pause_by_the_shim_sidecars_by_runc;
use support::dns::{Dnsmasq, NodeHostsEntry, PodFiles};
use support::{Containerd, NetNs, Registry, cgroups, component, text};
use wasmpod_testkit::{Tier, tests};

const POD: &str = "io.kubernetes.cri.sandbox-id=";

fn command_component_gets_its_args_and_env_and_exit_code() {
    let cd = Containerd::start();
    let img = cd.import_rootfs("hello-cli", "hello-cli", "/hello.wasm");
    let (code, out, err) = cd.run_rm(
        &img,
        "cli1",
        &[
            "--env",
            "EXIT_CODE=7",
            "--env",
            "GREETING=hi",
            "--env",
            "WASMPOD_HTTP_PORT=9999",
            "--",
            "/hello.wasm",
            "one",
            "two",
        ],
    );
    assert_eq!(
        code, 7,
        "exit code of the guest becomes the task's\nstdout:\n{out}\nstderr:\n{err}"
    );
    assert!(out.contains("hello from wasmpod"), "{out}");
    assert!(
        out.contains("arg[1]=one") && out.contains("arg[2]=two"),
        "{out}"
    );
    assert!(out.contains("env GREETING=hi"), "{out}");
    assert!(
        !out.contains("WASMPOD_HTTP_PORT"),
        "shim settings must not reach the guest: {out}"
    );
}

fn preview1_module_runs() {
    let cd = Containerd::start();
    let img = cd.import_rootfs("hello-p1", "hello-p1", "/p1.wasm");
    let (code, out, err) = cd.run_rm(&img, "p1", &["--env", "EXIT_CODE=3"]);
    assert_eq!(code, 3, "{out}{err}");
    assert!(out.contains("hello from wasip1"), "{out}");
}

fn second_container_of_a_component_hits_the_compile_cache() {
    let cd = Containerd::start();
    let img = cd.import_rootfs("hello-cli", "hello-cli", "/hello.wasm");
    assert_eq!(cd.run_rm(&img, "c1", &[]).0, 0);
    assert_eq!(cd.run_rm(&img, "c2", &[]).0, 0);
    let log = cd.log();
    assert_eq!(
        log.matches("compile cache miss").count(),
        1,
        "first run compiles once:\n{log}"
    );
    assert_eq!(
        log.matches("compile cache hit").count(),
        1,
        "second run loads from cache:\n{log}"
    );
    let entries = std::fs::read_dir(&cd.cache_dir)
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(entries, 1, "one engine-hash directory in the cache");
}

fn corrupt_cache_entry_is_recompiled() {
    let cd = Containerd::start();
    let img = cd.import_rootfs("hello-cli", "hello-cli", "/hello.wasm");
    assert_eq!(cd.run_rm(&img, "c1", &[]).0, 0);
    for dir in std::fs::read_dir(&cd.cache_dir).unwrap().flatten() {
        for f in std::fs::read_dir(dir.path()).unwrap().flatten() {
            if f.path().extension().is_some_and(|e| e == "cwasm") {
                let mut bytes = std::fs::read(f.path()).unwrap();
                let mid = bytes.len() / 2;
                bytes[mid] ^= 0x5a;
                std::fs::write(f.path(), bytes).unwrap();
            }
        }
    }
    let (code, out, err) = cd.run_rm(&img, "c2", &[]);
    assert_eq!(code, 0, "{out}{err}");
    let log = cd.log();
    assert!(log.contains("does not match its checksum"), "{log}");
    assert_eq!(log.matches("compile cache miss").count(), 2, "{log}");
}

fn bad_settings_fail_create_naming_the_variable_and_value() {
    let cd = Containerd::start();
    let img = cd.import_rootfs("hello-http", "hello-http", "/http.wasm");
    for (id, setting) in [
        ("badport", "WASMPOD_HTTP_PORT=70000"),
        ("badconc", "WASMPOD_HTTP_MAX_CONCURRENCY=0"),
        ("typo", "WASMPOD_HTTP_PROT=8080"),
    ] {
        let (code, out, err) = cd.run_rm(&img, id, &["--env", setting]);
        assert_ne!(code, 0, "{setting} must fail");
        // "settings:" is how Create words it; a guest failing after start would not say it.
        assert!(
            err.contains(&format!("container {id}: settings: {setting} is not")),
            "{setting}: Create fails naming the variable and value:\n{out}\n{err}"
        );
        let _ = cd.ctr(&["containers", "delete", id]);
    }
}

/// Starts the HTTP component detached in `ns`, logging to a file; returns the log path.
fn start_http(
    cd: &Containerd,
    ns: &NetNs,
    id: &str,
    pod: &str,
    extra: &[&str],
) -> std::path::PathBuf {
    support::start_http_component(cd, ns, "hello-http", id, pod, extra)
}

fn http_component_serves_in_the_pod_network_namespace_and_drains_on_sigterm() {
    let cd = Containerd::start();
    let ns = NetNs::new("wp-http");
    let log = start_http(&cd, &ns, "web", "pod-a", &[]);
    let (code, body) = ns
        .curl("http://127.0.0.1:8080/", Duration::from_secs(20))
        .expect("server answers in the namespace");
    assert_eq!((code, body.as_str()), (200, "hello from wasmpod http\n"));
    // The node's own loopback must not have it.
    assert!(
        std::net::TcpStream::connect("127.0.0.1:8080").is_err(),
        "listening on the node network"
    );
    // h2c with prior knowledge.
    let out = support::run(std::process::Command::new("ip").args([
        "netns",
        "exec",
        "wp-http",
        "curl",
        "-s",
        "--http2-prior-knowledge",
        "http://127.0.0.1:8080/",
    ]));
    assert_eq!(text(&out.stdout), "hello from wasmpod http\n");
    // Handler output reaches the container's stdout.
    ns.curl("http://127.0.0.1:8080/print", Duration::from_secs(5))
        .expect("print");
    let logged = |line: &str| {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains(line)
    };
    assert!(
        support::wait_until(Duration::from_secs(10), || logged("handled /print")),
        "handler prints reach the log"
    );

    // A slow request in flight when SIGTERM arrives still completes, and the task exits 0.
    let slow = std::thread::spawn(move || {
        let out = support::run(std::process::Command::new("ip").args([
            "netns",
            "exec",
            "wp-http",
            "curl",
            "-s",
            "-w",
            " %{http_code}",
            "http://127.0.0.1:8080/sleep?ms=1500",
        ]));
        text(&out.stdout)
    });
    // SIGTERM only once the handler runs (it logs before sleeping).
    assert!(
        support::wait_until(Duration::from_secs(20), || logged("sleeping 1500 ms")),
        "the slow request never reached the handler"
    );
    assert!(
        cd.ctr(&["task", "kill", "-s", "SIGTERM", "web"])
            .status
            .success()
    );
    let answered = slow.join().expect("slow request");
    assert!(
        answered.ends_with(" 200"),
        "in-flight request drained: {answered}"
    );
    assert_eq!(
        cd.wait_stopped("web", Duration::from_secs(10)),
        Some(0),
        "drained server exits 0"
    );
}

fn bad_inputs_fail_clearly_and_the_pod_shim_keeps_serving() {
    let cd = Containerd::start();
    let ns = NetNs::new("wp-bad");
    start_http(&cd, &ns, "good", "pod-b", &[]);
    assert!(
        ns.curl("http://127.0.0.1:8080/", Duration::from_secs(20))
            .is_some()
    );
    // A Wasm task's pid is its shim's pid: every container of pod-b must report the same one,
    // and it must still be that process at the end. Counting shim processes machine-wide
    // instead is racy: in the cluster's v2 node (`--in-node`) the node's own containerd starts
    // shims for cluster pods meanwhile, and containerd runs the shim binary briefly to clean up.
    let pod_shim = task_pid(&cd, "good");
    let annotation = format!("{POD}pod-b");
    let with_pod = ["--annotation", annotation.as_str()];

    let notwasm = cd.dir.path().join("notwasm.txt");
    std::fs::write(&notwasm, "hello, I am text\n").unwrap();
    let (cli, noworld) = (component("hello-cli"), component("no-world"));
    let (notwasm, cli, noworld) = (
        notwasm.to_str().unwrap(),
        cli.to_str().unwrap(),
        noworld.to_str().unwrap(),
    );
    let cases: Vec<(&str, Vec<&str>, &str)> = vec![
        (
            "not-wasm",
            vec!["rootfs", "--file", notwasm, "--entrypoint", "/app.wasm"],
            "is not a Wasm binary",
        ),
        (
            "missing",
            vec!["rootfs", "--wasm", cli, "--entrypoint", "/app.wasm"],
            "not found in the image",
        ),
        (
            "no-world",
            vec!["rootfs", "--wasm", noworld, "--entrypoint", "/app.wasm"],
            "exports neither wasi:cli/run nor wasi:http/incoming-handler",
        ),
        (
            "unknown-layer",
            vec![
                "layer",
                "--wasm",
                cli,
                "--media-type",
                "application/vnd.example.unknown",
            ],
            "application/vnd.example.unknown",
        ),
    ];
    for (name, args, expected) in cases {
        let img = cd.import(name, &args);
        let mut run_args = with_pod.to_vec();
        if name == "missing" {
            run_args.extend(["--", "/missing.wasm"]);
        }
        let (code, out, err) = cd.run_rm(&img, name, &run_args);
        assert_ne!(code, 0, "{name} must not run");
        assert!(
            err.contains(expected) || out.contains(expected),
            "{name}: expected '{expected}' in the error, got:\n{out}\n{err}"
        );
        assert!(
            ns.curl("http://127.0.0.1:8080/", Duration::from_secs(5))
                .is_some(),
            "{name} took the pod's shim down"
        );
        let _ = cd.ctr(&["containers", "delete", name]);
    }

    // A trap at start: non-zero status, the trap message in the container's log.
    let img = cd.import_rootfs("trap", "trap-start", "/trap.wasm");
    let (code, out, err) = cd.run_rm(&img, "trap", &with_pod);
    assert_eq!(code, 134, "{out}{err}");
    assert!(err.contains("guest trapped"), "{err}");

    // Over the memory limit: trap with a message saying so, status 137, TaskOOM published.
    let events = cd.dir.path().join("events.txt");
    let mut ev = std::process::Command::new(cd.bin.join("ctr"))
        .arg("--address")
        .arg(cd.socket())
        .arg("events")
        .stdout(std::fs::File::create(&events).unwrap())
        .spawn()
        .unwrap();
    let img = cd.import_rootfs("hog", "memory-hog", "/hog.wasm");
    let mut args = with_pod.to_vec();
    args.extend(["--memory-limit", "67108864"]);
    let (code, out, err) = cd.run_rm(&img, "hog", &args);
    let oom_seen = support::wait_until(Duration::from_secs(10), || {
        std::fs::read_to_string(&events)
            .unwrap_or_default()
            .contains("/tasks/oom")
    });
    let _ = ev.kill();
    let _ = ev.wait();
    assert_eq!(code, 137, "{out}{err}");
    assert!(
        err.contains("over the container's memory limit of 67108864 bytes"),
        "{err}"
    );
    let evs = std::fs::read_to_string(&events).unwrap_or_default();
    assert!(oom_seen, "TaskOOM event published:\n{evs}");

    // An infinite loop stops at once on SIGKILL.
    let img = cd.import_rootfs("loop", "infinite-loop", "/loop.wasm");
    let mut args = vec!["run", "-d", "--runtime", support::RUNTIME];
    args.extend(with_pod);
    args.extend([img.as_str(), "loop"]);
    assert!(cd.ctr(&args).status.success());
    assert!(
        support::wait_until(Duration::from_secs(20), || {
            text(&cd.ctr(&["task", "ls"]).stdout)
                .lines()
                .any(|l| l.starts_with("loop ") && l.contains("RUNNING"))
        }),
        "the loop never ran"
    );
    assert_eq!(
        task_pid(&cd, "loop"),
        pod_shim,
        "the loop joined the pod's shim"
    );
    assert!(
        cd.ctr(&["task", "kill", "-s", "SIGKILL", "loop"])
            .status
            .success()
    );
    assert_eq!(cd.wait_stopped("loop", Duration::from_secs(5)), Some(137));

    assert_eq!(
        task_pid(&cd, "good"),
        pod_shim,
        "the pod's shim is still the same process"
    );
    assert!(
        std::path::Path::new(&format!("/proc/{pod_shim}")).exists(),
        "the pod's shim {pod_shim} is alive"
    );
    // `start` of every later container found the pod's server answering and started no
    // second one (which would have logged giving way to the first).
    let log = cd.log();
    assert!(!log.contains("a second server for the pod"), "{log}");
    assert!(
        ns.curl("http://127.0.0.1:8080/", Duration::from_secs(5))
            .is_some()
    );
}

fn wasm_layers_and_the_cncf_artifact_run_from_a_registry() {
    let cd = Containerd::start();
    let reg = Registry::start();
    let cli = component("hello-cli");
    let cli = cli.to_str().unwrap();
    for (i, mt) in [
        "application/vnd.bytecodealliance.wasm.component.layer.v0+wasm",
        "application/vnd.wasm.content.layer.v1+wasm",
        "application/vnd.module.wasm.content.layer.v1+wasm",
        "application/wasm",
    ]
    .iter()
    .enumerate()
    {
        let (_, tar) = cd.pack(
            &format!("layer{i}"),
            &["layer", "--wasm", cli, "--media-type", mt],
        );
        let reference = reg.push(&tar, &format!("layer{i}"));
        let out = cd.ctr(&["images", "pull", "--plain-http", &reference]);
        assert!(out.status.success(), "pull {mt}: {}", text(&out.stderr));
        let (code, out, err) =
            cd.run_rm(&reference, &format!("layer{i}"), &["--env", "EXIT_CODE=5"]);
        assert_eq!(code, 5, "{mt}: {out}{err}");
        assert!(out.contains("hello from wasmpod"), "{mt}: {out}");
    }
}

fn running_containers_survive_a_containerd_restart() {
    let mut cd = Containerd::start();
    let ns = NetNs::new("wp-restart");
    start_http(&cd, &ns, "web", "pod-r", &[]);
    assert!(
        ns.curl("http://127.0.0.1:8080/", Duration::from_secs(20))
            .is_some()
    );
    cd.restart();
    let ls = text(&cd.ctr(&["task", "ls"]).stdout);
    assert!(
        ls.lines()
            .any(|l| l.starts_with("web") && l.contains("RUNNING")),
        "task reconnected:\n{ls}\n{}",
        cd.log()
    );
    assert!(
        ns.curl("http://127.0.0.1:8080/", Duration::from_secs(5))
            .is_some(),
        "still serving"
    );
    let metrics = cd.ctr(&["task", "metrics", "web"]);
    assert!(
        metrics.status.success(),
        "stats after restart: {}",
        text(&metrics.stderr)
    );
    assert!(
        cd.ctr(&["task", "kill", "-s", "SIGKILL", "web"])
            .status
            .success()
    );
    assert_eq!(cd.wait_stopped("web", Duration::from_secs(5)), Some(137));
}

fn unsupported_calls_answer_unimplemented() {
    let cd = Containerd::start();
    let ns = NetNs::new("wp-exec");
    start_http(&cd, &ns, "web", "pod-e", &[]);
    let out = cd.ctr(&["task", "exec", "--exec-id", "x1", "web", "/bin/sh"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("not supported by the wasmpod shim"), "{err}");
    assert!(
        ns.curl("http://127.0.0.1:8080/", Duration::from_secs(5))
            .is_some()
    );
}

fn guests_make_outgoing_http_requests_from_the_pod_network() {
    let cd = Containerd::start();
    let ns = NetNs::new("wp-out");
    start_http(&cd, &ns, "server", "pod-o", &[]);
    assert!(
        ns.curl("http://127.0.0.1:8080/", Duration::from_secs(20))
            .is_some()
    );
    let img = cd.import_rootfs("http-get", "http-get", "/get.wasm");
    let netns = format!("network:{}", ns.path());
    // 127.0.0.1 here is the pod's loopback: only reachable from inside its namespace.
    let (code, out, err) = cd.run_rm(
        &img,
        "client",
        &[
            "--with-ns",
            &netns,
            "--env",
            "TARGET_URL=http://127.0.0.1:8080/",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("-> 200") && out.contains("hello from wasmpod http"),
        "{out}"
    );
}

/// A guest resolves names as a container of its pod would, from the files CRI mounts at
/// /etc/resolv.conf and /etc/hosts: through the search list and the pod's DNS server (here
/// dnsmasq on the pod's loopback, unreachable from anywhere else), from the pod's hosts file,
/// never from the node's /etc/hosts; a missing name is a clean error, for bare lookups
/// (`wasi:sockets`) and outgoing HTTP (`wasi:http`) alike.
fn guests_resolve_names_through_the_pods_resolv_conf_and_hosts_file() {
    let cd = Containerd::start();
    let ns = NetNs::new("wp-dns");
    let dns = Dnsmasq::start(
        &ns,
        cd.dir.path(),
        &[
            ("web.ns1.svc.wasmpod.test", "127.0.0.1"),
            ("api.svc.wasmpod.test", "127.0.0.42"),
        ],
    );
    start_http(&cd, &ns, "server", "pod-d", &[]);
    assert!(
        ns.curl("http://127.0.0.1:8080/", Duration::from_secs(20))
            .is_some()
    );
    let _node_only = NodeHostsEntry::add("127.0.0.9", "wasmpod-node-only.test");
    let pod = PodFiles::write(
        &cd.dir.path().join("pod-d"),
        "search ns1.svc.wasmpod.test svc.wasmpod.test\n\
         nameserver 127.0.0.1\n\
         options ndots:5 timeout:2 attempts:2\n",
        "127.0.0.1 localhost\n127.0.0.7 pod-alias\n",
    );
    let netns = format!("network:{}", ns.path());
    let mut flags = vec!["--with-ns".to_string(), netns.clone()];
    flags.extend(pod.mount_args());
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();

    let lookup = cd.import_rootfs("name-lookup", "name-lookup", "/lookup.wasm");
    let names = [
        "api",
        "web.ns1.svc.wasmpod.test.",
        "pod-alias",
        "missing",
        "wasmpod-node-only.test",
    ];
    let args = [&flags[..], &["--", "/lookup.wasm"], &names[..]].concat();
    let (code, out, err) = cd.run_rm(&lookup, "lookup", &args);
    let ctx = format!("stdout:\n{out}\nstderr:\n{err}\ndnsmasq:\n{}", dns.log());
    assert_eq!(code, 0, "{ctx}");
    for line in [
        "lookup api -> 127.0.0.42",
        "lookup web.ns1.svc.wasmpod.test. -> 127.0.0.1",
        "lookup pod-alias -> 127.0.0.7",
        "lookup missing -> error name-unresolvable",
        "lookup wasmpod-node-only.test -> error name-unresolvable",
    ] {
        assert!(out.contains(line), "want {line:?}\n{ctx}");
    }
    // The search list in order (ndots:5), through the pod's server; the hosts file first.
    let log = dns.log();
    let asked = |name: &str| log.contains(&format!("query[A] {name} "));
    assert!(
        asked("api.ns1.svc.wasmpod.test") && asked("api.svc.wasmpod.test"),
        "{ctx}"
    );
    assert!(!asked("pod-alias.ns1.svc.wasmpod.test"), "{ctx}");

    let get = component("http-get");
    let get = cd.import(
        "http-get",
        &[
            "rootfs",
            "--wasm",
            get.to_str().unwrap(),
            "--entrypoint",
            "/get.wasm",
        ],
    );
    // One run, two URLs: the pod's server by short name, and a name that does not exist.
    let urls = "TARGET_URL=http://web:8080/ http://missing:8080/";
    let (code, out, err) = cd.run_rm(&get, "get", &[&flags[..], &["--env", urls]].concat());
    assert_eq!(code, 1, "one of the two must fail: {out}{err}");
    assert!(
        out.contains("GET http://web:8080/ -> 200") && out.contains("hello from wasmpod http"),
        "{out}{err}"
    );
    let missing = err
        .lines()
        .find(|l| l.starts_with("GET http://missing:8080/ failed:"))
        .unwrap_or_default();
    assert!(
        missing.contains("DnsError") && missing.contains("NXDOMAIN"),
        "a clean DNS error: {out}{err}"
    );

    // A container without the pod's files (not made by CRI) resolves no name at all.
    let (code, out, err) = cd.run_rm(
        &lookup,
        "bare",
        &[
            "--with-ns",
            &netns,
            "--",
            "/lookup.wasm",
            "wasmpod-node-only.test",
            "127.0.0.5",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("lookup wasmpod-node-only.test -> error permanent-resolver-failure")
            && out.contains("lookup 127.0.0.5 -> 127.0.0.5"),
        "{out}{err}"
    );
}

fn version_and_info_flags_answer_without_containerd() {
    let out = support::run(std::process::Command::new(support::shim_binary()).arg("-v"));
    assert!(out.status.success());
    assert!(
        text(&out.stdout).contains("containerd-shim-wasmpod-v1"),
        "{}",
        text(&out.stdout)
    );
    // -info reads optional options from stdin and writes a protobuf RuntimeInfo.
    let out = support::run(
        std::process::Command::new(support::shim_binary())
            .arg("-info")
            .stdin(std::process::Stdio::null()),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let info =
        containerd_shim_protos::types::introspection::RuntimeInfo::parse_from_bytes(&out.stdout)
            .expect("RuntimeInfo protobuf");
    assert_eq!(info.name, "io.containerd.wasmpod.v1");
    assert!(!info.version.version.is_empty());
}

fn stats_report_what_serving_the_container_costs() {
    let cd = Containerd::start();
    let ns = NetNs::new("wp-stats");
    start_http(&cd, &ns, "web", "pod-s", &["--memory-limit", "134217728"]);
    assert!(
        ns.curl("http://127.0.0.1:8080/", Duration::from_secs(20))
            .is_some()
    );
    for _ in 0..50 {
        ns.curl("http://127.0.0.1:8080/", Duration::from_secs(5));
    }
    let pid = task_pid(&cd, "web");
    // The whole shim sits in its leaf beside the container's cgroup (ctr's cgroupsPath is
    // /<namespace>/<id>), its guest's threads in the container's CPU cgroup inside it.
    let leaf = cgroups::shim_leaf("memory", support::NS, "pod-s");
    assert_eq!(cgroups::procs(&leaf), vec![pid], "{}", leaf.display());
    let guest = cgroups::guest_dir("cpuacct", support::NS, "pod-s", "web");
    let tids = cgroups::threads(&guest);
    assert!(!tids.is_empty(), "no thread in {}", guest.display());
    for tid in &tids {
        assert!(
            std::path::Path::new(&format!("/proc/{pid}/task/{tid}")).exists(),
            "{} holds {tid}, not a thread of the shim ({pid})",
            guest.display()
        );
    }
    assert!(
        cgroups::cpu_ns(&guest) > 0,
        "no CPU charged to {}",
        guest.display()
    );
    let charged = cgroups::memory_bytes(&leaf);
    assert!(
        charged > 4 << 20,
        "the runtime's memory is charged to the pod: {charged} B"
    );

    // Idle (no request in flight, so no live guest memory), the container still reports what
    // the runtime costs to serve it: its share of the leaf.
    let json = metrics(&cd, "web");
    let (cpu, mem, limit) = (
        json["cpu"]["usage"]["total"]
            .as_u64()
            .or_else(|| json["cpu"]["usage_usec"].as_u64().map(|us| us * 1000))
            .unwrap_or(0),
        json["memory"]["usage"]["usage"]
            .as_u64()
            .or_else(|| json["memory"]["usage"].as_u64())
            .unwrap_or(0),
        json["memory"]["usage"]["limit"]
            .as_u64()
            .or_else(|| json["memory"]["usage_limit"].as_u64())
            .unwrap_or(0),
    );
    assert!(
        cpu >= cgroups::cpu_ns(&guest),
        "CPU of the guest and its share of the runtime: {json}"
    );
    assert!(
        mem > 4 << 20,
        "an idle HTTP app still costs the runtime's memory: {json}"
    );
    assert!(
        mem <= cgroups::memory_bytes(&leaf) + (1 << 20),
        "no more than the leaf holds: {json}"
    );
    assert_eq!(limit, 134_217_728, "{json}");

    // Once its last container is gone the shim leaves the pod's cgroup and removes its leaf,
    // so the pod's cgroup can go.
    cd.cleanup("web");
    assert!(
        support::wait_until(Duration::from_secs(20), || !leaf.exists()),
        "{} is still there after the shim exited",
        leaf.display()
    );
}

/// A spinning guest limited to 200m gets about a fifth of a core, measured from its cgroup,
/// for both forms of cgroupsPath: cgroupfs (ctr's default) and systemd's `slice:prefix:name`.
fn cpu_limit_applies_to_a_spinning_guest() {
    let cd = Containerd::start();
    let img = cd.import_rootfs("infinite-loop", "infinite-loop", "/loop.wasm");
    let forms = [
        ("spin-fs", None, support::NS.to_string()),
        (
            "spin-sd",
            Some("wasmpodtest-spin.slice:cri-containerd:spin-sd"),
            "wasmpodtest.slice/wasmpodtest-spin.slice".to_string(),
        ),
    ];
    for (id, path, _) in &forms {
        let mut args = vec!["run", "-d", "--runtime", support::RUNTIME, "--cpus", "0.2"];
        if let Some(p) = path {
            args.extend(["--cgroup", p]);
        }
        args.extend([img.as_str(), id]);
        let out = cd.ctr(&args);
        assert!(
            out.status.success(),
            "ctr run {id}: {}\n{}",
            text(&out.stderr),
            cd.log()
        );
    }
    let dirs: Vec<_> = forms
        .iter()
        .map(|(id, _, parent)| cgroups::guest_dir("cpuacct", parent, id, id))
        .collect();
    for d in &dirs {
        assert!(
            support::wait_until(Duration::from_secs(20), || d.exists()
                && !cgroups::threads(d).is_empty()),
            "{} never held the guest's threads\n{}",
            d.display(),
            cd.log()
        );
    }
    let before: Vec<u64> = dirs.iter().map(|d| cgroups::cpu_ns(d)).collect();
    let t0 = std::time::Instant::now();
    std::thread::sleep(Duration::from_secs(4));
    let wall = t0.elapsed().as_nanos() as f64;
    for ((d, b), (id, _, _)) in dirs.iter().zip(before).zip(&forms) {
        let cores = (cgroups::cpu_ns(d) - b) as f64 / wall;
        eprintln!("{id}: {cores:.3} cores with a 0.2 limit ({})", d.display());
        assert!(cores <= 0.25, "{id}: {cores:.3} cores, limit 0.2");
        assert!(
            cores >= 0.05,
            "{id}: {cores:.3} cores: the guest is not spinning"
        );
    }
    for (id, _, _) in &forms {
        cd.cleanup(id);
    }
    cgroups::remove_tree(&cgroups::hierarchy("cpu").join("wasmpodtest.slice"));
    if !cgroups::is_v2() {
        for h in ["memory", "cpuacct", "pids", "blkio"] {
            cgroups::remove_tree(&cgroups::hierarchy(h).join("wasmpodtest.slice"));
        }
    }
}

fn task_pid(cd: &Containerd, id: &str) -> u32 {
    let out = cd.ctr(&["task", "ls"]);
    text(&out.stdout)
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.first() == Some(&id))
                .then(|| f[1].parse().ok())
                .flatten()
        })
        .unwrap_or_else(|| panic!("no task {id}: {}", text(&out.stdout)))
}

fn metrics(cd: &Containerd, id: &str) -> serde_json::Value {
    let out = cd.ctr(&["task", "metrics", "--format", "json", id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("metrics json")
}

fn main() {
    let tier = Tier {
        name: "shim under real containerd",
        require_var: "WASMPOD_REQUIRE_CONTAINERD",
    };
    tier.run(
        support::missing_prerequisites(),
        tests![
            command_component_gets_its_args_and_env_and_exit_code,
            preview1_module_runs,
            second_container_of_a_component_hits_the_compile_cache,
            corrupt_cache_entry_is_recompiled,
            bad_settings_fail_create_naming_the_variable_and_value,
            http_component_serves_in_the_pod_network_namespace_and_drains_on_sigterm,
            bad_inputs_fail_clearly_and_the_pod_shim_keeps_serving,
            wasm_layers_and_the_cncf_artifact_run_from_a_registry,
            running_containers_survive_a_containerd_restart,
            native_containers_of_a_pod_the_pause_by_the_shim_sidecars_by_runc,
            unsupported_calls_answer_unimplemented,
            guests_make_outgoing_http_requests_from_the_pod_network,
            guests_resolve_names_through_the_pods_resolv_conf_and_hosts_file,
            version_and_info_flags_answer_without_containerd,
            stats_report_what_serving_the_container_costs,
            cpu_limit_applies_to_a_spinning_guest,
        ],
    );
}
