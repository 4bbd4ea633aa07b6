//! A small OCI distribution registry on 127.0.0.1 for tests: manifests, indexes and blobs held
//! in memory, optional HTTP Basic login per repository prefix, spec-shaped error envelopes.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Response, StatusCode, header};
use axum::routing::get;
use base64::Engine;
use serde_json::json;
use sha2::{Digest, Sha256};

/// An image ready to push: its manifest and the blobs it refers to.
#[derive(Clone, Debug)]
pub struct Image {
    pub media_type: &'static str,
    pub manifest: Vec<u8>,
    pub blobs: Vec<Vec<u8>>,
}

pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

fn image(config_type: &str, config: serde_json::Value, layers: &[(&str, &[u8])]) -> Image {
    let config = serde_json::to_vec(&config).unwrap();
    let mut blobs = vec![config.clone()];
    let layer_descs: Vec<_> = layers
        .iter()
        .map(|(t, b)| {
            blobs.push(b.to_vec());
            json!({"mediaType": t, "digest": digest(b), "size": b.len()})
        })
        .collect();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": config_type, "digest": digest(&config), "size": config.len()},
        "layers": layer_descs,
    });
    Image {
        media_type: OCI_MANIFEST,
        manifest: serde_json::to_vec(&manifest).unwrap(),
        blobs,
    }
}

/// Component preamble: magic + component-model version/layer.
const COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0";

/// A CNCF Wasm OCI artifact whose config lists the component's exports.
pub fn artifact(exports: &[&str], target: Option<&str>) -> Image {
    let mut component = json!({"exports": exports, "imports": []});
    if let Some(t) = target {
        component["target"] = t.into();
    }
    image(
        "application/vnd.wasm.config.v0+json",
        json!({"created": "2026-01-01T00:00:00Z", "architecture": "wasm", "os": "wasip2",
               "layerDigests": [digest(COMPONENT)], "component": component}),
        &[("application/wasm", COMPONENT)],
    )
}

/// An HTTP component artifact.
pub fn http_artifact() -> Image {
    artifact(
        &["wasi:http/incoming-handler@0.2.0"],
        Some("wasi:http/proxy@0.2.0"),
    )
}

/// A linux/amd64 container image.
pub fn container_image() -> Image {
    image(
        "application/vnd.oci.image.config.v1+json",
        json!({"architecture": "amd64", "os": "linux",
               "config": {"Entrypoint": ["/docker-entrypoint.sh"], "Cmd": ["nginx"]},
               "rootfs": {"type": "layers", "diff_ids": []}}),
        &[(
            "application/vnd.oci.image.layer.v1.tar+gzip",
            b"not really gzip",
        )],
    )
}

/// A `FROM scratch` image for wasi/wasm whose entrypoint is the module.
pub fn scratch_image() -> Image {
    image(
        "application/vnd.oci.image.config.v1+json",
        json!({"architecture": "wasm", "os": "wasip2", "config": {"Entrypoint": ["/app.wasm"]},
               "rootfs": {"type": "layers", "diff_ids": []}}),
        &[("application/vnd.oci.image.layer.v1.tar", b"tar bytes")],
    )
}

/// An image with a Wasm content layer (runwasi style).
pub fn wasm_layers_image() -> Image {
    image(
        "application/vnd.wasm.config.v1+json",
        json!({}),
        &[("application/vnd.wasm.content.layer.v1+wasm", COMPONENT)],
    )
}

/// An image with two Wasm layers, which the shim refuses (it runs one binary per container).
pub fn two_wasm_layers_image() -> Image {
    image(
        "application/vnd.oci.image.config.v1+json",
        json!({"architecture": "wasm", "os": "wasip2",
               "rootfs": {"type": "layers", "diff_ids": []}}),
        &[
            ("application/vnd.wasm.content.layer.v1+wasm", COMPONENT),
            (
                "application/vnd.wasm.content.layer.v1+wasm",
                b"\0asm\x01\0\0\0",
            ),
        ],
    )
}

#[derive(Default)]
struct Repo {
    tags: HashMap<String, String>,
    manifests: HashMap<String, (&'static str, Vec<u8>)>,
}

#[derive(Default)]
struct Inner {
    repos: HashMap<String, Repo>,
    blobs: HashMap<String, Vec<u8>>,
    logins: Vec<(String, String)>, // (repository prefix, expected Authorization header)
    manifest_requests: usize,
}

/// The registry; dropping it stops the server.
pub struct FakeRegistry {
    addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeRegistry {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeRegistry {
    /// Starts on a free loopback port (inside a tokio runtime).
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new()
            .route("/v2/", get(root))
            .route("/v2/{*rest}", get(object))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, inner, task }
    }

