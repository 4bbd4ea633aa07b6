//! The roots a guest's outgoing HTTPS requests trust: the Mozilla roots of webpki-roots (what
//! wasmtime-wasi-http trusts), plus the certificates of `WASMPOD_CA_BUNDLE`, a PEM file in one
//! of the guest's volumes (a cluster's private CA, typically from a ConfigMap or Secret).
//!
//! The setting names the file as the container sees it, so it is found through the guest's
//! volumes, the same way the guest would open it; a file outside every volume is an error,
//! as is one whose real path (symlinks resolved: ConfigMap volumes are made of them) leaves
//! its volume. It is read once, when the guest is set up.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::error::{Error, Result};
use crate::guest::context::{Preopen, volume_path};

/// The TLS client configuration of a guest: webpki roots plus its CA bundle, if it has one
/// (`ca_bundle` is the container's path).
pub(crate) fn client_config(
    ca_bundle: Option<&Path>,
    preopens: &[Preopen],
) -> Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.into(),
    };
    if let Some(path) = ca_bundle {
        let bad = |detail: String| Error::CaBundle {
            path: path.display().to_string(),
            detail,
        };
        let file = host_path(path, preopens).map_err(bad)?;
        let mut added = 0;
        for cert in CertificateDer::pem_file_iter(&file).map_err(|e| bad(e.to_string()))? {
            let cert = cert.map_err(|e| bad(e.to_string()))?;
            roots.add(cert).map_err(|e| bad(e.to_string()))?;
            added += 1;
        }
        if added == 0 {
            return Err(bad("no PEM certificate in it".into()));
        }
    }
    // ring, named rather than taken from the process default: which providers are compiled
    // in depends on what else is in the build.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports rustls's default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    // The connector speaks HTTP/1.1 only.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Where the host finds the file the container sees at `path`: under the volume mounted
/// deepest on its way, and inside it once symlinks are resolved.
fn host_path(path: &Path, preopens: &[Preopen]) -> std::result::Result<PathBuf, String> {
    let (volume, root, rest) = volume_path(path, preopens)?;
    let file = root.join(rest).canonicalize().map_err(|e| e.to_string())?;
    if !file.starts_with(&root) {
        return Err(format!("it leads out of the volume {}", volume.guest));
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    // A self-signed test CA (openssl, EC P-256, valid until 2126); testdata/server.pem is
    // signed by it for web.wasmpod.test.
    const CA_PEM: &str = include_str!("testdata/ca.pem");

    fn volume(host: &Path, guest: &str) -> Preopen {
        Preopen {
            host: host.into(),
            guest: guest.into(),
            read_only: true,
        }
    }

    #[test]
    fn the_bundle_is_found_through_the_deepest_volume_and_never_outside() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (outer, inner) = (dir.path().join("outer"), dir.path().join("inner"));
        std::fs::create_dir_all(&outer).expect("mkdir");
        std::fs::create_dir_all(inner.join("..data")).expect("mkdir");
        std::fs::write(inner.join("..data/ca.crt"), CA_PEM).expect("write");
        // A ConfigMap volume: the file is a symlink into its timestamped data directory.
        std::os::unix::fs::symlink("..data/ca.crt", inner.join("ca.crt")).expect("symlink");
        std::fs::write(dir.path().join("secret"), CA_PEM).expect("write");
        std::os::unix::fs::symlink(dir.path().join("secret"), inner.join("escape"))
            .expect("symlink");
        let vols = [volume(&outer, "/etc"), volume(&inner, "/etc/ssl/extra")];

        let found = host_path(Path::new("/etc/ssl/extra/ca.crt"), &vols).expect("found");
        assert_eq!(
            found,
            inner.join("..data/ca.crt").canonicalize().expect("real")
        );
        for (path, why) in [
            ("/etc/ssl/extra/escape", "leads out of the volume"),
            ("/other/ca.crt", "not in any volume"),
            ("etc/ssl/extra/ca.crt", "absolute"),
            ("/etc/ssl/extra/../extra/ca.crt", "absolute"),
        ] {
            let err = host_path(Path::new(path), &vols).expect_err(path);
            assert!(err.contains(why), "{path}: {err}");
        }

        let config =
            client_config(Some(Path::new("/etc/ssl/extra/ca.crt")), &vols).expect("a valid bundle");
        assert_eq!(config.alpn_protocols, [b"http/1.1".to_vec()]);
        std::fs::write(outer.join("empty.pem"), "not a certificate\n").expect("write");
        let err = client_config(Some(Path::new("/etc/empty.pem")), &vols)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("/etc/empty.pem") && err.contains("no PEM certificate"),
            "{err}"
        );
    }
}
