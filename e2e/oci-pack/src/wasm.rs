//! Telling components, core modules and other files apart, and describing components.

use anyhow::{Context, Result};

/// What a file is, from its first 8 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A Wasm component (`\0asm`, version 0x0d, layer 1).
    Component,
    /// A core Wasm module (`\0asm`, version 1), e.g. a WASI preview 1 program.
    Module,
    /// Anything else.
    NotWasm,
}

impl Kind {
    pub fn of(data: &[u8]) -> Self {
        match data.get(..8) {
            Some([0x00, b'a', b's', b'm', 0x01, 0x00, 0x00, 0x00]) => Kind::Module,
            Some([0x00, b'a', b's', b'm', _, _, 0x01, 0x00]) => Kind::Component,
            _ => Kind::NotWasm,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Component => "component",
            Kind::Module => "module",
            Kind::NotWasm => "not-wasm",
        }
    }
}

/// The first bytes of `data` as hex, for messages about files that are not Wasm.
pub fn magic_hex(data: &[u8]) -> String {
    data.iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The CNCF artifact `component` section for a component: its imports and exports (from
/// `oci-wasm`), sorted, plus a `target` world when the exports identify one: `wasi:http/proxy`
/// for `wasi:http/incoming-handler`, `wasi:cli/command` for `wasi:cli/run`.
pub fn describe_component(data: &[u8]) -> Result<oci_wasm::Component> {
    let mut component = oci_wasm::Component::from_raw_component(data)
        .context("decoding the component's WIT world")?;
    component.exports.sort();
    component.imports.sort();
    component.target = target_world(&component.exports);
    Ok(component)
}

fn target_world(exports: &[String]) -> Option<String> {
    let version_of = |prefix: &str| {
        exports
            .iter()
            .find_map(|e| e.strip_prefix(prefix))
            .map(|rest| {
                rest.strip_prefix('@')
                    .map(|v| format!("@{v}"))
                    .unwrap_or_default()
            })
    };
    if let Some(v) = version_of("wasi:http/incoming-handler") {
        return Some(format!("wasi:http/proxy{v}"));
    }
    version_of("wasi:cli/run").map(|v| format!("wasi:cli/command{v}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert_eq!(Kind::of(b"\0asm\x01\0\0\0rest"), Kind::Module);
        assert_eq!(Kind::of(b"\0asm\x0d\0\x01\0rest"), Kind::Component);
        assert_eq!(Kind::of(b"#!/bin/sh\n"), Kind::NotWasm);
        assert_eq!(Kind::of(b"\0as"), Kind::NotWasm);
    }

    #[test]
    fn target_from_exports() {
        let http = vec!["wasi:http/incoming-handler@0.2.12".to_string()];
        assert_eq!(
            target_world(&http).as_deref(),
            Some("wasi:http/proxy@0.2.12")
        );
        let cli = vec!["wasi:cli/run@0.2.4".to_string()];
        assert_eq!(
            target_world(&cli).as_deref(),
            Some("wasi:cli/command@0.2.4")
        );
        let other = vec!["wasmpod:fixtures/greeter@0.1.0".to_string()];
        assert_eq!(target_world(&other), None);
    }

    #[test]
    fn the_written_target_is_the_kind_wasmpod_reads() {
        use wasmpod_oci::artifact::{Kind, parse};
        for (export, kind) in [
            ("wasi:http/incoming-handler@0.2.0", Kind::Http),
            ("wasi:cli/run@0.2.0", Kind::Command),
        ] {
            let target = target_world(&[export.to_string()]);
            let config = serde_json::json!({"component": {"target": target, "exports": []}});
            assert_eq!(parse(config.to_string().as_bytes()).kind, kind, "{export}");
        }
    }

    #[test]
    fn minimal_component_decodes() {
        // `(component)` encoded: magic, version 0x0d, layer 1.
        let c = describe_component(b"\0asm\x0d\0\x01\0").expect("empty component decodes");
        assert!(c.exports.is_empty() && c.imports.is_empty() && c.target.is_none());
    }
}
