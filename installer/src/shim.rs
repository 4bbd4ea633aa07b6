//! Putting the shim binary on the node without ever overwriting a binary that may be running.
//!
//! Layout of the install directory (default `/opt/wasmpod/bin`):
//!
//! ```text
//! containerd-shim-wasmpod-v1 -> containerd-shim-wasmpod-v1-0.1.0-1a2b3c4d5e6f   (symlink)
//! containerd-shim-wasmpod-v1-0.1.0-1a2b3c4d5e6f                                 (the binary)
//! ```
//!
//! A new binary is written to a temporary name, synced and renamed to its versioned name (the
//! version plus the start of its SHA-256, so a rebuilt binary never reuses a name); then a new
//! symlink is renamed over the old one. Both renames are atomic, so containerd, which runs the
//! shim through the symlink (`runtime_path`), sees either the old or the new binary, and shims
//! already running keep their file. Versions no process runs any more are deleted.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmpod_oci::names::SHIM_BINARY;

use crate::error::IoContext;
use crate::{Error, Result};

/// The result of [`install`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Installed {
    /// The stable path containerd runs (`<dir>/containerd-shim-wasmpod-v1`, a symlink).
    pub link: PathBuf,
    /// The versioned binary the link points to.
    pub target: PathBuf,
    /// Whether the binary or the link changed.
    pub changed: bool,
}

/// The versioned file name of a shim binary whose SHA-256 is `digest_hex`.
fn versioned_name(digest_hex: &str, version: &str) -> String {
    format!("{SHIM_BINARY}-{version}-{}", &digest_hex[..12])
}

/// Installs `source` into `dir` under its versioned name and points the symlink at it.
pub fn install(source: &Path, dir: &Path, version: &str) -> Result<Installed> {
    let (digest, len) = file_digest(source).io("read the shim", source)?;
    if len == 0 {
        return Err(Error::Config(format!("{} is empty", source.display())));
    }
    fs::create_dir_all(dir).io("create", dir)?;
    let name = versioned_name(&digest, version);
    let target = dir.join(&name);
    let mut changed = false;
    // The installed copy is the same binary when its SHA-256 is (the name already carries it):
    // each file is read once, in chunks, and a damaged copy is written again.
    let present = file_digest(&target).is_ok_and(|(d, l)| d == digest && l == len);
    if !present {
        let tmp = dir.join(format!(".{name}.tmp"));
        copy_synced(source, &tmp, 0o755)?;
        fs::rename(&tmp, &target).io("rename into place", &target)?;
        sync_dir(dir)?;
        changed = true;
    }
    let link = dir.join(SHIM_BINARY);
    let points_at = fs::read_link(&link).ok();
    if points_at.as_deref() != Some(Path::new(&name)) {
        let tmp = dir.join(format!(".{SHIM_BINARY}.link.tmp"));
        let _ = fs::remove_file(&tmp);
        symlink(&name, &tmp).io("create symlink", &tmp)?;
        fs::rename(&tmp, &link).io("switch symlink", &link)?;
        sync_dir(dir)?;
        changed = true;
    }
    Ok(Installed {
        link,
        target,
        changed,
    })
}

/// Deletes versioned binaries other than `keep` that no process in `proc_root` (the host's
/// `/proc` with `hostPID`) is running. Returns what was deleted.
pub fn prune(dir: &Path, keep: &Path, proc_root: &Path) -> Result<Vec<PathBuf>> {
    let running = running_binaries(proc_root);
    let mut removed = Vec::new();
    for path in versioned_files(dir)? {
        if path == keep || running.iter().any(|r| r.file_name() == path.file_name()) {
            continue;
        }
        fs::remove_file(&path).io("remove", &path)?;
        removed.push(path);
    }
    Ok(removed)
}

