//! Where a watched run's files come from: a directory on this machine, or a
//! prefix in an object store.
//!
//! A store lake is followed by listing the run's prefixes on every poll. Each
//! new object is copied into a private temporary directory, read there through
//! the same lake view as a local file, and deleted, so the disk holds at most
//! the run's `runs` and `params` files and the one file being read. Objects
//! appear whole (a writer publishes with one PUT or a completed multipart
//! upload), so a listed object is always complete.

use std::io::Write;
use std::path::{Path, PathBuf};

use futures::StreamExt;
use gradlake_ingest::layout::{parse_part_name, run_dir, single_file};
use gradlake_ingest::schema::Table;
use gradlake_pipeline::store::{LakeLocation, StoreLake};
use object_store::ObjectStoreExt;
use object_store::path::Path as StorePath;

use super::WatchError;

/// The lake a watcher follows.
pub(super) enum Source {
    /// A directory on this machine: files are read where they are.
    Disk(PathBuf),
    /// A prefix in an object store: files are copied into `copies` to be read.
    Store { lake: Box<StoreLake>, copies: tempfile::TempDir },
}

/// A published part of a multi-file table.
pub(super) enum PartAt {
    Disk(PathBuf),
    Store(StorePath),
}

/// A file ready to be read on this machine; a copy of a store object is
/// removed when dropped.
pub(super) struct LocalFile {
    pub path: PathBuf,
    temporary: bool,
}

impl Drop for LocalFile {
    fn drop(&mut self) {
        if self.temporary {
            // Best effort: the copies directory is removed with the watcher anyway.
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl Source {
    /// The source of `lake`.
    pub fn new(lake: LakeLocation) -> Result<Self, WatchError> {
        match lake {
            LakeLocation::Local(path) => Ok(Self::Disk(path)),
            LakeLocation::Store(lake) => {
                let copies = tempfile::Builder::new()
                    .prefix("gradlake-watch-copies-")
                    .tempdir()
                    .map_err(|source| WatchError::Io { path: std::env::temp_dir(), source })?;
                Ok(Self::Store { lake: Box::new(lake), copies })
            }
        }
    }

    /// The lake's name, for messages.
    pub fn name(&self) -> PathBuf {
        match self {
            Self::Disk(path) => path.clone(),
            Self::Store { lake, .. } => PathBuf::from(lake.url().as_str()),
        }
    }

    /// The run's `runs` and `params` files on this machine, once both exist.
    pub async fn run_files(&self, run: &str) -> Result<Option<(PathBuf, PathBuf)>, WatchError> {
        match self {
            Self::Disk(lake) => {
                let run_file = single_file(lake, Table::Runs, run);
                let params_file = single_file(lake, Table::Params, run);
                Ok((run_file.is_file() && params_file.is_file()).then_some((run_file, params_file)))
            }
            Self::Store { lake, copies } => {
                let mut local = Vec::new();
                for table in [Table::Runs, Table::Params] {
                    let path = single_file(copies.path(), table, run);
                    if !path.is_file()
                        && !self.copy(lake, &key(lake, &single_file(Path::new(""), table, run)), &path).await?
                    {
                        return Ok(None);
                    }
                    local.push(path);
                }
                let params_file = local.pop().expect("two files");
                Ok(Some((local.pop().expect("two files"), params_file)))
            }
        }
    }

    /// Published parts of `table` for `run` not `seen` yet, in part order.
    pub async fn new_parts(
        &self,
        table: Table,
        run: &str,
        seen: impl Fn(u64) -> bool,
    ) -> Result<Vec<(u64, PartAt)>, WatchError> {
        let mut parts = Vec::new();
        match self {
            Self::Disk(lake) => {
                let dir = run_dir(lake, table, run);
                let entries = match std::fs::read_dir(&dir) {
                    Ok(e) => e,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(parts),
                    Err(source) => return Err(WatchError::Io { path: dir, source }),
                };
                for entry in entries {
                    let entry = entry.map_err(|source| WatchError::Io { path: dir.clone(), source })?;
                    if let Some(part) = entry.file_name().to_str().and_then(parse_part_name)
                        && !seen(part)
                    {
                        parts.push((part, PartAt::Disk(entry.path())));
                    }
                }
            }
            Self::Store { lake, .. } => {
                let prefix = key(lake, &run_dir(Path::new(""), table, run));
                let mut listing = lake.store().list(Some(&prefix));
                while let Some(meta) = listing.next().await {
                    let meta = meta.map_err(|source| store_error(lake, &prefix, source))?;
                    if let Some(part) = meta.location.filename().and_then(parse_part_name)
                        && !seen(part)
                    {
                        parts.push((part, PartAt::Store(meta.location)));
                    }
                }
            }
        }
        parts.sort_by_key(|(part, _)| *part);
        Ok(parts)
    }

    /// `part` of `table` as a file on this machine.
    pub async fn local(&self, table: Table, run: &str, part: PartAt) -> Result<LocalFile, WatchError> {
        match (self, part) {
            (_, PartAt::Disk(path)) => Ok(LocalFile { path, temporary: false }),
            (Self::Store { lake, copies }, PartAt::Store(key)) => {
                let dir = run_dir(copies.path(), table, run);
                std::fs::create_dir_all(&dir).map_err(|source| WatchError::Io { path: dir.clone(), source })?;
                let path = dir.join(key.filename().unwrap_or("part.parquet"));
                // Owned before the copy, so a failed copy is removed too.
                let file = LocalFile { path, temporary: true };
                if !self.copy(lake, &key, &file.path).await? {
                    return Err(store_error(
                        lake,
                        &key,
                        object_store::Error::NotFound { path: key.to_string(), source: "listed, then gone".into() },
                    ));
                }
                Ok(file)
            }
            (Self::Disk(_), PartAt::Store(_)) => unreachable!("a disk lake lists files, not objects"),
        }
    }

    /// Copies object `key` to `to`, streaming; false when it does not exist (yet).
    async fn copy(&self, lake: &StoreLake, key: &StorePath, to: &Path) -> Result<bool, WatchError> {
        let got = match lake.store().get(key).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => return Ok(false),
            Err(source) => return Err(store_error(lake, key, source)),
        };
        if let Some(dir) = to.parent() {
            std::fs::create_dir_all(dir).map_err(|source| WatchError::Io { path: dir.to_path_buf(), source })?;
        }
        let io = |source| WatchError::Io { path: to.to_path_buf(), source };
        let mut file = std::io::BufWriter::new(std::fs::File::create(to).map_err(io)?);
        let mut stream = got.into_stream();
        while let Some(chunk) = stream.next().await {
            file.write_all(&chunk.map_err(|source| store_error(lake, key, source))?).map_err(io)?;
        }
        file.flush().map_err(io)?;
        Ok(true)
    }
}

/// The store key of `relative` (a path inside the lake) under the lake's prefix.
fn key(lake: &StoreLake, relative: &Path) -> StorePath {
    relative.components().filter_map(|c| c.as_os_str().to_str()).fold(lake.prefix().clone(), |key, part| key.join(part))
}

fn store_error(lake: &StoreLake, key: &StorePath, source: object_store::Error) -> WatchError {
    WatchError::Store { url: format!("{}/{key}", lake.bucket().as_str().trim_end_matches('/')), source }
}
