//! Recorded gradients against independent computations: central finite
//! differences of the loss (in f64), and the per-example loop against the
//! vectorised per-sample path.

use gradlake_recorder::data::Dataset;
use gradlake_recorder::gradients::{full_gradient, per_sample_loop, per_sample_vectorised};
use gradlake_recorder::model::{Architecture, Model};
use tch::Kind;

fn tiny() -> (Dataset, Model) {
    tch::set_num_threads(1);
    let data = Dataset::synthetic(40, 3, 1).unwrap();
    let model = Model::new(Architecture::Mlp { hidden: vec![5] }, data.feature_count(), data.image_side, 3, 7).unwrap();
    (data, model)
}

fn lenet() -> (Dataset, Model) {
    tch::set_num_threads(1);
    let data = Dataset::synthetic(24, 3, 2).unwrap();
    let model = Model::new(Architecture::Lenet, data.feature_count(), data.image_side, 3, 5).unwrap();
    (data, model)
}

/// The mean cross-entropy in f64 (tch's `cross_entropy_for_logits` rounds to f32).
fn full_loss(model: &Model, data: &Dataset) -> f64 {
    tch::no_grad(|| {
        let logits = model.forward(&data.features).logits;
        logits.log_softmax(-1, Kind::Double).nll_loss(&data.labels).double_value(&[])
    })
}

#[test]
fn full_gradient_matches_central_differences() {
    let (data, model) = tiny();
    central_differences(data, model);
}

/// LeNet's convolutions, pooling and fully connected layers, checked the same way.
#[test]
fn lenet_full_gradient_matches_central_differences() {
    let (data, model) = lenet();
    central_differences(data, model);
}

fn central_differences(data: Dataset, mut model: Model) {
    // f64 weights and inputs: differences of the loss are then accurate to ~1e-10.
    model.vs.double();
    let data = Dataset { features: data.features.to_kind(Kind::Double), ..data };
    let grads = full_gradient(&model, &data, 16).unwrap();
    let eps = 1e-6;
    let mut checked = 0;
    for (p, (name, tensor)) in model.params().iter().enumerate() {
        let numel = tensor.numel();
        // A spread of coordinates of every param.
        for flat in (0..numel).step_by((numel / 7).max(1)) {
            let view = tensor.detach().view([-1]);
            let original = view.double_value(&[flat as i64]);
            let _ = view.get(flat as i64).fill_(original + eps);
            let up = full_loss(&model, &data);
            let _ = view.get(flat as i64).fill_(original - eps);
            let down = full_loss(&model, &data);
            let _ = view.get(flat as i64).fill_(original);
            let numeric = (up - down) / (2.0 * eps);
            let recorded = f64::from(grads[p][flat]);
            assert!(
                (recorded - numeric).abs() <= 1e-5 * numeric.abs().max(1e-3),
                "{name}[{flat}]: recorded {recorded}, finite differences {numeric}"
            );
            checked += 1;
        }
    }
    assert!(checked > 20);
}

#[test]
fn vectorised_per_sample_gradients_equal_the_per_example_loop() {
    let (data, model) = tiny();
    vectorised_equals_loop(data, model, vec![0, 3, 17, 18, 39]);
}

/// Convolutions too: each example's conv gradient from the unfolded input (im2col) is the
/// one its own backward pass gives, over more examples than one group holds.
#[test]
fn lenet_vectorised_per_sample_gradients_equal_the_per_example_loop() {
    let (data, model) = lenet();
    vectorised_equals_loop(data, model, (0..20).rev().collect());
}

fn vectorised_equals_loop(data: Dataset, model: Model, index: Vec<i64>) {
    let mut looped = vec![vec![Vec::new(); model.params().len()]; index.len()];
    per_sample_loop(&model, &data, &index, &mut |pos, param, v| {
        looped[pos][param] = v;
        Ok(())
    })
    .unwrap();
    let mut seen = 0;
    per_sample_vectorised(&model, &data, &index, &mut |pos, param, v| {
        let want = &looped[pos][param];
        assert_eq!(v.len(), want.len());
        // f32 round-off, relative to the tensor's largest entry.
        let scale = want.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        for (a, b) in v.iter().zip(want) {
            assert!((a - b).abs() <= 1e-5 * scale, "sample {pos} param {param}: {a} vs {b}");
        }
        seen += 1;
        Ok(())
    })
    .unwrap();
    assert_eq!(seen, index.len() * model.params().len());
    // Each example's gradient is its own: the mean of the per-example gradients
    // over every example is the full-batch gradient.
    let all: Vec<i64> = (0..data.len()).collect();
    let mut sum = vec![Vec::new(); model.params().len()];
    per_sample_vectorised(&model, &data, &all, &mut |_, param, v| {
        if sum[param].is_empty() {
            sum[param] = vec![0.0f64; v.len()];
        }
        sum[param].iter_mut().zip(&v).for_each(|(s, x)| *s += f64::from(*x));
        Ok(())
    })
    .unwrap();
    let full = full_gradient(&model, &data, 7).unwrap();
    for (s, f) in sum.iter().zip(&full) {
        let scale = f.iter().fold(0.0f64, |m, x| m.max(f64::from(x.abs())));
        for (a, b) in s.iter().zip(f) {
            let mean = a / data.len() as f64;
            assert!((mean - f64::from(*b)).abs() <= 1e-5 * scale, "{mean} vs {b}");
        }
    }
}

#[test]
fn lenet_checks_its_input_and_records_every_per_sample_gradient() {
    tch::set_num_threads(1);
    let data = Dataset::synthetic(8, 2, 3).unwrap();
    let err = Model::new(Architecture::Lenet, 64, Some(8), 2, 0).err().unwrap().to_string();
    assert!(err.contains("lenet needs 28×28"), "{err}");
    let model = Model::new(Architecture::Lenet, data.feature_count(), data.image_side, 2, 0).unwrap();
    let names: Vec<&str> = model.params().iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names[..4], ["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias"]);
    assert_eq!(names.len(), 10);
    let mut count = 0;
    gradlake_recorder::gradients::per_sample_gradients(&model, &data, &[1, 2], &mut |_, p, v| {
        assert_eq!(v.len(), model.params()[p].1.numel());
        count += 1;
        Ok(())
    })
    .unwrap();
    assert_eq!(count, 20);
}
