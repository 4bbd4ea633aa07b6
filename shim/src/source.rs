//! Finds the Wasm a container should run: a Wasm layer in containerd's content store, or the
//! file its entrypoint names in the image rootfs. Native executables (the pod's pause
//! container, ordinary sidecars) are recognised so they can be handed to runc; anything else
//! is refused with an error that says what was found and what was expected.

use std::io::Read;
use std::path::{Component as PathComponent, Path, PathBuf};

use oci_spec::image::{ImageIndex, ImageManifest};
use oci_spec::runtime::Spec;
use wasmpod_oci::index;
use wasmpod_oci::layers;
use wasmpod_oci::oci_spec_descriptors::{index_entries, manifest_layers};
use wasmpod_oci::{artifact, media_types};

use crate::content::{Blob, ContentStore, sha256_digest};
use crate::error::{Error, Result};

/// Which world the image's metadata says the component targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorldHint {
    Command,
    Http,
}

impl WorldHint {
    /// The hint a CNCF artifact config gives (modules and unknown kinds give none: the shim
    /// looks at the binary itself).
    fn from_artifact(config: &[u8]) -> Option<Self> {
        match artifact::parse(config).kind {
            artifact::Kind::Http => Some(Self::Http),
            artifact::Kind::Command => Some(Self::Command),
            artifact::Kind::Module | artifact::Kind::Unknown => None,
        }
    }
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

/// The refusal of an image whose index or layers do not say which Wasm to run.
fn refused(id: &str, image: &str, e: &wasmpod_oci::Error) -> Error {
    Error::NoWasm {
        id: id.into(),
        detail: format!("image {image}: {e}"),
    }
}

/// The manifest to run of an image whose target is an index: the entry the shared rule
/// ([`wasmpod_oci::index`]) picks, the same one the operator validated, which containerd must
/// have pulled.
async fn index_manifest(
    id: &str,
    image: &str,
    store: &ContentStore,
    target: &Blob,
) -> Result<Blob> {
    let index: ImageIndex = serde_json::from_slice(&store.read(target).await?)
        .map_err(|e| Error::Containerd(format!("image {image}: bad index: {e}")))?;
    let entries = index_entries(&index);
    let mut pulled = Vec::new();
    for e in &entries {
        if store.exists(&e.digest).await? {
            pulled.push(e.digest.as_str());
        }
    }
    let chosen = index::pulled_entry(&entries, &pulled).map_err(|e| match e {
        // Not a statement about the image: let the caller fall back to the rootfs.
        wasmpod_oci::Error::NothingPulled { .. } => {
            Error::Containerd(format!("image {image}: {e}"))
        }
        e => refused(id, image, &e),
    })?;
    let size = index
        .manifests()
        .iter()
        .find(|m| m.digest().as_ref() == chosen.digest)
        .map_or(0, |m| m.size() as i64);
    Ok(Blob {
        media_type: chosen.media_type.clone(),
        digest: chosen.digest.clone(),
        size,
    })
}

async fn from_image(id: &str, store: &ContentStore) -> Result<Option<WasmSource>> {
    let Some(image) = store.container_image(id).await? else {
        return Ok(None);
    };
    let target = store.image_target(&image).await?;
    let manifest_blob = if media_types::is_index(&target.media_type) {
        index_manifest(id, &image, store, &target).await?
    } else {
        target
    };
    let manifest: ImageManifest = serde_json::from_slice(&store.read(&manifest_blob).await?)
        .map_err(|e| Error::Containerd(format!("image {image}: bad manifest: {e}")))?;
    let config = manifest.config();
    let config_type = config.media_type().to_string();
    let manifest_layers = manifest_layers(&manifest);
    let layer = match layers::find(&config_type, &manifest_layers) {
        Ok(layers::Wasm::Layer(layer)) => layer,
        Ok(layers::Wasm::Rootfs) => return Ok(None),
        Err(e) => return Err(refused(id, &image, &e)),
    };
    let blob = Blob {
        media_type: layer.media_type.clone(),
        digest: layer.digest.clone(),
        size: layer.size,
    };
    let bytes = store.read(&blob).await?;
    let world = if config_type == media_types::WASM_ARTIFACT_CONFIG {
        let config = store
            .read(&Blob {
                media_type: config_type.clone(),
                digest: config.digest().to_string(),
                size: config.size() as i64,
            })
            .await?;
        WorldHint::from_artifact(&config)
    } else {
        None
    };
    Ok(Some(WasmSource {
        digest: blob.digest.clone(),
        origin: format!("image {image} layer {} ({})", blob.digest, blob.media_type),
        bytes,
        world,
    }))
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

    /// The index the operator and the shim used to disagree on, as containerd stores it: the
    /// shim now runs the wasip2/wasm entry the operator validated, or refuses.
    #[test]
    fn a_mixed_index_runs_the_wasm_entry_or_names_it() {
        let index: ImageIndex = serde_json::from_str(
            r#"{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": [
                  {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 7,
                   "digest": "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                   "platform": {"os": "linux", "architecture": "amd64"}},
                  {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 7,
                   "digest": "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
                   "platform": {"os": "wasip2", "architecture": "wasm"}}]}"#,
        )
        .expect("index");
        let entries = index_entries(&index);
        let platforms: Vec<String> = entries
            .iter()
            .filter_map(|e| e.platform.as_ref().map(ToString::to_string))
            .collect();
        assert_eq!(platforms, ["linux/amd64", "wasip2/wasm"]);
        let all = [entries[0].digest.as_str(), entries[1].digest.as_str()];
        let chosen = index::pulled_entry(&entries, &all).expect("both pulled");
        assert_eq!(chosen, &entries[1]);
        assert_eq!(Ok(chosen), index::choose(&entries));
        let err = index::pulled_entry(&entries, &all[..1]).expect_err("only amd64 pulled");
        let msg = refused("c1", "r/app:v1", &err).to_string();
        assert!(
            msg.contains("r/app:v1")
                && msg.contains("(wasip2/wasm)")
                && msg.contains("(linux/amd64)"),
            "{msg}"
        );
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
}
