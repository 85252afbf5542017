//! The erasure journal: with `BACKUP_DIR` set, every erasure on request is also written
//! to `erasures.journal` beside the backups, so that a restore into an empty folder knows
//! the erasures made after its backup. A line is the keyed suppression hash in hex and
//! the time, never an address.

use std::{
    fs::OpenOptions,
    io::Write,
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
};

use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use super::Refused;

/// The journal's name in `BACKUP_DIR` (and beside a backup being restored).
pub const NAME: &str = "erasures.journal";

/// One erasure: the keyed hash of the address and when it was made.
pub struct Entry {
    pub hash: Vec<u8>,
    pub at: OffsetDateTime,
}

/// Appends an erasure to the journal in `dir` and waits until it is on disk.
pub fn append(dir: &Path, hash: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let at = OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .map_err(std::io::Error::other)?;
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(dir.join(NAME))?;
    // One write per line, so that writers appending at once do not interleave.
    file.write_all(format!("{} {at}\n", hex::encode(hash)).as_bytes())?;
    file.sync_data()
}

/// The journal a restore of `backup` reads: `named`, or the one beside the backup.
/// `None`: no journal beside the backup.
pub fn locate(backup: &Path, named: Option<&Path>) -> Option<PathBuf> {
    if let Some(named) = named {
        return Some(named.to_path_buf());
    }
    let beside = backup.parent().unwrap_or(Path::new(".")).join(NAME);
    beside.exists().then_some(beside)
}

/// Every entry of the journal at `path`; a line that does not read is refused with its
/// number.
pub fn read(path: &Path) -> anyhow::Result<Vec<Entry>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Refused(format!(
            "cannot read the erasure journal {}: {e}",
            path.display()
        ))
    })?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            parse(line).ok_or_else(|| {
                Refused(format!(
                    "{} line {}: not an erasure (a hash in hex and a time); nothing was restored",
                    path.display(),
                    i + 1
                ))
                .into()
            })
        })
        .collect()
}

fn parse(line: &str) -> Option<Entry> {
    let (hash, at) = line.trim().split_once(' ')?;
    let hash = hex::decode(hash).ok().filter(|h| !h.is_empty())?;
    let at = OffsetDateTime::parse(at, &Rfc3339).ok()?;
    Some(Entry { hash, at })
}
