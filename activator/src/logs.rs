//! Where a served app's stdout and stderr go: the activator's stderr, each line prefixed with
//! the app (`ns/name: ...`), so `kubectl logs` of the activator tells the apps apart.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::OwnedFd;

use crate::error::{IoContext, Result};

/// A writable end for one app's output; a thread copies what it gets, line by line.
pub fn guest_output(ns: &str, name: &str) -> Result<File> {
    let (reader, writer) = std::io::pipe().io_context(|| format!("a log pipe for {ns}/{name}"))?;
    let prefix = format!("{ns}/{name}: ");
    std::thread::Builder::new()
        .name("app-log".into())
        .spawn(move || {
            for line in BufReader::new(reader).lines() {
                let Ok(line) = line else { break };
                let _ = writeln!(std::io::stderr().lock(), "{prefix}{line}");
            }
        })
        .io_context(|| format!("a log thread for {ns}/{name}"))?;
    Ok(File::from(OwnedFd::from(writer)))
}
