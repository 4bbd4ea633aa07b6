//! Fetching an app's Wasm from its registry: the manifest its pods run (by digest), then the
//! Wasm layer, or for a `FROM scratch` image the file its entrypoint names, out of the layers.
//! The layer rules are `wasmpod-oci`'s and the operator's, so the activator runs the very Wasm
//! the shim would.

use std::io::Read;
use std::time::Duration;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::manifest::{OciDescriptor, OciImageManifest, OciManifest};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use wasmpod_oci::layers;
use wasmpod_oci::media_types;
use wasmpod_operator::image::auth::Credentials;
use wasmpod_operator::image::classify;
use wasmpod_runtime::{Wasm, World};

use crate::error::{Error, Result};

/// Largest Wasm (and largest layer read for it) the activator takes.
pub const MAX_WASM_BYTES: usize = 256 << 20;

/// How the activator reaches registries.
#[derive(Clone, Debug, Default)]
pub struct Registries {
    /// `host:port`s spoken to over plain HTTP.
    pub insecure: Vec<String>,
}

impl Registries {
    /// The Wasm of `image` (a reference pinned by digest).
    pub async fn fetch(&self, image: &str, creds: Option<&Credentials>) -> Result<Wasm> {
        let fail = |detail: String| Error::Image {
            image: image.to_string(),
            detail,
        };
        let reference: Reference = image
            .parse()
            .map_err(|e| fail(format!("not a valid reference: {e}")))?;
        // One client per fetch: a client keeps the first credentials it sees per registry, and
        // apps of different tenants must not share them.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = Client::try_from(ClientConfig {
            protocol: ClientProtocol::HttpsExcept(self.insecure.clone()),
            connect_timeout: Some(Duration::from_secs(5)),
            read_timeout: Some(Duration::from_secs(30)),
            ..Default::default()
        })
        .map_err(|e| fail(format!("cannot build a registry client: {e}")))?;
        let auth = creds.map_or(RegistryAuth::Anonymous, |c| {
            RegistryAuth::Basic(c.username.clone(), c.password.clone())
        });
        let registry = |e: oci_client::errors::OciDistributionError| fail(e.to_string());
        let manifest = match client
            .pull_manifest(&reference, &auth)
            .await
            .map_err(registry)?
        {
            (OciManifest::Image(m), _) => m,
            (OciManifest::ImageIndex(index), _) => {
                let entry = classify::pick_entry(&index).map_err(|e| fail(e.to_string()))?;
                let entry_ref = reference.clone_with_digest(entry.digest.clone());
                match client
                    .pull_manifest(&entry_ref, &auth)
                    .await
                    .map_err(registry)?
                {
                    (OciManifest::Image(m), _) => m,
                    (OciManifest::ImageIndex(_), _) => {
                        return Err(fail(format!(
                            "index entry {} is another index",
                            entry.digest
                        )));
                    }
                }
            }
        };
        let blob = |d: OciDescriptor| {
            let (client, reference) = (&client, &reference);
            async move {
                if usize::try_from(d.size).unwrap_or(usize::MAX) > MAX_WASM_BYTES {
                    return Err(format!(
                        "blob {} is {} bytes, more than the {MAX_WASM_BYTES} the activator reads",
                        d.digest, d.size
                    ));
                }
                let mut out = Vec::with_capacity(usize::try_from(d.size).unwrap_or(0));
                client
                    .pull_blob(reference, &d, &mut out)
                    .await
                    .map_err(|e| format!("blob {}: {e}", d.digest))?;
                check_digest(&out, &d.digest)?;
                Ok(out)
            }
        };
        let found = classify::layers_of(&manifest);
        match layers::find(&manifest.config.media_type, &found).map_err(|e| fail(e.to_string()))? {
            layers::Wasm::Layer(layer) => {
                let descriptor = descriptor(&manifest, &layer.digest);
                let bytes = blob(descriptor).await.map_err(fail)?;
                let world = if manifest.config.media_type == media_types::WASM_ARTIFACT_CONFIG {
                    let config = blob(manifest.config.clone()).await.map_err(fail)?;
                    artifact_world(&config)
                } else {
                    None
                };
                Ok(wasm(bytes, world))
            }
            layers::Wasm::Rootfs => {
                let config = blob(manifest.config.clone()).await.map_err(fail)?;
                let path = entrypoint(&config).map_err(fail)?;
                let mut found = None;
                // Later layers override earlier ones: the last that has the file wins.
                for l in &manifest.layers {
                    let tar = blob(l.clone()).await.map_err(fail)?;
                    if let Some(bytes) = file_in_layer(&tar, &l.media_type, &path).map_err(fail)? {
                        found = Some(bytes);
                    }
                }
                let bytes = found.ok_or_else(|| {
                    fail(format!(
                        "the entrypoint {path} is in none of the image's layers"
                    ))
                })?;
                Ok(wasm(bytes, None))
            }
        }
    }
}

fn descriptor(m: &OciImageManifest, digest: &str) -> OciDescriptor {
    m.layers
        .iter()
        .find(|l| l.digest == digest)
        .cloned()
        .unwrap_or_default()
}