/// Removes the symlink, every versioned binary and leftover temporary file. Running shims keep
/// running (a deleted file stays readable by the processes that have it open). Returns whether
/// anything was removed. The directory itself is removed when empty (not when it is a mount).
pub fn uninstall(dir: &Path) -> Result<bool> {
    let mut changed = false;
    let link = dir.join(SHIM_BINARY);
    if link.symlink_metadata().is_ok() {
        fs::remove_file(&link).io("remove", &link)?;
        changed = true;
    }
    for path in versioned_files(dir)? {
        fs::remove_file(&path).io("remove", &path)?;
        changed = true;
    }
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(&format!(".{SHIM_BINARY}")) && name.ends_with(".tmp") {
                let _ = fs::remove_file(e.path());
            }
        }
    }
    let _ = fs::remove_dir(dir);
    Ok(changed)
}

/// `<dir>/containerd-shim-wasmpod-v1-*` files.
fn versioned_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let prefix = format!("{SHIM_BINARY}-");
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).io("list", dir),
    };
    let mut out: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect();
    out.sort();
    Ok(out)
}

/// The executables of running processes, as their `/proc/<pid>/exe` links name them.
fn running_binaries(proc_root: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(proc_root) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| fs::read_link(e.path().join("exe")).ok())
        .map(|p| {
            let s = p.to_string_lossy();
            PathBuf::from(s.strip_suffix(" (deleted)").unwrap_or(&s))
        })
        .collect()
}

/// The SHA-256 (hex) and length of a file, streamed through the hasher: the 64 MiB limit of the
/// installer's pod holds no shim binary whole.
fn file_digest(path: &Path) -> io::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let len = io::copy(&mut fs::File::open(path)?, &mut hasher)?;
    Ok((hex::encode(hasher.finalize()), len))
}

/// Copies `source` to a new file `path` with `mode`, synced.
fn copy_synced(source: &Path, path: &Path, mode: u32) -> Result<()> {
    let mut from = fs::File::open(source).io("read the shim", source)?;
    let mut f = fs::File::create(path).io("create", path)?;
    io::copy(&mut from, &mut f).io("copy the shim to", path)?;
    f.set_permissions(fs::Permissions::from_mode(mode))
        .io("chmod", path)?;
    f.sync_all().io("sync", path)
}

fn write_synced(path: &Path, content: &[u8], mode: u32) -> Result<()> {
    let mut f = fs::File::create(path).io("create", path)?;
    f.write_all(content).io("write", path)?;
    f.set_permissions(fs::Permissions::from_mode(mode))
        .io("chmod", path)?;
    f.sync_all().io("sync", path)
}

fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .io("sync", dir)
}

