//! Memory settings: human sizes such as `512M`, the machine's memory, and a
//! pool that remembers the most it held.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use datafusion::execution::memory_pool::{MemoryConsumer, MemoryLimit, MemoryPool, MemoryReservation};

use crate::error::{PipelineError, Result};

/// Parses `N`, `N[KMGT]`, `N[KMGT]B` or `N[KMGT]iB` (all binary multiples) into bytes.
pub fn parse_size(text: &str) -> Result<usize> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let shift = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        "T" | "TB" | "TIB" => 40,
        _ => return Err(bad(text)),
    };
    let value: f64 = number.parse().map_err(|_| bad(text))?;
    let bytes = value * (1u64 << shift) as f64;
    if !(bytes >= 1.0 && bytes < usize::MAX as f64) {
        return Err(bad(text));
    }
    Ok(bytes as usize)
}

fn bad(text: &str) -> PipelineError {
    PipelineError::InvalidArgument(format!("invalid size {text:?}: expected e.g. 512M, 2G or 1048576"))
}

/// Physical memory of this machine in bytes (Linux `/proc/meminfo`), if known.
pub fn physical_memory() -> Option<usize> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// The memory limit used when none is given: half the machine's memory (the
/// rest is the page cache's, which the scans live on), 2 GiB if it is unknown.
pub fn default_memory_limit() -> usize {
    physical_memory().map_or(2 << 30, |m| m / 2)
}

/// The process's resident memory as the kernel counts it (Linux `/proc/self`):
/// what a memory limit is finally about, including what no memory pool sees
/// (operator outputs in flight, decoder buffers, the allocator's free lists).
pub mod process {
    /// Resident bytes now (`VmRSS`).
    pub fn rss() -> Option<usize> {
        status_kib("VmRSS:")
    }

    /// The most resident bytes since the last [`reset_peak`] (`VmHWM`).
    pub fn peak_rss() -> Option<usize> {
        status_kib("VmHWM:")
    }

    /// Restarts the peak from the current resident size; false where the
    /// kernel does not offer it.
    pub fn reset_peak() -> bool {
        std::fs::write("/proc/self/clear_refs", "5").is_ok()
    }

    /// Hands the allocator's free memory back to the kernel, so that the next
    /// measurement starts from what is really in use.
    pub fn release_free_memory() {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: malloc_trim only walks glibc's own heaps; it takes no pointers.
        unsafe {
            libc::malloc_trim(0);
        }
    }

    fn status_kib(key: &str) -> Option<usize> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = status.lines().find(|l| l.starts_with(key))?;
        line.split_whitespace().nth(1)?.parse::<usize>().ok()?.checked_mul(1024)
    }
}

/// A [`MemoryPool`] around another that records the largest total reservation
/// it has seen, so that a caller can measure what a query really reserved
/// (`gradlake analyze` sizes its windows of steps by it).
#[derive(Debug)]
pub struct PeakPool {
    inner: Arc<dyn MemoryPool>,
    peak: AtomicUsize,
}

impl PeakPool {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn MemoryPool>) -> Self {
        Self { inner, peak: AtomicUsize::new(0) }
    }

    /// The largest reservation since the last [`PeakPool::reset_peak`].
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    /// Starts a new measurement from what is reserved now.
    pub fn reset_peak(&self) {
        self.peak.store(self.inner.reserved(), Ordering::Relaxed);
    }

    fn note(&self) {
        self.peak.fetch_max(self.inner.reserved(), Ordering::Relaxed);
    }
}

impl std::fmt::Display for PeakPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (peak {} bytes)", self.inner, self.peak())
    }
}

impl MemoryPool for PeakPool {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn register(&self, consumer: &MemoryConsumer) {
        self.inner.register(consumer)
    }

    fn unregister(&self, consumer: &MemoryConsumer) {
        self.inner.unregister(consumer)
    }

    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        self.inner.grow(reservation, additional);
        self.note();
    }

    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        self.inner.shrink(reservation, shrink)
    }

    fn try_grow(&self, reservation: &MemoryReservation, additional: usize) -> datafusion::common::Result<()> {
        self.inner.try_grow(reservation, additional)?;
        self.note();
        Ok(())
    }

    fn reserved(&self) -> usize {
        self.inner.reserved()
    }

    fn memory_limit(&self) -> MemoryLimit {
        self.inner.memory_limit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::execution::memory_pool::GreedyMemoryPool;

    #[test]
    fn the_peak_pool_remembers_the_largest_reservation() {
        let pool = Arc::new(PeakPool::new(Arc::new(GreedyMemoryPool::new(1000))));
        let as_pool: Arc<dyn MemoryPool> = pool.clone();
        let r = MemoryConsumer::new("test").register(&as_pool);
        r.try_grow(600).unwrap();
        r.shrink(500);
        assert!(r.try_grow(1000).is_err(), "the inner pool's limit still holds");
        assert_eq!((pool.peak(), pool.reserved()), (600, 100));
        pool.reset_peak();
        assert_eq!(pool.peak(), 100);
        r.grow(50);
        assert_eq!(pool.peak(), 150);
        assert!(matches!(pool.memory_limit(), MemoryLimit::Finite(1000)));
    }

    #[test]
    fn the_process_peak_follows_an_allocation() {
        if !process::reset_peak() {
            return; // not Linux
        }
        let before = process::rss().unwrap();
        let block = vec![1u8; 64 << 20];
        std::hint::black_box(&block);
        assert!(process::peak_rss().unwrap() >= before + (60 << 20));
        drop(block);
        process::release_free_memory();
    }

    #[test]
    fn physical_memory_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            let m = physical_memory().expect("/proc/meminfo");
            assert!(m > 64 << 20);
            assert_eq!(default_memory_limit(), m / 2);
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512M").unwrap(), 512 << 20);
        assert_eq!(parse_size("2GiB").unwrap(), 2 << 30);
        assert_eq!(parse_size("1.5k").unwrap(), 1536);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        for bad in ["", "M", "12X", "-1G", "0"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
