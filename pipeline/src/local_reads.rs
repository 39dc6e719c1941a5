//! A local file system whose range reads run on the calling thread.
//!
//! object_store's `LocalFileSystem` sends every read to tokio's blocking
//! pool: a thread hand-off there and back, plus an open and close, per call.
//! A query over `grads`' key columns (`bench/query.sh` Q1) makes a call per row
//! group for a few kilobytes each, so on a lake of 250 row groups the hand-offs,
//! not the bytes, were its time (strace: 855 futex calls for 623 reads). Reads
//! of files in the page cache take microseconds, so [`InlineReads`] does them
//! where they are asked for; a read that must wait for the disk blocks a
//! worker thread instead, as any CPU-bound operator does. Everything else is
//! `LocalFileSystem`'s.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, PutMultipartOptions,
    PutOptions, PutPayload, PutResult, RenameOptions, Result,
};

/// `LocalFileSystem` with `get_ranges` (the Parquet reader's column-chunk reads) done inline.
#[derive(Debug, Default)]
pub(crate) struct InlineReads {
    inner: Arc<LocalFileSystem>,
}

impl fmt::Display for InlineReads {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InlineReads({})", self.inner)
    }
}

/// Ranges at least this long are mapped rather than copied: a Parquet column
/// chunk of gradient values (megabytes) then stays in the page cache, read in
/// place, instead of taking a fresh heap buffer per row group, which glibc
/// keeps around fragmented once freed (`bench/spectrum.sh`: the two scan
/// threads' heaps held twice what was live). Short reads (footers, key
/// columns) are cheaper copied than mapped and unmapped.
const MAP_AT_LEAST: u64 = 1 << 20;

#[cfg(unix)]
fn read_ranges(path: &std::path::Path, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
    use std::os::unix::fs::FileExt;
    let failed = |source: std::io::Error| match source.kind() {
        std::io::ErrorKind::NotFound => {
            object_store::Error::NotFound { path: location.to_string(), source: source.into() }
        }
        _ => object_store::Error::Generic { store: "LocalFileSystem", source: format!("{location}: {source}").into() },
    };
    let file = std::fs::File::open(path).map_err(failed)?;
    let mut file_len = None;
    ranges
        .iter()
        .map(|r| {
            let len = r.end.saturating_sub(r.start);
            if len >= MAP_AT_LEAST {
                // A mapping past the end would fault on access: check first.
                let size = match file_len {
                    Some(size) => size,
                    None => *file_len.insert(file.metadata().map_err(failed)?.len()),
                };
                if r.end > size {
                    return Err(failed(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        format!("bytes {}..{} asked of a file of {size} bytes", r.start, r.end),
                    )));
                }
                // SAFETY: lake files are written aside and renamed into place,
                // never changed once visible; a file another program truncates
                // while it is read is the one case this does not survive.
                let map = unsafe { memmap2::MmapOptions::new().offset(r.start).len(len as usize).map(&file) }
                    .map_err(failed)?;
                return Ok(Bytes::from_owner(map));
            }
            let mut buffer = vec![0u8; usize::try_from(len).unwrap_or(usize::MAX)];
            file.read_exact_at(&mut buffer, r.start).map_err(failed)?;
            Ok(Bytes::from(buffer))
        })
        .collect()
}

#[async_trait]
impl ObjectStore for InlineReads {
    async fn put_opts(&self, location: &Path, payload: PutPayload, opts: PutOptions) -> Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(&self, location: &Path, opts: PutMultipartOptions) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        #[cfg(unix)]
        {
            read_ranges(&self.inner.path_to_filesystem(location)?, location, ranges)
        }
        #[cfg(not(unix))]
        {
            self.inner.get_ranges(location, ranges).await
        }
    }

    fn delete_stream(&self, locations: BoxStream<'static, Result<Path>>) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(&self, prefix: Option<&Path>, offset: &Path) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        self.inner.rename_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ranges_read_inline_equal_the_file_system_s_and_errors_name_the_object() {
        let dir = tempfile::tempdir().unwrap();
        let size = 3 * MAP_AT_LEAST as u32 + 10_000;
        let bytes: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(dir.path().join("f.bin"), &bytes).unwrap();
        let location = Path::from_absolute_path(dir.path().join("f.bin")).unwrap();
        // Short ranges are copied, long ones mapped (at unaligned offsets too).
        let long = MAP_AT_LEAST;
        let ranges = [0..10, 4000..9000, 9999..10_000, 5..5, 0..long, 4097..4097 + long + 3, 12_345..size as u64];
        let store = InlineReads::default();
        let got = store.get_ranges(&location, &ranges).await.unwrap();
        for (r, g) in ranges.iter().zip(&got) {
            assert_eq!(&g[..], &bytes[r.start as usize..r.end as usize]);
        }
        for beyond in [size as u64 - 10..size as u64 + 1, 10..size as u64 + 1] {
            let past_the_end = store.get_ranges(&location, std::slice::from_ref(&beyond)).await.unwrap_err();
            assert!(past_the_end.to_string().contains("f.bin"), "{past_the_end}");
        }
        let missing = Path::from_absolute_path(dir.path().join("gone.bin")).unwrap();
        let err = store.get_ranges(&missing, std::slice::from_ref(&(0..1))).await.unwrap_err();
        assert!(matches!(err, object_store::Error::NotFound { .. }), "{err}");
    }
}
