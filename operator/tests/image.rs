//! Image inspection with oci-client against a real (in-process, loopback) OCI registry.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is the failure report"
)]

mod support;

use std::time::Duration;

use support::registry::{self, FakeRegistry};
use wasmpod_oci::index::{self, IndexEntry, Platform};
use wasmpod_operator::crd::{ComponentKind, ImageFormat};
use wasmpod_operator::image::auth::Credentials;
use wasmpod_operator::image::{ImageCheck, Inspector, InspectorConfig};

fn inspector(reg: &FakeRegistry) -> Inspector {
    Inspector::new(InspectorConfig {
        insecure_registries: vec![reg.host()],
        timeout: Duration::from_secs(10),
    })
}

fn valid(check: ImageCheck) -> wasmpod_operator::image::ImageFacts {
    match check {
        ImageCheck::Valid(f) => f,
        other => panic!("expected a valid image, got {other:?}"),
    }
}

fn invalid(check: &ImageCheck) -> (&'static str, &str) {
    match check {
        ImageCheck::Invalid { reason, message } => (reason, message.as_str()),
        other => panic!("expected ImageValid=False, got {other:?}"),
    }
}

#[tokio::test]
async fn http_artifact_resolves_digest_kind_and_world() {
    let reg = FakeRegistry::start().await;
    let digest = reg.push("apps/hello", "v1", registry::http_artifact());
    let image = format!("{}/apps/hello:v1", reg.host());
    let f = valid(inspector(&reg).inspect(&image, None).await);
    assert_eq!(f.digest, digest);
    assert_eq!(f.format, ImageFormat::WasmArtifact);
    assert_eq!(f.kind, ComponentKind::Http);
    assert_eq!(f.world.as_deref(), Some("wasi:http/proxy@0.2.0"));
    assert_eq!(f.pinned(), format!("{image}@{digest}"));
}

#[tokio::test]
async fn command_artifact_scratch_and_wasm_layer_images_are_wasm() {
    let reg = FakeRegistry::start().await;
    reg.push(
        "apps/job",
        "v1",
        registry::artifact(&["wasi:cli/run@0.2.0"], None),
    );
    reg.push("apps/scratch", "v1", registry::scratch_image());
    reg.push("apps/layers", "v1", registry::wasm_layers_image());
    let i = inspector(&reg);
    let host = reg.host();
    let job = valid(i.inspect(&format!("{host}/apps/job:v1"), None).await);
    assert_eq!(
        (job.kind, job.world.as_deref()),
        (ComponentKind::Command, Some("wasi:cli/run@0.2.0"))
    );
    let scratch = valid(i.inspect(&format!("{host}/apps/scratch:v1"), None).await);
    assert_eq!(scratch.format, ImageFormat::ScratchImage);
    let layers = valid(i.inspect(&format!("{host}/apps/layers:v1"), None).await);
    assert_eq!(layers.format, ImageFormat::WasmLayers);
}

#[tokio::test]
async fn index_pins_the_wasm_entry_not_the_index() {
    let reg = FakeRegistry::start().await;
    let wasm = registry::http_artifact();
    let wasm_digest = registry::digest(&wasm.manifest);
    let index_digest = reg.push_index(
        "apps/multi",
        "v1",
        vec![
            (registry::container_image(), "linux", "amd64"),
            (wasm, "wasip2", "wasm"),
        ],
    );
    let f = valid(
        inspector(&reg)
            .inspect(&format!("{}/apps/multi:v1", reg.host()), None)
            .await,
    );
    assert_eq!(f.digest, wasm_digest);
    assert_ne!(f.digest, index_digest);
    assert_eq!(f.kind, ComponentKind::Http);
}

/// Pushes an index of `(image, os, arch)` entries; returns them as the shared rule sees them.
fn push_index(
    reg: &FakeRegistry,
    repo: &str,
    entries: Vec<(registry::Image, &str, &str)>,
) -> Vec<IndexEntry> {
    let seen = entries
        .iter()
        .map(|(image, os, arch)| IndexEntry {
            media_type: image.media_type.into(),
            digest: registry::digest(&image.manifest),
            platform: Some(Platform {
                os: (*os).into(),
                architecture: (*arch).into(),
            }),
        })
        .collect();
    reg.push_index(repo, "v1", entries);
    seen
}

/// The index the operator and the shim used to disagree on (the shim ran the first entry
/// containerd held, the linux/amd64 one): the operator now validates exactly the entry the shim
/// runs, by the same rule, even with a wasip1 entry in between.
#[tokio::test]
async fn image_valid_is_decided_for_the_entry_the_shim_runs() {
    let reg = FakeRegistry::start().await;
    let entries = push_index(
        &reg,
        "apps/mixed",
        vec![
            (registry::container_image(), "linux", "amd64"),
            (
                registry::artifact(&["wasi:cli/run@0.2.0"], None),
                "wasip1",
                "wasm",
            ),
            (registry::http_artifact(), "wasip2", "wasm"),
        ],
    );
    let all: Vec<&str> = entries.iter().map(|e| e.digest.as_str()).collect();
    let shim = index::pulled_entry(&entries, &all).unwrap();
    let f = valid(
        inspector(&reg)
            .inspect(&format!("{}/apps/mixed:v1", reg.host()), None)
            .await,
    );
    assert_eq!(f.digest, shim.digest);
    assert_eq!(f.digest, entries[2].digest);
    assert_eq!(f.kind, ComponentKind::Http);
}

