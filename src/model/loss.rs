//! Output layers and their losses: sigmoid + binary cross-entropy, softmax + cross-entropy,
//! linear + mean squared error. Each loss is computed per event from the logits in a
//! numerically stable form, together with its gradient with respect to the logits.

use ndarray::ArrayView2;

use super::activation::sigmoid;
use crate::error::{Error, Result};

/// How the last layer's values (the logits) become scores, and which loss trains them.
///
/// | output | width k | score | loss per event |
/// |---|---|---|---|
/// | `sigmoid` | 1 | σ(z) = P(label 1) | BCE: −y ln σ(z) − (1−y) ln(1−σ(z)) |
/// | `softmax` | ≥ 2 | softmax(z) | CE: −Σ_j t_j ln softmax(z)_j |
/// | `linear` | any | z | MSE: (1/k) Σ_j (z_j − t_j)² (torch `MSELoss` per event) |
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// One logit, probability of class 1 by the logistic function.
    Sigmoid,
    /// k ≥ 2 logits, class probabilities by softmax.
    Softmax,
    /// The raw last-layer values (regression).
    Linear,
}

impl Output {
    /// Every valid name, as accepted by [`Output::parse`].
    pub const NAMES: [&'static str; 3] = ["sigmoid", "softmax", "linear"];

    /// Parses a name (case-insensitive).
    pub fn parse(name: &str) -> Result<Self> {
        match name.to_ascii_lowercase().as_str() {
            "sigmoid" => Ok(Output::Sigmoid),
            "softmax" => Ok(Output::Softmax),
            "linear" | "identity" => Ok(Output::Linear),
            _ => Err(Error::arg("output", format!("unknown output '{name}'; valid: {}", Self::NAMES.join(", ")))),
        }
    }

    /// The canonical name.
    pub fn name(self) -> &'static str {
        match self {
            Output::Sigmoid => "sigmoid",
            Output::Softmax => "softmax",
            Output::Linear => "linear",
        }
    }

    /// Errors unless a last layer of width `k` suits this output.
    pub fn check_width(self, k: usize) -> Result<()> {
        let ok = match self {
            Output::Sigmoid => k == 1,
            Output::Softmax => k >= 2,
            Output::Linear => k >= 1,
        };
        let need = match self {
            Output::Sigmoid => "exactly 1 output",
            Output::Softmax => "at least 2 outputs",
            Output::Linear => "at least 1 output",
        };
        if ok {
            Ok(())
        } else {
            Err(Error::Shape {
                op: "mlp",
                expected: format!("{need} for a {} output layer", self.name()),
                got: format!("{k}"),
            })
        }
    }

