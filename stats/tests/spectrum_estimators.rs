//! The covariance estimators against numpy/LAPACK (`fixtures/spectrum`) and
//! Frequent Directions against its theoretical error bound.

use std::path::PathBuf;

use gradlake_stats::spectrum::{CovEstimator, Method, Spectrum, codec};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

struct Case {
    name: String,
    d: usize,
    rows: Vec<Vec<f64>>,
    eigvalsh: Vec<f64>,
}

/// `fixtures/` of the checkout being tested, found at run time: the build
/// directory may be shared with another checkout (CI).
fn fixtures() -> PathBuf {
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo test")).join("../fixtures")
}

fn cases() -> Vec<Case> {
    let path = fixtures().join("spectrum/reference.json");
    let all: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    all.as_array()
        .unwrap()
        .iter()
        .map(|c| Case {
            name: c["name"].as_str().unwrap().to_string(),
            d: c["d"].as_u64().unwrap() as usize,
            rows: c["rows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect())
                .collect(),
            eigvalsh: c["eigvalsh"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect(),
        })
        .collect()
}

fn spectrum_of(method: Method, rows: &[Vec<f64>]) -> Spectrum {
    let mut e = CovEstimator::new(method);
    for r in rows {
        e.push(r).unwrap();
    }
    e.spectrum().unwrap().unwrap()
}

/// Agreement to 1e-9 relative; eigenvalues that are zero in exact arithmetic
/// (rank-deficient cases) only to round-off of the largest.
fn assert_close(case: &str, got: &[f64], want: &[f64]) {
    assert_close_to(case, got, want, 1e-9, 1e-13);
}

/// Frequent Directions keeps its rows in f32: agreement to f32 round-off.
fn assert_close_f32(case: &str, got: &[f64], want: &[f64]) {
    assert_close_to(case, got, want, 1e-5, 1e-6);
}

fn assert_close_to(case: &str, got: &[f64], want: &[f64], relative: f64, of_largest: f64) {
    let largest = want[0];
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        let tolerance = relative * w.abs() + of_largest * largest;
        assert!((g - w).abs() <= tolerance, "{case}: λ_{} = {g}, numpy {w}", k + 1);
    }
}

#[test]
fn exact_matches_numpy_eigvalsh() {
    for c in cases() {
        let s = spectrum_of(Method::Exact, &c.rows);
        assert_eq!(s.eigenvalues.len(), c.d, "{}", c.name);
        assert_close(&c.name, &s.eigenvalues, &c.eigvalsh);
        assert_eq!(s.error_bound, 0.0);
        let trace: f64 = c.eigvalsh.iter().sum();
        assert!((s.total_variance - trace).abs() <= 1e-9 * trace, "{}", c.name);
    }
}

#[test]
fn gram_matches_numpy_on_the_nonzero_part() {
    for c in cases() {
        let s = spectrum_of(Method::Gram, &c.rows);
        assert_eq!(s.eigenvalues.len(), (c.rows.len() - 1).min(c.d), "{}", c.name);
        assert_close(&c.name, &s.eigenvalues, &c.eigvalsh);
    }
}

#[test]
fn auto_and_a_sketch_wider_than_the_data_are_exact() {
    for c in cases() {
        assert_close(&c.name, &spectrum_of(Method::Auto { rank: 8 }, &c.rows).eigenvalues, &c.eigvalsh);
        // Rank above d: every shrink removes only round-off.
        let s = spectrum_of(Method::Fd { rank: c.d + 1 }, &c.rows);
        assert!(s.error_bound <= 1e-6 * c.eigvalsh[0], "{}: {}", c.name, s.error_bound);
        assert_close_f32(&c.name, &s.eigenvalues, &c.eigvalsh[..s.eigenvalues.len()]);
    }
}

#[test]
fn merged_partial_states_match_numpy_after_a_round_trip_through_bytes() {
    for c in cases() {
        for method in [Method::Exact, Method::Gram, Method::Auto { rank: 8 }, Method::Fd { rank: c.d + 1 }] {
            let n = c.rows.len();
            let mut parts: Vec<CovEstimator> = (0..3).map(|_| CovEstimator::new(method)).collect();
            // Uneven parts, one of them a single row.
            for (i, r) in c.rows.iter().enumerate() {
                let part = if i == 0 {
                    0
                } else if i < n / 3 {
                    1
                } else {
                    2
                };
                parts[part].push(r).unwrap();
            }
            let mut merged = CovEstimator::new(method);
            for mut p in parts {
                merged.merge(codec::decode(&codec::encode(&mut p)).unwrap()).unwrap();
            }
            let s = merged.spectrum().unwrap().unwrap();
            assert_eq!(s.n, n as u64);
            let label = format!("{} {method:?}", c.name);
            let want = &c.eigvalsh[..s.eigenvalues.len()];
            match method {
                Method::Fd { .. } => assert_close_f32(&label, &s.eigenvalues, want),
                _ => assert_close(&label, &s.eigenvalues, want),
            }
        }
    }
}

/// n rows of dimension d whose population covariance has eigenvalues k^−s
/// (columns scaled, then mixed by a fixed orthogonal-ish rotation would not
/// change the spectrum; scaling alone keeps the test simple), plus a mean.
fn power_law_rows(n: usize, d: usize, s: f64, seed: u64) -> Vec<Vec<f64>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            (0..d)
                .map(|k| {
                    let z: f64 = StandardNormal.sample(&mut rng);
                    5.0 + z * ((k + 1) as f64).powf(-s / 2.0)
                })
                .collect()
        })
        .collect()
}

