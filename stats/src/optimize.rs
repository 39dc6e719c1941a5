//! Derivative-free minimisation for the alternative distributions' likelihoods.

/// Minimises `f` from `start` with the Nelder–Mead simplex (standard
/// coefficients 1, 2, ½, ½). Non-finite values count as +∞, which keeps the
/// search inside a function's domain. Returns the best point and its value.
pub fn nelder_mead<const D: usize>(
    f: impl Fn(&[f64; D]) -> f64,
    start: [f64; D],
    step: [f64; D],
    iterations: usize,
) -> ([f64; D], f64) {
    let eval = |p: &[f64; D]| {
        let v = f(p);
        if v.is_finite() { v } else { f64::INFINITY }
    };
    let mut simplex: Vec<([f64; D], f64)> = Vec::with_capacity(D + 1);
    simplex.push((start, eval(&start)));
    for i in 0..D {
        let mut p = start;
        p[i] += step[i];
        simplex.push((p, eval(&p)));
    }
    let combine = |a: &[f64; D], b: &[f64; D], t: f64| {
        let mut out = [0.0; D];
        for i in 0..D {
            out[i] = a[i] + t * (b[i] - a[i]);
        }
        out
    };
    for _ in 0..iterations {
        simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
        let (best, worst) = (simplex[0].1, simplex[D].1);
        if (worst - best).abs() <= 1e-12 * (1.0 + best.abs()) && best.is_finite() {
            break;
        }
        let mut centroid = [0.0; D];
        for (p, _) in &simplex[..D] {
            for i in 0..D {
                centroid[i] += p[i] / D as f64;
            }
        }
        let worst_point = simplex[D].0;
        let reflected = combine(&centroid, &worst_point, -1.0);
        let fr = eval(&reflected);
        if fr < simplex[0].1 {
            let expanded = combine(&centroid, &worst_point, -2.0);
            let fe = eval(&expanded);
            simplex[D] = if fe < fr { (expanded, fe) } else { (reflected, fr) };
        } else if fr < simplex[D - 1].1 {
            simplex[D] = (reflected, fr);
        } else {
            let contracted = combine(&centroid, &worst_point, 0.5);
            let fc = eval(&contracted);
            if fc < simplex[D].1 {
                simplex[D] = (contracted, fc);
            } else {
                let best_point = simplex[0].0;
                for entry in simplex.iter_mut().skip(1) {
                    let p = combine(&best_point, &entry.0, 0.5);
                    *entry = (p, eval(&p));
                }
            }
        }
    }
    simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
    simplex[0]
}

/// Minimises a unimodal `f` on [lo, hi] by golden-section search.
pub fn golden_section(f: impl Fn(f64) -> f64, mut lo: f64, mut hi: f64, iterations: usize) -> (f64, f64) {
    let g = (5f64.sqrt() - 1.0) / 2.0;
    let eval = |x: f64| {
        let v = f(x);
        if v.is_finite() { v } else { f64::INFINITY }
    };
    let (mut a, mut b) = (hi - g * (hi - lo), lo + g * (hi - lo));
    let (mut fa, mut fb) = (eval(a), eval(b));
    for _ in 0..iterations {
        if fa <= fb {
            hi = b;
            (b, fb) = (a, fa);
            a = hi - g * (hi - lo);
            fa = eval(a);
        } else {
            lo = a;
            (a, fa) = (b, fb);
            b = lo + g * (hi - lo);
            fb = eval(b);
        }
    }
    if fa <= fb { (a, fa) } else { (b, fb) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_known_minima() {
        let (p, v) =
            nelder_mead(|p: &[f64; 2]| (p[0] - 3.0).powi(2) + 10.0 * (p[1] + 1.0).powi(2), [0.0, 0.0], [1.0, 1.0], 500);
        assert!((p[0] - 3.0).abs() < 1e-5 && (p[1] + 1.0).abs() < 1e-5 && v < 1e-9, "{p:?}");
        // Rosenbrock, the classic hard valley.
        let (p, _) = nelder_mead(
            |p: &[f64; 2]| (1.0 - p[0]).powi(2) + 100.0 * (p[1] - p[0] * p[0]).powi(2),
            [-1.2, 1.0],
            [0.5, 0.5],
            5000,
        );
        assert!((p[0] - 1.0).abs() < 1e-3 && (p[1] - 1.0).abs() < 1e-3, "{p:?}");
        let (x, _) = golden_section(|x| (x - 0.7).powi(2), -5.0, 5.0, 100);
        assert!((x - 0.7).abs() < 1e-9);
    }
}
