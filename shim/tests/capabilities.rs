//! Capabilities under a real containerd, driven with `ctr`: key-value buckets on the three
//! backends (memory, a real redis-server, files on a volume), config values, and the outbound
//! allow-list, each granted by the container's `WASMPOD_*` settings exactly as a plain Pod
//! would set them. The guest is `kv-counter` (e2e/components), an HTTP handler over
//! `wasi:keyvalue` and `wasi:config`. Needs what `containerd.rs` needs, plus redis-server.

// Test code: a failed unwrap is a failed test, with its location.
#![allow(clippy::unwrap_used)]

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::redis::RedisServer;
use support::{Containerd, NetNs, component, run, start_http_component, text};
use wasmpod_testkit::{Tier, paths, tests};

/// One request from inside the namespace; `(status, body)`. `-m` bounds it, so a hung request
/// is a failure with the time it took, not a stuck test.
fn http(ns: &NetNs, method: &str, url: &str, body: Option<&str>) -> (u16, String, Duration) {
    let started = Instant::now();
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &ns.name, "curl", "-s", "-m", "20"])
        .args(["-X", method, "-w", "\n%{http_code}"]);
    if let Some(b) = body {
        cmd.args(["--data-binary", b]);
    }
    let out = run(cmd.arg(url));
    let all = text(&out.stdout);
    let (b, code) = all.rsplit_once('\n').unwrap_or(("", "0"));
    (
        code.trim().parse().unwrap_or(0),
        b.trim_end().to_string(),
        started.elapsed(),
    )
}

const KV: &str = "http://127.0.0.1:8080";

