//! The `file:` backend: a bucket is a directory `<dir>/<bucket>` in one of the container's
//! volumes, a key is a file in it. It outlives the container (a PersistentVolume keeps it
//! across pod restarts) and needs no server.
//!
//! Key names are percent-encoded into file names (so any key is a valid name, and no file
//! name starts with `.`, which leaves `.lock` and `.tmp-*` to us). A value is written to a
//! temporary file and renamed into place, so a reader never sees half a value. `increment`
//! holds an exclusive lock on the bucket's `.lock` file for its read-modify-write, which
//! serialises it against every process on the node that uses the same directory.

use std::fs;
use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::{KEYS_PER_PAGE, KeyPage, KeyValueStore, KvError, KvFuture, KvResult, add_to_counter};
use crate::guest::context::{Preopen, volume_path};

/// Longest file name most Linux filesystems take.
const MAX_NAME: usize = 255;

static TEMP_FILES: AtomicU64 = AtomicU64::new(0);

pub struct FileBucket {
    /// The bucket's directory on the node.
    dir: PathBuf,
}

impl FileBucket {
    /// Finds `dir` (the container's path) in the container's volumes and makes the bucket's
    /// directory in it. The error says why it cannot be used.
    pub(super) fn open(dir: &Path, bucket: &str, preopens: &[Preopen]) -> Result<Self, String> {
        let (volume, root, rest) = volume_path(dir, preopens)?;
        if volume.read_only {
            return Err(format!("the volume {} is mounted read-only", volume.guest));
        }
        let wanted = root.join(rest).join(bucket);
        fs::create_dir_all(&wanted).map_err(|e| format!("create {}: {e}", wanted.display()))?;
        let dir = wanted.canonicalize().map_err(|e| e.to_string())?;
        if !dir.starts_with(&root) {
            return Err(format!("it leads out of the volume {}", volume.guest));
        }
        Ok(Self { dir })
    }

    /// Runs file work on the runtime's blocking threads (the guest's, so the container's
    /// cgroup pays for it).
    fn blocking<'a, T: Send + 'static>(
        &'a self,
        key: Option<&str>,
        work: impl FnOnce(&Path, Option<PathBuf>) -> io::Result<T> + Send + 'static,
    ) -> KvFuture<'a, T> {
        let dir = self.dir.clone();
        let file = key.map(|k| encode(k).map(|name| dir.join(name)));
        let what = key.map(str::to_string);
        Box::pin(async move {
            let file = file.transpose()?;
            tokio::task::spawn_blocking(move || work(&dir, file))
                .await
                .map_err(|e| KvError::Other(format!("file backend task: {e}")))?
                .map_err(|e| io_error(what.as_deref(), &e))
        })
    }
}

impl KeyValueStore for FileBucket {
    fn get<'a>(&'a self, key: &'a str) -> KvFuture<'a, Option<Vec<u8>>> {
        self.blocking(Some(key), |_, file| read(&file.expect("key")))
    }

