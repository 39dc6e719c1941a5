//! Gradients of the cross-entropy loss: of one batch, of the whole dataset and
//! of single examples.
//!
//! Per-sample gradients are exact either way. For the built-in models one
//! backward pass of the summed loss gives each example's gradient with respect
//! to each layer's output g_b, from which its weight gradients follow: for a
//! fully connected layer the outer product g_b ⊗ a_b with the layer's input
//! (bias: g_b); for a convolution the product of g_b, as [out channels,
//! positions], with the transposed unfolded input (im2col: [in channels ×
//! kernel, positions]) — every output position's contribution summed in one
//! matrix product (bias: g_b summed over positions). TorchScript modules take
//! one backward pass per example.
//!
//! Everything but the vectorised path works on any [`Network`]; for the
//! built-in [`Model`] it performs the same libtorch operations as it always
//! did, so recorded and replayed gradients stay bit for bit equal.

use tch::{Kind, Reduction, Tensor};

use crate::data::Dataset;
use crate::error::Result;
use crate::model::{Model, Network};

/// Examples whose per-sample gradients are formed at once in the vectorised
/// path: bounds its temporaries to [group, out, in] weight gradients (26 MB for
/// the default MLP's first layer) and, for LeNet, [group, 150, 100] unfolded
/// inputs. 64 measured fastest for LeNet on 2 cores (16: 1.4× slower, 256: 1.5×).
const SAMPLE_GROUP: i64 = 64;

/// A tensor's values, flattened, as f32.
pub fn to_vec(t: &Tensor) -> Result<Vec<f32>> {
    Ok(Vec::<f32>::try_from(t.to_kind(Kind::Float).flatten(0, -1))?)
}

/// Sets every param's gradient to zero (or leaves it undefined).
pub fn zero_grads<M: Network + ?Sized>(model: &M) {
    for (_, p) in model.params() {
        let mut g = p.grad();
        if g.defined() {
            let _ = g.zero_();
        }
    }
}

/// Every param's current gradient, flattened (zeros where none was computed).
pub fn read_grads<M: Network + ?Sized>(model: &M) -> Result<Vec<Vec<f32>>> {
    model
        .params()
        .iter()
        .map(|(_, p)| {
            let g = p.grad();
            if g.defined() { to_vec(&g) } else { Ok(vec![0.0; p.numel()]) }
        })
        .collect()
}

/// Mean cross-entropy of `logits` `[batch, classes]` against labels `y` `[batch]`
/// (what tch's `cross_entropy_for_logits` computes, with errors instead of panics).
pub fn cross_entropy(logits: &Tensor, y: &Tensor) -> Result<Tensor> {
    Ok(logits.f_log_softmax(-1, Kind::Float)?.f_nll_loss::<Tensor>(y, None, Reduction::Mean, -100)?)
}

/// Mean cross-entropy of a batch.
pub fn mean_loss<M: Network + ?Sized>(model: &M, x: &Tensor, y: &Tensor) -> Result<Tensor> {
    cross_entropy(&model.logits(x)?, y)
}

/// Mean cross-entropy of a batch, and the share of it classified right.
pub fn batch_loss(model: &Model, x: &Tensor, y: &Tensor) -> (Tensor, f64) {
    let logits = model.forward(x).logits;
    let accuracy = logits.argmax(-1, false).eq_tensor(y).to_kind(Kind::Float).mean(Kind::Float).double_value(&[]);
    (logits.cross_entropy_for_logits(y), accuracy)
}

/// The gradient of the mean loss over the examples at `index`.
pub fn batch_gradient<M: Network + ?Sized>(model: &M, data: &Dataset, index: &Tensor) -> Result<Vec<Vec<f32>>> {
    zero_grads(model);
    let (x, y) = data.select(index);
    mean_loss(model, &x, &y)?.f_backward()?;
    read_grads(model)
}

