//! Finds the Wasm a container should run: a Wasm layer in containerd's content store, or the
//! file its entrypoint names in the image rootfs. Native executables (the pod's pause
//! container, ordinary sidecars) are recognised so they can be handed to runc; anything else
//! is refused with an error that says what was found and what was expected.

use std::io::Read;
use std::path::{Component as PathComponent, Path, PathBuf};

use oci_spec::image::{ImageIndex, ImageManifest};
use oci_spec::runtime::Spec;
use serde::Deserialize;

use crate::content::{Blob, ContentStore, sha256_digest};
use crate::error::{Error, Result};

/// Layer media types that carry a Wasm binary.
pub const WASM_LAYER_MEDIA_TYPES: [&str; 4] = [
    "application/wasm",
    "application/vnd.bytecodealliance.wasm.component.layer.v0+wasm",
    "application/vnd.wasm.content.layer.v1+wasm",
    "application/vnd.module.wasm.content.layer.v1+wasm",
];
/// Config media type of the CNCF Wasm OCI artifact.
pub const WASM_CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
const INDEX_MEDIA_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// Which world the image's metadata says the component targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorldHint {
    Command,
    Http,
}

/// Wasm bytes and where they came from.
#[derive(Debug)]
pub struct WasmSource {
    pub bytes: Vec<u8>,
    /// `sha256:<hex>` of `bytes`: the compile cache key.
    pub digest: String,
    /// Human-readable origin for logs and errors (image layer or rootfs path).
    pub origin: String,
    pub world: Option<WorldHint>,
}

#[derive(Debug)]
pub enum Resolved {
    Wasm(WasmSource),
    /// A native executable: run it with runc.
    Native {
        path: PathBuf,
    },
}

/// Resolves what to run. `store` is `None` when containerd's API cannot be reached; then only
/// the rootfs is looked at.
pub async fn resolve(
    id: &str,
    spec: &Spec,
    rootfs: &Path,
    store: Option<&ContentStore>,
) -> Result<Resolved> {
    if let Some(store) = store {
        match from_image(id, store).await {
            Ok(Some(src)) => return Ok(Resolved::Wasm(src)),
            Ok(None) => {}
            Err(e @ Error::NoWasm { .. }) => return Err(e),
            Err(e) => tracing::warn!(id, error = %e, "image lookup failed; trying the rootfs"),
        }
    }
    from_rootfs(id, spec, rootfs)
}

#[derive(Deserialize, Default)]
struct WasmConfig {
    #[serde(default)]
    component: Option<ComponentMeta>,
}

#[derive(Deserialize, Default)]
struct ComponentMeta {
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    exports: Vec<String>,
}

/// The world hint from a CNCF artifact config: its `component.target` world, else its
/// `component.exports`. The shim keeps its own ten-line view of that JSON rather than pulling
/// the oci-wasm crate, whose registry client it would never use.
fn world_from_config(config: &[u8]) -> Option<WorldHint> {
    let cfg: WasmConfig = serde_json::from_slice(config).ok()?;
    let comp = cfg.component?;
    let target = comp.target.unwrap_or_default();
    if target.starts_with("wasi:http/proxy") {
        return Some(WorldHint::Http);
    }
    if target.starts_with("wasi:cli/command") {
        return Some(WorldHint::Command);
    }
    if comp
        .exports
        .iter()
        .any(|e| e.starts_with("wasi:http/incoming-handler"))
    {
        return Some(WorldHint::Http);
    }
    if comp.exports.iter().any(|e| e.starts_with("wasi:cli/run")) {
        return Some(WorldHint::Command);
    }
    None
}

fn is_tar_layer(media_type: &str) -> bool {
    media_type.contains(".tar") || media_type.contains("rootfs.diff.tar")
}