    /// `127.0.0.1:PORT`, as image references name it.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// Pushes `image` as `repo:tag`; returns its digest.
    pub fn push(&self, repo: &str, tag: &str, image: Image) -> String {
        let d = digest(&image.manifest);
        let mut inner = self.inner.lock().unwrap();
        for b in image.blobs {
            inner.blobs.insert(digest(&b), b);
        }
        let r = inner.repos.entry(repo.into()).or_default();
        r.manifests
            .insert(d.clone(), (image.media_type, image.manifest));
        r.tags.insert(tag.into(), d.clone());
        d
    }

    /// Pushes an index of `(image, os, architecture)` entries as `repo:tag`; returns the digest
    /// of the index.
    pub fn push_index(&self, repo: &str, tag: &str, entries: Vec<(Image, &str, &str)>) -> String {
        let mut descs = Vec::new();
        for (i, (img, os, arch)) in entries.into_iter().enumerate() {
            let size = img.manifest.len();
            let d = self.push(repo, &format!("{tag}-entry{i}"), img);
            descs.push(json!({"mediaType": OCI_MANIFEST, "digest": d, "size": size,
                              "platform": {"os": os, "architecture": arch}}));
        }
        let index = serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descs}))
        .unwrap();
        self.push(
            repo,
            tag,
            Image {
                media_type: OCI_INDEX,
                manifest: index,
                blobs: vec![],
            },
        )
    }

    /// Requires HTTP Basic `user:pass` for repositories under `prefix`.
    pub fn require_login(&self, prefix: &str, user: &str, pass: &str) {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        self.inner
            .lock()
            .unwrap()
            .logins
            .push((prefix.into(), format!("Basic {token}")));
    }

    /// Manifest GET/HEAD requests served so far.
    pub fn manifest_requests(&self) -> usize {
        self.inner.lock().unwrap().manifest_requests
    }
}

type Shared = State<Arc<Mutex<Inner>>>;

fn error(status: StatusCode, code: &str, msg: &str) -> Response<Body> {
    let mut r = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json");
    if status == StatusCode::UNAUTHORIZED {
        r = r.header(header::WWW_AUTHENTICATE, "Basic realm=\"fake\"");
    }
    r.body(Body::from(
        json!({"errors": [{"code": code, "message": msg}]}).to_string(),
    ))
    .unwrap()
}

async fn root(State(inner): Shared, headers: HeaderMap) -> Response<Body> {
    let inner = inner.lock().unwrap();
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if !inner.logins.is_empty()
        && !inner
            .logins
            .iter()
            .any(|(_, want)| Some(want.as_str()) == given)
    {
        return error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "authentication required",
        );
    }
    Response::new(Body::from("{}"))
}

async fn object(
    State(inner): Shared,
    Path(rest): Path<String>,
    headers: HeaderMap,
) -> Response<Body> {
    let mut inner = inner.lock().unwrap();
    let (repo, kind, reference) = if let Some((r, x)) = rest.split_once("/manifests/") {
        (r, "manifests", x)
    } else if let Some((r, x)) = rest.split_once("/blobs/") {
        (r, "blobs", x)
    } else {
        return error(StatusCode::NOT_FOUND, "NOT_FOUND", "unknown endpoint");
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    for (prefix, want) in &inner.logins {
        if repo.starts_with(prefix.as_str()) && given != Some(want.as_str()) {
            return error(
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "authentication required",
            );
        }
    }
    if kind == "blobs" {
        return match inner.blobs.get(reference) {
            Some(b) => Response::builder()
                .header(header::CONTENT_TYPE, "application/octet-stream")
                .header("Docker-Content-Digest", reference)
                .body(Body::from(b.clone()))
                .unwrap(),
            None => error(StatusCode::NOT_FOUND, "BLOB_UNKNOWN", "blob unknown"),
        };
    }
    inner.manifest_requests += 1;
    let Some(r) = inner.repos.get(repo) else {
        return error(
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
            "repository name not known",
        );
    };
    let d = r
        .tags
        .get(reference)
        .cloned()
        .unwrap_or_else(|| reference.to_string());
    match r.manifests.get(&d) {
        Some((media_type, bytes)) => Response::builder()
            .header(header::CONTENT_TYPE, *media_type)
            .header("Docker-Content-Digest", d)
            .body(Body::from(bytes.clone()))
            .unwrap(),
        None => error(
            StatusCode::NOT_FOUND,
            "MANIFEST_UNKNOWN",
            "manifest unknown",
        ),
    }
}
