//! Test bed for the shim: a private containerd (2.x or 1.7, built from its Go module by
//! e2e/build-deps.sh), a private OCI registry, the Wasm test components and the OCI packer.
//! Everything lives in a temp dir and on loopback; nothing touches the node's containerd.

#![allow(dead_code, reason = "the helpers serve several test files")]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use wasmpod_testkit::paths;

/// The runtime the tests ask containerd for.
pub const RUNTIME: &str = wasmpod_oci::names::RUNTIME_TYPE;
pub const NS: &str = "wasmpod-test";

pub mod cgroups;
pub mod dns;
pub mod redis;

/// Which containerd the suite runs against: `WASMPOD_TEST_CONTAINERD=2` (default) or `1.7`.
pub fn containerd_flavor() -> String {
    std::env::var("WASMPOD_TEST_CONTAINERD").unwrap_or_else(|_| "2".into())
}

fn containerd_component() -> &'static str {
    if containerd_flavor() == "1.7" {
        "containerd17"
    } else {
        "containerd2"
    }
}

fn deps_bin(component: &str) -> PathBuf {
    paths::deps_dir(component).unwrap_or_else(|e| panic!("{e}"))
}

fn build_path(name: &str) -> PathBuf {
    paths::build_path(name).unwrap_or_else(|e| panic!("{e}"))
}

pub fn shim_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_containerd-shim-wasmpod-v1"))
}

/// A Wasm test component built by e2e/components/build.sh.
pub fn component(name: &str) -> PathBuf {
    build_path("components").join(format!("{name}.wasm"))
}

pub fn oci_pack() -> PathBuf {
    build_path("tools-bin").join("oci-pack")
}

/// Why this tier cannot run here, if it cannot: it needs root, the containerd of
/// `WASMPOD_TEST_CONTAINERD`, runc, docker-registry, skopeo, dnsmasq, the test components and
/// oci-pack.
pub fn missing_prerequisites() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("the shim's containerd tests need root".into());
    }
    let containerd = paths::deps_dir(containerd_component()).unwrap_or_default();
    let build = format!("e2e/build-deps.sh {}", containerd_component());
    let deps = "make deps (apt-get install runc docker-registry skopeo dnsmasq-base)";
    paths::first_missing([
        paths::missing_file(&containerd.join("containerd"), &build),
        paths::missing_file(&containerd.join("ctr"), &build),
        paths::missing_command("runc", deps),
        paths::missing_command("docker-registry", deps),
        paths::missing_command("skopeo", deps),
        paths::missing_command("dnsmasq", deps),
        paths::missing_file(&component("hello-http"), "e2e/components/build.sh"),
        paths::missing_file(&oci_pack(), "e2e/oci-pack/build.sh"),
    ])
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"))
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A containerd daemon of our own.
pub struct Containerd {
    pub dir: tempfile::TempDir,
    pub bin: PathBuf,
    child: Option<Child>,
    pub cache_dir: PathBuf,
}