/// Waits until the component answers `/` (the Python one compiles for 10-20 s first).
fn serving(ns: &NetNs, log: &std::path::Path) {
    let up = ns.curl(&format!("{KV}/"), Duration::from_secs(90));
    assert!(
        matches!(&up, Some((200, b)) if b.contains("kv-counter")),
        "kv-counter did not come up: {up:?}\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

fn increment(ns: &NetNs, bucket: &str, key: &str) -> (u16, String) {
    let (code, body, _) = http(ns, "POST", &format!("{KV}/increment/{bucket}/{key}"), None);
    (code, body)
}

/// The Rust component on three backends at once, one bucket each: counters count across
/// requests (one store per container, not per request), keys of different buckets never meet,
/// the data is where the backend keeps it (Redis under `<bucket>:`, a file per key), and a new
/// container finds Redis's and the volume's data again but starts a fresh in-memory bucket.
fn keyvalue_buckets_count_across_requests_on_memory_redis_and_files() {
    buckets_on_every_backend("kv-counter", "wp-kv");
}

/// The same behaviour from the same routes in Python (componentize-py): what the host gives
/// does not depend on the guest's language.
fn the_python_component_gets_the_same_buckets_and_config() {
    buckets_on_every_backend("kv-counter-py", "wp-kvpy");
}

fn buckets_on_every_backend(component: &str, netns: &str) {
    let cd = Containerd::start();
    let ns = NetNs::new(netns);
    let redis = RedisServer::start(&ns, cd.dir.path());
    let data = cd.dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let mount = format!(
        "type=bind,src={},dst=/data,options=rbind:rw",
        data.display()
    );
    let grants = [
        "--env",
        "WASMPOD_KEYVALUE_mem=memory",
        "--env",
        "WASMPOD_KEYVALUE_red=redis://127.0.0.1:6379",
        "--env",
        "WASMPOD_KEYVALUE_disk=file:/data/kv",
        "--env",
        "WASMPOD_CONFIG_greeting=hello",
        "--mount",
        &mount,
    ];
    let log = start_http_component(&cd, &ns, component, "kv1", "pod-kv", &grants);
    serving(&ns, &log);

    for bucket in ["mem", "red", "disk"] {
        for n in 1..=3 {
            assert_eq!(
                increment(&ns, bucket, "hits"),
                (200, format!("hits={n}")),
                "bucket {bucket}"
            );
        }
    }
    // Each bucket keeps its keys.
    let (code, _, _) = http(&ns, "PUT", &format!("{KV}/set/mem/only-here"), Some("m"));
    assert_eq!(code, 200);
    assert_eq!(
        http(&ns, "GET", &format!("{KV}/get/mem/only-here"), None).1,
        "m"
    );
    for other in ["red", "disk"] {
        let (code, body, _) = http(&ns, "GET", &format!("{KV}/get/{other}/only-here"), None);
        assert_eq!((code, body.as_str()), (404, "missing"), "bucket {other}");
    }
    // Where the data is: Redis keys under the bucket's prefix, a file per key on the volume.
    assert_eq!(redis.cli(&["GET", "red:hits"]), "3");
    assert_eq!(redis.cli(&["KEYS", "*"]), "red:hits");
    assert_eq!(
        std::fs::read_to_string(data.join("kv/disk/hits")).unwrap(),
        "3"
    );
    let (_, keys, _) = http(&ns, "GET", &format!("{KV}/keys/mem"), None);
    assert_eq!(keys, "hits\nonly-here");
    // A bucket that was not granted.
    let (code, body) = increment(&ns, "nope", "hits");
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("no-such-store"), "{body}");

    // Batches: set-many, get-many (a missing key is reported missing), delete-many.
    for bucket in ["mem", "red", "disk"] {
        let url = format!("{KV}/batch/{bucket}");
        let (code, body, _) = http(&ns, "POST", &url, Some("bx=1\nby=2\nbz"));
        assert_eq!(
            (code, body.as_str()),
            (200, "bx=1\nby=2\nbz missing"),
            "{bucket}"
        );
        let (_, body, _) = http(&ns, "POST", &url, Some("-bx\nbx\nby"));
        assert_eq!(body, "bx missing\nby=2", "{bucket}");
    }
    assert_eq!(redis.cli(&["GET", "red:by"]), "2");

    // A new container: Redis and the volume still hold the counts; memory starts again.
    cd.cleanup("kv1");
    let log = start_http_component(&cd, &ns, component, "kv2", "pod-kv", &grants);
    serving(&ns, &log);
    assert_eq!(
        http(&ns, "GET", &format!("{KV}/config/greeting"), None).1,
        "hello"
    );
    assert_eq!(increment(&ns, "mem", "hits"), (200, "hits=1".into()));
    assert_eq!(increment(&ns, "red", "hits"), (200, "hits=4".into()));
    assert_eq!(increment(&ns, "disk", "hits"), (200, "hits=4".into()));
}

/// A Redis that is down or frozen costs the guest an error value within the backend's bounds
/// (never a trap, never a hung request), the container keeps serving, and the next request
/// after Redis is back reconnects by itself.
fn a_redis_that_is_down_or_frozen_gives_errors_and_the_next_request_reconnects() {
    let cd = Containerd::start();
    let ns = NetNs::new("wp-kvdown");
    let mut redis = RedisServer::start(&ns, cd.dir.path());
    let log = start_http_component(
        &cd,
        &ns,
        "kv-counter",
        "kvd",
        "pod-kvd",
        &["--env", "WASMPOD_KEYVALUE_red=redis://127.0.0.1:6379"],
    );
    serving(&ns, &log);
    assert_eq!(increment(&ns, "red", "n"), (200, "n=1".into()));

    redis.stop();
    let (code, body, took) = http(&ns, "POST", &format!("{KV}/increment/red/n"), None);
    assert_eq!(code, 503, "{body}");
    assert!(
        body.starts_with("keyvalue error: other") && body.contains("127.0.0.1:6379"),
        "{body}"
    );
    assert!(
        took < Duration::from_secs(10),
        "down: answered after {took:?}"
    );

    redis.restart();
    // Data is gone with the old server (nothing saved): the count starts again, on a new
    // connection made by the request itself.
    assert_eq!(increment(&ns, "red", "n"), (200, "n=1".into()));

    redis.freeze(true);
    let (code, body, took) = http(&ns, "POST", &format!("{KV}/increment/red/n"), None);
    redis.freeze(false);
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("no answer within"), "{body}");
    assert!(
        took < Duration::from_secs(10),
        "frozen: answered after {took:?}"
    );
    assert_eq!(
        http(&ns, "GET", &format!("{KV}/"), None).0,
        200,
        "still serving"
    );
    // Thawed: the next requests are answered (the frozen connection was dropped).
    let (code, body) = increment(&ns, "red", "n");
    assert_eq!(code, 200, "{body}");
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!log.contains("trap") && !log.contains("panicked"), "{log}");
}

