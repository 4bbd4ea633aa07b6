//! The native containers of a pod: its sandbox's pause, which the shim starts itself
//! (shim/src/pause.rs), looked at from outside (where runc would have put it, with nothing more
//! than a pause needs), and ordinary sidecars, which run with runc in the pause's namespaces.

use std::os::unix::fs::MetadataExt;
use std::process::Command;
use std::time::Duration;

use crate::support::{self, Containerd, NetNs, cgroups, text};
use crate::{POD, task_pid};

const SANDBOX: &str = "io.kubernetes.cri.container-type=sandbox";

pub fn native_containers_of_a_pod_the_pause_by_the_shim_sidecars_by_runc() {
    let cd = Containerd::start();
    let ns = NetNs::new("wp-pause");
    let img = cd.import(
        "busybox",
        &[
            "rootfs",
            "--file",
            "/bin/busybox",
            "--entrypoint",
            "/bin/busybox",
        ],
    );
    let pod = format!("{POD}pod-s");
    let netns = format!("network:{}", ns.path());
    let out = cd.ctr(&[
        "run",
        "-d",
        "--runtime",
        support::RUNTIME,
        "--annotation",
        SANDBOX,
        "--annotation",
        &pod,
        "--with-ns",
        &netns,
        "--hostname",
        "pod-s-host",
        &img,
        "pod-s",
        "/bin/busybox",
        "sleep",
        "3600",
    ]);
    assert!(
        out.status.success(),
        "ctr run: {}\n{}",
        text(&out.stderr),
        cd.log()
    );
    let pid = task_pid(&cd, "pod-s");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}:")))
            .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
    };

    // Started by the shim: runc gives every container a mount namespace of its own.
    assert_eq!(
        ns_id(&format!("/proc/{pid}/ns/mnt")),
        ns_id("/proc/self/ns/mnt"),
        "the pause was started through runc"
    );
    // The pod's network namespace; new IPC, UTS and PID namespaces, in which it is PID 1.
    assert_eq!(ns_id(&format!("/proc/{pid}/ns/net")), ns_id(&ns.path()));
    for t in ["ipc", "uts", "pid"] {
        assert_ne!(
            ns_id(&format!("/proc/{pid}/ns/{t}")),
            ns_id(&format!("/proc/self/ns/{t}")),
            "the pause shares the node's {t} namespace"
        );
    }
    assert_eq!(field("NSpid"), format!("{pid} 1"));
    let hostname = Command::new("nsenter")
        .args([
            "-t",
            &pid.to_string(),
            "-u",
            "cat",
            "/proc/sys/kernel/hostname",
        ])
        .output()
        .unwrap();
    assert_eq!(text(&hostname.stdout).trim(), "pod-s-host");
    // Nothing a pause does not need: no capability in any set, no way to gain one.
    for set in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert_eq!(field(set), "0000000000000000", "{set}");
    }
    assert_eq!(field("NoNewPrivs"), "1");
    // In the sandbox's cgroup (ctr's cgroupsPath: /<namespace>/<id>).
    let dir = cgroups::hierarchy("memory").join(support::NS).join("pod-s");
    assert!(
        cgroups::procs(&dir).contains(&pid),
        "{} does not hold the pause",
        dir.display()
    );

    // Sidecars run with runc in the pause's namespaces. One sharing the pod's PID namespace
    // sees the pause as PID 1, and through its /proc/1/root only the pause's image, never the
    // node's filesystem; exit codes come through.
    let joined: Vec<String> = ["pid", "ipc", "uts"]
        .iter()
        .map(|t| format!("{t}:/proc/{pid}/ns/{t}"))
        .collect();
    let mut with_pod = vec!["--annotation", pod.as_str(), "--with-ns", netns.as_str()];
    for ns in &joined {
        with_pod.extend(["--with-ns", ns.as_str()]);
    }
    let mut args = with_pod.clone();
    args.extend([
        "--",
        "/bin/busybox",
        "sh",
        "-c",
        "echo native hello; /bin/busybox hostname; /bin/busybox tr '\\0' ' ' </proc/1/cmdline; echo; /bin/busybox ls -A /proc/1/root",
    ]);
    let (code, out, err) = cd.run_rm(&img, "pod-s-side", &args);
    assert_eq!(code, 0, "{out}{err}\n{}", cd.log());
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    assert_eq!(
        lines,
        [
            "native hello",
            "pod-s-host",
            "/bin/busybox sleep 3600",
            "bin"
        ],
        "{out}"
    );
    let mut args = with_pod.clone();
    args.extend(["--", "/bin/busybox", "sh", "-c", "exit 4"]);
    let (code, _, _) = cd.run_rm(&img, "pod-s-side2", &args);
    assert_eq!(code, 4);

    // It dies by the signal containerd sends, and leaves no cgroup behind.
    let out = cd.ctr(&["task", "kill", "-s", "SIGKILL", "pod-s"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(cd.wait_stopped("pod-s", Duration::from_secs(10)), Some(137));
    let out = cd.ctr(&["containers", "delete", "pod-s"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        support::wait_until(Duration::from_secs(10), || !dir.exists()),
        "{} is still there after the sandbox was deleted",
        dir.display()
    );
}

fn ns_id(path: &str) -> (u64, u64) {
    let m = std::fs::metadata(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    (m.dev(), m.ino())
}