impl Containerd {
    pub fn start() -> Self {
        let flavor = containerd_flavor();
        let bin = deps_bin(containerd_component());
        // Short path: unix socket paths are limited to 108 bytes.
        let dir = tempfile::Builder::new()
            .prefix("wp")
            .tempdir_in("/tmp")
            .expect("tempdir");
        // Under emulation (e2e/vm/test-shim.sh) compiling a component takes tens of seconds:
        // the tests of one VM run share one compile cache instead of each compiling anew.
        let cache_dir = std::env::var_os("WASMPOD_TEST_SHARED_CACHE_DIR")
            .filter(|d| !d.is_empty())
            .map_or_else(|| dir.path().join("cache"), PathBuf::from);
        let mut c = Self {
            dir,
            bin,
            child: None,
            cache_dir,
        };
        c.write_config(&flavor);
        c.spawn();
        c
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("c.sock")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("containerd.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn write_config(&self, flavor: &str) {
        let d = self.dir.path().display();
        let cfg = if flavor == "1.7" {
            format!(
                "version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n[grpc]\n  address = \"{d}/c.sock\"\n[ttrpc]\n  address = \"{d}/c.sock.ttrpc\"\n"
            )
        } else {
            format!(
                "version = 3\nroot = \"{d}/root\"\nstate = \"{d}/state\"\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\", \"io.containerd.cri.v1.images\", \"io.containerd.cri.v1.runtime\", \"io.containerd.podsandbox.controller.v1.podsandbox\"]\n[grpc]\n  address = \"{d}/c.sock\"\n[ttrpc]\n  address = \"{d}/c.sock.ttrpc\"\n"
            )
        };
        std::fs::write(self.dir.path().join("config.toml"), cfg).expect("write config");
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("log");
        let shim_dir = shim_binary().parent().expect("shim dir").to_path_buf();
        let path = format!(
            "{}:{}:{}",
            shim_dir.display(),
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let child = Command::new(self.bin.join("containerd"))
            .arg("--config")
            .arg(self.dir.path().join("config.toml"))
            .env("PATH", path)
            .env("WASMPOD_CACHE_DIR", &self.cache_dir)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start containerd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if self.ctr(&["version"]).status.success() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "containerd did not come up:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops containerd (SIGTERM) without touching running shims, then starts it again.
    pub fn restart(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill on a pid we own.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let _ = child.wait();
        }
        self.spawn();
    }

    pub fn ctr(&self, args: &[&str]) -> Output {
        run(Command::new(self.bin.join("ctr"))
            .arg("--address")
            .arg(self.socket())
            .args(["-n", NS])
            .args(args))
    }

    /// Packs an image with oci-pack (`mode` and its flags, e.g. `["rootfs", "--wasm", path]`)
    /// into an OCI archive; returns (reference, archive path).
    pub fn pack(&self, name: &str, args: &[&str]) -> (String, PathBuf) {
        let reference = format!("wasmpod.test/{name}:v1");
        let tar = self.dir.path().join(format!("{name}.tar"));
        let out = run(Command::new(oci_pack())
            .args(args)
            .args(["--name", &reference, "--out"])
            .arg(&tar));
        assert!(
            out.status.success(),
            "oci-pack {args:?}: {}",
            text(&out.stderr)
        );
        (reference, tar)
    }

    /// Packs and imports an image; returns its reference.
    pub fn import(&self, name: &str, args: &[&str]) -> String {
        let (reference, tar) = self.pack(name, args);
        let out = self.ctr(&[
            "images",
            "import",
            "--all-platforms",
            tar.to_str().expect("utf8"),
        ]);
        assert!(out.status.success(), "ctr import: {}", text(&out.stderr));
        reference
    }

    /// Imports a test component as a FROM-scratch style image whose entrypoint is the file.
    pub fn import_rootfs(&self, name: &str, component_name: &str, entrypoint: &str) -> String {
        let wasm = component(component_name);
        let wasm = wasm.to_str().expect("utf8 path");
        self.import(
            name,
            &["rootfs", "--wasm", wasm, "--entrypoint", entrypoint],
        )
    }

    /// Runs a container to completion with `ctr run --rm`; `args` are ctr flags, then
    /// optionally `--` and the command that replaces the image's. Returns (exit code,
    /// stdout, stderr).
    pub fn run_rm(&self, image: &str, id: &str, args: &[&str]) -> (i32, String, String) {
        let (flags, command) = match args.iter().position(|a| *a == "--") {
            Some(i) => (&args[..i], &args[i + 1..]),
            None => (args, &[][..]),
        };
        let mut a = vec!["run", "--rm", "--runtime", RUNTIME];
        a.extend_from_slice(flags);
        a.push(image);
        a.push(id);
        a.extend_from_slice(command);
        let out = self.ctr(&a);
        (
            out.status.code().unwrap_or(-1),
            text(&out.stdout),
            text(&out.stderr),
        )
    }

    /// Waits for a task to be STOPPED and returns its exit status.
    pub fn wait_stopped(&self, id: &str, timeout: Duration) -> Option<u32> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let out = self.ctr(&["task", "ls"]);
            for line in text(&out.stdout).lines() {
                let f: Vec<&str> = line.split_whitespace().collect();
                if f.first() == Some(&id) && f.get(2) == Some(&"STOPPED") {
                    // `ctr task delete` exits 0 and warns "... exit with non-zero exit code N".
                    let out = self.ctr(&["task", "delete", id]);
                    let err = text(&out.stderr);
                    return Some(
                        err.split("non-zero exit code ")
                            .nth(1)
                            .and_then(|s| s.split_whitespace().next())
                            .and_then(|n| n.trim_matches('"').parse().ok())
                            .unwrap_or(0),
                    );
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }

    pub fn cleanup(&self, id: &str) {
        let _ = self.ctr(&["task", "kill", "-s", "SIGKILL", id]);
        std::thread::sleep(Duration::from_millis(200));
        let _ = self.ctr(&["task", "delete", "-f", id]);
        let _ = self.ctr(&["containers", "delete", id]);
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let out = self.ctr(&["task", "ls", "-q"]);
        for id in text(&out.stdout).lines() {
            self.cleanup(id.trim());
        }
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill on a pid we own.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let _ = child.wait();
        }
        let _ = Command::new("umount")
            .arg("-R")
            .arg(self.dir.path().join("root"))
            .status();
    }
}

/// Starts an HTTP component (one of `component`'s names, packed as an ordinary image with its
/// Wasm at /http.wasm) detached in `ns`, in pod `pod`, logging to a file; returns the file.
/// `extra` are more `ctr run` flags (`--env`, `--mount`).
pub fn start_http_component(
    cd: &Containerd,
    ns: &NetNs,
    component_name: &str,
    id: &str,
    pod: &str,
    extra: &[&str],
) -> PathBuf {
    let img = cd.import_rootfs(component_name, component_name, "/http.wasm");
    let log = cd.dir.path().join(format!("{id}.log"));
    let netns = format!("network:{}", ns.path());
    let log_uri = format!("file://{}", log.display());
    let annotation = format!("io.kubernetes.cri.sandbox-id={pod}");
    let mut args = vec![
        "run",
        "-d",
        "--runtime",
        RUNTIME,
        "--with-ns",
        &netns,
        "--log-uri",
        &log_uri,
        "--annotation",
        &annotation,
    ];
    args.extend_from_slice(extra);
    args.push(&img);
    args.push(id);
    let out = cd.ctr(&args);
    assert!(
        out.status.success(),
        "ctr run -d: {}\n{}",
        text(&out.stderr),
        cd.log()
    );
    log
}

/// A network namespace with loopback up, standing in for a pod's.
pub struct NetNs {
    pub name: String,
}

impl NetNs {
    pub fn new(name: &str) -> Self {
        let _ = run(Command::new("ip").args(["netns", "delete", name]));
        let out = run(Command::new("ip").args(["netns", "add", name]));
        assert!(out.status.success(), "ip netns add: {}", text(&out.stderr));
        let out = run(Command::new("ip").args(["-n", name, "link", "set", "lo", "up"]));
        assert!(out.status.success(), "lo up: {}", text(&out.stderr));
        Self { name: name.into() }
    }

    pub fn path(&self) -> String {
        format!("/var/run/netns/{}", self.name)
    }

    /// `curl` inside the namespace, retried until the server answers or the time is up.
    pub fn curl(&self, url: &str, timeout: Duration) -> Option<(u16, String)> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let out = run(Command::new("ip").args([
                "netns",
                "exec",
                &self.name,
                "curl",
                "-s",
                "-m",
                "10",
                "-w",
                "\n%{http_code}",
                url,
            ]));
            if out.status.success() {
                let body = text(&out.stdout);
                let (b, code) = body.rsplit_once('\n').unwrap_or(("", "0"));
                return Some((code.trim().parse().unwrap_or(0), b.to_string()));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = run(Command::new("ip").args(["netns", "delete", &self.name]));
    }
}

/// Debian's docker-registry on a free loopback port, storing into a temp dir.
pub struct Registry {
    pub addr: String,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Registry {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        let addr = format!("127.0.0.1:{port}");
        let cfg = dir.path().join("config.yml");
        std::fs::write(
            &cfg,
            format!(
                "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
                dir.path().join("data").display()
            ),
        )
        .expect("write registry config");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start docker-registry (apt-get install docker-registry)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(Instant::now() < deadline, "registry did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Self {
            addr,
            child,
            _dir: dir,
        }
    }

    /// Pushes an OCI archive to `<addr>/<repo>:v1`; returns the reference.
    pub fn push(&self, archive: &Path, repo: &str) -> String {
        let reference = format!("{}/{repo}:v1", self.addr);
        let out = run(Command::new("skopeo").args([
            "copy",
            "--dest-tls-verify=false",
            &format!("oci-archive:{}", archive.display()),
            &format!("docker://{reference}"),
        ]));
        assert!(out.status.success(), "skopeo copy: {}", text(&out.stderr));
        reference
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `cond` every 50 ms until it holds or `timeout` passes; true when it held.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
