//! The binary layout of a [`CovEstimator`]: what `cov_sketch` returns and what
//! partial aggregates exchange.
//!
//! Little-endian throughout:
//!
//! ```text
//! magic    4 bytes  "GLCS"
//! version  u16      1
//! method   u8       0 exact, 1 gram, 2 fd, 3 auto
//! rank     u64      sketch rows of fd/auto (0 otherwise)
//! skipped  u64      rows skipped
//! state    u8       0 empty, 1 exact, 2 gram, 3 fd
//! d        u64      dimension (0 when empty)
//! n        u64      rows used
//! exact:   mean d×f64, scatter lower triangle by columns d(d+1)/2 × f64
//! gram:    rows n·d × f64
//! fd:      shrinkage f64, total f64, mean d×f64, filled u64, orthogonal u64,
//!          norms orthogonal × f64, rows filled·d × f32
//! ```
//!
//! A reader rejects other magics and versions, and any length that does not
//! match the header, with an error rather than a wrong spectrum.

use faer::Mat;

use super::estimator::{MAX_RANK, State};
use super::exact::MAX_DIM;
use super::frequent_directions::FdParts;
use super::{CovEstimator, ExactCovariance, FrequentDirections, GramCovariance, Method, SpectrumError};

const MAGIC: &[u8; 4] = b"GLCS";
/// The layout version this build writes and reads.
pub const VERSION: u16 = 1;

/// Encodes an estimator.
pub fn encode(estimator: &mut CovEstimator) -> Vec<u8> {
    // Each part reserves exactly what it writes: a state can be tens of MB.
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    let method = estimator.method();
    out.push(match method {
        Method::Exact => 0,
        Method::Gram => 1,
        Method::Fd { .. } => 2,
        Method::Auto { .. } => 3,
    });
    put_u64(&mut out, method.rank() as u64);
    put_u64(&mut out, estimator.skipped());
    match &mut estimator.state {
        State::Empty => {
            out.push(0);
            put_u64(&mut out, 0);
            put_u64(&mut out, 0);
        }
        State::Exact(e) => {
            out.push(1);
            let d = e.dim();
            let (n, mean, scatter) = e.parts();
            put_u64(&mut out, d as u64);
            put_u64(&mut out, n);
            put_f64s(&mut out, mean);
            out.reserve_exact(d * (d + 1) / 2 * 8);
            for j in 0..d {
                for i in j..d {
                    out.extend_from_slice(&scatter[(i, j)].to_le_bytes());
                }
            }
        }
        State::Gram(g) => {
            out.push(2);
            put_u64(&mut out, g.dim() as u64);
            put_u64(&mut out, g.count());
            put_f64s(&mut out, g.rows());
        }
        State::Fd(f) => {
            out.push(3);
            let p = f.parts();
            put_u64(&mut out, p.d as u64);
            put_u64(&mut out, p.n);
            put_f64s(&mut out, &[p.shrinkage, p.total]);
            put_f64s(&mut out, p.mean);
            put_u64(&mut out, (p.rows.len() / p.d.max(1)) as u64);
            put_u64(&mut out, p.norms.len() as u64);
            put_f64s(&mut out, p.norms);
            out.reserve_exact(p.rows.len() * 4);
            for v in p.rows.iter() {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
    }
    out
}

/// Decodes what [`encode`] wrote.
pub fn decode(bytes: &[u8]) -> Result<CovEstimator, SpectrumError> {
    let mut r = Reader { bytes, at: 0 };
    if r.take(4)? != MAGIC {
        return Err(bad("not a gradlake covariance sketch (wrong magic)"));
    }
    let version = u16::from_le_bytes(r.take(2)?.try_into().expect("2 bytes"));
    if version != VERSION {
        return Err(bad(&format!("layout version {version}; this build reads version {VERSION}")));
    }
    let method = r.u8()?;
    let rank = r.usize()?;
    let method = match method {
        0 => Method::Exact,
        1 => Method::Gram,
        2 | 3 if rank == 0 || rank > MAX_RANK => return Err(bad(&format!("a sketch of rank {rank}"))),
        2 => Method::Fd { rank },
        3 => Method::Auto { rank },
        m => return Err(bad(&format!("unknown method {m}"))),
    };
    let skipped = r.u64()?;
    let tag = r.u8()?;
    let d = r.usize()?;
    let n = r.u64()?;
    let state = match tag {
        0 => State::Empty,
        1 => {
            if d > MAX_DIM {
                return Err(bad(&format!("exact state of dimension {d}")));
            }
            let mean = r.f64s(d)?;
            let mut scatter = Mat::zeros(d, d);
            for j in 0..d {
                for i in j..d {
                    let v = r.f64()?;
                    scatter[(i, j)] = v;
                    scatter[(j, i)] = v;
                }
            }
            State::Exact(ExactCovariance::from_parts(d, n, mean, scatter))
        }
        2 => {
            let len = (n as usize).checked_mul(d).ok_or_else(|| bad("row count overflows"))?;
            State::Gram(GramCovariance::from_rows(d, r.f64s(len)?))
        }
        3 => {
            let head = r.f64s(2)?;
            let mean = r.f64s(d)?;
            let filled = r.usize()?;
            let orthogonal = r.usize()?;
            if filled >= 2 * rank || orthogonal > filled {
                return Err(bad(&format!("{filled} rows ({orthogonal} orthogonal) in a sketch of rank {rank}")));
            }
            let norms = r.f64s(orthogonal)?;
            let rows = r.f32s(filled * d)?;
            State::Fd(FrequentDirections::from_parts(FdParts {
                d,
                rank,
                n,
                shrinkage: head[0],
                total: head[1],
                mean: &mean,
                norms: &norms,
                rows: rows.into(),
            }))
        }
        t => return Err(bad(&format!("unknown state {t}"))),
    };
    if r.at != bytes.len() {
        return Err(bad(&format!("{} trailing bytes", bytes.len() - r.at)));
    }
    Ok(CovEstimator::from_state(method, state, skipped))
}

fn bad(what: &str) -> SpectrumError {
    SpectrumError::Codec(what.to_string())
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_f64s(out: &mut Vec<u8>, values: &[f64]) {
    out.reserve_exact(values.len() * 8);
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], SpectrumError> {
        let end = self.at.checked_add(len).filter(|&e| e <= self.bytes.len()).ok_or_else(|| bad("truncated"))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, SpectrumError> {
        Ok(self.take(1)?[0])
    }

    fn u64(&mut self) -> Result<u64, SpectrumError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }

    fn usize(&mut self) -> Result<usize, SpectrumError> {
        usize::try_from(self.u64()?).map_err(|_| bad("a length beyond this machine's address space"))
    }

    fn f64(&mut self) -> Result<f64, SpectrumError> {
        Ok(f64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }

    fn f32s(&mut self, len: usize) -> Result<Vec<f32>, SpectrumError> {
        let bytes = self.take(len.checked_mul(4).ok_or_else(|| bad("length overflows"))?)?;
        Ok(bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes"))).collect())
    }

    fn f64s(&mut self, len: usize) -> Result<Vec<f64>, SpectrumError> {
        let bytes = self.take(len.checked_mul(8).ok_or_else(|| bad("length overflows"))?)?;
        Ok(bytes.chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes"))).collect())
    }
}
