//! Local file writes that lose nothing: conditional on the content that was read, atomic
//! (temp file in the same directory, fsync, rename), owner and mode kept, and a backup of the
//! original beside it first.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{path}: changed since it was read; nothing written")]
    Changed { path: String },
    #[error("{path}: {what}: {source}")]
    Io { path: String, what: &'static str, source: std::io::Error },
}

fn io<'a>(path: &'a Path, what: &'static str) -> impl FnOnce(std::io::Error) -> WriteError + 'a {
    move |source| WriteError::Io { path: path.display().to_string(), what, source }
}

/// `n` random bytes as hex, from the OS (/dev/urandom; std's randomly keyed hasher if that
/// cannot be read): lock tokens, and the nonces that key a scan's text names.
pub fn random_hex(n: usize) -> String {
    use std::io::Read;
    let mut b = vec![0u8; n];
    if File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b)).is_err() {
        use std::hash::BuildHasher;
        for (i, c) in b.chunks_mut(8).enumerate() {
            let r = std::collections::hash_map::RandomState::new().hash_one((i, std::time::SystemTime::now()));
            c.copy_from_slice(&r.to_le_bytes()[..c.len()]);
        }
    }
    hex::encode(b)
}

/// `20261127T135001Z`: a UTC stamp that sorts and is safe in a file name.
pub fn utc_stamp() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .replace(['-', ':'], "")
}

/// Replace `path`'s content with `new` if it still holds exactly `expected`. The original is
/// first copied to `PATH.bak-<stamp>` (same mode and owner, never overwriting an existing
/// backup). Returns the backup's path.
pub fn replace_with_backup(path: &Path, expected: &[u8], new: &[u8], stamp: &str) -> Result<PathBuf, WriteError> {
    let meta = fs::metadata(path).map_err(io(path, "cannot stat"))?;
    if fs::read(path).map_err(io(path, "cannot read"))? != expected {
        return Err(WriteError::Changed { path: path.display().to_string() });
    }
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".bak-{stamp}"));
    let backup = path.with_file_name(name);
    write_new(&backup, expected, &meta)?;

    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(path.file_name().unwrap_or_default());
    tmp_name.push(format!(".codex-fleet-tmp-{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let _ = fs::remove_file(&tmp);
    write_new(&tmp, new, &meta)?;
    // Last look before the rename: a write that raced us wins, ours is dropped.
    if fs::read(path).map_err(io(path, "cannot read"))? != expected {
        let _ = fs::remove_file(&tmp);
        return Err(WriteError::Changed { path: path.display().to_string() });
    }
    fs::rename(&tmp, path).map_err(io(path, "cannot rename the new content into place"))?;
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(backup)
}

/// Create `path` (must not exist) with `bytes`, the mode and owner of `like`, fsync'd.
fn write_new(path: &Path, bytes: &[u8], like: &fs::Metadata) -> Result<(), WriteError> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io(path, "cannot create"))?;
    f.write_all(bytes).map_err(io(path, "cannot write"))?;
    // Owner first (may fail when not root: then the file stays ours), then the mode.
    let _ = std::os::unix::fs::fchown(&f, Some(like.uid()), Some(like.gid()));
    f.set_permissions(fs::Permissions::from_mode(like.mode() & 0o7777))
        .map_err(io(path, "cannot set mode"))?;
    f.sync_all().map_err(io(path, "cannot fsync"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditional_atomic_backed_up() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("config.toml");
        fs::write(&p, "old\n").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
        let b = replace_with_backup(&p, b"old\n", b"new\n", "20260101T000000Z").unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "new\n");
        assert_eq!(fs::read_to_string(&b).unwrap(), "old\n");
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o777, 0o640);
        assert_eq!(fs::metadata(&b).unwrap().mode() & 0o777, 0o640);
        let e = replace_with_backup(&p, b"old\n", b"x", "20260101T000001Z").unwrap_err();
        assert!(matches!(e, WriteError::Changed { .. }));
        assert_eq!(fs::read_to_string(&p).unwrap(), "new\n");
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 2, "no temp file or extra backup left");
    }
}
