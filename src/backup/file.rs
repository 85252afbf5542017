//! The backup file: a small container around `pg_dump -Fc` output.
//!
//! ```text
//! GDPR-REGISTER-BACKUP\n       magic line
//! {header as JSON}\n           what the backup is of (see Header)
//! pg_dump -Fc output
//! length of the dump          8 bytes, big-endian
//! SHA-256 of all before this  32 bytes
//! ```
//!
//! The trailer comes last so the dump is streamed to disk in one pass; a truncated or
//! altered file fails its length or digest before anything is restored from it.

use std::{
    collections::BTreeMap,
    fs::{self, File, OpenOptions},
    io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write},
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Refused;

const MAGIC: &[u8] = b"GDPR-REGISTER-BACKUP\n";
pub const FORMAT: u32 = 1;
const TRAILER: u64 = 8 + 32;
/// A header is a few kilobytes; anything longer is not one.
const MAX_HEADER: u64 = 1024 * 1024;

/// What a backup is of, written before the dump.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Header {
    pub format: u32,
    /// RFC 3339.
    pub created_at: String,
    /// The newest migration applied.
    pub migration: i64,
    /// Names the application key without revealing it.
    pub key_fingerprint: String,
    /// The audit log's head (sealed row and hash, hex) when the backup was taken.
    pub audit_head: Option<AuditHead>,
    /// Rows per table (`schema.table`), counted in the dump's own snapshot.
    pub tables: BTreeMap<String, i64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AuditHead {
    pub seq: i64,
    pub hash: String,
}

impl Header {
    pub fn rows(&self) -> i64 {
        self.tables.values().sum()
    }
}

/// Writes the container to `path` from the dump read from `dump`: first to a temporary
/// file beside it (mode 0600), synced, then — if `dump_ended_well` says the dump is
/// whole — renamed, so `path` is a whole backup or absent. Returns the file's size.
pub fn write(
    path: &Path,
    header: &Header,
    dump: impl Read,
    dump_ended_well: impl FnOnce() -> anyhow::Result<()>,
) -> anyhow::Result<u64> {
    let partial = partial_name(path);
    // The dump's reader is dropped here, so a writer still writing ends rather than waits.
    let written = write_partial(&partial, header, dump);
    let result = dump_ended_well().and(written).and_then(|size| {
        fs::rename(&partial, path).with_context(|| format!("renaming to {}", path.display()))?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir)?.sync_all()?;
        }
        Ok(size)
    });
    if result.is_err() {
        fs::remove_file(&partial).ok();
    }
    result
}

fn partial_name(path: &Path) -> PathBuf {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!(".{name}.partial"))
}

fn write_partial(partial: &Path, header: &Header, mut dump: impl Read) -> anyhow::Result<u64> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(partial)
        .map_err(|e| Refused(format!("cannot create {}: {e}", partial.display())))?;
    // A left-over file keeps its old mode through `open`.
    file.set_permissions(fs::Permissions::from_mode(0o600))?;
    let mut out = Hashing {
        inner: io::BufWriter::with_capacity(1 << 20, &mut file),
        digest: Sha256::new(),
    };
    out.write_all(MAGIC)?;
    serde_json::to_writer(&mut out, header)?;
    out.write_all(b"\n")?;
    let dump_len = io::copy(&mut dump, &mut out).context("writing the dump")?;
    let digest = out.digest.clone().finalize();
    out.inner.write_all(&dump_len.to_be_bytes())?;
    out.inner.write_all(&digest)?;
    out.inner.flush()?;
    drop(out);
    file.sync_all()?;
    Ok(file.metadata()?.len())
}

struct Hashing<W> {
    inner: W,
    digest: Sha256,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.digest.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A backup file whose length and digest have been checked.
pub struct Backup {
    pub header: Header,
    path: PathBuf,
    dump_start: u64,
    dump_len: u64,
}

impl Backup {
    /// Opens and checks a backup file; every way it can be wrong is a [`Refused`].
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let refuse = |why: &str| Refused(format!("{}: {why}", path.display()));
        let file = File::open(path).map_err(|e| refuse(&format!("cannot read it ({e})")))?;
        let size = file.metadata()?.len();
        let mut reader = BufReader::new(file);
        let mut magic = vec![0; MAGIC.len()];
        if reader.read_exact(&mut magic).is_err() || magic != MAGIC {
            return Err(refuse("not a backup made by gdpr-register backup create").into());
        }
        let mut line = Vec::new();
        (&mut reader)
            .take(MAX_HEADER)
            .read_until(b'\n', &mut line)?;
        let header: Header = serde_json::from_slice(&line)
            .map_err(|_| refuse("its header is damaged (the file is not a whole backup)"))?;
        if header.format != FORMAT {
            return Err(refuse(&format!(
                "it has format {}, this program reads format {FORMAT}",
                header.format
            ))
            .into());
        }
        let dump_start = (MAGIC.len() + line.len()) as u64;
        let truncated = || refuse("it is truncated or damaged (its length does not match)");
        let body = size.checked_sub(TRAILER).ok_or_else(truncated)?;
        let dump_len = body.checked_sub(dump_start).ok_or_else(truncated)?;
        let mut file = reader.into_inner();
        file.seek(SeekFrom::Start(body))?;
        let mut trailer = [0u8; TRAILER as usize];
        file.read_exact(&mut trailer)?;
        if trailer[..8] != dump_len.to_be_bytes() {
            return Err(truncated().into());
        }
        file.seek(SeekFrom::Start(0))?;
        let mut check = Hashing {
            inner: io::sink(),
            digest: Sha256::new(),
        };
        io::copy(&mut (&mut file).take(body), &mut check)?;
        if check.digest.finalize()[..] != trailer[8..] {
            return Err(refuse("it is damaged (its checksum does not match)").into());
        }
        Ok(Self {
            header,
            path: path.to_path_buf(),
            dump_start,
            dump_len,
        })
    }

    /// The `pg_dump -Fc` output inside.
    pub fn dump(&self) -> anyhow::Result<impl Read + use<>> {
        let mut file = File::open(&self.path)?;
        file.seek(SeekFrom::Start(self.dump_start))?;
        Ok(BufReader::with_capacity(1 << 20, file).take(self.dump_len))
    }
}
