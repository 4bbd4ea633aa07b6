//! The three image shapes. Each returns a [`Packed`] image: the blobs and the manifest's
//! descriptor, ready for [`Layout::write_archive`].

use std::collections::HashMap;
use std::io::Write as _;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, SecondsFormat, Utc};
use oci_spec::image::{
    Arch, ConfigBuilder, Descriptor, HistoryBuilder, ImageConfigurationBuilder,
    ImageManifestBuilder, MediaType, Os, RootFsBuilder,
};
use oci_wasm::WasmConfig;
use wasmpod_oci::media_types::{WASM, WASM_ARTIFACT_CONFIG};

use crate::archive::{Layout, append_dir, append_file};
use crate::sha256_digest;
use crate::wasm::{Kind, describe_component, magic_hex};

const TITLE: &str = "org.opencontainers.image.title";

/// A packed image: its blobs and the descriptor of its manifest.
#[derive(Debug)]
pub struct Packed {
    pub layout: Layout,
    pub manifest: Descriptor,
}

/// Platform and metadata shared by the image-config shapes.
#[derive(Debug, Clone)]
pub struct ImageOpts {
    pub arch: String,
    pub os: String,
    pub created: DateTime<Utc>,
}

fn rfc3339(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// An ordinary image: one gzip tar layer holding `data` at `entrypoint` (mode 0755), config
/// Entrypoint `[entrypoint]`, `rootfs.diff_ids` = the digest of the uncompressed tar.
pub fn rootfs(data: &[u8], entrypoint: &str, opts: &ImageOpts) -> Result<Packed> {
    let uncompressed = rootfs_tar(data, entrypoint)?;
    let diff_id = sha256_digest(&uncompressed);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&uncompressed)?;
    let compressed = gz.finish()?;

    let mut layout = Layout::new();
    let layer = layout.add_blob(MediaType::ImageLayerGzip, compressed);
    let config = ImageConfigurationBuilder::default()
        .created(rfc3339(&opts.created))
        .architecture(Arch::from(opts.arch.as_str()))
        .os(Os::from(opts.os.as_str()))
        .config(
            ConfigBuilder::default()
                .entrypoint(vec![entrypoint.to_string()])
                .build()?,
        )
        .rootfs(
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(vec![diff_id])
                .build()?,
        )
        .history(vec![
            HistoryBuilder::default()
                .created(rfc3339(&opts.created))
                .created_by(format!("oci-pack rootfs: COPY {entrypoint}"))
                .build()?,
        ])
        .build()
        .context("building image config")?;
    let config = layout.add_json(MediaType::ImageConfig, &config)?;
    finish(layout, config, vec![layer])
}

/// The uncompressed layer tar: parent directories, then the file.
pub fn rootfs_tar(data: &[u8], entrypoint: &str) -> Result<Vec<u8>> {
    let rel = entrypoint.trim_start_matches('/');
    if rel.is_empty() || rel.ends_with('/') || rel.split('/').any(|c| c.is_empty() || c == "..") {
        bail!("entrypoint {entrypoint:?} is not a file path like /app.wasm");
    }
    let mut tar = tar::Builder::new(Vec::new());
    let parts: Vec<&str> = rel.split('/').collect();
    for i in 1..parts.len() {
        append_dir(&mut tar, &format!("{}/", parts[..i].join("/")))?;
    }
    append_file(&mut tar, rel, data, 0o755)?;
    Ok(tar.into_inner()?)
}

/// An image config plus ONE non-tar layer of `media_type` holding `data`; empty
/// `rootfs.diff_ids`; Entrypoint `[entrypoint]` (CRI needs some command).
pub fn layer(data: &[u8], media_type: &str, entrypoint: &str, opts: &ImageOpts) -> Result<Packed> {
    let mut layout = Layout::new();
    let mut layer = layout.add_blob(MediaType::from(media_type), data.to_vec());
    layer.set_annotations(Some(title(entrypoint)));
    let config = ImageConfigurationBuilder::default()
        .created(rfc3339(&opts.created))
        .architecture(Arch::from(opts.arch.as_str()))
        .os(Os::from(opts.os.as_str()))
        .config(
            ConfigBuilder::default()
                .entrypoint(vec![entrypoint.to_string()])
                .build()?,
        )
        .rootfs(
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(vec![])
                .build()?,
        )
        .build()
        .context("building image config")?;
    let config = layout.add_json(MediaType::ImageConfig, &config)?;
    finish(layout, config, vec![layer])
}