/// λ_i − Δ ≤ λ̂_i ≤ λ_i, and Δ ≤ Σ_{i>k} λ_i / (ℓ − k) for every k < ℓ.
fn assert_within_fd_bound(label: &str, sketch: &Spectrum, exact: &Spectrum, rank: usize) {
    let slack = 1e-6 * exact.eigenvalues[0]; // f32 sketch rows
    for (i, (approx, truth)) in sketch.eigenvalues.iter().zip(&exact.eigenvalues).enumerate() {
        assert!(*approx <= truth + slack, "{label}: λ̂_{i} = {approx} above λ = {truth}");
        assert!(*approx >= truth - sketch.error_bound - slack, "{label}: λ̂_{i} = {approx} below λ − Δ");
    }
    let bound =
        (0..rank).map(|k| exact.eigenvalues[k..].iter().sum::<f64>() / (rank - k) as f64).fold(f64::INFINITY, f64::min);
    assert!(sketch.error_bound <= bound * (1.0 + 1e-9), "{label}: Δ = {} > bound {bound}", sketch.error_bound);
    assert!(sketch.error_bound > 0.0, "{label}: the test should make the sketch shrink");
    assert!((sketch.total_variance - exact.total_variance).abs() <= 1e-9 * exact.total_variance);
}

#[test]
fn frequent_directions_stays_within_its_bound_on_known_spectra() {
    for (s, rank) in [(1.0, 16), (0.5, 24), (2.0, 8)] {
        let rows = power_law_rows(1500, 120, s, 7);
        let exact = spectrum_of(Method::Exact, &rows);
        let sketch = spectrum_of(Method::Fd { rank }, &rows);
        assert_eq!(sketch.eigenvalues.len(), rank);
        assert_within_fd_bound(&format!("s={s} ℓ={rank}"), &sketch, &exact, rank);
        eprintln!("s={s} ℓ={rank}: Δ/λ1 = {}", sketch.error_bound / exact.eigenvalues[0]);
        if s >= 1.0 {
            // A fast-decaying spectrum leaves little mass beyond rank ℓ: the error bar must be useful.
            assert!(sketch.error_bound < 0.2 * exact.eigenvalues[0], "s={s}: Δ too large to be useful");
        }
    }
}

