//! `hello-p1`: a WASI preview 1 core module (`_start`, wasm32-wasip1, plain `fn main`).
//!
//! stdout: `hello from wasip1`, then `arg[i]=...` for every argument; one line on stderr;
//! exits with `EXIT_CODE` (default 0).

use std::io::Write;

fn main() {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let _ = writeln!(out, "hello from wasip1");
    for (i, arg) in std::env::args().enumerate() {
        let _ = writeln!(out, "arg[{i}]={arg}");
    }
    let _ = out.flush();
    let _ = writeln!(std::io::stderr(), "hello-p1: a line on stderr");
    let code = std::env::var("EXIT_CODE")
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
        .unwrap_or(0);
    std::process::exit(code);
}