fn wasm(bytes: Vec<u8>, world: Option<World>) -> Wasm {
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
    Wasm {
        bytes,
        digest,
        world,
    }
}

fn check_digest(bytes: &[u8], want: &str) -> std::result::Result<(), String> {
    let Some(hex_want) = want.strip_prefix("sha256:") else {
        return Ok(());
    };
    let got = hex::encode(Sha256::digest(bytes));
    if got == hex_want {
        Ok(())
    } else {
        Err(format!("blob {want} has digest sha256:{got}"))
    }
}

/// What a CNCF Wasm artifact's config says the component targets.
fn artifact_world(config: &[u8]) -> Option<World> {
    let artifact = wasmpod_oci::artifact::parse(config);
    match artifact.kind {
        wasmpod_oci::artifact::Kind::Http => Some(World::Http),
        wasmpod_oci::artifact::Kind::Command => Some(World::Command),
        _ => None,
    }
}

#[derive(Deserialize, Default)]
struct ImageConfig {
    #[serde(default)]
    config: Option<Process>,
}

#[derive(Deserialize, Default)]
struct Process {
    #[serde(default, rename = "Entrypoint")]
    entrypoint: Option<Vec<String>>,
    #[serde(default, rename = "Cmd")]
    cmd: Option<Vec<String>>,
}

/// The path of the Wasm file a `FROM scratch` image runs: the first word of its entrypoint
/// and command, as the shim takes it.
fn entrypoint(config: &[u8]) -> std::result::Result<String, String> {
    let c: ImageConfig = serde_json::from_slice(config)
        .map_err(|e| format!("the image config cannot be parsed: {e}"))?;
    let p = c.config.unwrap_or_default();
    p.entrypoint
        .unwrap_or_default()
        .into_iter()
        .chain(p.cmd.unwrap_or_default())
        .next()
        .ok_or_else(|| "the image has no entrypoint naming its .wasm file".to_string())
}

/// The file `path` of a filesystem layer, if the layer has it.
fn file_in_layer(
    blob: &[u8],
    media_type: &str,
    path: &str,
) -> std::result::Result<Option<Vec<u8>>, String> {
    let want = path.trim_start_matches('/');
    let reader: Box<dyn Read + '_> = if media_type.ends_with("gzip") {
        Box::new(flate2::read::GzDecoder::new(blob))
    } else {
        Box::new(blob)
    };
    let mut archive = tar::Archive::new(reader);
    let entries = archive
        .entries()
        .map_err(|e| format!("a layer is not a tar archive: {e}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("reading a layer: {e}"))?;
        let name = entry
            .path()
            .map_err(|e| format!("reading a layer: {e}"))?
            .to_string_lossy()
            .trim_start_matches("./")
            .trim_start_matches('/')
            .to_string();
        if name != want || !entry.header().entry_type().is_file() {
            continue;
        }
        if usize::try_from(entry.size()).unwrap_or(usize::MAX) > MAX_WASM_BYTES {
            return Err(format!("{path} is more than {MAX_WASM_BYTES} bytes"));
        }
        let mut bytes = Vec::new();
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| format!("reading {path} from a layer: {e}"))?;
        return Ok(Some(bytes));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer_with(path: &str, content: &[u8], gzip: bool) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, path, content).unwrap();
        let tar = builder.into_inner().unwrap();
        if !gzip {
            return tar;
        }
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar).unwrap();
        gz.finish().unwrap()
    }

    #[test]
    fn finds_the_entrypoint_file_in_plain_and_gzip_layers() {
        let plain = layer_with("app/hello.wasm", b"\0asm", false);
        let got = file_in_layer(
            &plain,
            "application/vnd.oci.image.layer.v1.tar",
            "/app/hello.wasm",
        );
        assert_eq!(got.unwrap().as_deref(), Some(&b"\0asm"[..]));
        let gz = layer_with("./app/hello.wasm", b"\0asm2", true);
        let got = file_in_layer(
            &gz,
            "application/vnd.oci.image.layer.v1.tar+gzip",
            "/app/hello.wasm",
        );
        assert_eq!(got.unwrap().as_deref(), Some(&b"\0asm2"[..]));
        let other = file_in_layer(
            &plain,
            "application/vnd.oci.image.layer.v1.tar",
            "/other.wasm",
        );
        assert_eq!(other.unwrap(), None);
        let err = file_in_layer(
            b"not a tar at all",
            "application/vnd.oci.image.layer.v1.tar+gzip",
            "/x",
        );
        assert!(err.is_err());
    }

    #[test]
    fn entrypoint_and_digest_rules() {
        let config = br#"{"config":{"Entrypoint":["/hello.wasm"],"Cmd":["arg"]}}"#;
        assert_eq!(entrypoint(config).unwrap(), "/hello.wasm");
        assert!(
            entrypoint(br#"{"config":{}}"#)
                .unwrap_err()
                .contains("no entrypoint")
        );
        let w = wasm(b"abc".to_vec(), None);
        assert!(check_digest(b"abc", &w.digest).is_ok());
        assert!(
            check_digest(b"abd", &w.digest)
                .unwrap_err()
                .contains("has digest")
        );
    }
}