    fn set<'a>(&'a self, key: &'a str, value: Vec<u8>) -> KvFuture<'a, ()> {
        self.blocking(Some(key), move |dir, file| {
            write(dir, &file.expect("key"), &value)
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> KvFuture<'a, ()> {
        self.blocking(Some(key), |_, file| {
            match fs::remove_file(file.expect("key")) {
                Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
                other => other,
            }
        })
    }

    fn exists<'a>(&'a self, key: &'a str) -> KvFuture<'a, bool> {
        self.blocking(Some(key), |_, file| file.expect("key").try_exists())
    }

    /// The cursor is the number of keys already returned, in name order.
    fn list_keys(&self, cursor: Option<u64>) -> KvFuture<'_, KeyPage> {
        let skip = usize::try_from(cursor.unwrap_or(0)).unwrap_or(usize::MAX);
        self.blocking(None, move |dir, _| {
            let mut keys = Vec::new();
            for entry in fs::read_dir(dir)? {
                let name = entry?.file_name();
                if let Some(key) = name.to_str().and_then(decode) {
                    keys.push(key);
                }
            }
            keys.sort();
            let total = keys.len();
            let page: Vec<String> = keys.into_iter().skip(skip).take(KEYS_PER_PAGE).collect();
            let next = skip.saturating_add(page.len());
            Ok(KeyPage {
                keys: page,
                cursor: (next < total).then_some(next as u64),
            })
        })
    }

    fn increment<'a>(&'a self, key: &'a str, delta: u64) -> KvFuture<'a, u64> {
        let counted = self.blocking(Some(key), move |dir, file| {
            let file = file.expect("key");
            let lock = fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(dir.join(".lock"))?;
            lock.lock()?;
            let sum = add_to_counter(read(&file)?.as_deref(), delta);
            if let Ok(sum) = sum {
                write(dir, &file, sum.to_string().as_bytes())?;
            }
            Ok(sum)
        });
        Box::pin(async move { counted.await? })
    }
}

fn read(file: &Path) -> io::Result<Option<Vec<u8>>> {
    match fs::read(file) {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes a whole value or nothing: a temporary file renamed over the key's.
fn write(dir: &Path, file: &Path, value: &[u8]) -> io::Result<()> {
    let n = TEMP_FILES.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".tmp-{}-{n}", std::process::id()));
    fs::write(&tmp, value)?;
    fs::rename(&tmp, file).inspect_err(|_| {
        let _ = fs::remove_file(&tmp);
    })
}

fn io_error(key: Option<&str>, e: &io::Error) -> KvError {
    let what = match key {
        Some(k) => format!("file backend, key {k:?}: {e}"),
        None => format!("file backend: {e}"),
    };
    match e.kind() {
        ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem => KvError::AccessDenied(what),
        _ => KvError::Other(what),
    }
}

/// A key as a file name: bytes outside `[A-Za-z0-9_.-]`, and a leading `.`, as `%XX`.
fn encode(key: &str) -> KvResult<String> {
    if key.is_empty() {
        return Err(KvError::Other("file backend: a key cannot be empty".into()));
    }
    let mut name = String::with_capacity(key.len());
    for (i, b) in key.bytes().enumerate() {
        let plain = b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || (b == b'.' && i > 0);
        if plain {
            name.push(b as char);
        } else {
            name.push_str(&format!("%{b:02X}"));
        }
    }
    if name.len() > MAX_NAME {
        return Err(KvError::Other(format!(
            "file backend: key {key:?} is too long ({} bytes as a file name, at most {MAX_NAME})",
            name.len()
        )));
    }
    Ok(name)
}

/// The key of a file name, or `None` for our own files and anything we did not write.
fn decode(name: &str) -> Option<String> {
    if name.starts_with('.') {
        return None;
    }
    let mut bytes = Vec::with_capacity(name.len());
    let mut rest = name.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'%' {
            let hex = std::str::from_utf8(tail.get(..2)?).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
            rest = &tail[2..];
        } else {
            bytes.push(b);
            rest = tail;
        }
    }
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(root: &Path, name: &str) -> FileBucket {
        let volume = Preopen {
            host: root.into(),
            guest: "/data".into(),
            read_only: false,
        };
        FileBucket::open(Path::new("/data/kv"), name, &[volume]).expect("open")
    }

    #[test]
    fn any_key_round_trips_through_a_file_name() {
        for key in ["a", "user:42", ".hidden", "a/../b", "ünï", "sp ace", "x.y"] {
            let name = encode(key).expect(key);
            assert!(!name.starts_with('.') && !name.contains('/'), "{name}");
            assert_eq!(decode(&name).as_deref(), Some(key));
        }
        assert!(encode("").is_err());
        assert!(encode(&"x".repeat(300)).is_err());
        assert_eq!(decode(".lock"), None);
    }

    #[tokio::test]
    async fn buckets_are_directories_that_keep_their_keys_apart() {
        let root = tempfile::tempdir().expect("tempdir");
        let (a, b) = (bucket(root.path(), "a"), bucket(root.path(), "b"));
        a.set("k", b"in a".to_vec()).await.expect("set");
        assert_eq!(b.get("k").await, Ok(None));
        assert_eq!(a.get("k").await, Ok(Some(b"in a".to_vec())));
        assert_eq!(a.increment("n", 2).await, Ok(2));
        assert_eq!(a.increment("n", 3).await, Ok(5));
        assert!(a.increment("k", 1).await.is_err(), "not a number");
        let page = a.list_keys(None).await.expect("keys");
        assert_eq!(page.keys, ["k", "n"]);
        a.delete("k").await.expect("delete");
        assert_eq!(a.exists("k").await, Ok(false));
        assert!(root.path().join("kv/a/n").is_file());
    }

    #[test]
    fn a_read_only_volume_or_a_path_outside_the_volumes_is_refused() {
        let root = tempfile::tempdir().expect("tempdir");
        let ro = Preopen {
            host: root.path().into(),
            guest: "/data".into(),
            read_only: true,
        };
        let err = FileBucket::open(Path::new("/data/kv"), "a", &[ro])
            .err()
            .unwrap_or_default();
        assert!(err.contains("read-only"), "{err}");
        let err = FileBucket::open(Path::new("/elsewhere"), "a", &[])
            .err()
            .unwrap_or_default();
        assert!(err.contains("not in any volume"), "{err}");
    }
}
