//! The random choices of a noise point: which minibatches are drawn and which
//! examples' per-sample gradients are recorded.
//!
//! Every recorder — the Rust one (`gradlake record`/`replay`) and the Python
//! `gradlake.torch.Recorder` — takes them from here, so that the same seed
//! gives the same draws and examples whichever wrote the lake, and lakes of one
//! model written from Rust and from Python can be compared gradient for gradient.
//! The streams are ChaCha8 seeded from the run's seed (and the step), as the
//! first recorder chose them; changing them changes every recorded run.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The `count` distinct examples out of `n` whose per-sample gradients are
/// recorded at every noise point of a run seeded `seed`, ascending.
///
/// # Panics
/// If `count > n` (recorders check this first and report it as an argument error).
pub fn sampled_examples(n: usize, count: usize, seed: u64) -> Vec<i64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5A4D_0000);
    let mut picked: Vec<i64> = rand::seq::index::sample(&mut rng, n, count).into_iter().map(|i| i as i64).collect();
    picked.sort_unstable();
    picked
}

/// The `draws` minibatches of `batch_size` distinct examples out of `n`
/// drawn at the noise point of `step` of a run seeded `seed`, each in the
/// order it was drawn (the order the examples enter the forward pass).
///
/// # Panics
/// If `batch_size > n`.
pub fn noise_point_draws(seed: u64, step: i64, n: usize, batch_size: usize, draws: usize) -> Vec<Vec<i64>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xD4A3_0000 ^ (step as u64).wrapping_mul(0x9E37_79B9));
    (0..draws)
        .map(|_| rand::seq::index::sample(&mut rng, n, batch_size).into_iter().map(|i| i as i64).collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples_are_distinct_ascending_and_in_range() {
        let picked = sampled_examples(100, 30, 7);
        assert_eq!(picked.len(), 30);
        assert!(picked.windows(2).all(|w| w[0] < w[1]));
        assert!(picked.iter().all(|&i| (0..100).contains(&i)));
        assert_ne!(picked, sampled_examples(100, 30, 8), "the seed chooses them");
    }

    #[test]
    fn draws_are_batches_of_distinct_examples_that_differ_by_step() {
        let draws = noise_point_draws(3, 5, 50, 20, 4);
        assert_eq!(draws.len(), 4);
        for d in &draws {
            let mut sorted = d.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), 20);
            assert!(sorted.iter().all(|&i| (0..50).contains(&i)));
        }
        assert_ne!(draws[0], draws[1]);
        assert_ne!(draws, noise_point_draws(3, 6, 50, 20, 4));
        assert_eq!(draws, noise_point_draws(3, 5, 50, 20, 4));
    }
}
