//! Opens the container's stdio targets that containerd hands us in Create.
//!
//! Scheme-less paths are FIFOs that containerd (or CRI's log copier) reads. We open them
//! read-write: that never blocks waiting for a reader, and holding a read end keeps writes
//! from failing with EPIPE while containerd restarts and re-opens its side.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;

use crate::error::{Error, IoContext, Result};

/// The stdio paths of one container, as containerd gave them ("" = not attached).
#[derive(Clone, Debug, Default)]
pub struct StdioPaths {
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
}

/// Opens an output target for writing; `None` when the path is empty.
pub fn open_output(path: &str) -> Result<Option<File>> {
    let target = match parse_target(path)? {
        Some(t) => t,
        None => return Ok(None),
    };
    let file = match target {
        Target::Fifo(p) => OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(p)
            .io_context(|| format!("open stdio fifo {p}"))?,
        Target::File(p) => OpenOptions::new()
            .create(true)
            .append(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(p)
            .io_context(|| format!("open stdio file {p}"))?,
    };
    Ok(Some(file))
}

/// Opens the stdin FIFO for reading; `None` when not attached.
pub fn open_input(path: &str) -> Result<Option<File>> {
    match parse_target(path)? {
        None => Ok(None),
        Some(Target::Fifo(p)) | Some(Target::File(p)) => OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(p)
            .map(Some)
            .io_context(|| format!("open stdin {p}")),
    }
}

enum Target<'a> {
    Fifo(&'a str),
    File(&'a str),
}

fn parse_target(path: &str) -> Result<Option<Target<'_>>> {
    if path.is_empty() {
        return Ok(None);
    }
    if let Some(p) = path.strip_prefix("file://") {
        return Ok(Some(Target::File(p)));
    }
    if path.starts_with("binary://") {
        return Err(Error::InvalidArgument(format!(
            "stdio target {path}: binary:// log drivers are not supported by wasmpod; use a FIFO or file://"
        )));
    }
    if path.contains("://") {
        return Err(Error::InvalidArgument(format!(
            "stdio target {path}: unknown scheme (expected a FIFO path or file://)"
        )));
    }
    Ok(Some(Target::Fifo(path)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_are_recognised_and_binary_is_refused_by_name() {
        assert!(matches!(parse_target(""), Ok(None)));
        assert!(matches!(
            parse_target("/run/x/fifo"),
            Ok(Some(Target::Fifo(_)))
        ));
        assert!(matches!(
            parse_target("file:///tmp/log"),
            Ok(Some(Target::File("/tmp/log")))
        ));
        let err = parse_target("binary:///usr/bin/logger")
            .err()
            .map(|e| e.to_string());
        assert!(err.unwrap_or_default().contains("binary://"));
    }

    #[test]
    fn file_targets_append() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out.log");
        let uri = format!("file://{}", path.display());
        for line in ["a\n", "b\n"] {
            let mut f = open_output(&uri).expect("open").expect("some");
            std::io::Write::write_all(&mut f, line.as_bytes()).expect("write");
        }
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "a\nb\n");
    }
}