/// Writes `content` to `path` atomically: a synced temporary file in the same directory renamed
/// over it, keeping the old file's permissions (0644 for a new one).
pub fn replace_file(path: &Path, content: &str) -> Result<()> {
    let mode = fs::metadata(path).map_or(0o644, |m| m.permissions().mode() & 0o7777);
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.wasmpod.tmp"));
    write_synced(&tmp, content.as_bytes(), mode)?;
    fs::rename(&tmp, path).io("rename into place", path)?;
    sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elf(tag: &str) -> Vec<u8> {
        let mut v = b"\x7fELF".to_vec();
        v.extend_from_slice(tag.as_bytes());
        v
    }

    #[test]
    fn install_writes_a_versioned_file_and_a_symlink_once() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        fs::write(&src, elf("one")).unwrap();
        let dir = tmp.path().join("bin");
        let first = install(&src, &dir, "0.1.0").unwrap();
        assert!(first.changed);
        assert_eq!(first.link, dir.join(SHIM_BINARY));
        let name = first
            .target
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(
            name.starts_with("containerd-shim-wasmpod-v1-0.1.0-"),
            "{name}"
        );
        assert_eq!(fs::read_link(&first.link).unwrap(), Path::new(&name));
        assert_eq!(fs::read(&first.link).unwrap(), elf("one"));
        let mode = fs::metadata(&first.target).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o755);
        let again = install(&src, &dir, "0.1.0").unwrap();
        assert!(!again.changed, "re-run changes nothing");
        assert_eq!(again.target, first.target);
    }

    #[test]
    fn upgrade_never_overwrites_the_running_binary() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("bin");
        let src = tmp.path().join("src");
        fs::write(&src, elf("old")).unwrap();
        let old = install(&src, &dir, "0.1.0").unwrap();
        // A "running" shim holds the old file open; the upgrade must not write into it.
        let held = fs::File::open(&old.target).unwrap();
        let inode = std::os::unix::fs::MetadataExt::ino(&held.metadata().unwrap());
        fs::write(&src, elf("new")).unwrap();
        let new = install(&src, &dir, "0.1.0").unwrap();
        assert!(new.changed);
        assert_ne!(
            new.target, old.target,
            "same version, new content: new name"
        );
        assert_eq!(
            fs::read(&old.target).unwrap(),
            elf("old"),
            "old file intact"
        );
        let old_inode = std::os::unix::fs::MetadataExt::ino(&fs::metadata(&old.target).unwrap());
        assert_eq!(old_inode, inode);
        assert_eq!(fs::read(&new.link).unwrap(), elf("new"), "link switched");
    }

    #[test]
    fn prune_keeps_the_current_and_running_versions() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("bin");
        let src = tmp.path().join("src");
        let mut targets = Vec::new();
        for tag in ["a", "b", "c"] {
            fs::write(&src, elf(tag)).unwrap();
            targets.push(install(&src, &dir, "0.1.0").unwrap().target);
        }
        // A fake /proc where pid 42 runs version "a".
        let proc_root = tmp.path().join("proc");
        fs::create_dir_all(proc_root.join("42")).unwrap();
        symlink(&targets[0], proc_root.join("42/exe")).unwrap();
        fs::create_dir_all(proc_root.join("self")).unwrap();
        let removed = prune(&dir, &targets[2], &proc_root).unwrap();
        assert_eq!(removed, vec![targets[1].clone()]);
        assert!(targets[0].exists() && targets[2].exists());
    }

    #[test]
    fn uninstall_removes_link_and_binaries() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("bin");
        let src = tmp.path().join("src");
        fs::write(&src, elf("x")).unwrap();
        install(&src, &dir, "0.1.0").unwrap();
        assert!(uninstall(&dir).unwrap());
        assert!(!dir.exists(), "empty directory removed");
        assert!(!uninstall(&dir).unwrap(), "second uninstall: nothing to do");
    }

    #[test]
    fn a_binary_of_many_buffers_is_copied_whole_and_recognised_on_rerun() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        let mut big = elf("big");
        big.extend((0..3 * 64 * 1024 + 17).map(|i| (i % 251) as u8));
        fs::write(&src, &big).unwrap();
        let dir = tmp.path().join("bin");
        let first = install(&src, &dir, "0.1.0").unwrap();
        assert_eq!(fs::read(&first.target).unwrap(), big);
        let digest = hex::encode(Sha256::digest(&big));
        assert!(first.target.to_string_lossy().ends_with(&digest[..12]));
        assert!(!install(&src, &dir, "0.1.0").unwrap().changed);
        // A damaged installed copy (same name, other bytes in the last chunk) is written again.
        let mut damaged = big.clone();
        *damaged.last_mut().unwrap() ^= 1;
        fs::write(&first.target, &damaged).unwrap();
        assert!(install(&src, &dir, "0.1.0").unwrap().changed);
        assert_eq!(fs::read(&first.target).unwrap(), big);
    }

    #[test]
    fn empty_source_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        fs::write(&src, "").unwrap();
        let err = install(&src, &tmp.path().join("bin"), "0.1.0").unwrap_err();
        assert!(err.to_string().contains("is empty"), "{err}");
    }

    #[test]
    fn replace_file_keeps_the_mode() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("config.toml");
        fs::write(&f, "a").unwrap();
        fs::set_permissions(&f, fs::Permissions::from_mode(0o600)).unwrap();
        replace_file(&f, "b").unwrap();
        assert_eq!(fs::read_to_string(&f).unwrap(), "b");
        assert_eq!(
            fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}
