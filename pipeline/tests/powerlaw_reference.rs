//! The exact fit reproduces the Python `powerlaw` package (CSN with every
//! distinct value a candidate) on stored inputs; see fixtures/powerlaw/make_reference.py.

use std::path::PathBuf;

use gradlake_pipeline::stats::powerlaw::{Candidates, fit};
use gradlake_pipeline::stats::sample::PositiveSample;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/powerlaw")
}

#[test]
fn matches_python_powerlaw_on_stored_sets() {
    let reference: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("reference.json")).unwrap()).unwrap();
    let sets = reference["sets"].as_object().unwrap();
    assert_eq!(sets.len(), 4);
    for (name, want) in sets {
        let text = std::fs::read_to_string(fixtures().join(format!("{name}.txt"))).unwrap();
        let values = text.lines().map(|l| l.parse::<f64>().unwrap());
        let sample = PositiveSample::new(values);
        let got = fit(&sample.sorted, Candidates::All).unwrap();
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-6 * b.abs();
        assert_eq!(got.xmin, want["xmin"].as_f64().unwrap(), "{name}: xmin");
        assert_eq!(got.n_tail, want["n_tail"].as_u64().unwrap(), "{name}: n_tail");
        assert!(close(got.alpha, want["alpha"].as_f64().unwrap()), "{name}: alpha {} vs {}", got.alpha, want["alpha"]);
        assert!(close(got.ks, want["ks"].as_f64().unwrap()), "{name}: ks {} vs {}", got.ks, want["ks"]);
        assert!(close(got.sigma, want["sigma"].as_f64().unwrap()), "{name}: sigma");
    }
}
