//! Talking to registries with oci-client.

use std::time::Duration;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::{OciImageManifest, OciManifest};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

use super::auth::Credentials;
use super::classify::{self, MAX_CONFIG_BYTES, Plan};
use super::{ImageCheck, ImageFacts};
use crate::crd::ImageFormat;

/// How the operator reaches registries.
#[derive(Clone, Debug)]
pub struct InspectorConfig {
    /// Registries (`host:port`, exactly as in image references) spoken to over plain HTTP.
    pub insecure_registries: Vec<String>,
    /// Upper bound for one inspection (all requests).
    pub timeout: Duration,
}

impl Default for InspectorConfig {
    fn default() -> Self {
        Self {
            insecure_registries: Vec::new(),
            timeout: Duration::from_secs(30),
        }
    }
}

/// Inspects images. Cheap to clone; builds one oci-client per inspection, because a client keeps
/// the first credentials it sees per registry and apps of different tenants must not share them.
#[derive(Clone, Debug, Default)]
pub struct Inspector {
    config: InspectorConfig,
}

/// What an error message needs to know about the inspection.
#[derive(Clone, Copy, Debug)]
pub struct ErrorContext<'a> {
    /// `spec.image`.
    pub image: &'a str,
    /// Registry host (and port).
    pub registry: &'a str,
    /// Name of the Secret whose credentials were sent, if any.
    pub secret: Option<&'a str>,
    /// Whether the registry is spoken to over plain HTTP.
    pub plain_http: bool,
}

impl Inspector {
    /// An inspector with the given settings.
    pub fn new(config: InspectorConfig) -> Self {
        Self { config }
    }

    /// Inspects `image` with optional credentials. Never fails: every outcome is an
    /// [`ImageCheck`], and it returns within the configured timeout.
    pub async fn inspect(&self, image: &str, creds: Option<&Credentials>) -> ImageCheck {
        let reference: Reference = match image.parse() {
            Ok(r) => r,
            Err(e) => {
                return ImageCheck::invalid(
                    ImageCheck::INVALID_REFERENCE,
                    format!("spec.image {image:?} is not a valid image reference: {e}"),
                );
            }
        };
        let registry = reference.resolve_registry().to_string();
        let ctx = ErrorContext {
            image,
            registry: &registry,
            secret: creds.map(|c| c.secret.as_str()),
            plain_http: self.config.insecure_registries.contains(&registry),
        };
        let work = self.inspect_reference(&reference, creds, ctx);
        match tokio::time::timeout(self.config.timeout, work).await {
            Ok(Ok(facts)) => ImageCheck::Valid(facts),
            Ok(Err(check)) => check,
            Err(_) => ImageCheck::unknown(
                ImageCheck::UNREACHABLE,
                format!(
                    "registry {registry} did not answer within {}s",
                    self.config.timeout.as_secs()
                ),
            ),
        }
    }

    fn client(&self) -> Result<Client, ImageCheck> {
        // The process's TLS provider: ring, as for kube and the shim (aws-lc's C build would
        // cost CI minutes for nothing). reqwest has no default of its own without aws-lc;
        // installing twice is a no-op, so the first client of the process does it.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = ClientConfig {
            protocol: ClientProtocol::HttpsExcept(self.config.insecure_registries.clone()),
            connect_timeout: Some(Duration::from_secs(5)),
            read_timeout: Some(Duration::from_secs(20)),
            ..Default::default()
        };
        Client::try_from(config).map_err(|e| {
            ImageCheck::unknown(
                ImageCheck::UNREACHABLE,
                format!("cannot build a registry client: {e}"),
            )
        })
    }

    async fn inspect_reference(
        &self,
        reference: &Reference,
        creds: Option<&Credentials>,
        ctx: ErrorContext<'_>,
    ) -> Result<ImageFacts, ImageCheck> {
        let client = self.client()?;
        let auth = creds.map_or(RegistryAuth::Anonymous, |c| {
            RegistryAuth::Basic(c.username.clone(), c.password.clone())
        });
        let fail = |e: OciDistributionError| map_registry_error(&e, ctx);
        let (manifest, digest) = client.pull_manifest(reference, &auth).await.map_err(fail)?;
        let (manifest, digest) = match manifest {
            OciManifest::Image(m) => (m, digest),
            OciManifest::ImageIndex(index) => {
                // The entry the shim will run: the same rule picks it on both sides.
                let entry = classify::pick_entry(&index).map_err(|e| {
                    ImageCheck::invalid(ImageCheck::NOT_WASM, format!("{}: {e}", ctx.image))
                })?;
                let entry_ref = reference.clone_with_digest(entry.digest.clone());
                match client
                    .pull_manifest(&entry_ref, &auth)
                    .await
                    .map_err(fail)?
                {
                    (OciManifest::Image(m), _) => (m, entry.digest.clone()),
                    (OciManifest::ImageIndex(_), _) => {
                        return Err(ImageCheck::invalid(
                            ImageCheck::UNSUPPORTED,
                            format!(
                                "{}: the index entry {} is another index",
                                ctx.image, entry.digest
                            ),
                        ));
                    }
                }
            }
        };
        let facts = |format, (kind, world)| ImageFacts {
            image: ctx.image.to_string(),
            digest: digest.clone(),
            format,
            kind,
            world,
        };
        match classify::plan(&manifest) {
            Plan::Artifact => {
                let config = fetch_config(&client, reference, &manifest, ctx).await?;
                Ok(facts(
                    ImageFormat::WasmArtifact,
                    classify::artifact_kind(&config),
                ))
            }
            Plan::WasmLayers => Ok(facts(
                ImageFormat::WasmLayers,
                (crate::crd::ComponentKind::Unknown, None),
            )),
            Plan::ImageConfig => {
                let config = fetch_config(&client, reference, &manifest, ctx).await?;
                match classify::scratch_image(&config, &manifest) {
                    Ok((format, kind)) => Ok(facts(format, (kind, None))),
                    Err(msg) => Err(ImageCheck::invalid(
                        ImageCheck::NOT_WASM,
                        format!("{}: {msg}", ctx.image),
                    )),
                }
            }
            Plan::NotWasm(msg) => Err(ImageCheck::invalid(
                ImageCheck::NOT_WASM,
                format!("{}: {msg}", ctx.image),
            )),
        }
    }
}

