//! Where things are: the repository, the cache outside the clone, and what the build scripts
//! put there. Build output paths have one home, `scripts/paths.sh`; this asks it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root (this crate lives at `<root>/testkit`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".."))
}

/// Runs a repository script and returns its trimmed stdout, or why it failed.
fn script_output(script: &str, args: &[&str]) -> Result<String, String> {
    let path = repo_root().join(script);
    let out = Command::new("bash")
        .arg(&path)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", path.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} {} failed: {}",
            path.display(),
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A path named in `scripts/paths.sh` (`cache`, `bin`, `tools-bin`, `components`, ...).
pub fn build_path(name: &str) -> Result<PathBuf, String> {
    script_output("scripts/paths.sh", &[name]).map(PathBuf::from)
}

/// The bin directory of a component `e2e/build-deps.sh` builds (`containerd2`, `etcd`, ...).
pub fn deps_dir(component: &str) -> Result<PathBuf, String> {
    script_output("e2e/build-deps.sh", &["--print-dir", component]).map(PathBuf::from)
}

/// `Some(reason)` when `file` is not there, naming the command that makes it.
pub fn missing_file(file: &Path, make_it: &str) -> Option<String> {
    (!file.is_file()).then(|| format!("{} is missing: run `{make_it}`", file.display()))
}

/// `Some(reason)` when the executable `name` is not on PATH.
pub fn missing_command(name: &str, install: &str) -> Option<String> {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false);
    (!found).then(|| format!("`{name}` is not on PATH: {install}"))
}

/// The first of several prerequisite checks that fails.
pub fn first_missing(checks: impl IntoIterator<Item = Option<String>>) -> Option<String> {
    checks.into_iter().flatten().next()
}
