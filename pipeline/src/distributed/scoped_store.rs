//! A read-only object store limited to the lakes a worker serves.
//!
//! A worker executes whatever plan it receives; a plan can name any file. So a
//! worker's local file system is reachable only through this store, which
//! answers for paths under the served lakes and refuses everything else, and
//! never writes.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, PutMultipartOptions,
    PutOptions, PutPayload, PutResult, RenameOptions, Result,
};

/// Delegates reads under `roots` to `inner`; refuses the rest.
#[derive(Debug)]
pub(crate) struct ScopedStore {
    inner: Arc<dyn ObjectStore>,
    roots: Arc<Vec<Path>>,
}

impl ScopedStore {
    pub fn new(inner: Arc<dyn ObjectStore>, roots: Vec<Path>) -> Self {
        Self { inner, roots: Arc::new(roots) }
    }

    fn allows(&self, location: &Path) -> bool {
        self.roots.iter().any(|root| location.prefix_matches(root))
    }

    fn check(&self, location: &Path) -> Result<()> {
        if self.allows(location) { Ok(()) } else { Err(refused(location, "is outside the lakes this worker serves")) }
    }
}

fn refused(location: &Path, why: &str) -> object_store::Error {
    object_store::Error::PermissionDenied {
        path: location.to_string(),
        source: format!("gradlake worker: {location} {why}").into(),
    }
}

impl fmt::Display for ScopedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ScopedStore({}, {} lakes)", self.inner, self.roots.len())
    }
}

#[async_trait]
impl ObjectStore for ScopedStore {
    async fn put_opts(&self, location: &Path, _payload: PutPayload, _opts: PutOptions) -> Result<PutResult> {
        Err(refused(location, "cannot be written: workers only read"))
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        _opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        Err(refused(location, "cannot be written: workers only read"))
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.check(location)?;
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        self.check(location)?;
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(&self, locations: BoxStream<'static, Result<Path>>) -> BoxStream<'static, Result<Path>> {
        locations.map(|l| l.and_then(|l| Err(refused(&l, "cannot be deleted: workers only read")))).boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        match prefix {
            Some(p) if self.allows(p) => self.inner.list(prefix),
            Some(p) => {
                futures::stream::once(std::future::ready(Err(refused(p, "is outside the lakes this worker serves"))))
                    .boxed()
            }
            None => {
                futures::stream::once(std::future::ready(Err(refused(&Path::from("/"), "cannot be listed")))).boxed()
            }
        }
    }

    fn list_with_offset(&self, prefix: Option<&Path>, offset: &Path) -> BoxStream<'static, Result<ObjectMeta>> {
        match prefix {
            Some(p) if self.allows(p) => self.inner.list_with_offset(prefix, offset),
            _ => self.list(prefix),
        }
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        match prefix {
            Some(p) if self.allows(p) => self.inner.list_with_delimiter(prefix).await,
            Some(p) => Err(refused(p, "is outside the lakes this worker serves")),
            None => Err(refused(&Path::from("/"), "cannot be listed")),
        }
    }

    async fn copy_opts(&self, _from: &Path, to: &Path, _options: CopyOptions) -> Result<()> {
        Err(refused(to, "cannot be written: workers only read"))
    }

    async fn rename_opts(&self, _from: &Path, to: &Path, _options: RenameOptions) -> Result<()> {
        Err(refused(to, "cannot be written: workers only read"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::ObjectStoreExt;
    use object_store::memory::InMemory;

    #[tokio::test]
    async fn reads_inside_the_roots_and_refuses_the_rest() {
        let inner = Arc::new(InMemory::new());
        inner.put(&Path::from("lake/grads/a.parquet"), PutPayload::from_static(b"x")).await.unwrap();
        inner.put(&Path::from("secret/key"), PutPayload::from_static(b"y")).await.unwrap();
        let store = ScopedStore::new(inner, vec![Path::from("lake")]);
        assert_eq!(store.get(&Path::from("lake/grads/a.parquet")).await.unwrap().bytes().await.unwrap(), "x");
        let e = store.get(&Path::from("secret/key")).await.unwrap_err().to_string();
        assert!(e.contains("outside the lakes"), "{e}");
        let e = store.put(&Path::from("lake/new"), PutPayload::from_static(b"z")).await.unwrap_err().to_string();
        assert!(e.contains("workers only read"), "{e}");
        let listed: Vec<_> = store.list(Some(&Path::from("lake"))).collect().await;
        assert_eq!(listed.len(), 1);
        assert!(store.list(Some(&Path::from("secret"))).next().await.unwrap().is_err());
        assert!(store.list_with_delimiter(None).await.is_err());
    }
}