/// The CNCF Wasm OCI artifact: config `application/vnd.wasm.config.v0+json` from `oci-wasm`
/// (os `wasip2` with the component's imports/exports/target, or `wasip1` for a core module;
/// arch `wasm`; `layerDigests`), and ONE `application/wasm` layer.
pub fn artifact(
    data: &[u8],
    file_name: &str,
    author: Option<String>,
    created: DateTime<Utc>,
) -> Result<Packed> {
    let (mut config, _) = match Kind::of(data) {
        Kind::Component => {
            let (mut config, layer) = WasmConfig::from_raw_component(data.to_vec(), author)?;
            config.component = Some(describe_component(data)?);
            (config, layer)
        }
        Kind::Module => WasmConfig::from_raw_module(data.to_vec(), author)?,
        Kind::NotWasm => bail!(
            "{file_name} is neither a Wasm component nor a core module (first bytes: {})",
            magic_hex(data)
        ),
    };
    config.created = created;

    let mut layout = Layout::new();
    let mut layer = layout.add_blob(MediaType::from(WASM), data.to_vec());
    layer.set_annotations(Some(title(file_name)));
    if config.layer_digests != [layer.digest().to_string()] {
        bail!("oci-wasm's layerDigests disagree with the layer's digest");
    }
    let config = layout.add_json(MediaType::from(WASM_ARTIFACT_CONFIG), &config)?;
    finish(layout, config, vec![layer])
}

fn title(name: &str) -> HashMap<String, String> {
    let base = name.rsplit('/').next().unwrap_or(name);
    HashMap::from([(TITLE.to_string(), base.to_string())])
}

