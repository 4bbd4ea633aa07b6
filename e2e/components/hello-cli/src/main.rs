//! `hello-cli`: a wasi:cli/run component (wasm32-wasip2, plain `fn main`).
//!
//! stdout: `hello from wasmpod`, then `arg[i]=...` for every argument (index 0 included), then
//! `env K=V` for every environment variable, sorted by name. stderr: one line.
//!
//! Optional behaviour, driven by environment variables:
//! - `LIST_DIR=PATH`: `entry NAME` per directory entry (sorted), or `list error: ...`.
//! - `READ_FILE=PATH`: `read ok: CONTENT` (trailing newline trimmed), or `read error: ...`.
//! - `WRITE_FILE=PATH`: writes a line there; `write ok` or `write error: ...`.
//! - `EXIT_CODE=N`: exit code 0..=255 (default 0), through wasi:cli/exit.exit-with-code
//!   (WASI 0.2.12) when non-zero, so the host sees N itself rather than just "error".

use std::io::Write;

fn main() {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut lines = vec!["hello from wasmpod".to_string()];

    for (i, arg) in std::env::args().enumerate() {
        lines.push(format!("arg[{i}]={arg}"));
    }
    let mut vars: Vec<(String, String)> = std::env::vars().collect();
    vars.sort();
    for (k, v) in &vars {
        lines.push(format!("env {k}={v}"));
    }

    if let Ok(dir) = std::env::var("LIST_DIR") {
        lines.extend(list_dir(&dir));
    }
    if let Ok(path) = std::env::var("READ_FILE") {
        lines.push(match std::fs::read_to_string(&path) {
            Ok(s) => format!("read ok: {}", s.trim_end_matches('\n')),
            Err(e) => format!("read error: {e}"),
        });
    }
    if let Ok(path) = std::env::var("WRITE_FILE") {
        lines.push(match std::fs::write(&path, "written by hello-cli\n") {
            Ok(()) => "write ok".to_string(),
            Err(e) => format!("write error: {e}"),
        });
    }

    for line in &lines {
        let _ = writeln!(out, "{line}");
    }
    let _ = out.flush();
    let _ = writeln!(std::io::stderr(), "hello-cli: a line on stderr");

    let code = std::env::var("EXIT_CODE")
        .ok()
        .and_then(|s| s.trim().parse::<u8>().ok())
        .unwrap_or(0);
    if code != 0 {
        let _ = std::io::stderr().flush();
        wasi::cli::exit::exit_with_code(code);
    }
}

fn list_dir(dir: &str) -> Vec<String> {
    let entries = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) => return vec![format!("list error: {e}")],
    };
    let mut names = Vec::new();
    for entry in entries {
        match entry {
            Ok(e) => names.push(format!("entry {}", e.file_name().to_string_lossy())),
            Err(e) => return vec![format!("list error: {e}")],
        }
    }
    names.sort();
    names
}