async fn from_image(id: &str, store: &ContentStore) -> Result<Option<WasmSource>> {
    let Some(image) = store.container_image(id).await? else {
        return Ok(None);
    };
    let target = store.image_target(&image).await?;
    let manifest_blob = if INDEX_MEDIA_TYPES.contains(&target.media_type.as_str()) {
        let index: ImageIndex = serde_json::from_slice(&store.read(&target).await?)
            .map_err(|e| Error::Containerd(format!("image {image}: bad index: {e}")))?;
        let mut chosen = None;
        for m in index.manifests() {
            let blob = Blob {
                media_type: m.media_type().to_string(),
                digest: m.digest().to_string(),
                size: m.size() as i64,
            };
            if store.exists(&blob.digest).await? {
                chosen = Some(blob);
                break;
            }
        }
        chosen.ok_or_else(|| {
            Error::Containerd(format!(
                "image {image}: no manifest of its index was pulled"
            ))
        })?
    } else {
        target
    };
    let manifest: ImageManifest = serde_json::from_slice(&store.read(&manifest_blob).await?)
        .map_err(|e| Error::Containerd(format!("image {image}: bad manifest: {e}")))?;
    let config_type = manifest.config().media_type().to_string();
    let layers: Vec<Blob> = manifest
        .layers()
        .iter()
        .map(|l| Blob {
            media_type: l.media_type().to_string(),
            digest: l.digest().to_string(),
            size: l.size() as i64,
        })
        .collect();
    let seen = || {
        layers
            .iter()
            .map(|l| l.media_type.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let wasm: Vec<&Blob> = layers
        .iter()
        .filter(|l| WASM_LAYER_MEDIA_TYPES.contains(&l.media_type.as_str()))
        .collect();
    let is_artifact = config_type == WASM_CONFIG_MEDIA_TYPE;
    if is_artifact && layers.len() != 1 {
        return Err(Error::NoWasm {
            id: id.into(),
            detail: format!(
                "image {image} is a CNCF Wasm artifact with {} layers ({}); the artifact format allows exactly one application/wasm layer",
                layers.len(),
                seen()
            ),
        });
    }
    match wasm.as_slice() {
        [] => {
            let unknown: Vec<&str> = layers
                .iter()
                .map(|l| l.media_type.as_str())
                .filter(|m| !is_tar_layer(m))
                .collect();
            if unknown.is_empty() {
                return Ok(None);
            }
            Err(Error::NoWasm {
                id: id.into(),
                detail: format!(
                    "image {image} has no Wasm layer: its layers have media types [{}]; expected one of [{}], or tar layers with a .wasm file named by the entrypoint",
                    seen(),
                    WASM_LAYER_MEDIA_TYPES.join(", ")
                ),
            })
        }
        [layer] => {
            let bytes = store.read(layer).await?;
            let world = if is_artifact {
                world_from_config(
                    &store
                        .read(&Blob {
                            media_type: config_type.clone(),
                            digest: manifest.config().digest().to_string(),
                            size: manifest.config().size() as i64,
                        })
                        .await?,
                )
            } else {
                None
            };
            Ok(Some(WasmSource {
                digest: layer.digest.clone(),
                origin: format!(
                    "image {image} layer {} ({})",
                    layer.digest, layer.media_type
                ),
                bytes,
                world,
            }))
        }
        many => Err(Error::NoWasm {
            id: id.into(),
            detail: format!(
                "image {image} has {} Wasm layers ({}); wasmpod runs exactly one Wasm binary per container",
                many.len(),
                seen()
            ),
        }),
    }
}

const WASM_MAGIC: &[u8; 4] = b"\0asm";

/// What the first bytes of a file say it is.
fn sniff(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(WASM_MAGIC) {
        Some("wasm")
    } else if head.starts_with(b"\x7fELF") || head.starts_with(b"#!") {
        Some("native")
    } else {
        None
    }
}

fn from_rootfs(id: &str, spec: &Spec, rootfs: &Path) -> Result<Resolved> {
    let process = spec.process().as_ref();
    let args = process.and_then(|p| p.args().clone()).unwrap_or_default();
    let Some(arg0) = args.first() else {
        return Err(Error::NoWasm {
            id: id.into(),
            detail: "the container has no command: set an entrypoint naming the .wasm file in the image, or use an image with a Wasm layer".into(),
        });
    };
    // `file.wasm#func` selects an export in some runtimes; we only need the path.
    let arg0 = arg0.split('#').next().unwrap_or(arg0);
    let cwd = process
        .map(|p| p.cwd().clone())
        .unwrap_or_else(|| PathBuf::from("/"));
    let env_path = process
        .and_then(|p| p.env().as_ref())
        .and_then(|env| env.iter().find_map(|kv| kv.strip_prefix("PATH=")))
        .unwrap_or(DEFAULT_PATH);
    let in_image = entrypoint_in_image(rootfs, arg0, &cwd, env_path);
    let host_path = join_inside(rootfs, &in_image).ok_or_else(|| Error::NoWasm {
        id: id.into(),
        detail: format!("entrypoint {arg0} escapes the image rootfs"),
    })?;
    let mut file = std::fs::File::open(&host_path).map_err(|e| Error::NoWasm {
        id: id.into(),
        detail: format!(
            "entrypoint {} not found in the image ({e}); the image has no Wasm layer either, so there is nothing to run",
            in_image.display()
        ),
    })?;
    let mut head = [0u8; 16];
    let n = file.read(&mut head).map_err(|e| Error::NoWasm {
        id: id.into(),
        detail: format!("entrypoint {} cannot be read: {e}", in_image.display()),
    })?;
    match sniff(&head[..n]) {
        Some("wasm") => {
            let mut bytes = head[..n].to_vec();
            file.read_to_end(&mut bytes).map_err(|e| Error::NoWasm {
                id: id.into(),
                detail: format!("entrypoint {} cannot be read: {e}", in_image.display()),
            })?;
            Ok(Resolved::Wasm(WasmSource {
                digest: sha256_digest(&bytes),
                origin: format!("rootfs file {}", in_image.display()),
                bytes,
                world: None,
            }))
        }
        Some(_) => Ok(Resolved::Native { path: in_image }),
        None => Err(Error::NoWasm {
            id: id.into(),
            detail: format!(
                "entrypoint {} is not a Wasm binary: it starts with bytes [{}] ({:?}); expected the Wasm magic 00 61 73 6d (\"\\0asm\") of a module or component, or a native executable for a sidecar",
                in_image.display(),
                head[..n.min(8)]
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<Vec<_>>()
                    .join(" "),
                String::from_utf8_lossy(&head[..n.min(8)])
            ),
        }),
    }
}

/// The PATH runc and shells use when the container sets none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Where in the image the command lives: a path with a `/` is taken relative to the working
/// directory; a bare name is looked up in the container's PATH like exec does (so `sh` of a
/// busybox sidecar is found), falling back to the working directory (`app.wasm`).
fn entrypoint_in_image(rootfs: &Path, arg0: &str, cwd: &Path, env_path: &str) -> PathBuf {
    if Path::new(arg0).is_absolute() {
        return PathBuf::from(arg0);
    }
    if !arg0.contains('/') {
        for dir in env_path.split(':').filter(|d| d.starts_with('/')) {
            let candidate = Path::new(dir).join(arg0);
            if join_inside(rootfs, &candidate).is_some_and(|p| p.is_file()) {
                return candidate;
            }
        }
    }
    cwd.join(arg0)
}

/// Joins an absolute in-image path onto the rootfs without letting `..` climb out of it.
fn join_inside(rootfs: &Path, in_image: &Path) -> Option<PathBuf> {
    let mut out = rootfs.to_path_buf();
    let mut depth = 0usize;
    for c in in_image.components() {
        match c {
            PathComponent::Normal(p) => {
                out.push(p);
                depth += 1;
            }
            PathComponent::ParentDir => {
                if depth == 0 {
                    return None;
                }
                out.pop();
                depth -= 1;
            }
            PathComponent::RootDir | PathComponent::CurDir | PathComponent::Prefix(_) => {}
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_config_picks_the_world() {
        let http = br#"{"architecture":"wasm","os":"wasip2","component":{"target":"wasi:http/proxy@0.2.0","exports":[]}}"#;
        assert_eq!(world_from_config(http), Some(WorldHint::Http));
        let cli = br#"{"component":{"exports":["wasi:cli/run@0.2.3"]}}"#;
        assert_eq!(world_from_config(cli), Some(WorldHint::Command));
        assert_eq!(world_from_config(br#"{"os":"wasip1"}"#), None);
    }

    #[test]
    fn magic_bytes_decide() {
        assert_eq!(sniff(b"\0asm\x0d\0\x01\0"), Some("wasm"));
        assert_eq!(sniff(b"\x7fELF\x02"), Some("native"));
        assert_eq!(sniff(b"#!/bin/sh"), Some("native"));
        assert_eq!(sniff(b"hello"), None);
    }

    #[test]
    fn paths_cannot_escape_the_rootfs() {
        let root = Path::new("/r");
        assert_eq!(
            join_inside(root, Path::new("/a/b.wasm")),
            Some(PathBuf::from("/r/a/b.wasm"))
        );
        assert_eq!(
            join_inside(root, Path::new("/a/../b.wasm")),
            Some(PathBuf::from("/r/b.wasm"))
        );
        assert_eq!(join_inside(root, Path::new("/../etc/passwd")), None);
    }

    #[test]
    fn bare_commands_are_found_in_path_then_in_the_working_directory() {
        let root = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(root.path().join("bin")).expect("mkdir");
        std::fs::write(root.path().join("bin/sh"), b"\x7fELF").expect("write");
        let cwd = Path::new("/work");
        assert_eq!(
            entrypoint_in_image(root.path(), "sh", cwd, "/usr/bin:/bin"),
            PathBuf::from("/bin/sh")
        );
        assert_eq!(
            entrypoint_in_image(root.path(), "app.wasm", cwd, "/bin"),
            PathBuf::from("/work/app.wasm")
        );
        assert_eq!(
            entrypoint_in_image(root.path(), "./x", cwd, "/bin"),
            PathBuf::from("/work/./x")
        );
        assert_eq!(
            entrypoint_in_image(root.path(), "/a.wasm", cwd, "/bin"),
            PathBuf::from("/a.wasm")
        );
    }

    #[test]
    fn tar_layers_are_told_apart_from_unknown_ones() {
        assert!(is_tar_layer("application/vnd.oci.image.layer.v1.tar+gzip"));
        assert!(is_tar_layer(
            "application/vnd.docker.image.rootfs.diff.tar.gzip"
        ));
        assert!(!is_tar_layer("application/vnd.example.unknown"));
    }
}
