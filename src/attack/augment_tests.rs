//! Adversarial training with every attack: it must raise the accuracy under that attack on
//! held-out events.
//!
//! Margins: on the toy collider (10k training, 5k held-out events, MLP 11→32→32→1, 8 epochs),
//! four seeds gave RDSA-adversarial accuracy gains of +6.3 to +9.4 points for RDSA training
//! (ratio ½ or 1, per epoch or per batch), and three seeds gave +8.7 to +11.4 (FGSM) and
//! +8.9 to +14.6 (PGD) points for gradient training with the collider's σ at s = 3. The
//! held-out accuracies' sampling error is ≈ √(2·¼/5000) ≈ 0.01, so the margins below (3 and 4
//! points) are about half the smallest gain seen and three of its standard errors.
//!
//! The gain is not universal: with 20k–50k training events and 8 epochs, nine seeds gave
//! +0 to +9 points (20 tries at evaluation); with 15 epochs and 100 tries +7 to +13. The
//! setting tested here is the smallest of those runs.

use super::kinds::minifool::MiniFool;
use super::kinds::pgd::Gradient;
use super::kinds::rdsa::RdsaAttack;
use super::*;
use crate::data::synthetic::{collider, ColliderConfig};
use crate::model::Model;
use crate::model::{adversarial_train, train, AdversarialConfig, Every, Mlp, MlpConfig, TrainConfig};
use crate::optim::Control;
use crate::Dataset;

fn task(n: usize, seed: u64) -> Dataset {
    collider(&ColliderConfig { n, seed, ..Default::default() }).unwrap()
}

fn accuracy(classes: &[i64], ds: &Dataset) -> f64 {
    crate::metrics::accuracy(classes, ds.label().unwrap(), None).unwrap()
}

struct Setup {
    train: Dataset,
    test: Dataset,
    model: Mlp,
    cfg: TrainConfig,
}

fn setup() -> Setup {
    let train = task(10_000, 100);
    let test = task(5_000, 200);
    let model = Mlp::new(&[11, 32, 32, 1], MlpConfig { seed: 10, ..Default::default() }).unwrap();
    Setup { train, test, model, cfg: TrainConfig { epochs: 8, seed: 20, ..Default::default() } }
}

#[test]
fn rdsa_training_raises_rdsa_accuracy_on_held_out_events() {
    let s = setup();
    let rc = RdsaConfig { steps: 20, ..Default::default() };
    let on_train = Rdsa::new(s.train.names(), s.train.x(), None, &rc, &Projection::default()).unwrap();
    let on_test = Rdsa::new(s.test.names(), s.test.x(), None, &rc, &Projection::default()).unwrap();
    let rdsa_acc = |m: &dyn Model| {
        let a = on_test.attack_seeded(m, s.test.x(), None, None, &Control::quiet(), 7).unwrap();
        accuracy(&a.attack.class_after, &s.test)
    };
    let plain = train(&s.model, &s.train, &s.cfg, &Control::quiet()).unwrap().model;
    let base = rdsa_acc(&*plain);
    for every in [Every::Epoch, Every::Batch] {
        let mut aug = AttackAugmenter(Box::new(RdsaAttack::prepared(on_train.clone(), s.train.names())));
        let ac = AdversarialConfig { ratio: 0.5, warmup: 1, every, ..Default::default() };
        let r = adversarial_train(&s.model, &s.train, &s.cfg, &ac, &mut aug, &Control::quiet()).unwrap();
        let robust = rdsa_acc(&*r.train.model);
        assert!(robust > base + 0.03, "{every:?}: RDSA accuracy {base:.4} → {robust:.4}");
        // Warm-up epoch clean, then half of the 10k events each epoch.
        assert_eq!(r.adversarial[0].adversarial_events, 0);
        assert!(r.adversarial[1..].iter().all(|a| a.adversarial_events == 5_000));
        let last = r.adversarial.last().unwrap();
        assert!(last.adv_accuracy < last.clean_accuracy);
        assert!((last.mixed_accuracy - (last.adv_accuracy + last.clean_accuracy) / 2.0).abs() < 1e-12);
    }
}

#[test]
fn fgsm_and_pgd_training_raise_their_adversarial_accuracy() {
    let s = setup();
    let unc = collider_model(s.train.names()).unwrap().with_scale(3.0).unwrap();
    let plain = train(&s.model, &s.train, &s.cfg, &Control::quiet()).unwrap().model;
    let pgd10 =
        PgdConfig { eps: 1.0, step: 0.25, steps: 10, norm: Norm::Linf, random_start: false, seed: 0, first_event: 0 };
    for (name, cfg) in [("fgsm", PgdConfig::fgsm(1.0, Norm::Linf)), ("pgd", pgd10)] {
        let adv_acc = |m: &dyn Model| {
            let g = Goal::Untargeted(s.test.label().unwrap().to_vec());
            let a = pgd(m, &unc, s.test.x(), &g, &cfg, &Projection::default(), &Control::quiet()).unwrap();
            accuracy(&a.class_after, &s.test)
        };
        let mut aug = AttackAugmenter(Box::new(Gradient::new(name, cfg.clone(), unc.clone(), Projection::default())));
        let ac = AdversarialConfig { ratio: 0.5, warmup: 1, every: Every::Epoch, ..Default::default() };
        let r = adversarial_train(&s.model, &s.train, &s.cfg, &ac, &mut aug, &Control::quiet()).unwrap();
        let (base, robust) = (adv_acc(&*plain), adv_acc(&*r.train.model));
        assert!(robust > base + 0.04, "{name}: adversarial accuracy {base:.4} → {robust:.4}");
    }
}

#[test]
fn minifool_training_runs_and_is_deterministic() {
    let s = setup();
    let tr = s.train.head(1_000);
    let unc = collider_model(tr.names()).unwrap();
    let cfg = MiniFoolConfig { max_iters: 10, ..Default::default() };
    let tc = TrainConfig { epochs: 3, ..s.cfg.clone() };
    let ac = AdversarialConfig { ratio: 0.25, warmup: 1, every: Every::Batch, eval_events: 300 };
    let run = || {
        let mut aug =
            AttackAugmenter(Box::new(MiniFool { unc: unc.clone(), cfg: cfg.clone(), proj: Projection::default() }));
        adversarial_train(&s.model, &tr, &tc, &ac, &mut aug, &Control::quiet()).unwrap()
    };
    let (a, b) = (run(), run());
    assert_eq!(a.train.model.params(), b.train.model.params());
    assert_eq!(a.adversarial, b.adversarial);
    // Batches of 256: each replaces round(¼·256) = 64 events (the last, 232, 58).
    assert_eq!(a.adversarial[1].adversarial_events, 3 * 64 + 58);
}
