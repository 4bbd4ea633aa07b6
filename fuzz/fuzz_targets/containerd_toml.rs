//! The node installer's edit of containerd's config.toml: on any text, merge either refuses with
//! an error or writes a config that parses and that a second merge leaves alone, and remove
//! gives back the original settings (a file that already names this installer's shim is an
//! earlier install: remove takes that entry out).
//!
//! Settings, not bytes: the fuzzer found that the text can differ where nothing a parser reads
//! does (a missing final newline gets one; a single-quoted table key near the runtime table can
//! come back double-quoted; a `wasmpod` table of the user's own that merge replaced comes back
//! at the end of its parent). The unit tests hold the byte-exact round trip on real configs.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use wasmpod_node_installer::config::{self, SystemdCgroup};

const SHIM: &str = "/opt/wasmpod/bin/containerd-shim-wasmpod-v1";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("config.toml");
    let Ok(merged) = config::merge(path, text, SHIM, SystemdCgroup::Auto, Some(2)) else {
        return;
    };
    config::parse(path, &merged.text).expect("merge wrote a config that does not parse");
    let again = config::merge(path, &merged.text, SHIM, SystemdCgroup::Auto, Some(2))
        .expect("a merged config is refused by a second merge");
    assert!(!again.changed, "a second merge changed:\n{}", merged.text);
    // A file that already has this installer's entry loses it on remove, as it should.
    if merged.changed && !text.contains(SHIM) {
        let (restored, changed) = config::remove(path, &merged.text, merged.previous.as_deref())
            .expect("remove refused what merge wrote");
        assert!(changed);
        assert_eq!(
            restored
                .parse::<toml::Table>()
                .expect("restored config parses"),
            text.parse::<toml::Table>().expect("original config parses"),
            "remove did not give back the original settings"
        );
    }
});