/// The full-batch gradient: of the mean loss over every example, accumulated
/// `chunk` examples at a time.
pub fn full_gradient<M: Network + ?Sized>(model: &M, data: &Dataset, chunk: i64) -> Result<Vec<Vec<f32>>> {
    zero_grads(model);
    let n = data.len();
    let mut start = 0;
    while start < n {
        let len = chunk.min(n - start);
        let x = data.features.narrow(0, start, len);
        let y = data.labels.narrow(0, start, len);
        // Sum over the chunk divided by n: the chunks add up to the mean.
        (mean_loss(model, &x, &y)? * (len as f64 / n as f64)).f_backward()?;
        start += len;
    }
    read_grads(model)
}

/// Per-example gradients of the examples at `index`: `emit(position, param, values)`
/// for each example (in `index` order) and param.
pub fn per_sample_gradients<M: Network + ?Sized>(
    model: &M,
    data: &Dataset,
    index: &[i64],
    emit: &mut dyn FnMut(usize, usize, Vec<f32>) -> Result<()>,
) -> Result<()> {
    match model.builtin() {
        Some(m) => per_sample_vectorised(m, data, index, emit),
        None => per_sample_loop(model, data, index, emit),
    }
}

/// One backward pass per example: the general path.
pub fn per_sample_loop<M: Network + ?Sized>(
    model: &M,
    data: &Dataset,
    index: &[i64],
    emit: &mut dyn FnMut(usize, usize, Vec<f32>) -> Result<()>,
) -> Result<()> {
    for (pos, &i) in index.iter().enumerate() {
        let grads = batch_gradient(model, data, &Tensor::from_slice(&[i]))?;
        for (param, g) in grads.into_iter().enumerate() {
            emit(pos, param, g)?;
        }
    }
    Ok(())
}

/// Per-sample gradients of the built-in models from one backward pass per
/// group of examples: outer products for fully connected layers, products with
/// the unfolded input for convolutions.
pub fn per_sample_vectorised(
    model: &Model,
    data: &Dataset,
    index: &[i64],
    emit: &mut dyn FnMut(usize, usize, Vec<f32>) -> Result<()>,
) -> Result<()> {
    let convs = model.convs().count();
    for (group, positions) in index.chunks(SAMPLE_GROUP as usize).enumerate() {
        let (x, y) = data.select(&Tensor::from_slice(positions));
        let forward = model.forward(&x);
        let b = positions.len() as f64;
        // Each example's loss, summed: ∂/∂z_b of the sum is example b's own gradient.
        let loss = forward.logits.cross_entropy_for_logits(&y) * b;
        let outputs: Vec<&Tensor> = forward.conv_outputs.iter().chain(&forward.linear_outputs).collect();
        let output_grads = Tensor::run_backward(&[loss], &outputs, false, false);
        let (weights, biases): (Vec<Tensor>, Vec<Tensor>) = tch::no_grad(|| {
            let conv_grads = output_grads[..convs].iter().zip(&forward.conv_inputs).zip(model.convs()).map(
                |((g, a), (conv, padding))| {
                    let w = conv.ws.size();
                    // [b, in·kh·kw, positions]: the input patch each output position saw.
                    let cols = a.detach().im2col([w[2], w[3]], [1, 1], [padding, padding], [1, 1]);
                    let g = g.flatten(2, -1);
                    (
                        g.bmm(&cols.transpose(1, 2)).reshape([-1, w[0], w[1], w[2], w[3]]),
                        g.sum_dim_intlist(2, false, None),
                    )
                },
            );
            let linear_grads = output_grads[convs..]
                .iter()
                .zip(&forward.linear_inputs)
                .map(|(g, a)| (Tensor::einsum("bo,bi->boi", &[g, &a.detach()], None::<i64>), g.shallow_clone()));
            conv_grads.chain(linear_grads).unzip()
        });
        for k in 0..positions.len() {
            let pos = group * SAMPLE_GROUP as usize + k;
            for (layer, (w, bias)) in weights.iter().zip(&biases).enumerate() {
                emit(pos, 2 * layer, to_vec(&w.get(k as i64))?)?;
                emit(pos, 2 * layer + 1, to_vec(&bias.get(k as i64))?)?;
            }
        }
    }
    Ok(())
}
