//! TorchScript modules against PyTorch itself (`fixtures/torchscript`, made by
//! its `make_fixture.py` with torch 2.13) and against the built-in MLP of the
//! same shape and weights; and the errors for files that do not fit.

use std::path::{Path, PathBuf};

use gradlake_recorder::checkpoint::read_header;
use gradlake_recorder::data::Dataset;
use gradlake_recorder::gradients::{full_gradient, mean_loss, per_sample_gradients, read_grads, zero_grads};
use gradlake_recorder::model::{Architecture, Model, Network};
use gradlake_recorder::torchscript::TorchScriptModel;
use tch::{Kind, Tensor};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/torchscript").join(name)
}

fn module() -> TorchScriptModel {
    tch::set_num_threads(1);
    TorchScriptModel::load(&fixture("mlp.pt")).unwrap()
}

/// The fixture's batch as a dataset: x [20, 64] f32, y [20] in 0..9.
fn batch() -> Dataset {
    let tensors = Tensor::read_safetensors(fixture("batch.safetensors")).unwrap();
    let get = |name: &str| tensors.iter().find(|(n, _)| n == name).unwrap().1.shallow_clone();
    Dataset { name: "fixture".into(), features: get("x"), labels: get("y"), classes: 10, image_side: Some(8) }
}

fn reference() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("reference.json")).unwrap()).unwrap()
}

fn floats(v: &serde_json::Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

/// max |a − b| over max |b|.
fn relative_error(a: &[f32], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    a.iter().zip(b).map(|(x, y)| (f64::from(*x) - y).abs()).fold(0.0, f64::max) / scale
}

#[test]
fn the_fixture_module_has_the_params_of_pytorch_in_order() {
    let m = module();
    let names: Vec<(&str, Vec<i64>)> = m.params().iter().map(|(n, t)| (n.as_str(), t.size())).collect();
    let r = reference();
    let want: Vec<(&str, Vec<i64>)> = r["param_order"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            let n = n.as_str().unwrap();
            (n, r[n]["shape"].as_array().unwrap().iter().map(|d| d.as_i64().unwrap()).collect())
        })
        .collect();
    assert_eq!(names, want);
    assert_eq!(m.name(), "torchscript:mlp.pt");
    assert_eq!(m.describe()["params"][4]["name"], "fc3.weight");
}

#[test]
fn torchscript_gradients_equal_pytorchs() {
    let mut m = module();
    // Wipe the weights saved in mlp.pt: only the checkpoint can give them back.
    tch::no_grad(|| {
        for (_, p) in m.params() {
            let _ = p.shallow_clone().zero_();
        }
    });
    m.load_checkpoint(&fixture("weights.safetensors")).unwrap();
    let data = batch();
    zero_grads(&m);
    let loss = mean_loss(&m, &data.features, &data.labels).unwrap();
    loss.backward();
    let r = reference();
    assert_eq!(loss.double_value(&[]) as f32, r["loss_f32"].as_f64().unwrap() as f32);
    let grads = read_grads(&m).unwrap();
    for ((name, _), g) in m.params().iter().zip(&grads) {
        let f32_ref: Vec<f32> = floats(&r[name]["grad_f32"]).into_iter().map(|x| x as f32).collect();
        let f32_ref64: Vec<f64> = f32_ref.iter().map(|&x| f64::from(x)).collect();
        // The same arithmetic in f32, summed in another order: a few units in the last
        // place apart (measured 2–7e-8 relative), not bit for bit.
        let e32 = relative_error(g, &f32_ref64);
        assert!(e32 <= 2e-7, "{name}: {e32:e} from PyTorch's f32 gradient");
        let e64 = relative_error(g, &floats(&r[name]["grad"]));
        assert!(e64 <= 1e-5, "{name}: {e64:e} from PyTorch's f64 gradient");
        eprintln!("{name}: relative error {e32:e} vs f32, {e64:e} vs f64; bit-equal: {}", g == &f32_ref);
    }
}

