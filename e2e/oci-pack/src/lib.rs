//! oci-pack: builds OCI image layout archives (a tar of `oci-layout`, `index.json` and
//! `blobs/sha256/...`) holding one Wasm file, in the three shapes wasmpod's shim must read:
//!
//! - [`image::rootfs`]: an ordinary image, the file in a gzip tar layer (like `FROM scratch` +
//!   `COPY app.wasm`), config `application/vnd.oci.image.config.v1+json`;
//! - [`image::layer`]: an image config plus ONE non-tar layer of a Wasm layer media type;
//! - [`image::artifact`]: the CNCF Wasm OCI artifact (config `application/vnd.wasm.config.v0+json`
//!   from `oci-wasm`, one `application/wasm` layer).
//!
//! Output is deterministic: same inputs and `created` time, same digests.

pub mod archive;
pub mod image;
pub mod wasm;

use sha2::{Digest as _, Sha256};

/// `sha256:<hex>` of `data`.
pub fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(data))
}

/// Lower-case hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    use std::fmt::Write as _;
    Sha256::digest(data)
        .iter()
        .fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// The tag of an image reference (`host:5000/repo:tag` → `tag`); `latest` when it has none.
/// A digest reference (`repo@sha256:...`) yields its digest.
pub fn tag_of(reference: &str) -> String {
    if let Some((_, digest)) = reference.split_once('@') {
        return digest.to_string();
    }
    let last = reference.rsplit('/').next().unwrap_or(reference);
    match last.rsplit_once(':') {
        Some((_, tag)) if !tag.is_empty() => tag.to_string(),
        _ => "latest".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags() {
        assert_eq!(tag_of("127.0.0.1:5000/hello-cli:v1"), "v1");
        assert_eq!(tag_of("127.0.0.1:5000/hello-cli"), "latest");
        assert_eq!(tag_of("docker.io/library/hello"), "latest");
        assert_eq!(tag_of("hello:1.0"), "1.0");
        assert_eq!(tag_of("r/x@sha256:abc"), "sha256:abc");
    }

    #[test]
    fn digest_format() {
        assert_eq!(
            sha256_digest(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
