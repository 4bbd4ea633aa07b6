//! The config of a CNCF Wasm OCI artifact (`application/vnd.wasm.config.v0+json`): what the
//! component is and which world it targets.
//!
//! Read leniently: producers disagree on which fields they write (some omit `created` or
//! `layerDigests`, core modules carry no `component`), and a config we cannot read only costs a
//! hint, never the image. The shim still inspects the component itself before running it.

use serde::Deserialize;

/// What the artifact config says the Wasm is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A component for `wasi:http/proxy` (exports `wasi:http/incoming-handler`).
    Http,
    /// A component for `wasi:cli/command` (exports `wasi:cli/run`).
    Command,
    /// A WASI preview 1 core module (os `wasip1`, no `component`).
    Module,
    /// The config does not say, or cannot be read.
    Unknown,
}

/// The facts an artifact config gives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Artifact {
    /// What the Wasm is.
    pub kind: Kind,
    /// The component's target world (`component.target`), else the export that decided `kind`.
    pub world: Option<String>,
}

#[derive(Deserialize, Default)]
struct Config {
    #[serde(default)]
    os: Option<String>,
    #[serde(default)]
    component: Option<Component>,
}

#[derive(Deserialize, Default)]
struct Component {
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    exports: Vec<String>,
}

const HTTP_WORLD: &str = "wasi:http/proxy";
const COMMAND_WORLD: &str = "wasi:cli/command";
const HTTP_EXPORT: &str = "wasi:http/incoming-handler";
const COMMAND_EXPORT: &str = "wasi:cli/run";

/// Reads an artifact config. The declared `component.target` world decides first; without one
/// (or with a world we do not know) the exports do, HTTP before command, since a component
/// that exports both is served. A config without `component` but with os `wasip1` is a core
/// module. Anything unreadable is [`Kind::Unknown`].
pub fn parse(config: &[u8]) -> Artifact {
    let config: Config = serde_json::from_slice(config).unwrap_or_default();
    let Some(component) = config.component else {
        let kind = if config.os.as_deref() == Some("wasip1") {
            Kind::Module
        } else {
            Kind::Unknown
        };
        return Artifact { kind, world: None };
    };
    let export = |prefix: &str| {
        component
            .exports
            .iter()
            .find(|e| e.starts_with(prefix))
            .cloned()
    };
    let target = component.target.as_deref().unwrap_or_default();
    let (kind, export) = if target.starts_with(HTTP_WORLD) {
        (Kind::Http, None)
    } else if target.starts_with(COMMAND_WORLD) {
        (Kind::Command, None)
    } else if let Some(e) = export(HTTP_EXPORT) {
        (Kind::Http, Some(e))
    } else if let Some(e) = export(COMMAND_EXPORT) {
        (Kind::Command, Some(e))
    } else {
        (Kind::Unknown, None)
    };
    Artifact {
        kind,
        world: component.target.or(export),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind_and_world(config: &str) -> (Kind, Option<String>) {
        let a = parse(config.as_bytes());
        (a.kind, a.world)
    }

    #[test]
    fn the_target_world_decides_and_is_reported() {
        let http = r#"{"created":"2024-01-01T00:00:00Z","architecture":"wasm","os":"wasip2",
            "layerDigests":["sha256:1"],
            "component":{"exports":["wasi:http/incoming-handler@0.2.0"],"imports":[],"target":"wasi:http/proxy@0.2.0"}}"#;
        assert_eq!(
            kind_and_world(http),
            (Kind::Http, Some("wasi:http/proxy@0.2.0".into()))
        );
        let cmd = r#"{"component":{"target":"wasi:cli/command@0.2.0","exports":[]}}"#;
        assert_eq!(
            kind_and_world(cmd),
            (Kind::Command, Some("wasi:cli/command@0.2.0".into()))
        );
    }

    #[test]
    fn without_a_known_target_the_exports_decide() {
        // Other producers omit `created`, `layerDigests` and `target`: still read.
        let cmd = r#"{"os":"wasip2","component":{"exports":["wasi:cli/run@0.2.3"]}}"#;
        assert_eq!(
            kind_and_world(cmd),
            (Kind::Command, Some("wasi:cli/run@0.2.3".into()))
        );
        let both = r#"{"component":{"exports":["wasi:cli/run@0.2.0","wasi:http/incoming-handler@0.2.0"]}}"#;
        assert_eq!(kind_and_world(both).0, Kind::Http);
        let custom =
            r#"{"component":{"target":"example:app/world","exports":["wasi:cli/run@0.2.0"]}}"#;
        assert_eq!(
            kind_and_world(custom),
            (Kind::Command, Some("example:app/world".into()))
        );
        let library = r#"{"component":{"exports":["example:lib/api@1.0.0"]}}"#;
        assert_eq!(kind_and_world(library), (Kind::Unknown, None));
    }

    #[test]
    fn modules_and_unreadable_configs() {
        assert_eq!(
            kind_and_world(r#"{"architecture":"wasm","os":"wasip1"}"#),
            (Kind::Module, None)
        );
        assert_eq!(kind_and_world(r#"{"os":"wasip2"}"#), (Kind::Unknown, None));
        assert_eq!(kind_and_world("not json"), (Kind::Unknown, None));
        assert_eq!(
            kind_and_world(r#"{"component":{"exports":"wrong type"}}"#),
            (Kind::Unknown, None)
        );
    }
}
