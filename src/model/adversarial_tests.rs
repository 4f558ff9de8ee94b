//! The mechanics of adversarial training with stand-in augmenters (the attacks themselves are
//! tested in `attack/augment_tests.rs`).

use ndarray::{Array2, ArrayView2};

use super::*;
use crate::data::synthetic::gaussians;
use crate::model::{train, Mlp, MlpConfig};

/// Returns the events unchanged: training must equal plain training bit for bit.
struct Identity;

impl Augmenter for Identity {
    fn perturb(
        &mut self,
        _: &dyn Model,
        x: ArrayView2<'_, f32>,
        _: &[i64],
        _: u64,
        _: &Control,
    ) -> Result<Array2<f32>> {
        Ok(x.to_owned())
    }
}

/// Moves every event by `shift` in every feature; counts the events it saw.
struct Shift {
    shift: f32,
    seen: usize,
}

impl Augmenter for Shift {
    fn perturb(
        &mut self,
        _: &dyn Model,
        x: ArrayView2<'_, f32>,
        _: &[i64],
        _: u64,
        _: &Control,
    ) -> Result<Array2<f32>> {
        self.seen += x.nrows();
        Ok(x.mapv(|v| v + self.shift))
    }
}

/// Returns one event too few.
struct Short;

impl Augmenter for Short {
    fn perturb(
        &mut self,
        _: &dyn Model,
        x: ArrayView2<'_, f32>,
        _: &[i64],
        _: u64,
        _: &Control,
    ) -> Result<Array2<f32>> {
        Ok(x.slice(ndarray::s![1.., ..]).to_owned())
    }
}

fn setup() -> (Mlp, Dataset, TrainConfig) {
    let d = gaussians(1_000, 3);
    let m = Mlp::new(&[20, 8, 1], MlpConfig { seed: 1, ..Default::default() }).unwrap();
    (m, d, TrainConfig { epochs: 3, batch_size: 100, seed: 4, ..Default::default() })
}

#[test]
fn identity_attack_trains_exactly_like_plain_training() {
    let (m, d, tc) = setup();
    let plain = train(&m, &d, &tc, &Control::quiet()).unwrap();
    for every in [Every::Epoch, Every::Batch] {
        let ac = AdversarialConfig { ratio: 0.5, warmup: 0, every, ..Default::default() };
        let r = adversarial_train(&m, &d, &tc, &ac, &mut Identity, &Control::quiet()).unwrap();
        assert_eq!(r.train.model.params(), plain.model.params(), "{every:?}");
        assert_eq!(r.train.history, plain.history);
        // Clean and "adversarial" events are the same, so all three accuracies agree.
        for a in &r.adversarial {
            assert_eq!(a.adv_accuracy, a.clean_accuracy);
            assert_eq!(a.mixed_accuracy, a.clean_accuracy);
        }
    }
}

#[test]
fn ratio_warmup_and_modes_decide_what_is_replaced() {
    let (m, d, tc) = setup();
    // Per epoch: round(0.3·1000) = 300 events in epochs 2 and 3 (epoch 1 is warm-up), plus the
    // evaluation set (all 1000 training events) after each of the 3 epochs.
    let mut s = Shift { shift: 0.5, seen: 0 };
    let ac = AdversarialConfig { ratio: 0.3, warmup: 1, every: Every::Epoch, ..Default::default() };
    let r = adversarial_train(&m, &d, &tc, &ac, &mut s, &Control::quiet()).unwrap();
    let counts: Vec<usize> = r.adversarial.iter().map(|a| a.adversarial_events).collect();
    assert_eq!(counts, vec![0, 300, 300]);
    assert_eq!(s.seen, 2 * 300 + 3 * 1000);
    // Per batch: 10 batches of 100, 30 each.
    let mut s = Shift { shift: 0.5, seen: 0 };
    let ac = AdversarialConfig { every: Every::Batch, ..ac };
    let r = adversarial_train(&m, &d, &tc, &ac, &mut s, &Control::quiet()).unwrap();
    assert_eq!(r.adversarial.iter().map(|a| a.adversarial_events).collect::<Vec<_>>(), vec![0, 300, 300]);
    assert_eq!(s.seen, 2 * 300 + 3 * 1000);
    // Something was trained on shifted events: the weights differ from plain training.
    let plain = train(&m, &d, &tc, &Control::quiet()).unwrap();
    assert_ne!(r.train.model.params(), plain.model.params());
    // A validation set is the evaluation set.
    let v = gaussians(200, 9);
    let tcv = TrainConfig { validation: Some(v), ..tc.clone() };
    let mut s = Shift { shift: 0.5, seen: 0 };
    adversarial_train(&m, &d, &tcv, &ac, &mut s, &Control::quiet()).unwrap();
    assert_eq!(s.seen, 2 * 300 + 3 * 200);
}

#[test]
fn bad_settings_and_bad_attacks_are_errors() {
    let (m, d, tc) = setup();
    let ac = AdversarialConfig { ratio: 1.5, ..Default::default() };
    let e = adversarial_train(&m, &d, &tc, &ac, &mut Identity, &Control::quiet()).unwrap_err();
    assert_eq!(e.to_string(), "train: option 'adversarial.ratio' must be in [0, 1], got 1.5");
    let ac = AdversarialConfig { warmup: 0, ..Default::default() };
    let e = adversarial_train(&m, &d, &tc, &ac, &mut Short, &Control::quiet()).unwrap_err();
    assert_eq!(e.to_string(), "train: expected the attack to return 500 events of 20 features, got 499 × 20");
    let ac = AdversarialConfig { warmup: 0, every: Every::Batch, ..Default::default() };
    let e = adversarial_train(&m, &d, &tc, &ac, &mut Short, &Control::quiet()).unwrap_err();
    assert!(e.to_string().starts_with("train: expected 50 replacement rows"), "{e}");
}
