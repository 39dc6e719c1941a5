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
    ranges
        .iter()
        .map(|r| {
            let mut buffer = vec![0u8; usize::try_from(r.end.saturating_sub(r.start)).unwrap_or(usize::MAX)];
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
        let bytes: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(dir.path().join("f.bin"), &bytes).unwrap();
        let location = Path::from_absolute_path(dir.path().join("f.bin")).unwrap();
        let ranges = [0..10, 4000..9000, 9999..10_000, 5..5];
        let store = InlineReads::default();
        let got = store.get_ranges(&location, &ranges).await.unwrap();
        for (r, g) in ranges.iter().zip(&got) {
            assert_eq!(&g[..], &bytes[r.start as usize..r.end as usize]);
        }
        let past_the_end = store.get_ranges(&location, std::slice::from_ref(&(9000..10_001))).await.unwrap_err();
        assert!(past_the_end.to_string().contains("f.bin"), "{past_the_end}");
        let missing = Path::from_absolute_path(dir.path().join("gone.bin")).unwrap();
        let err = store.get_ranges(&missing, std::slice::from_ref(&(0..1))).await.unwrap_err();
        assert!(matches!(err, object_store::Error::NotFound { .. }), "{err}");
    }
}