fn finish(mut layout: Layout, config: Descriptor, layers: Vec<Descriptor>) -> Result<Packed> {
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(config)
        .layers(layers)
        .build()
        .context("building manifest")?;
    let manifest = layout.add_json(MediaType::ImageManifest, &manifest)?;
    Ok(Packed { layout, manifest })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::{CONTAINERD_IMAGE_NAME, OCI_REF_NAME};
    use oci_spec::image::{ImageConfiguration, ImageIndex, ImageManifest};
    use std::io::Read as _;
    use wasmpod_oci::media_types::WASM_COMPONENT_LAYER;

    const MODULE: &[u8] = b"\0asm\x01\0\0\0";

    fn opts() -> ImageOpts {
        ImageOpts {
            arch: "amd64".into(),
            os: "linux".into(),
            created: DateTime::from_timestamp(0, 0).expect("epoch"),
        }
    }

    fn manifest_of(p: &Packed) -> ImageManifest {
        let raw = p
            .layout
            .blob(p.manifest.digest().as_ref())
            .expect("manifest blob");
        serde_json::from_slice(raw).expect("manifest JSON")
    }

    /// Every descriptor's digest and size match the stored blob.
    fn assert_consistent(p: &Packed, d: &Descriptor) {
        let blob = p
            .layout
            .blob(d.digest().as_ref())
            .expect("blob for descriptor");
        assert_eq!(blob.len() as u64, d.size());
        assert_eq!(sha256_digest(blob), d.digest().to_string());
    }

    #[test]
    fn rootfs_diff_id_is_digest_of_uncompressed_tar() {
        let p = rootfs(MODULE, "/bin/app.wasm", &opts()).expect("rootfs image");
        let m = manifest_of(&p);
        assert_consistent(&p, &p.manifest);
        assert_consistent(&p, m.config());
        assert_eq!(m.layers().len(), 1);
        assert_consistent(&p, &m.layers()[0]);
        assert_eq!(m.layers()[0].media_type(), &MediaType::ImageLayerGzip);

        let gz = p
            .layout
            .blob(m.layers()[0].digest().as_ref())
            .expect("layer");
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(gz)
            .read_to_end(&mut tar)
            .expect("gunzip");
        let config: ImageConfiguration =
            serde_json::from_slice(p.layout.blob(m.config().digest().as_ref()).expect("config"))
                .expect("config JSON");
        assert_eq!(config.rootfs().diff_ids(), &vec![sha256_digest(&tar)]);
        assert_eq!(
            config
                .config()
                .as_ref()
                .and_then(|c| c.entrypoint().clone()),
            Some(vec!["/bin/app.wasm".to_string()])
        );

        let mut archive = tar::Archive::new(tar.as_slice());
        let mut names = Vec::new();
        for entry in archive.entries().expect("entries") {
            let mut entry = entry.expect("entry");
            names.push(entry.path().expect("path").display().to_string());
            if entry.header().entry_type().is_file() {
                let mut data = Vec::new();
                entry.read_to_end(&mut data).expect("read");
                assert_eq!(data, MODULE);
            }
        }
        assert_eq!(names, ["bin/", "bin/app.wasm"]);
    }

    #[test]
    fn same_input_same_digest() {
        let a = rootfs(MODULE, "/app.wasm", &opts()).expect("a");
        let b = rootfs(MODULE, "/app.wasm", &opts()).expect("b");
        assert_eq!(a.manifest.digest(), b.manifest.digest());
        let c = artifact(MODULE, "app.wasm", None, opts().created).expect("c");
        let d = artifact(MODULE, "app.wasm", None, opts().created).expect("d");
        assert_eq!(c.manifest.digest(), d.manifest.digest());
    }

    #[test]
    fn rootfs_rejects_bad_paths() {
        for bad in ["", "/", "/a/../b", "dir/"] {
            assert!(rootfs(MODULE, bad, &opts()).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn layer_image_has_one_raw_layer_and_no_diff_ids() {
        let mt = WASM_COMPONENT_LAYER;
        let p = layer(MODULE, mt, "app.wasm", &opts()).expect("layer image");
        let m = manifest_of(&p);
        assert_eq!(m.layers().len(), 1);
        assert_eq!(m.layers()[0].media_type().to_string(), mt);
        assert_consistent(&p, &m.layers()[0]);
        assert_eq!(p.layout.blob(m.layers()[0].digest().as_ref()), Some(MODULE));
        let config: ImageConfiguration =
            serde_json::from_slice(p.layout.blob(m.config().digest().as_ref()).expect("config"))
                .expect("config JSON");
        assert!(config.rootfs().diff_ids().is_empty());
        assert_eq!(config.architecture().to_string(), "amd64");
    }

    #[test]
    fn artifact_config_is_cncf_wasm_config() {
        let p = artifact(MODULE, "hello.wasm", Some("me".into()), opts().created).expect("art");
        let m = manifest_of(&p);
        assert_eq!(
            m.config().media_type().to_string(),
            "application/vnd.wasm.config.v0+json"
        );
        assert_eq!(m.layers().len(), 1);
        assert_eq!(m.layers()[0].media_type().to_string(), "application/wasm");
        let raw = p.layout.blob(m.config().digest().as_ref()).expect("config");
        let cfg: serde_json::Value = serde_json::from_slice(raw).expect("json");
        assert_eq!(cfg["architecture"], "wasm");
        assert_eq!(cfg["os"], "wasip1");
        assert_eq!(cfg["author"], "me");
        assert_eq!(cfg["created"], "1970-01-01T00:00:00Z");
        assert_eq!(cfg["layerDigests"][0], m.layers()[0].digest().to_string());
        assert!(artifact(b"#!/bin/sh\n", "x.sh", None, opts().created).is_err());
        // What the shim and the operator read from it.
        assert_eq!(
            wasmpod_oci::artifact::parse(raw).kind,
            wasmpod_oci::artifact::Kind::Module
        );
    }

    #[test]
    fn oci_wasm_writes_the_media_types_wasmpod_reads() {
        assert_eq!(oci_wasm::WASM_LAYER_MEDIA_TYPE, WASM);
        assert_eq!(
            oci_wasm::WASM_MANIFEST_CONFIG_MEDIA_TYPE,
            WASM_ARTIFACT_CONFIG
        );
    }

    #[test]
    fn index_names_the_image_for_containerd_and_the_layout() {
        let p = rootfs(MODULE, "/app.wasm", &opts()).expect("image");
        let raw = p
            .layout
            .index_json(&p.manifest, "127.0.0.1:5000/hello:v1")
            .expect("index");
        let index: ImageIndex = serde_json::from_slice(&raw).expect("index JSON");
        assert_eq!(index.manifests().len(), 1);
        let entry = &index.manifests()[0];
        assert_eq!(entry.digest(), p.manifest.digest());
        let ann = entry.annotations().as_ref().expect("annotations");
        assert_eq!(ann[CONTAINERD_IMAGE_NAME], "127.0.0.1:5000/hello:v1");
        assert_eq!(ann[OCI_REF_NAME], "v1");
    }

    #[test]
    fn archive_holds_layout_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("img.tar");
        let p = layer(MODULE, "application/wasm", "app.wasm", &opts()).expect("image");
        p.layout
            .write_archive(&p.manifest, "example.com/x:1", &out)
            .expect("write");
        let file = std::fs::File::open(&out).expect("open");
        let mut names: Vec<String> = tar::Archive::new(file)
            .entries()
            .expect("entries")
            .map(|e| {
                e.expect("entry")
                    .path()
                    .expect("path")
                    .display()
                    .to_string()
            })
            .collect();
        names.sort();
        let m = manifest_of(&p);
        let mut want = vec![
            "blobs/".to_string(),
            "blobs/sha256/".to_string(),
            "index.json".to_string(),
            "oci-layout".to_string(),
        ];
        for d in [&p.manifest, m.config(), &m.layers()[0]] {
            want.push(format!("blobs/sha256/{}", d.digest().digest()));
        }
        want.sort();
        assert_eq!(names, want);
        assert_eq!(
            std::fs::read_dir(dir.path()).expect("ls").count(),
            1,
            "temp file left"
        );
    }
}