/// When the entry the shim would run is a manifest it refuses, the image is invalid, even if
/// another wasm entry would do: pods must not start on a manifest the operator did not check.
#[tokio::test]
async fn a_refused_wasip2_entry_makes_the_image_invalid() {
    let reg = FakeRegistry::start().await;
    let entries = push_index(
        &reg,
        "apps/ambiguous",
        vec![
            (registry::http_artifact(), "wasip1", "wasm"),
            (registry::two_wasm_layers_image(), "wasip2", "wasm"),
        ],
    );
    assert_eq!(index::choose(&entries).unwrap().digest, entries[1].digest);
    let c = inspector(&reg)
        .inspect(&format!("{}/apps/ambiguous:v1", reg.host()), None)
        .await;
    let (reason, msg) = invalid(&c);
    assert_eq!(reason, ImageCheck::NOT_WASM);
    assert!(msg.contains("2 Wasm layers"), "{msg}");
}

#[tokio::test]
async fn container_images_and_indexes_are_not_wasm_and_say_what_they_are() {
    let reg = FakeRegistry::start().await;
    reg.push("library/nginx", "1", registry::container_image());
    reg.push_index(
        "library/multi",
        "1",
        vec![(registry::container_image(), "linux", "amd64")],
    );
    let i = inspector(&reg);
    let c = i
        .inspect(&format!("{}/library/nginx:1", reg.host()), None)
        .await;
    let (reason, msg) = invalid(&c);
    assert_eq!(reason, ImageCheck::NOT_WASM);
    assert!(
        msg.contains("linux/amd64") && msg.contains("tar+gzip"),
        "{msg}"
    );
    let c = i
        .inspect(&format!("{}/library/multi:1", reg.host()), None)
        .await;
    let (reason, msg) = invalid(&c);
    assert_eq!(reason, ImageCheck::NOT_WASM);
    assert!(
        msg.contains("no wasm entry") && msg.contains("linux/amd64"),
        "{msg}"
    );
}

#[tokio::test]
async fn missing_tag_and_repository_are_not_found() {
    let reg = FakeRegistry::start().await;
    reg.push("apps/hello", "v1", registry::http_artifact());
    let i = inspector(&reg);
    let c = i
        .inspect(&format!("{}/apps/hello:v2", reg.host()), None)
        .await;
    let (reason, msg) = invalid(&c);
    assert_eq!(reason, ImageCheck::NOT_FOUND);
    assert!(
        msg.contains("tag or digest") && msg.contains("apps/hello:v2"),
        "{msg}"
    );
    let c = i
        .inspect(&format!("{}/apps/nope:v1", reg.host()), None)
        .await;
    assert!(invalid(&c).1.contains("repository"));
}

#[tokio::test]
async fn logins_are_sent_and_refusals_reported() {
    let reg = FakeRegistry::start().await;
    reg.push("private/app", "v1", registry::http_artifact());
    reg.require_login("private/", "alice", "right");
    let i = inspector(&reg);
    let image = format!("{}/private/app:v1", reg.host());
    let creds = |pw: &str| Credentials {
        username: "alice".into(),
        password: pw.into(),
        secret: "regcred".into(),
    };
    valid(i.inspect(&image, Some(&creds("right"))).await);
    let c = i.inspect(&image, Some(&creds("wrong"))).await;
    let (reason, msg) = invalid(&c);
    assert_eq!(reason, ImageCheck::AUTH_FAILED);
    assert!(msg.contains("Secret \"regcred\""), "{msg}");
    let c = i.inspect(&image, None).await;
    assert!(invalid(&c).1.contains("no imagePullSecrets entry"), "{c:?}");
}

#[tokio::test]
async fn plain_http_registry_needs_the_flag() {
    let reg = FakeRegistry::start().await;
    reg.push("apps/hello", "v1", registry::http_artifact());
    let strict = Inspector::new(InspectorConfig {
        insecure_registries: vec![],
        timeout: Duration::from_secs(10),
    });
    match strict
        .inspect(&format!("{}/apps/hello:v1", reg.host()), None)
        .await
    {
        ImageCheck::Unknown { reason, message } => {
            assert_eq!(reason, ImageCheck::UNREACHABLE);
            assert!(message.contains("--insecure-registry"), "{message}");
        }
        other => panic!("HTTPS to a plain HTTP registry must fail as unknown: {other:?}"),
    }
}
