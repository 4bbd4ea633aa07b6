//! Turns a container's OCI runtime spec into the runtime's plain inputs: its settings (the
//! `WASMPOD_*` variables, taken out of the env), args, env, volumes, memory limit and the
//! pod's name resolution (the files CRI mounts at /etc/resolv.conf and /etc/hosts).

use oci_spec::runtime::{Mount, Spec};
use wasmpod_runtime::{GuestConfig, PodDns, Preopen, Settings};

/// The settings and guest inputs of a Wasm container. Stdio and network are the caller's:
/// they come from the Create request and the pod's namespaces, not from the spec.
pub fn guest_inputs(spec: &Spec) -> wasmpod_runtime::Result<(Settings, GuestConfig)> {
    let process = spec.process().as_ref();
    let env = process
        .and_then(|p| p.env().clone())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        });
    let (settings, env) = Settings::from_env(env)?;
    let config = GuestConfig {
        args: process.and_then(|p| p.args().clone()).unwrap_or_default(),
        env,
        preopens: preopens(spec),
        memory_limit: memory_limit(spec),
        dns: pod_dns(spec),
        ca_bundle: settings.ca_bundle.clone(),
        grants: settings.grants.clone(),
        ..Default::default()
    };
    Ok((settings, config))
}

fn memory_limit(spec: &Spec) -> Option<u64> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.resources().as_ref())
        .and_then(|r| r.memory().as_ref())
        .and_then(|m| m.limit())
        .and_then(|l| u64::try_from(l).ok())
        .filter(|l| *l > 0)
}

/// The pod's resolv.conf and hosts file: the files CRI writes into the sandbox's directory and
/// bind-mounts into each container, so a guest resolves names as a container of its pod
/// would. No resolv.conf mount (a container not made by CRI), no resolver.
fn pod_dns(spec: &Spec) -> Option<PodDns> {
    let file_bound_at = |dest: &str| {
        spec.mounts()
            .iter()
            .flatten()
            .filter(|m| is_bind(m) && m.destination().as_os_str() == dest)
            .filter_map(|m| m.source().clone())
            // A later mount at the same place hides an earlier one.
            .rfind(|src| src.is_file())
    };
    Some(PodDns {
        resolv_conf: file_bound_at("/etc/resolv.conf")?,
        hosts: file_bound_at("/etc/hosts"),
    })
}

fn is_bind(m: &Mount) -> bool {
    m.typ().as_deref() == Some("bind")
        || m.options()
            .iter()
            .flatten()
            .any(|o| o == "bind" || o == "rbind")
}

/// Bind mounts of the spec that are directories become preopens; the guest sees nothing else
/// of any filesystem (no rootfs, no host paths).
fn preopens(spec: &Spec) -> Vec<Preopen> {
    let mut out = Vec::new();
    for m in spec.mounts().iter().flatten() {
        let opts = m.options().clone().unwrap_or_default();
        let dest = m.destination().to_string_lossy().to_string();
        if !is_bind(m)
            || ["/proc", "/dev", "/sys"]
                .iter()
                .any(|p| dest == *p || dest.starts_with(&format!("{p}/")))
        {
            continue;
        }
        let Some(src) = m.source() else { continue };
        if !src.is_dir() {
            continue;
        }
        out.push(Preopen {
            host: src.clone(),
            guest: dest,
            read_only: opts.iter().any(|o| o == "ro"),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Spec {
        serde_json::from_str(json).expect("spec")
    }

    #[test]
    fn settings_leave_the_env_and_directory_binds_become_volumes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let src = dir.path().display();
        let s = spec(&format!(
            r#"{{"ociVersion": "1.0.2",
                "process": {{"cwd": "/", "user": {{"uid": 0, "gid": 0}}, "args": ["/app.wasm", "x"],
                            "env": ["A=1", "WASMPOD_HTTP_PORT=9000"]}},
                "mounts": [
                  {{"destination": "/data", "type": "bind", "source": "{src}", "options": ["rbind", "ro"]}},
                  {{"destination": "/dev/shm", "type": "bind", "source": "{src}", "options": ["rbind"]}},
                  {{"destination": "/proc", "type": "proc", "source": "proc"}}
                ],
                "linux": {{"resources": {{"memory": {{"limit": 67108864}}}}}}}}"#
        ));
        let (settings, config) = guest_inputs(&s).expect("inputs");
        assert_eq!(settings.http_port.get(), 9000);
        assert_eq!(config.args, ["/app.wasm", "x"]);
        assert_eq!(config.env, [("A".to_string(), "1".to_string())]);
        assert_eq!(config.memory_limit, Some(64 << 20));
        assert_eq!(config.preopens.len(), 1, "{:?}", config.preopens);
        assert_eq!(config.preopens[0].guest, "/data");
        assert!(config.preopens[0].read_only);
        assert_eq!(config.dns, None, "no /etc/resolv.conf mount, no resolver");
    }

    #[test]
    fn the_pods_resolv_conf_and_hosts_are_the_sources_of_their_mounts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (resolv, hosts) = (dir.path().join("resolv.conf"), dir.path().join("hosts"));
        std::fs::write(&resolv, "nameserver 10.96.0.10\n").expect("write");
        std::fs::write(&hosts, "127.0.0.1 localhost\n").expect("write");
        let s = spec(&format!(
            r#"{{"ociVersion": "1.0.2",
                "process": {{"cwd": "/", "user": {{"uid": 0, "gid": 0}},
                            "env": ["WASMPOD_CA_BUNDLE=/etc/ssl/extra/ca.pem"]}},
                "mounts": [
                  {{"destination": "/etc/hosts", "type": "bind", "source": "{}", "options": ["rbind", "rprivate", "rw"]}},
                  {{"destination": "/etc/resolv.conf", "type": "bind", "source": "{}", "options": ["rbind", "rprivate", "ro"]}}
                ]}}"#,
            hosts.display(),
            resolv.display()
        ));
        let (settings, config) = guest_inputs(&s).expect("inputs");
        assert_eq!(
            config.dns,
            Some(PodDns {
                resolv_conf: resolv,
                hosts: Some(hosts)
            })
        );
        assert!(config.preopens.is_empty(), "files are no volumes");
        assert_eq!(config.ca_bundle, settings.ca_bundle);
        assert!(config.ca_bundle.is_some());
    }

    #[test]
    fn a_bad_setting_is_an_error_naming_it() {
        let s = spec(
            r#"{"ociVersion": "1.0.2",
                "process": {"cwd": "/", "user": {"uid": 0, "gid": 0}, "env": ["WASMPOD_HTTP_MAX_CONCURRENCY=lots"]}}"#,
        );
        let err = guest_inputs(&s).err().map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.starts_with("WASMPOD_HTTP_MAX_CONCURRENCY=lots is not")),
            "{err:?}"
        );
    }
}
