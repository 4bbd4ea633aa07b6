//! `memory-hog`: a wasi:cli/run component that keeps allocating chunks (default 16 MiB, env
//! `HOG_CHUNK_MIB`), touching every page, printing `allocated N MiB` after each one, until an
//! allocation fails: then it prints `memory-hog: allocation failed after N MiB` to stderr and
//! aborts (a trap). With `HOG_LIMIT_MIB=N` it stops once N MiB are held and exits 0 instead.

use std::io::Write;

const MIB: usize = 1024 * 1024;
const PAGE: usize = 4096;

fn env_usize(name: &str) -> Option<usize> {
    std::env::var(name).ok()?.trim().parse().ok()
}

fn main() {
    let chunk_mib = env_usize("HOG_CHUNK_MIB").filter(|&n| n > 0).unwrap_or(16);
    let limit_mib = env_usize("HOG_LIMIT_MIB");
    let mut held: Vec<Vec<u8>> = Vec::new();
    let mut total_mib = 0usize;
    loop {
        if limit_mib.is_some_and(|limit| total_mib >= limit) {
            println!("memory-hog: reached {total_mib} MiB; exiting");
            return;
        }
        let mut chunk: Vec<u8> = Vec::new();
        if chunk.try_reserve_exact(chunk_mib * MIB).is_err() || held.try_reserve(1).is_err() {
            eprintln!("memory-hog: allocation failed after {total_mib} MiB");
            let _ = std::io::stderr().flush();
            std::process::abort();
        }
        chunk.resize(chunk_mib * MIB, 0);
        // Touch every page so the memory is really committed.
        for i in (0..chunk.len()).step_by(PAGE) {
            chunk[i] = (i / PAGE) as u8 | 1;
        }
        held.push(std::hint::black_box(chunk));
        total_mib += chunk_mib;
        println!("allocated {total_mib} MiB");
        let _ = std::io::stdout().flush();
    }
}
