//! Turns a container's OCI runtime spec into the runtime's plain inputs: its settings (the
//! `WASMPOD_*` variables, taken out of the env), args, env, volumes and memory limit.

use oci_spec::runtime::Spec;
use wasmpod_runtime::{GuestConfig, Preopen, Settings};

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

/// Bind mounts of the spec that are directories become preopens; the guest sees nothing else
/// of any filesystem (no rootfs, no host paths).
fn preopens(spec: &Spec) -> Vec<Preopen> {
    let mut out = Vec::new();
    for m in spec.mounts().iter().flatten() {
        let opts = m.options().clone().unwrap_or_default();
        let is_bind =
            m.typ().as_deref() == Some("bind") || opts.iter().any(|o| o == "bind" || o == "rbind");
        let dest = m.destination().to_string_lossy().to_string();
        if !is_bind
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