    /// In place: logits of one event → its scores.
    pub(crate) fn scores_row(self, z: &mut [f32]) {
        match self {
            Output::Sigmoid => z.iter_mut().for_each(|v| *v = sigmoid(*v)),
            Output::Softmax => softmax_row(z),
            Output::Linear => {}
        }
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What the loss compares the outputs with.
#[derive(Clone, Copy, Debug)]
pub enum Targets<'a> {
    /// One integer label per event: 0/1 for sigmoid, 0..k for softmax, the target value for a
    /// linear output of width 1.
    Labels(&'a [i64]),
    /// An `n × k` matrix: probabilities for sigmoid/softmax (soft labels), values for linear.
    Values(ArrayView2<'a, f32>),
}

/// The target of one event.
#[derive(Clone, Copy, Debug)]
pub(crate) enum RowTarget<'a> {
    Class(i64),
    Values(&'a [f32]),
}

impl<'a> Targets<'a> {
    /// The same targets with a shorter lifetime (ndarray views are invariant).
    pub fn reborrow<'b>(self) -> Targets<'b>
    where
        'a: 'b,
    {
        match self {
            Targets::Labels(l) => Targets::Labels(l),
            Targets::Values(v) => Targets::Values(v.reborrow()),
        }
    }

    /// Checks lengths, label ranges and finiteness against `n` events and `k` outputs.
    pub(crate) fn validate(&self, op: &'static str, out: Output, n: usize, k: usize) -> Result<()> {
        match self {
            Targets::Labels(l) => {
                if l.len() != n {
                    return Err(Error::Shape {
                        op,
                        expected: format!("{n} labels (one per event)"),
                        got: format!("{}", l.len()),
                    });
                }
                check_labels(op, out, k, l)
            }
            Targets::Values(t) => {
                if t.dim() != (n, k) {
                    return Err(Error::Shape {
                        op,
                        expected: format!("targets of shape {n} × {k}"),
                        got: format!("{} × {}", t.nrows(), t.ncols()),
                    });
                }
                match t.iter().position(|v| !v.is_finite()) {
                    Some(i) => Err(Error::arg(
                        op,
                        format!(
                            "target {} (row {}) is not finite",
                            t.iter().nth(i).copied().unwrap_or(f32::NAN),
                            i / k.max(1)
                        ),
                    )),
                    None => Ok(()),
                }
            }
        }
    }

    /// The target of event `i` (rows of `Values` must be contiguous: callers pass standard
    /// layout, see [`Targets::standard`]).
    pub(crate) fn row(&self, i: usize) -> RowTarget<'_> {
        match self {
            Targets::Labels(l) => RowTarget::Class(l[i]),
            Targets::Values(t) => match t.row(i).to_slice() {
                Some(s) => RowTarget::Values(s),
                None => RowTarget::Values(&[]),
            },
        }
    }
}

/// Errors unless every label is valid for this output: 0/1 for sigmoid, 0..k for softmax,
/// and a linear output must have width 1 to take integer labels as values.
pub(crate) fn check_labels(op: &'static str, out: Output, k: usize, labels: &[i64]) -> Result<()> {
    let bad = match out {
        Output::Sigmoid => labels.iter().position(|&l| l != 0 && l != 1),
        Output::Softmax => labels.iter().position(|&l| l < 0 || l >= k as i64),
        Output::Linear if k != 1 => {
            return Err(Error::arg(
                op,
                format!(
                    "integer labels need a linear output of width 1, the model has {k}; pass target values instead"
                ),
            ))
        }
        Output::Linear => None,
    };
    match bad {
        None => Ok(()),
        Some(i) => {
            let valid = match out {
                Output::Sigmoid => "0 or 1 for a sigmoid output".to_string(),
                _ => format!("in 0..{} for a softmax output with {k} classes", k - 1),
            };
            Err(Error::arg(op, format!("label {} at event {i} is invalid; labels must be {valid}", labels[i])))
        }
    }
}

/// Loss of one event from its logits `z`; writes `scale · ∂loss/∂z` into `g`.
pub(crate) fn loss_grad_row(out: Output, z: &[f32], t: RowTarget<'_>, scale: f32, g: &mut [f32]) -> f64 {
    match out {
        Output::Sigmoid => {
            let y = match t {
                RowTarget::Class(c) => c as f32,
                RowTarget::Values(v) => v[0],
            };
            g[0] = scale * (sigmoid(z[0]) - y);
            bce(z[0], y)
        }
        Output::Softmax => softmax_ce(z, t, scale, g),
        Output::Linear => {
            let k = z.len() as f32;
            let mut loss = 0.0f64;
            for (j, (gj, &zj)) in g.iter_mut().zip(z).enumerate() {
                let tj = match t {
                    RowTarget::Class(c) => c as f32,
                    RowTarget::Values(v) => v[j],
                };
                let r = zj - tj;
                loss += f64::from(r) * f64::from(r);
                *gj = scale * 2.0 * r / k;
            }
            loss / f64::from(k)
        }
    }
}

/// Loss of one event only (no gradient).
pub(crate) fn loss_row(out: Output, z: &[f32], t: RowTarget<'_>) -> f64 {
    let mut g = [0.0f32; 16];
    if z.len() <= g.len() {
        loss_grad_row(out, z, t, 0.0, &mut g[..z.len()])
    } else {
        let mut g = vec![0.0f32; z.len()];
        loss_grad_row(out, z, t, 0.0, &mut g)
    }
}

/// Binary cross-entropy on the logit, stable for any z: max(z,0) − y·z + ln(1 + e^−|z|).
fn bce(z: f32, y: f32) -> f64 {
    let (z, y) = (f64::from(z), f64::from(y));
    z.max(0.0) - y * z + (-z.abs()).exp().ln_1p()
}

/// Cross-entropy of softmax(z) against a class or a probability vector; gradient
/// (Σt)·p − t, which is p − e_c for a class.
fn softmax_ce(z: &[f32], t: RowTarget<'_>, scale: f32, g: &mut [f32]) -> f64 {
    let m = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = z.iter().map(|&v| f64::from(v - m).exp()).sum();
    let lse = f64::from(m) + sum.ln();
    for (gj, &zj) in g.iter_mut().zip(z) {
        *gj = (f64::from(zj) - lse).exp() as f32;
    }
    match t {
        RowTarget::Class(c) => {
            let c = c as usize;
            g.iter_mut().for_each(|v| *v *= scale);
            g[c] -= scale;
            lse - f64::from(z[c])
        }
        RowTarget::Values(tv) => {
            let tsum: f32 = tv.iter().sum();
            let mut loss = 0.0;
            for ((gj, &zj), &tj) in g.iter_mut().zip(z).zip(tv) {
                loss += f64::from(tj) * (lse - f64::from(zj));
                *gj = scale * (tsum * *gj - tj);
            }
            loss
        }
    }
}

/// In place: logits → softmax probabilities.
fn softmax_row(z: &mut [f32]) {
    let m = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0f32;
    for v in z.iter_mut() {
        *v = (*v - m).exp();
        sum += *v;
    }
    z.iter_mut().for_each(|v| *v /= sum);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bce_is_stable_and_matches_closed_form() {
        // z = 0: σ = ½, loss = ln 2 for either label.
        assert!((bce(0.0, 1.0) - std::f64::consts::LN_2).abs() < 1e-15);
        // z = 100, y = 0: loss = 100 + ln(1 + e^−100) ≈ 100 (naive ln(1 − σ) would be −inf).
        assert!((bce(100.0, 0.0) - 100.0).abs() < 1e-12);
        // z = 2, y = 1: −ln σ(2) = ln(1 + e^−2) = 0.126 928 011 042 973.
        assert!((bce(2.0, 1.0) - 0.126_928_011_042_973).abs() < 1e-12);
    }

    #[test]
    fn softmax_ce_of_uniform_logits_is_ln_k() {
        // Equal logits: p_j = 1/3, loss = ln 3, gradient p − e_c = (1/3, −2/3, 1/3).
        let mut g = [0.0f32; 3];
        let l = loss_grad_row(Output::Softmax, &[0.5, 0.5, 0.5], RowTarget::Class(1), 1.0, &mut g);
        assert!((l - 3f64.ln()).abs() < 1e-12);
        let want = [1.0 / 3.0, -2.0 / 3.0, 1.0 / 3.0];
        for (a, b) in g.iter().zip(want) {
            assert!((a - b).abs() < 1e-7);
        }
    }

    #[test]
    fn label_errors_name_the_event_and_the_valid_range() {
        let e = check_labels("train", Output::Sigmoid, 1, &[0, 1, 2]).unwrap_err().to_string();
        assert_eq!(e, "train: label 2 at event 2 is invalid; labels must be 0 or 1 for a sigmoid output");
        let e = check_labels("train", Output::Softmax, 3, &[0, -1]).unwrap_err().to_string();
        assert_eq!(
            e,
            "train: label -1 at event 1 is invalid; labels must be in 0..2 for a softmax output with 3 classes"
        );
        assert!(check_labels("train", Output::Softmax, 3, &[0, 1, 2]).is_ok());
        assert!(Output::Sigmoid.check_width(2).is_err());
        assert!(Output::Softmax.check_width(1).is_err());
    }
}