async fn fetch_config(
    client: &Client,
    reference: &Reference,
    manifest: &OciImageManifest,
    ctx: ErrorContext<'_>,
) -> Result<Vec<u8>, ImageCheck> {
    if manifest.config.size > MAX_CONFIG_BYTES {
        return Err(ImageCheck::invalid(
            ImageCheck::UNSUPPORTED,
            format!(
                "{}: the config blob is {} bytes, more than the {MAX_CONFIG_BYTES} the operator reads",
                ctx.image, manifest.config.size
            ),
        ));
    }
    let mut out = Vec::new();
    client
        .pull_blob(reference, &manifest.config, &mut out)
        .await
        .map_err(|e| map_registry_error(&e, ctx))?;
    Ok(out)
}

/// Maps a registry error to `ImageValid=False` (the image cannot run) or `Unknown` (try again).
pub fn map_registry_error(e: &OciDistributionError, ctx: ErrorContext<'_>) -> ImageCheck {
    let ErrorContext {
        image, registry, ..
    } = ctx;
    let not_found = |what: &str| {
        ImageCheck::invalid(
            ImageCheck::NOT_FOUND,
            format!("{image}: {what} not found in registry {registry}"),
        )
    };
    let auth = || {
        let msg = match ctx.secret {
            Some(secret) => format!(
                "registry {registry} refused the credentials from Secret {secret:?} for {image}"
            ),
            None => format!(
                "registry {registry} requires a login for {image} and no imagePullSecrets entry matches it"
            ),
        };
        ImageCheck::invalid(ImageCheck::AUTH_FAILED, msg)
    };
    let unavailable = |detail: String| {
        ImageCheck::unknown(
            ImageCheck::UNAVAILABLE,
            format!("registry {registry} cannot serve {image} right now: {detail}"),
        )
    };
    match e {
        OciDistributionError::RegistryError { envelope, .. } => {
            let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
            let has = |c: OciErrorCode| codes.contains(&&c);
            if has(OciErrorCode::ManifestUnknown) || has(OciErrorCode::NotFound) {
                not_found("the tag or digest")
            } else if has(OciErrorCode::NameUnknown) {
                not_found("the repository")
            } else if has(OciErrorCode::Unauthorized) || has(OciErrorCode::Denied) {
                auth()
            } else if has(OciErrorCode::NameInvalid) {
                ImageCheck::invalid(
                    ImageCheck::INVALID_REFERENCE,
                    format!("registry {registry} rejects the repository name of {image}"),
                )
            } else {
                unavailable(envelope.to_string())
            }
        }
        OciDistributionError::UnauthorizedError { .. }
        | OciDistributionError::AuthenticationFailure(_) => auth(),
        OciDistributionError::ServerError {
            code: 401 | 403, ..
        } => auth(),
        OciDistributionError::ServerError { code: 404, .. }
        | OciDistributionError::ImageManifestNotFoundError(_) => not_found("the tag or digest"),
        OciDistributionError::ServerError { code, message, .. } => {
            unavailable(format!("HTTP {code}: {}", truncate(message, 200)))
        }
        OciDistributionError::UnsupportedMediaTypeError(t) => ImageCheck::invalid(
            ImageCheck::UNSUPPORTED,
            format!("{image}: unsupported manifest media type {t}"),
        ),
        OciDistributionError::UnsupportedSchemaVersionError(v) => ImageCheck::invalid(
            ImageCheck::UNSUPPORTED,
            format!("{image}: unsupported manifest schema version {v}"),
        ),
        OciDistributionError::ManifestParsingError(m)
        | OciDistributionError::VersionedParsingError(m) => ImageCheck::invalid(
            ImageCheck::UNSUPPORTED,
            format!(
                "{image}: the manifest cannot be parsed: {}",
                truncate(m, 200)
            ),
        ),
        OciDistributionError::RequestError(_) | OciDistributionError::IoError(_) => {
            let hint = if ctx.plain_http {
                String::new()
            } else {
                format!(
                    " (a registry that serves plain HTTP must be listed with --insecure-registry={registry})"
                )
            };
            ImageCheck::unknown(
                ImageCheck::UNREACHABLE,
                format!("cannot reach registry {registry}: {}{hint}", chain(e)),
            )
        }
        other => unavailable(chain(other)),
    }
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// An error and its sources, joined with `: `.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use oci_client::errors::{OciEnvelope, OciError};

    use super::*;

    fn ctx(secret: Option<&str>) -> ErrorContext<'_> {
        ErrorContext {
            image: "localhost:5000/app:v9",
            registry: "localhost:5000",
            secret,
            plain_http: true,
        }
    }

    fn registry_error(code: OciErrorCode) -> OciDistributionError {
        OciDistributionError::RegistryError {
            envelope: OciEnvelope {
                errors: vec![OciError {
                    code,
                    message: "x".into(),
                    detail: serde_json::Value::Null,
                }],
            },
            url: "http://localhost:5000/v2/app/manifests/v9".into(),
        }
    }

    fn reason(c: &ImageCheck) -> (&'static str, &'static str, &str) {
        match c {
            ImageCheck::Invalid { reason, message } => ("False", reason, message),
            ImageCheck::Unknown { reason, message } => ("Unknown", reason, message),
            ImageCheck::Valid(_) => ("True", "", ""),
        }
    }

    #[test]
    fn missing_tag_and_repository_are_invalid_not_found() {
        let c = map_registry_error(&registry_error(OciErrorCode::ManifestUnknown), ctx(None));
        let (status, r, msg) = reason(&c);
        assert_eq!((status, r), ("False", ImageCheck::NOT_FOUND));
        assert!(
            msg.contains("tag or digest") && msg.contains("localhost:5000/app:v9"),
            "{msg}"
        );
        let c = map_registry_error(&registry_error(OciErrorCode::NameUnknown), ctx(None));
        assert!(reason(&c).2.contains("repository"));
    }

    #[test]
    fn refused_login_names_the_secret_or_its_absence() {
        let e = OciDistributionError::UnauthorizedError { url: "u".into() };
        let check = map_registry_error(&e, ctx(Some("regcred")));
        let (status, r, msg) = reason(&check);
        assert_eq!((status, r), ("False", ImageCheck::AUTH_FAILED));
        assert!(
            msg.contains("refused the credentials from Secret \"regcred\""),
            "{msg}"
        );
        let c = map_registry_error(&registry_error(OciErrorCode::Denied), ctx(None));
        assert!(reason(&c).2.contains("no imagePullSecrets entry matches"));
    }

    #[test]
    fn server_errors_and_rate_limits_are_unknown() {
        let e = OciDistributionError::ServerError {
            code: 503,
            url: "u".into(),
            message: "busy".into(),
        };
        assert_eq!(reason(&map_registry_error(&e, ctx(None))).0, "Unknown");
        let c = map_registry_error(&registry_error(OciErrorCode::Toomanyrequests), ctx(None));
        assert_eq!(reason(&c).1, ImageCheck::UNAVAILABLE);
    }

    #[tokio::test]
    async fn unreachable_registry_is_unknown_with_a_plain_http_hint() {
        // Port 9 on loopback: nothing listens, the connection is refused at once.
        let inspector = Inspector::new(InspectorConfig::default());
        let c = inspector.inspect("127.0.0.1:9/app:v1", None).await;
        let (status, r, msg) = reason(&c);
        assert_eq!((status, r), ("Unknown", ImageCheck::UNREACHABLE), "{msg}");
        assert!(msg.contains("--insecure-registry=127.0.0.1:9"), "{msg}");
    }

    #[tokio::test]
    async fn malformed_reference_is_invalid() {
        let c = Inspector::default().inspect("UPPER/Case::bad", None).await;
        assert_eq!(reason(&c).1, ImageCheck::INVALID_REFERENCE);
    }
}