/// Config values reach the guest through `wasi:config` only: not in its env, and neither do
/// the other grants (a Redis URL may carry a password).
fn config_values_reach_the_guest_through_wasi_config_only() {
    let cd = Containerd::start();
    let ns = NetNs::new("wp-cfg");
    let log = start_http_component(
        &cd,
        &ns,
        "kv-counter",
        "cfg",
        "pod-cfg",
        &[
            "--env",
            "WASMPOD_CONFIG_greeting=hello there",
            "--env",
            "WASMPOD_CONFIG_api_token=s3cret-token",
            "--env",
            "WASMPOD_KEYVALUE_mem=memory",
        ],
    );
    serving(&ns, &log);
    let get = |path: &str| http(&ns, "GET", &format!("{KV}{path}"), None);
    assert_eq!(get("/config/greeting").1, "hello there");
    assert_eq!(get("/config/api_token").1, "s3cret-token");
    let (code, body, _) = get("/config/unset");
    assert_eq!((code, body.as_str()), (404, "missing"));
    assert_eq!(
        get("/config").1,
        "api_token=s3cret-token\ngreeting=hello there"
    );

    // A command guest given the same grants prints its env: none of them is there.
    let img = cd.import_rootfs("hello-cli", "hello-cli", "/hello.wasm");
    let (code, out, err) = cd.run_rm(
        &img,
        "cfg-env",
        &[
            "--env",
            "WASMPOD_CONFIG_api_token=s3cret-token",
            "--env",
            "WASMPOD_KEYVALUE_sessions=redis://:pa55word@127.0.0.1:6379",
            "--env",
            "VISIBLE=yes",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("env VISIBLE=yes"), "{out}");
    assert!(
        !out.contains("s3cret") && !out.contains("pa55word") && !out.contains("WASMPOD_"),
        "{out}"
    );
    let shim_log = cd.log();
    assert!(
        !shim_log.contains("s3cret") && !shim_log.contains("pa55word"),
        "secrets logged"
    );
}

/// A component importing `wasi:keyvalue` with no bucket granted fails at create, naming the
/// import and how to grant one; a bad grant fails naming the variable, never its password.
fn ungranted_imports_and_bad_grants_fail_create_clearly() {
    let cd = Containerd::start();
    let img = cd.import_rootfs("kv-counter", "kv-counter", "/http.wasm");
    let (code, out, err) = cd.run_rm(&img, "nogrant", &[]);
    assert_ne!(code, 0, "{out}");
    assert!(
        err.contains("wasi:keyvalue/") && err.contains("WASMPOD_KEYVALUE_<bucket>"),
        "{err}"
    );
    let _ = cd.ctr(&["containers", "delete", "nogrant"]);

    for (id, setting, says) in [
        ("badname", "WASMPOD_KEYVALUE_Sessions=memory", "lowercase"),
        (
            "badurl",
            "WASMPOD_KEYVALUE_s=redis://:pa55word@",
            "names no host",
        ),
        (
            "badrule",
            "WASMPOD_ALLOWED_OUTBOUND_HOSTS=example.com",
            "scheme://host",
        ),
        (
            "nofile",
            "WASMPOD_KEYVALUE_f=file:/nowhere/kv",
            "not in any volume",
        ),
    ] {
        let (code, _, err) = cd.run_rm(&img, id, &["--env", setting]);
        assert_ne!(code, 0, "{setting} must fail");
        assert!(err.contains(says), "{setting}: {err}");
        assert!(!err.contains("pa55word"), "{err}");
        let _ = cd.ctr(&["containers", "delete", id]);
    }
}

/// With an allow-list, outgoing HTTP to a host it does not name is refused with
/// `HttpRequestDenied` and a line in the guest's log; what it names goes through; a name
/// lookup or a TCP connection outside it is refused too (`access-denied`).
fn the_outbound_allow_list_refuses_what_it_does_not_name() {
    let cd = Containerd::start();
    let ns = NetNs::new("wp-allow");
    support::start_http_component(&cd, &ns, "hello-http", "server", "pod-allow", &[]);
    assert!(
        ns.curl("http://127.0.0.1:8080/", Duration::from_secs(20))
            .is_some()
    );
    let netns = format!("network:{}", ns.path());

    let img = cd.import_rootfs("http-get", "http-get", "/get.wasm");
    let (code, out, err) = cd.run_rm(
        &img,
        "client",
        &[
            "--with-ns",
            &netns,
            "--env",
            "WASMPOD_ALLOWED_OUTBOUND_HOSTS=http://127.0.0.1:8080",
            "--env",
            "TARGET_URL=http://127.0.0.1:8080/ http://127.0.0.1:9/ http://localhost:8080/",
        ],
    );
    // http-get exits 1 when any URL failed; each failure is a line on stderr.
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("GET http://127.0.0.1:8080/ -> 200"), "{out}");
    for refused in ["http://127.0.0.1:9/", "http://localhost:8080/"] {
        assert!(
            err.contains(&format!(
                "GET {refused} failed: ErrorCode::HttpRequestDenied"
            )),
            "{refused}: {err}"
        );
    }
    assert!(
        err.contains(
            "wasmpod: outbound http to 127.0.0.1:9 refused: not in WASMPOD_ALLOWED_OUTBOUND_HOSTS"
        ),
        "{err}"
    );

    let img = cd.import_rootfs("name-lookup", "name-lookup", "/lookup.wasm");
    let (code, out, err) = cd.run_rm(
        &img,
        "lookup",
        &[
            "--with-ns",
            &netns,
            "--env",
            "WASMPOD_ALLOWED_OUTBOUND_HOSTS=tcp://127.0.0.1:8080",
            "--",
            "/lookup.wasm",
            "denied.example",
            "connect:127.0.0.1:8080",
            "connect:127.0.0.1:9",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("lookup denied.example -> error access-denied"),
        "{out}"
    );
    assert!(out.contains("connect 127.0.0.1:8080 -> ok"), "{out}{err}");
    assert!(
        out.contains("connect 127.0.0.1:9 -> error access-denied"),
        "{out}"
    );
    assert!(
        err.contains("refused: not in WASMPOD_ALLOWED_OUTBOUND_HOSTS"),
        "{err}"
    );
}

fn main() {
    let tier = Tier {
        name: "capabilities under real containerd",
        require_var: "WASMPOD_REQUIRE_CONTAINERD",
    };
    let missing = support::missing_prerequisites().or_else(|| {
        paths::first_missing([
            paths::missing_command("redis-server", "make deps (apt-get install redis-server)"),
            paths::missing_file(&component("kv-counter"), "e2e/components/build.sh"),
            paths::missing_file(&component("kv-counter-py"), "e2e/components/build.sh"),
        ])
    });
    tier.run(
        missing,
        tests![
            keyvalue_buckets_count_across_requests_on_memory_redis_and_files,
            the_python_component_gets_the_same_buckets_and_config,
            a_redis_that_is_down_or_frozen_gives_errors_and_the_next_request_reconnects,
            config_values_reach_the_guest_through_wasi_config_only,
            ungranted_imports_and_bad_grants_fail_create_clearly,
            the_outbound_allow_list_refuses_what_it_does_not_name,
        ],
    );
}
