//! An OCI image layout held in memory and written out as a tar archive.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use oci_spec::image::{Descriptor, ImageIndexBuilder, MediaType};

use crate::{sha256_digest, sha256_hex};

/// containerd's `ctr images import` names the image after this index annotation.
pub const CONTAINERD_IMAGE_NAME: &str = "io.containerd.image.name";
/// The OCI image layout's reference name (skopeo's `oci-archive:FILE:NAME`).
pub const OCI_REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Blobs by hex digest, plus the manifest the index points to.
#[derive(Debug, Default)]
pub struct Layout {
    blobs: BTreeMap<String, Vec<u8>>,
}

impl Layout {
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores `data` and returns its descriptor.
    pub fn add_blob(&mut self, media_type: MediaType, data: Vec<u8>) -> Descriptor {
        let desc = Descriptor::new(media_type, data.len() as u64, digest_of(&data));
        self.blobs.insert(sha256_hex(&data), data);
        desc
    }

    /// Serializes `value` as JSON (object keys sorted, so output is deterministic) and stores it.
    pub fn add_json<T: serde::Serialize>(
        &mut self,
        media_type: MediaType,
        value: &T,
    ) -> Result<Descriptor> {
        Ok(self.add_blob(media_type, canonical_json(value)?))
    }

    /// The stored blob with this `sha256:<hex>` digest.
    pub fn blob(&self, digest: &str) -> Option<&[u8]> {
        let hex = digest.strip_prefix("sha256:")?;
        self.blobs.get(hex).map(Vec::as_slice)
    }

    /// `index.json` with one entry, `manifest`, annotated with the image name (`reference`)
    /// for containerd and its tag for the OCI layout.
    pub fn index_json(&self, manifest: &Descriptor, reference: &str) -> Result<Vec<u8>> {
        let mut entry = manifest.clone();
        entry.set_annotations(Some(HashMap::from([
            (CONTAINERD_IMAGE_NAME.to_string(), reference.to_string()),
            (OCI_REF_NAME.to_string(), crate::tag_of(reference)),
        ])));
        let index = ImageIndexBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageIndex)
            .manifests(vec![entry])
            .build()
            .context("building index.json")?;
        canonical_json(&index)
    }

    /// Writes the layout as a tar archive to `out` (through a temporary file, then renamed).
    pub fn write_archive(&self, manifest: &Descriptor, reference: &str, out: &Path) -> Result<()> {
        let index = self.index_json(manifest, reference)?;
        let tmp = out.with_extension(format!("tmp.{}", std::process::id()));
        let result = (|| -> Result<()> {
            let file = std::fs::File::create(&tmp)
                .with_context(|| format!("creating {}", tmp.display()))?;
            let mut tar = tar::Builder::new(std::io::BufWriter::new(file));
            append_file(
                &mut tar,
                "oci-layout",
                br#"{"imageLayoutVersion":"1.0.0"}"#,
                0o644,
            )?;
            append_file(&mut tar, "index.json", &index, 0o644)?;
            append_dir(&mut tar, "blobs/")?;
            append_dir(&mut tar, "blobs/sha256/")?;
            for (hex, data) in &self.blobs {
                append_file(&mut tar, &format!("blobs/sha256/{hex}"), data, 0o644)?;
            }
            tar.into_inner()?.flush()?;
            Ok(())
        })();
        if let Err(e) = result {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        std::fs::rename(&tmp, out).with_context(|| format!("writing {}", out.display()))
    }
}

/// JSON with object keys in sorted order (serde_json's `Value` map is a `BTreeMap`).
pub fn canonical_json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>> {
    let value = serde_json::to_value(value).context("serializing JSON")?;
    Ok(serde_json::to_vec(&value)?)
}

fn digest_of(data: &[u8]) -> oci_spec::image::Digest {
    // A well-formed sha256 digest always parses.
    sha256_digest(data)
        .parse()
        .unwrap_or_else(|e| panic!("sha256 digest did not parse: {e}"))
}

/// A tar header with fixed owner and mtime (0), so archives are reproducible.
fn header(kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h
}

/// Appends a regular file at `path` (relative, no leading `/`).
pub fn append_file<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &str,
    data: &[u8],
    mode: u32,
) -> Result<()> {
    let mut h = header(tar::EntryType::Regular, data.len() as u64, mode);
    tar.append_data(&mut h, path, data)
        .with_context(|| format!("adding {path} to tar"))
}

/// Appends a directory entry at `path` (relative, ending in `/`).
pub fn append_dir<W: Write>(tar: &mut tar::Builder<W>, path: &str) -> Result<()> {
    let mut h = header(tar::EntryType::Directory, 0, 0o755);
    tar.append_data(&mut h, path, std::io::empty())
        .with_context(|| format!("adding {path} to tar"))
}
