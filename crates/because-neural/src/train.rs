//! What every neural model's training shares, on burn (autodiff over the
//! `flex` CPU backend): the device, parameters from plain arrays and back,
//! networks whose weights read back as plain arrays, and seeded dropout.
//! Each model's own graph sits beside the model (`sasrec/net.rs`, in
//! `gru4rec.rs` and `twotower.rs`).

use because_core::rng::Rng;
use because_core::{Error, Result};
use burn::module::Param;
use burn::tensor::{Device, Tensor, TensorData};

/// The device training runs on: burn's CPU backend with autodiff.
pub(crate) fn device() -> Device {
    Device::default().autodiff()
}

/// Reads a tensor back into a plain vector.
pub(crate) fn to_vec<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    let data = t.into_data();
    data.as_slice::<f32>()
        .map(<[f32]>::to_vec)
        .map_err(|e| Error::Shape(format!("reading a tensor back: {e:?}")))
}

pub(crate) fn param1(v: &[f32], device: &Device) -> Param<Tensor<1>> {
    Param::from_data(TensorData::new(v.to_vec(), [v.len()]), device)
}

pub(crate) fn param2(v: &[f32], rows: usize, cols: usize, device: &Device) -> Param<Tensor<2>> {
    Param::from_data(TensorData::new(v.to_vec(), [rows, cols]), device)
}

/// The gradient of parameter `p` in `g`, as a plain vector (zeros when the
/// parameter took no part in the loss).
pub(crate) fn grad_of<const D: usize>(
    p: &Param<Tensor<D>>,
    g: &burn::tensor::Gradients,
) -> Result<Vec<f32>> {
    let v = p.val();
    match v.grad(g) {
        Some(t) => to_vec(t),
        None => Ok(vec![0.0; v.shape().num_elements()]),
    }
}

/// Inverted dropout with rate `p`, its masks drawn from our own seeded
/// generator (not the backend's global one), so that a model trains the
/// same whatever else trains at the same time in the process.
pub(crate) struct Dropout {
    p: f32,
    rng: Rng,
}

impl Dropout {
    /// Dropout at rate `p` with masks from `rng`.
    pub(crate) fn new(p: f32, rng: Rng) -> Dropout {
        Dropout { p, rng }
    }
    /// No dropout (evaluation, gradients for explanations).
    pub(crate) fn off() -> Dropout {
        Dropout::new(0.0, Rng::new(0))
    }
    /// `x` with each entry kept with probability `1 - p` and scaled by `1 / (1 - p)`.
    pub(crate) fn apply<const D: usize>(&mut self, x: Tensor<D>) -> Tensor<D> {
        if self.p <= 0.0 {
            return x;
        }
        let shape = x.shape();
        let n = shape.num_elements();
        let scale = 1.0 / (1.0 - self.p);
        let mask: Vec<f32> = (0..n)
            .map(|_| {
                if self.rng.next_f32() < self.p {
                    0.0
                } else {
                    scale
                }
            })
            .collect();
        let mask = Tensor::<D>::from_data(TensorData::new(mask, shape), &x.device());
        x * mask
    }
}