#[test]
fn merged_frequent_directions_sketches_stay_within_the_bound() {
    let rank = 16;
    let rows = power_law_rows(2000, 100, 1.0, 11);
    // The halves have different means: the merge must add the mean-difference term.
    let shifted: Vec<Vec<f64>> =
        rows.iter().enumerate().map(|(i, r)| r.iter().map(|v| if i < 700 { v + 0.3 } else { *v }).collect()).collect();
    let mut a = CovEstimator::new(Method::Fd { rank });
    let mut b = CovEstimator::new(Method::Fd { rank });
    for (i, r) in shifted.iter().enumerate() {
        if i < 700 { a.push(r) } else { b.push(r) }.unwrap();
    }
    a.merge(codec::decode(&codec::encode(&mut b)).unwrap()).unwrap();
    let merged = a.spectrum().unwrap().unwrap();
    let exact = spectrum_of(Method::Exact, &shifted);
    assert_within_fd_bound("merged", &merged, &exact, rank);
}

#[test]
fn frequent_directions_over_several_column_blocks_stays_within_its_bound() {
    // d spans two full blocks of the sketch's products (1024 columns) and a partial third,
    // which holds the largest variances (coordinates reversed); the Gram method is exact
    // for n ≪ d.
    let mut rows = power_law_rows(82, 2500, 1.0, 17);
    rows.iter_mut().for_each(|r| r.reverse());
    let exact = spectrum_of(Method::Gram, &rows);
    let sketch = spectrum_of(Method::Fd { rank: 8 }, &rows);
    assert_eq!(sketch.eigenvalues.len(), 8);
    assert_within_fd_bound("d=2500 ℓ=8", &sketch, &exact, 8);
}

#[test]
fn compacted_sketches_travel_in_rank_rows_and_stay_within_the_bound() {
    let rank = 16;
    let rows = power_law_rows(2000, 100, 1.0, 13);
    let (mut a, mut b) = (CovEstimator::new(Method::Fd { rank }), CovEstimator::new(Method::Fd { rank }));
    for (i, r) in rows.iter().enumerate() {
        if i < 1000 { a.push(r) } else { b.push(r) }.unwrap();
    }
    // The rows a sketch holds, read from the layout codec.rs documents: 56 bytes of header
    // and counts, the mean (d f64), then the number of rows.
    let held = |bytes: &[u8]| u64::from_le_bytes(bytes[56 + 8 * 100..64 + 8 * 100].try_into().unwrap()) as usize;
    let before = held(&codec::encode(&mut b.clone()));
    assert!(before > rank, "the test must start from a buffer of more than ℓ rows, not {before}");
    b.compact().unwrap();
    let compact = codec::encode(&mut b);
    assert_eq!(held(&compact), rank);
    a.compact().unwrap();
    a.merge(codec::decode(&compact).unwrap()).unwrap();
    let merged = a.spectrum().unwrap().unwrap();
    assert_eq!(merged.eigenvalues.len(), rank, "a compacted sketch still answers with ℓ eigenvalues");
    assert_within_fd_bound("compacted", &merged, &spectrum_of(Method::Exact, &rows), rank);
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let mut e = CovEstimator::new(Method::Exact);
    e.push(&[1.0, 2.0]).unwrap();
    let err = e.push(&[1.0, 2.0, 3.0]).unwrap_err().to_string();
    assert!(err.contains("different lengths") && err.contains("2 then 3"), "{err}");
    let mut fd = CovEstimator::new(Method::Fd { rank: 4 });
    fd.push(&[1.0, 2.0]).unwrap();
    assert!(fd.clone().merge(e.clone()).is_err());
    let mut other = CovEstimator::new(Method::Fd { rank: 5 });
    other.push(&[1.0, 2.0]).unwrap();
    let err = fd.merge(other).unwrap_err().to_string();
    assert!(err.contains("rank 4") && err.contains("rank 5"), "{err}");
    let bytes = codec::encode(&mut e);
    for cut in [0, 3, 10, bytes.len() - 1] {
        assert!(codec::decode(&bytes[..cut]).is_err(), "cut at {cut}");
    }
    let mut future = bytes.clone();
    future[4] = 9;
    assert!(codec::decode(&future).unwrap_err().to_string().contains("version 9"));
    // One row: no covariance.
    let mut one = CovEstimator::new(Method::Gram);
    one.push(&[1.0]).unwrap();
    assert_eq!(one.spectrum().unwrap(), None);
}