#[test]
fn a_torchscript_module_and_the_builtin_mlp_with_its_weights_have_the_same_gradients() {
    let mut ts = module();
    let data = batch();
    let mut mlp = Model::new(Architecture::Mlp { hidden: vec![16, 12] }, 64, Some(8), 10, 3).unwrap();
    let weights = fixture("weights.safetensors");
    ts.load_checkpoint(&weights).unwrap();
    mlp.load_checkpoint(&weights).unwrap();
    ts.check_data(&data).unwrap();
    mlp.check_data(&data).unwrap();

    // Full gradient in uneven chunks.
    let a = full_gradient(&ts, &data, 7).unwrap();
    let b = full_gradient(&mlp, &data, 7).unwrap();
    for ((name, _), (a, b)) in mlp.params().iter().zip(a.iter().zip(&b)) {
        let b: Vec<f64> = b.iter().map(|&x| f64::from(x)).collect();
        let e = relative_error(a, &b);
        assert!(e <= 1e-6, "{name}: full gradients differ by {e:e}");
    }

    // Per-sample: the module's per-example loop against the built-in's vectorised path.
    let index = [0, 5, 6, 19];
    let mut looped = vec![vec![Vec::new(); 6]; index.len()];
    per_sample_gradients(&ts, &data, &index, &mut |pos, param, v| {
        looped[pos][param] = v;
        Ok(())
    })
    .unwrap();
    let mut seen = 0;
    per_sample_gradients(&mlp, &data, &index, &mut |pos, param, v| {
        let want: Vec<f64> = looped[pos][param].iter().map(|&x| f64::from(x)).collect();
        let e = relative_error(&v, &want);
        assert!(e <= 1e-5, "sample {pos}, param {param}: {e:e}");
        seen += 1;
        Ok(())
    })
    .unwrap();
    assert_eq!(seen, 4 * 6);
}

#[test]
fn a_file_that_is_not_torchscript_is_named() {
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("notes.pt");
    std::fs::write(&garbage, b"certainly not a zip archive").unwrap();
    for file in [garbage.clone(), fixture("weights.safetensors")] {
        let err = TorchScriptModel::load(&file).unwrap_err().to_string();
        assert!(err.contains(&file.display().to_string()) && err.contains("not a TorchScript module"), "{err}");
        assert!(!err.contains("Exception raised from"), "no C++ backtrace: {err}");
    }
    let missing = dir.path().join("missing.pt");
    let err = TorchScriptModel::load(&missing).unwrap_err().to_string();
    assert!(err.contains("missing.pt") && err.contains("cannot open"), "{err}");
}

/// Writes the fixture's weights, changed by `edit`, as a checkpoint.
fn edited_weights(dir: &Path, name: &str, edit: impl FnOnce(&mut Vec<(String, Tensor)>)) -> PathBuf {
    let mut tensors = Tensor::read_safetensors(fixture("weights.safetensors")).unwrap();
    edit(&mut tensors);
    let path = dir.join(name);
    Tensor::write_safetensors(&tensors, &path).unwrap();
    path
}

