//! Reads image metadata and blobs from containerd's content store over its gRPC API.

use containerd_client::services::v1::containers_client::ContainersClient;
use containerd_client::services::v1::content_client::ContentClient;
use containerd_client::services::v1::images_client::ImagesClient;
use containerd_client::services::v1::{
    GetContainerRequest, GetImageRequest, InfoRequest, ReadContentRequest,
};
use containerd_client::tonic::transport::Channel;
use containerd_client::tonic::{Code, Request};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// A blob reference as found in a manifest or image record.
#[derive(Clone, Debug)]
pub struct Blob {
    pub media_type: String,
    pub digest: String,
    pub size: i64,
}

/// A connection to containerd's metadata services, scoped to one namespace.
#[derive(Clone)]
pub struct ContentStore {
    channel: Channel,
    namespace: String,
}

impl ContentStore {
    pub async fn connect(address: &str, namespace: &str) -> Result<Self> {
        let path = address.strip_prefix("unix://").unwrap_or(address);
        let channel = containerd_client::connect(path)
            .await
            .map_err(|e| Error::Containerd(format!("connect to {path}: {e}")))?;
        Ok(Self {
            channel,
            namespace: namespace.to_string(),
        })
    }

    fn request<T>(&self, msg: T) -> Request<T> {
        let mut req = Request::new(msg);
        if let Ok(ns) = self.namespace.parse() {
            req.metadata_mut().insert("containerd-namespace", ns);
        }
        req
    }

    /// The image name containerd recorded for a container ("" when it has none).
    pub async fn container_image(&self, id: &str) -> Result<Option<String>> {
        let mut client = ContainersClient::new(self.channel.clone());
        let resp = client
            .get(self.request(GetContainerRequest { id: id.into() }))
            .await
            .map_err(|s| Error::Containerd(format!("get container {id}: {}", s.message())))?;
        Ok(resp
            .into_inner()
            .container
            .map(|c| c.image)
            .filter(|i| !i.is_empty()))
    }

    /// The descriptor an image name points at (a manifest or an index).
    pub async fn image_target(&self, name: &str) -> Result<Blob> {
        let mut client = ImagesClient::new(self.channel.clone());
        let resp = client
            .get(self.request(GetImageRequest { name: name.into() }))
            .await
            .map_err(|s| Error::Containerd(format!("get image {name}: {}", s.message())))?;
        let target = resp
            .into_inner()
            .image
            .and_then(|i| i.target)
            .ok_or_else(|| Error::Containerd(format!("image {name} has no target descriptor")))?;
        Ok(Blob {
            media_type: target.media_type,
            digest: target.digest,
            size: target.size,
        })
    }

    pub async fn exists(&self, digest: &str) -> Result<bool> {
        let mut client = ContentClient::new(self.channel.clone());
        match client
            .info(self.request(InfoRequest {
                digest: digest.into(),
            }))
            .await
        {
            Ok(_) => Ok(true),
            Err(s) if s.code() == Code::NotFound => Ok(false),
            Err(s) => Err(Error::Containerd(format!(
                "content info {digest}: {}",
                s.message()
            ))),
        }
    }

    /// Reads a whole blob and checks it against its sha256 digest.
    pub async fn read(&self, blob: &Blob) -> Result<Vec<u8>> {
        let mut client = ContentClient::new(self.channel.clone());
        let mut stream = client
            .read(self.request(ReadContentRequest {
                digest: blob.digest.clone(),
                offset: 0,
                size: 0,
            }))
            .await
            .map_err(|s| Error::Containerd(format!("read blob {}: {}", blob.digest, s.message())))?
            .into_inner();
        let mut data = Vec::with_capacity(usize::try_from(blob.size).unwrap_or(0));
        while let Some(chunk) = stream
            .message()
            .await
            .map_err(|s| Error::Containerd(format!("read blob {}: {}", blob.digest, s.message())))?
        {
            data.extend_from_slice(&chunk.data);
        }
        let actual = sha256_digest(&data);
        if actual != blob.digest {
            return Err(Error::Containerd(format!(
                "blob {} read back with digest {actual}: content store corrupt",
                blob.digest
            )));
        }
        Ok(data)
    }
}

/// `sha256:<hex>` of some bytes, in OCI digest form.
pub fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}
