use super::*;

fn entry(digest: &str, platform: Option<(&str, &str)>) -> IndexEntry {
    IndexEntry {
        media_type: crate::media_types::OCI_MANIFEST.into(),
        digest: digest.into(),
        platform: platform.map(|(os, architecture)| Platform {
            os: os.into(),
            architecture: architecture.into(),
        }),
    }
}

const AMD64: Option<(&str, &str)> = Some(("linux", "amd64"));
const WASIP2: Option<(&str, &str)> = Some(("wasip2", "wasm"));
const WASIP1: Option<(&str, &str)> = Some(("wasip1", "wasm"));

/// The index the old rules disagreed on: the operator validated the wasm entry, while the shim
/// ran the linux/amd64 entry containerd pulls for an amd64 node.
#[test]
fn operator_and_shim_choose_the_same_entry_of_a_mixed_index() {
    let index = [entry("sha256:a1", AMD64), entry("sha256:w2", WASIP2)];
    let operator = choose(&index).expect("a wasm entry");
    assert_eq!(operator.digest, "sha256:w2");
    // containerd holds both (e.g. runtime_platforms maps wasmpod to wasip2/wasm, or the amd64
    // entry was pulled for another pod): the shim runs the operator's choice, not the first.
    let shim = pulled_entry(&index, &["sha256:a1", "sha256:w2"]).expect("pulled");
    assert_eq!(shim, operator);
    // containerd pulled only its own platform: the shim refuses rather than run linux/amd64.
    let err = pulled_entry(&index, &["sha256:a1"]).unwrap_err();
    assert_eq!(
        err,
        Error::EntryNotPulled {
            entry: "sha256:w2 (wasip2/wasm)".into(),
            pulled: vec!["sha256:a1 (linux/amd64)".into()],
        }
    );
    let msg = err.to_string();
    assert!(
        msg.contains("sha256:w2 (wasip2/wasm)") && msg.contains("sha256:a1 (linux/amd64)"),
        "{msg}"
    );
}

#[test]
fn wasip2_beats_other_wasm_which_beats_index_order() {
    let index = [
        entry("sha256:a1", AMD64),
        entry("sha256:w1", WASIP1),
        entry("sha256:w2", WASIP2),
    ];
    assert_eq!(choose(&index).map(|e| e.digest.as_str()), Ok("sha256:w2"));
    let index = [
        entry("sha256:a1", AMD64),
        entry("sha256:w1", WASIP1),
        entry("sha256:wl", Some(("linux", "wasm"))),
    ];
    assert_eq!(choose(&index).map(|e| e.digest.as_str()), Ok("sha256:w1"));
    let twice = [entry("sha256:x", WASIP2), entry("sha256:y", WASIP2)];
    assert_eq!(choose(&twice).map(|e| e.digest.as_str()), Ok("sha256:x"));
}

#[test]
fn a_lone_entry_without_platform_is_taken_but_not_one_of_several() {
    let lone = [entry("sha256:only", None)];
    assert_eq!(choose(&lone).map(|e| e.digest.as_str()), Ok("sha256:only"));
    assert_eq!(
        pulled_entry(&lone, &["sha256:only"]).map(|e| e.digest.as_str()),
        Ok("sha256:only")
    );
    let several = [entry("sha256:p", None), entry("sha256:q", None)];
    assert!(choose(&several).is_err());
    let with_wasm = [entry("sha256:p", None), entry("sha256:w", WASIP1)];
    assert_eq!(
        choose(&with_wasm).map(|e| e.digest.as_str()),
        Ok("sha256:w")
    );
}

#[test]
fn an_index_without_wasm_names_its_platforms_and_is_a_container_image_to_the_shim() {
    let index = [
        entry("sha256:a1", AMD64),
        entry("sha256:a2", Some(("linux", "arm64"))),
        entry("sha256:att", None),
    ];
    let err = choose(&index).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("platforms: linux/amd64, linux/arm64, no platform"),
        "{msg}"
    );
    // A multi-platform sidecar: the shim takes what containerd pulled and hands it to runc.
    assert_eq!(
        pulled_entry(&index, &["sha256:a2"]).map(|e| e.digest.as_str()),
        Ok("sha256:a2")
    );
    let err = pulled_entry(&index, &[]).unwrap_err();
    assert!(matches!(err, Error::NothingPulled { ref entries } if entries.len() == 3));
}