#[test]
fn a_checkpoint_that_does_not_fit_is_named_with_the_tensor() {
    let mut m = module();
    let dir = tempfile::tempdir().unwrap();
    let check = |path: &Path, m: &mut TorchScriptModel, wants: &[&str]| {
        let err = m.load_checkpoint(path).unwrap_err().to_string();
        assert!(err.contains(&path.display().to_string()), "{err}");
        for w in wants {
            assert!(err.contains(w), "{err} should say {w:?}");
        }
        // The header alone tells the same (that is what replay checks before writing).
        let expected: Vec<(String, Vec<i64>)> = m.params().iter().map(|(n, t)| (n.clone(), t.size())).collect();
        let header = read_header(path).map(|h| gradlake_recorder::checkpoint::check_tensors(path, &expected, &h));
        assert!(matches!(header, Err(_) | Ok(Err(_))), "{path:?} passes the header check");
    };
    let missing = edited_weights(dir.path(), "missing.safetensors", |t| t.retain(|(n, _)| n != "fc3.bias"));
    check(&missing, &mut m, &["no tensor \"fc3.bias\""]);
    let extra = edited_weights(dir.path(), "extra.safetensors", |t| {
        t.push(("bn.running_mean".into(), Tensor::zeros([16], (Kind::Float, tch::Device::Cpu))))
    });
    check(&extra, &mut m, &["\"bn.running_mean\" is not a param"]);
    let shape = edited_weights(dir.path(), "shape.safetensors", |t| {
        let w = t.iter_mut().find(|(n, _)| n == "fc1.weight").unwrap();
        w.1 = w.1.narrow(1, 0, 63).contiguous();
    });
    check(&shape, &mut m, &["\"fc1.weight\" has shape [16, 63]", "[16, 64]"]);
    let ints = edited_weights(dir.path(), "ints.safetensors", |t| {
        let b = t.iter_mut().find(|(n, _)| n == "fc2.bias").unwrap();
        b.1 = b.1.to_kind(Kind::Int64);
    });
    check(&ints, &mut m, &["\"fc2.bias\"", "not floating-point"]);
    // Not safetensors at all, and a truncated one.
    let garbage = dir.path().join("garbage.safetensors");
    std::fs::write(&garbage, b"\xff\xff\xff\xff\xff\xff\xff\x7f and so on").unwrap();
    assert!(read_header(&garbage).unwrap_err().to_string().contains("not a safetensors file"));
    check(&garbage, &mut m, &[]);
    let bytes = std::fs::read(fixture("weights.safetensors")).unwrap();
    let truncated = dir.path().join("truncated.safetensors");
    std::fs::write(&truncated, &bytes[..bytes.len() - 10]).unwrap();
    let err = read_header(&truncated).unwrap_err().to_string();
    assert!(err.contains("truncated.safetensors") && err.contains("truncated: tensor"), "{err}");
    check(&truncated, &mut m, &[]);

    // f64 weights are converted to the module's f32, and give the same gradients.
    let double = edited_weights(dir.path(), "double.safetensors", |t| {
        t.iter_mut().for_each(|(_, w)| *w = w.to_kind(Kind::Double))
    });
    m.load_checkpoint(&double).unwrap();
    let data = batch();
    let a = full_gradient(&m, &data, 20).unwrap();
    m.load_checkpoint(&fixture("weights.safetensors")).unwrap();
    assert_eq!(a, full_gradient(&m, &data, 20).unwrap());
}

#[test]
fn a_dataset_the_module_cannot_take_is_explained() {
    let mut m = module();
    let data = batch();
    let narrow = Dataset { features: data.features.narrow(1, 0, 63), ..batch() };
    let err = m.check_data(&narrow).unwrap_err().to_string();
    assert!(err.contains("mlp.pt") && err.contains("[2, 63]") && err.contains("mat1 and mat2"), "{err}");
    assert!(!err.contains("Traceback"), "only the interpreter's error: {err}");
    let many = Dataset { classes: 12, ..batch() };
    let err = m.check_data(&many).unwrap_err().to_string();
    assert!(err.contains("scores 10 classes") && err.contains("has 12"), "{err}");
    // Still in training mode, and usable, after the failed probes.
    m.check_data(&data).unwrap();
    assert!(full_gradient(&m, &data, 20).is_ok());

    let mut mlp = Model::new(Architecture::Mlp { hidden: vec![4] }, 64, Some(8), 10, 0).unwrap();
    let err = mlp.check_data(&narrow).unwrap_err().to_string();
    assert!(err.contains("takes 64 features") && err.contains("63 features"), "{err}");
}
