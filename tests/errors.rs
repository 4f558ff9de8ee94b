//! Error texts for the common mistakes, pinned: for a script language the error text is the
//! user interface.

mod common;

fn err(src: &str) -> String {
    common::run(src).expect_err("the script should fail")
}

#[test]
fn typo_in_option_key_names_function_key_and_suggestion() {
    let e = err("let d = dataset(\"gaussians\", #{ n: 10, sed: 3 });");
    assert_eq!(
        e,
        "error: dataset: unknown option 'sed'\n  --> test.rhai:1:9\n  |\n1 | let d = dataset(\"gaussians\", #{ n: 10, sed: 3 });\n  |         ^\n  = hint: did you mean 'seed'? valid options: n, seed\n"
    );
}

#[test]
fn missing_column_lists_available_and_suggests() {
    let e = err("let d = dataset(\"gaussians\", #{ n: 10, seed: 1 });\nlet c = d.column(\"x00\");");
    assert!(e.starts_with("error: column: unknown column 'x00'; available: x0, x1, x2,"), "{e}");
    assert!(e.contains("  --> test.rhai:2:11\n"), "{e}");
    assert!(e.contains("= hint: did you mean 'x0'?"), "{e}");
}

#[test]
fn missing_file_names_the_path() {
    let e = err("let d = read_parquet(\"no_such_file.parquet\");");
    assert!(e.starts_with("error: "), "{e}");
    assert!(e.contains("no_such_file.parquet"), "{e}");
    assert!(e.contains("test.rhai:1:9"), "{e}");
}

#[test]
fn wrong_option_type_names_the_option() {
    let e = err("dataset(\"gaussians\", #{ n: \"many\" });");
    assert!(e.starts_with("error: dataset: option 'n' must be an integer, got a string (many)\n"), "{e}");
}

#[test]
fn unknown_generator_lists_valid_names() {
    let e = err("dataset(\"gausians\");");
    assert!(e.contains("gaussians") && e.contains("collider"), "{e}");
}

#[test]
fn writing_outside_allowed_paths_is_denied() {
    let e = err("dataset(\"gaussians\", #{ n: 5, seed: 1 }).write_parquet(\"/tmp/evil.parquet\");");
    assert!(
        e.starts_with("error: access denied: writing '/tmp/evil.parquet' is outside the allowed write paths"),
        "{e}"
    );
    assert!(e.contains("hint: run with --allow-write PATH"), "{e}");
}

#[test]
fn reading_outside_allowed_paths_is_denied() {
    let e = err("read_csv(\"/etc/passwd\");");
    assert!(e.starts_with("error: access denied: reading '/etc/passwd' is outside the allowed read paths"), "{e}");
}

#[test]
fn syntax_error_points_at_the_position() {
    let e = err("let x = 1;\nlet y = (2 + ;");
    assert!(e.starts_with("error: syntax error: "), "{e}");
    assert!(e.contains("test.rhai:2:"), "{e}");
}

#[test]
fn errors_are_catchable_maps() {
    let out = common::run("try { dataset(\"gaussians\", #{ nn: 1 }); } catch (e) { print(e.kind); print(e.message); }")
        .unwrap();
    assert_eq!(out, "unknown_option\ndataset: unknown option 'nn'\n");
}

#[test]
fn calls_through_script_functions_are_traced() {
    let e = err("fn make(n) { dataset(\"gaussians\", #{ n: n, sed: 1 }) }\nlet d = make(3);");
    assert!(e.contains("  --> test.rhai:1:14\n"), "{e}");
    assert!(e.contains("= in call to make at test.rhai:2:9\n"), "{e}");
}

#[test]
fn stdlib_module_typo_lists_modules() {
    let e = err("import \"std/reprot\" as r;");
    assert!(e.starts_with("error: module not found: std/reprot"), "{e}");
    assert!(e.contains("std/report"), "{e}");
}

#[test]
fn wrong_argument_type_gives_function_not_found_with_hint() {
    let e = err("let d = dataset(\"gaussians\", #{ n: 5, seed: 1 }); d.select(3);");
    assert!(e.starts_with("error: function not found: select (Dataset, int)"), "{e}");
    assert!(e.contains("= hint: select takes: select(d: Dataset, columns: array) -> Dataset"), "{e}");
}

#[test]
fn misspelt_function_suggests_the_nearest() {
    let e = err("let d = dataset(\"gaussians\", #{ n: 5, seed: 1 }); d.colum(\"x0\");");
    assert!(e.starts_with("error: function not found: colum (Dataset, string)"), "{e}");
    assert!(e.contains("= hint: did you mean 'column'?"), "{e}");
}

#[cfg(not(feature = "onnx"))]
#[test]
fn import_onnx_without_the_feature_says_how_to_build_it() {
    let e = err("let m = import_onnx(\"tests/data/reference_mlp.onnx\");");
    assert_eq!(
        e,
        "error: ONNX import needs the `onnx` cargo feature: cargo build --release --features onnx (requires protoc, Debian package protobuf-compiler)\n  --> test.rhai:1:9\n  |\n1 | let m = import_onnx(\"tests/data/reference_mlp.onnx\");\n  |         ^\n  = hint: optional features are listed in the README, section 'Optional features'\n"
    );
}

#[test]
fn landscape_mistakes_name_the_function_and_option() {
    let setup = "let d = dataset(\"gaussians\", #{ n: 50, seed: 1 });\nlet m = mlp([20, 4, 1], #{ features: d.features, seed: 1 });\n";
    let e = err(&format!("{setup}hessian_top(m, d, #{{ k: 0 }});"));
    assert!(e.starts_with("error: hessian_top: option 'k' must be between 1 and the dimension 89, got 0\n"), "{e}");
    let e = err(&format!("{setup}hessian_top(m, d, #{{ layer: 7 }});"));
    assert!(e.starts_with("error: hessian: layer 7 does not exist; the model has layers 0..1\n"), "{e}");
    let e = err(&format!("{setup}train(m, d, #{{ weight_attack: #{{ method: \"sma\" }} }});"));
    assert!(e.contains("option 'method' must be one of sam, asam, awp, rwp, got 'sma' (did you mean 'sam'?)"), "{e}");
    let e = err(&format!("{setup}weight_attack(m, d, #{{ method: \"awp\", rho: 0.1 }});"));
    assert!(e.starts_with("error: weight_attack: unknown option 'rho'\n"), "{e}");
}

#[test]
fn uncertainty_and_attack_mistakes_name_the_feature_or_option() {
    let setup = "let d = dataset(\"gaussians\", #{ n: 200, seed: 1 }).select([\"x0\", \"x1\", \"x2\"]);\nlet m = mlp([3, 8, 1], #{ features: d.features, seed: 1 });\nlet u = uncertainty(d, #{ all: #{ abs: 0.1 } });\n";
    let first = |body: &str| err(&format!("{setup}{body}")).lines().next().unwrap_or_default().to_string();
    assert_eq!(
        first("uncertainty(d, #{ all: #{ abs: -0.1 } });"),
        "error: uncertainty: absolute σ of feature 'x0' must be a finite number ≥ 0, got -0.1"
    );
    assert_eq!(
        first("uncertainty(d, #{ all: #{ abs: 0.0 } });"),
        "error: uncertainty: feature 'x0' has σ = 0 (no absolute or relative uncertainty); give it one > 0 or mark it frozen"
    );
    // ρ₁₂ = ρ₂₃ = 0.9 with ρ₁₃ = 0 has determinant 1 − 2·0.81 < 0: the third pivot fails.
    let e = first("uncertainty(d, #{ all: #{ abs: 0.1 }, correlation: #{ features: [\"x0\", \"x1\", \"x2\"], matrix: [[1.0, 0.9, 0.0], [0.9, 1.0, 0.9], [0.0, 0.9, 1.0]] } });");
    assert!(e.starts_with("error: uncertainty correlation: matrix is not positive definite (feature 'x2'"), "{e}");
    assert_eq!(
        first("uncertainty(d, #{ correlation: #{ features: [\"x0\", \"x1\"], matrix: \"no\" } });"),
        "error: uncertainty correlation: option 'matrix' must be an array of rows, got a string (no)"
    );
    assert_eq!(first("with_scale(u, 0.0);"), "error: uncertainty: the scale s must be a finite number > 0, got 0");
    let e = first("let e = dataset(\"gaussians\", #{ n: 20, seed: 1 }); chi2(u, e, e);");
    assert!(
        e.starts_with(
            "error: chi2: the uncertainty model's features [x0, x1, x2] do not match the dataset's [x0, x1, x2, x3,"
        ),
        "{e}"
    );
    assert_eq!(first("minifool(m, d, u, #{ alpah: 1.0 });"), "error: minifool: unknown option 'alpah'");
    assert_eq!(
        first("pgd(m, d, u, #{ norm: \"l3\" });"),
        "error: pgd: option 'norm' must be one of \"linf\", \"l2\" (also \"chi2\"/\"mahalanobis\"), got \"l3\""
    );
    assert_eq!(
        first("s_scan(m, d, u, #{ s: [1.0, -2.0] });"),
        "error: s_scan: option 's' must hold only finite numbers > 0, got -2"
    );
}

#[test]
fn rdsa_mistakes_name_the_option_expected_and_found() {
    let setup =
        "let d = dataset(\"gaussians\", #{ n: 300, seed: 1 });\nlet m = mlp([20, 4, 1], #{ features: d.features });\n";
    let e = err(&format!("{setup}rdsa(m, d, #{{ stpes: 10 }});"));
    assert!(e.starts_with("error: rdsa: unknown option 'stpes'\n  --> test.rhai:3:1\n"), "{e}");
    assert!(e.contains("= hint: did you mean 'steps'? valid options: bins, continuous, features, frozen, k,"), "{e}");
    let e = err(&format!("{setup}rdsa(m, d, #{{ steps: 0 }});"));
    assert!(e.starts_with("error: rdsa: option 'steps' must be ≥ 1, got 0\n"), "{e}");
    let e = err(&format!("{setup}rdsa(m, d, #{{ reference: d.select([\"x0\", \"x1\"]) }});"));
    assert!(
        e.starts_with(
            "error: rdsa: option 'reference' has features [x0, x1] but the attacked events have [x0, x1, x2,"
        ),
        "{e}"
    );
    let e =
        err(&format!("{setup}train(m, d, #{{ adversarial: #{{ attack: #{{ method: \"rdsa\" }}, ratio: 1.5 }} }});"));
    assert!(e.starts_with("error: train: option 'adversarial.ratio' must be in [0, 1], got 1.5\n"), "{e}");
    let e = err(&format!("{setup}train(m, d, #{{ adversarial: #{{ attack: #{{ method: \"pdg\" }} }} }});"));
    assert!(
        e.contains("must be one of rdsa, fgsm, pgd, minifool, conservattack, got 'pdg' (did you mean 'pgd'?)"),
        "{e}"
    );
}

#[test]
fn rdsa_k_larger_than_the_continuous_features_lists_them() {
    // The collider's njets is an integer multiplicity (not continuous): 10 features remain.
    let e = err("let d = dataset(\"collider\", #{ n: 300, seed: 1 });\nlet m = mlp([11, 4, 1], #{ features: d.features });\nrdsa(m, d, #{ k: 12 });");
    assert_eq!(
        e,
        "error: rdsa: option 'k' is 12, more than the 10 features that can be shuffled [pt1, eta1, phi1, pt2, eta2, phi2, m12, dr12, met, ht] (continuous: more than 100 distinct values in the reference set, not frozen); lower k, or list features with `continuous` or `features`\n  --> test.rhai:3:1\n  |\n3 | rdsa(m, d, #{ k: 12 });\n  | ^\n"
    );
}

/// A scratch folder under `target/` (inside the current folder, so scripts may read it),
/// removed with everything in it when dropped (also when the test fails).
struct Scratch(std::path::PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl std::ops::Deref for Scratch {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

fn scratch(tag: &str) -> Scratch {
    let d = common::root().join("target").join(format!("nuisance_errors_{tag}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    Scratch(d.canonicalize().unwrap())
}

/// A safetensors file of zero F32 tensors with the given shapes (no metadata).
fn state_dict(path: &std::path::Path, tensors: &[(&str, &[usize])]) {
    let (mut entries, mut offset) = (Vec::new(), 0);
    for (name, shape) in tensors {
        let end = offset + 4 * shape.iter().product::<usize>();
        entries.push(format!("\"{name}\":{{\"dtype\":\"F32\",\"shape\":{shape:?},\"data_offsets\":[{offset},{end}]}}"));
        offset = end;
    }
    let mut header = format!("{{{}}}", entries.join(","));
    while header.len() % 8 != 0 {
        header.push(' ');
    }
    let bytes = [(header.len() as u64).to_le_bytes().to_vec(), header.into_bytes(), vec![0u8; offset]].concat();
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn reading_a_named_pipe_is_refused_without_blocking() {
    let d = scratch("fifo");
    let p = d.join("events.csv");
    assert!(std::process::Command::new("mkfifo").arg(&p).status().unwrap().success());
    let e = err(&format!("read_csv(\"{}\");", p.display()));
    assert!(
        e.starts_with(&format!(
            "error: {}: is a named pipe, not a regular file; only regular files are read\n",
            p.display()
        )),
        "{e}"
    );
    let out = common::run(&format!("try {{ read_parquet(\"{}\") }} catch (e) {{ print(e.kind) }}", p.display()));
    assert_eq!(out.unwrap(), "io\n");
}

#[test]
fn import_torch_needs_the_activation() {
    let e = err("import_torch(\"tests/data/reference_mlp.safetensors\", #{});");
    assert!(
        e.starts_with(
            "error: import_torch: option 'activation' is needed: a PyTorch state dict does not record the hidden \
             activation; pass the one the model was trained with, e.g. #{ activation: \"relu\" }\n"
        ),
        "{e}"
    );
}

#[test]
fn import_torch_tensor_names_suggest_the_nearest() {
    let d = scratch("tnames");
    let p = d.join("two.safetensors");
    state_dict(&p, &[("net.0.weight", &[4, 3]), ("net.0.bias", &[4]), ("net.2.weight", &[1, 4]), ("net.2.bias", &[1])]);
    let e = err(&format!(
        "import_torch(\"{}\", #{{ activation: \"relu\", raw_inputs: true, tensors: [[\"net.0.weigth\", \"net.0.bias\"], [\"net.2.weight\", \"net.2.bias\"]] }});",
        p.display()
    ));
    assert!(
        e.starts_with(&format!(
            "error: {}: missing tensor 'net.0.weigth' (did you mean 'net.0.weight'?); the file has: net.0.bias, \
             net.0.weight, net.2.bias, net.2.weight\n",
            p.display()
        )),
        "{e}"
    );
}

#[test]
fn import_torch_refuses_layers_it_does_not_understand() {
    let d = scratch("bn");
    let p = d.join("bn.safetensors");
    // nn.Sequential(Linear(3, 4), BatchNorm1d(4), ReLU(), Linear(4, 1))
    state_dict(
        &p,
        &[
            ("net.0.weight", &[4, 3]),
            ("net.0.bias", &[4]),
            ("net.1.weight", &[4]),
            ("net.1.bias", &[4]),
            ("net.1.running_mean", &[4]),
            ("net.1.running_var", &[4]),
            ("net.3.weight", &[1, 4]),
            ("net.3.bias", &[1]),
        ],
    );
    let e = err(&format!("import_torch(\"{}\", #{{ activation: \"relu\", raw_inputs: true }});", p.display()));
    assert!(
        e.starts_with(&format!(
            "error: {}: import_torch reads a stack of Linear layers only; these tensors are not Linear \
             weight/bias pairs: net.1.bias [4], net.1.running_mean [4], net.1.running_var [4], net.1.weight [4] \
             (normalisation layers, convolutions and other layers are not supported)\n",
            p.display()
        )),
        "{e}"
    );
}

#[test]
fn import_torch_warns_without_standardization() {
    let path = common::root().join("tests/data/reference_mlp.safetensors");
    let out = common::run("let m = import_torch(\"tests/data/reference_mlp.safetensors\", #{ activation: \"relu\" });")
        .unwrap();
    assert_eq!(
        out,
        format!(
            "warning: import_torch: no standardization given for '{}', so the model sees the inputs as they are; \
             if it was trained on standardized inputs, pass #{{ mean: …, std: … }} from its training data (or \
             #{{ raw_inputs: true }} to say it was not)\n",
            path.display()
        )
    );
    let quiet = "import_torch(\"tests/data/reference_mlp.safetensors\", #{ activation: \"relu\", raw_inputs: true });";
    assert_eq!(common::run(quiet).unwrap(), "");
}

#[test]
fn list_columns_of_different_lengths_name_columns_and_event() {
    // tests/data/pyarrow_lists.parquet: part_* lists have 3, 0, … objects, trk_d0 1, 1, …
    let e =
        err("read_parquet(\"tests/data/pyarrow_lists.parquet\", #{ collections: #{ x: [\"part_pt\", \"trk_d0\"] } });");
    assert!(e.starts_with("error: ") && e.contains("tests/data/pyarrow_lists.parquet: "), "{e}");
    assert!(
        e.contains(
            "pyarrow_lists.parquet: list columns 'part_pt' and 'trk_d0' of collection 'x' differ in length at event 0 \
             (3 and 1 objects); name each collection's columns with the `collections` option\n"
        ),
        "{e}"
    );
}

#[test]
fn unknown_collection_and_object_feature_list_what_exists() {
    let src = "let d = dataset(\"gaussians\", #{ n: 2, seed: 1 }).with_objects(\"part\", #{ pt: [[1.0], []] });\n";
    let e = err(&format!("{src}d.filter_objects(\"parts\", \"pt > 1\");"));
    assert!(e.starts_with("error: filter_objects: unknown column 'parts'; available: part\n"), "{e}");
    assert!(e.contains("did you mean 'part'?"), "{e}");
    let e = err(&format!("{src}d.sort_objects(\"part\", \"ptt\");"));
    assert!(e.starts_with("error: sort_objects: unknown column 'part.ptt'; available: part.pt\n"), "{e}");
    let e = err(&format!("{src}d.derive_objects(\"part\", \"r\", \"pt / jetpt\");"));
    assert!(e.starts_with("error: derive_objects: unknown column 'jetpt'; available: pt, x0, x1,"), "{e}");
    let e = err(
        "dataset(\"gaussians\", #{ n: 2, seed: 1 }).with_objects(\"part\", #{ pt: [[1.0], []], eta: [[1.0], [2.0]] });",
    );
    assert!(
        e.starts_with(
            "error: collection: features 'eta' and 'pt' of collection 'part' differ in length at event 1 (1 and 0 objects)\n"
        ),
        "{e}"
    );
}

// === Bounds: every size a script asks for is limited; numerics cannot hang ===

const LIMITS_HINT: &str = "  = hint: the limits are listed in the README, section 'Limits'\n";

#[test]
fn absurd_sizes_are_limit_errors_naming_the_limit() {
    let cases = [
        ("mlp([20, 1e12, 1]);", "mlp: layer width 1000000000000 is over the limit of 100000000"),
        ("mlp([100000, 100000, 1]);", "mlp: parameter count 10000200001 is over the limit of 1000000000"),
        (
            "dataset(\"gaussians\", #{ n: 10, seed: 1 }).histogram(\"x0\", #{ bins: 1000000000 });",
            "histogram: bins 1000000000 is over the limit of 10000000",
        ),
        (
            "train(mlp([20, 1]), dataset(\"gaussians\", #{ n: 10, seed: 1 }), #{ batch_size: 100000000 });",
            "train: batch_size 100000000 is over the limit of 16777216",
        ),
        ("dataset(\"gaussians\", #{ n: 1000000000000 });", "dataset: n 1000000000000 is over the limit of 200000000"),
        (
            "dataset(\"gaussians\", #{ n: 10, seed: 1 }).sample(1000000000000, #{ replace: true });",
            "sample: n 1000000000000 is over the limit of 200000000",
        ),
        (
            "let d = dataset(\"gaussians\", #{ n: 50, seed: 1 }); rdsa(mlp([20, 1], #{ features: d.features }), d, #{ bins: 1000000000 });",
            "rdsa: bins 1000000000 is over the limit of 10000000",
        ),
        (
            "let d = dataset(\"gaussians\", #{ n: 50, seed: 1 }); attack_metrics(mlp([20, 1], #{ features: d.features }), d, d, #{ bins: 1000000000 });",
            "attack_metrics: bins 1000000000 is over the limit of 10000000",
        ),
        (
            "let d = dataset(\"gaussians\", #{ n: 50, seed: 1 }); hessian_density(mlp([20, 1], #{ features: d.features }), d, #{ iters: 100000000 });",
            "hessian_density: iters 100000000 is over the limit of 10000",
        ),
    ];
    for (src, message) in cases {
        let e = err(src);
        assert!(e.starts_with(&format!("error: {message}\n  --> test.rhai:1:")), "{e}");
        assert!(e.ends_with(LIMITS_HINT), "{e}");
    }
}

#[test]
fn population_methods_refuse_a_chain_over_the_memory_limit() {
    // The chain holds 4000 events × (20 float32 features + an i64 label) = 352,000 bytes; the
    // dataset written (176,000 bytes) is still alive, so 400,000 bytes cannot hold both.
    let src = "let d = dataset(\"gaussians\", #{ n: 2000, seed: 1 });\nd.write_parquet(\"out/err_whole.parquet\");\nlet c = chain([\"out/err_whole.parquet\", \"out/err_whole.parquet\"]);\nset_memory_limit(400000);\ntrain(mlp([20, 4, 1]), c);";
    let e = common::run(src).expect_err("the chain is over the limit");
    assert_eq!(
        e,
        "error: train needs the whole sample in memory at once; the chain's 4000 events in 2 files: needs 343.8 KiB, but the session memory budget of 390.6 KiB has 218.4 KiB left (172.2 KiB in use)\n  --> test.rhai:5:1\n  |\n5 | train(mlp([20, 4, 1]), c);\n  | ^\n  = hint: raise the budget with --max-memory SIZE (e.g. 8G) or set_memory_limit(\"8G\") in the script, or keep fewer datasets alive\n"
    );
}

#[test]
fn datasets_kept_in_a_loop_end_at_the_memory_budget() {
    // Each collider dataset of 20,000 events holds 20000·11·4 + 20000·8 = 1,040,000 bytes: four
    // fit in 4 MiB (4,194,304 bytes), the fifth does not.
    let src = "let all = [];\nloop { all.push(dataset(\"collider\", #{ n: 20000, seed: 1 })); }";
    let e = common::run_with(|c| c.max_memory = Some(4 << 20), src).expect_err("the budget should stop the loop");
    assert_eq!(
        e,
        "error: dataset: 20000 collider events × 11 features: needs 1015.6 KiB, but the session memory budget of 4.0 MiB has 33.5 KiB left (4.0 MiB in use)\n  --> test.rhai:2:17\n  |\n2 | loop { all.push(dataset(\"collider\", #{ n: 20000, seed: 1 })); }\n  |                 ^\n  = hint: raise the budget with --max-memory SIZE (e.g. 8G) or set_memory_limit(\"8G\") in the script, or keep fewer datasets alive\n"
    );
    // Datasets let go of give their bytes back.
    let src = "for i in 0..20 { let d = dataset(\"collider\", #{ n: 20000, seed: i }); }\nprint(\"ok\");";
    assert_eq!(common::run_with(|c| c.max_memory = Some(4 << 20), src).unwrap(), "ok\n");
}

#[test]
fn script_arrays_and_models_count_against_the_memory_budget() {
    // 100,000 gaussians events hold 100000·20·4 + 100000·8 = 8,800,000 bytes, within a budget
    // of 9.5 MiB (9,961,472 bytes); a column as a script array costs 16 bytes an event,
    // 1,600,000 bytes, more than the 1,161,472 left.
    let src = "let d = dataset(\"gaussians\", #{ n: 100000, seed: 1 });\nlet x = d.column(\"x0\");";
    let e = common::run_with(|c| c.max_memory = Some(19 << 19), src).expect_err("the array should not fit");
    assert!(
        e.starts_with("error: column: an array of 100000 values: needs 1.5 MiB, but the session memory budget of 9.5 MiB has 1.1 MiB left (8.4 MiB in use)\n  --> test.rhai:2:"),
        "{e}"
    );
    // mlp([1000, 1000, 1000, 1]) has 1000·1000 + 1000 + 1000·1000 + 1000 + 1000 + 1 = 2,003,001
    // parameters: 8,012,004 bytes held while a model lives, twice that needed while one is
    // built. In 32 MiB (33,554,432 bytes), three models are kept (24,036,012 bytes); the fourth
    // needs 16,024,008 bytes with 9,518,420 left.
    let src = "let ms = [];\nloop { ms.push(mlp([1000, 1000, 1000, 1], #{})); }";
    let e = common::run_with(|c| c.max_memory = Some(32 << 20), src).expect_err("the budget should stop the loop");
    assert!(
        e.starts_with("error: mlp: a network of 2003001 parameters: needs 15.3 MiB, but the session memory budget of 32.0 MiB has 9.1 MiB left (22.9 MiB in use)\n  --> test.rhai:2:"),
        "{e}"
    );
    // Models let go of give their bytes back.
    let src = "for i in 0..8 { let m = mlp([1000, 1000, 1000, 1], #{}); }\nprint(\"ok\");";
    assert_eq!(common::run_with(|c| c.max_memory = Some(32 << 20), src).unwrap(), "ok\n");
}

/// A binary model whose logit is NaN for the first two events: 1e30·1e10 overflows f32 to +∞,
/// 1e30·(−1e10) to −∞, and their sum is NaN (the last two events give 2e30, finite).
const NAN_MODEL: &str = "let d = dataset(\"gaussians\", #{ n: 4, seed: 1 })
    .with_column(\"a\", [1e10, 1e10, 1.0, 1.0]).with_column(\"b\", [-1e10, -1e10, 1.0, 1.0]).select([\"a\", \"b\"]);
let m = mlp([2, 1], #{ features: [\"a\", \"b\"] }).with_params([1e30, 1e30, 0.0]);\n";

#[test]
fn nan_scores_make_metrics_errors_naming_the_events() {
    for (call, op) in [("m.evaluate(d);", "evaluate"), ("m.roc(d);", "roc"), ("m.confusion(d);", "confusion")] {
        let e = err(&format!("{NAN_MODEL}{call}"));
        assert!(
            e.starts_with(&format!(
                "error: {op}: 2 of 4 events have a NaN or infinite score (first: event 0)\n  --> test.rhai:4:"
            )),
            "{e}"
        );
        assert!(
            e.ends_with(
                "  = hint: the model's weights or the events contain NaN or Inf (a diverged training, a bad file)\n"
            ),
            "{e}"
        );
    }
    let out = common::run(&format!("{NAN_MODEL}try {{ m.evaluate(d) }} catch (e) {{ print(e.kind) }}")).unwrap();
    assert_eq!(out, "non_finite\n");
}

#[test]
fn sorting_with_a_float_comparer_works_and_nan_is_an_error() {
    let out = common::run("let a = [3.0, 1.0, 2.0];\na.sort(|x, y| x - y);\nprint(a);\nlet b = [0.5, 2.5, 1.5];\nb.sort(|x, y| y - x);\nprint(b);").unwrap();
    assert_eq!(out, "[1.0, 2.0, 3.0]\n[2.5, 1.5, 0.5]\n");
    let e = err("let a = [1.0, 2.0];\na.sort(|x, y| sqrt(-1.0));");
    assert!(e.starts_with("error: sort: the comparer returned NaN for (2.0, 1.0); it must return a number\n"), "{e}");
    let e = err("let a = [1.0, 2.0];\na.sort(|x, y| \"before\");");
    assert!(
        e.starts_with("error: sort: the comparer must return a number (negative: a first, positive: b first), got a string for (2.0, 1.0)\n"),
        "{e}"
    );
    // A plain sort of floats with NaN: NaN last, no panic.
    assert_eq!(common::run("let a = [2.0, sqrt(-1.0), 1.0];\na.sort();\nprint(a);").unwrap(), "[1.0, 2.0, NaN]\n");
}

#[test]
fn a_module_that_imports_itself_or_a_cycle_is_an_error() {
    let dir = std::env::temp_dir().join(format!("nuisance_cycle_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("selfish.rhai"), "import \"selfish\" as s;\nfn f() { 1 }\n").unwrap();
    std::fs::write(dir.join("ping.rhai"), "import \"pong\" as b;\n").unwrap();
    std::fs::write(dir.join("pong.rhai"), "import \"ping\" as a;\n").unwrap();
    let run = |name: &str| {
        let mut s = common::session(Some(&dir));
        s.set_main_name("test.rhai");
        let src = format!("import \"{}\" as m;", dir.join(name).display());
        s.eval_source(&src).map(|_| ()).expect_err("a cycle must fail").rendered
    };
    let e = run("selfish");
    assert!(e.contains("import: module 'selfish.rhai' imports itself: selfish.rhai → selfish.rhai"), "{e}");
    let e = run("ping");
    assert!(
        e.contains("import: module 'ping.rhai' is part of an import cycle: ping.rhai → pong.rhai → ping.rhai"),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// Small array and map limits, and an operation limit so that a limit that is not enforced
/// fails the test instead of filling the memory.
fn small_collections(c: &mut nuisance::session::Config) {
    c.max_array_size = Some(1000);
    c.max_map_size = Some(1000);
    c.max_operations = Some(1_000_000);
}

#[test]
fn an_array_growing_in_a_loop_stops_at_its_limit() {
    let e = common::run_with(small_collections, "let a = [];\nloop { a.push(1); }").unwrap_err();
    assert!(e.starts_with("error: Size of array/BLOB is over the limit\n  --> test.rhai:2:"), "{e}");
    let e = common::run_with(small_collections, "let a = [];\nloop { a += [1, 2]; }").unwrap_err();
    assert!(e.starts_with("error: Size of array/BLOB is over the limit\n"), "{e}");
}

#[test]
fn a_map_growing_in_a_loop_stops_at_its_limit() {
    let src = "let m = #{};\nlet i = 0;\nloop { m[`${i}`] = 1; i += 1; }";
    let e = common::run_with(small_collections, src).unwrap_err();
    assert!(e.starts_with("error: Size of object map is over the limit\n"), "{e}");
}

#[test]
fn a_map_nested_in_another_value_and_grown_in_a_loop_stops_near_its_limit() {
    // `m.a[k] = v` grows a map that no variable holds; the engine examines a rotating window of
    // every map/array variable's values every 8th use, so growth stops within a few windows of
    // the limit — also when the map sits behind 100 other keys, in an array, or two levels down.
    for src in [
        "let m = #{ a: #{} };\nlet i = 0;\nloop { m.a[`${i}`] = 1; i += 1; }",
        "let m = #{};\nfor i in 0..100 { m[`k${i}`] = i; }\nm.z = #{ y: #{} };\nlet i = 0;\nloop { m.z.y[`${i}`] = 1; i += 1; }",
        "let a = [];\nfor i in 0..50 { a.push(i); }\na.push(#{});\nlet i = 0;\nloop { a[50][`${i}`] = 1; i += 1; }",
    ] {
        let e = common::run_with(small_collections, src).unwrap_err();
        assert!(e.starts_with("error: Size of object map is over the limit\n"), "{src}: {e}");
    }
}

#[test]
fn the_operation_limit_and_the_timeout_stop_a_plain_loop() {
    let e = common::run_with(|c| c.max_operations = Some(100_000), "let i = 0;\nloop { i += 1; }").unwrap_err();
    assert!(e.starts_with("error: the script exceeded the operation limit\n"), "{e}");
    let e =
        common::run_with(|c| c.timeout = Some(std::time::Duration::from_millis(200)), "let i = 0;\nloop { i += 1; }")
            .unwrap_err();
    assert!(e.starts_with("error: timeout: the run took longer than 0.2 s\n"), "{e}");
    assert!(e.ends_with("  = hint: raise it with --timeout SECONDS\n"), "{e}");
    // A long Rust computation stops too (the watchdog sets the interrupt flag that Ctrl-C sets).
    let src = "let d = dataset(\"gaussians\", #{ n: 20000, seed: 1 });\nlet r = train(mlp([20, 32, 1]), d, #{ epochs: 100000 });\nprint(r.stopped);";
    let start = std::time::Instant::now();
    let e = common::run_with(|c| c.timeout = Some(std::time::Duration::from_millis(300)), src).unwrap_err();
    assert!(e.starts_with("error: timeout: the run took longer than 0.3 s\n"), "{e}");
    assert!(start.elapsed().as_secs() < 30, "took {:?}", start.elapsed());
}

#[test]
fn one_script_surface_names_the_right_option_column_or_function() {
    let setup = "let d = dataset(\"gaussians\", #{ n: 200, seed: 1 }).select([\"x0\", \"x1\", \"x2\"]);\nlet m = mlp([3, 8, 1], #{ features: d.features, seed: 1 });\nlet u = uncertainty(d, #{ all: #{ abs: 0.1 } });\n";
    let e = |body: &str| err(&format!("{setup}{body}"));
    // An option another function spells differently, or that belongs to another attack.
    let x = e("pgd(m, d, u, #{ step_size: 0.1 });");
    assert!(x.starts_with("error: pgd: unknown option 'step_size'\n"), "{x}");
    assert!(x.contains("= hint: did you mean 'step'?; valid options: direction, eps, labels, norm, project,"), "{x}");
    let x = e("fgsm(m, d, u, #{ steps: 5 });");
    assert!(
        x.contains("= hint: FGSM is one step of size eps; for several steps use pgd; valid options: direction, eps,"),
        "{x}"
    );
    let x = e("minifool(m, d, u, #{ bisect: 2 });");
    assert!(x.contains("= hint: 'bisect' is an option of s_scan; valid options: alpha, beta,"), "{x}");
    // An old name and its new one together.
    assert!(e("minifool(m, d, u, #{ max_iters: 5, steps: 5 });")
        .starts_with("error: minifool: option 'max_iters' is the old name of 'steps': give only 'steps'\n"));
    // An unknown feature is an unknown_column everywhere, with the nearest name.
    let x = e("rdsa(m, d, #{ features: [\"x9\"] });");
    assert!(x.starts_with("error: rdsa: unknown column 'x9'; available: x0, x1, x2\n"), "{x}");
    // Scans need an attack with an uncertainty budget.
    let x = e("s_scan(m, d, u, #{ attack: \"rdsa\" });");
    assert!(x.starts_with("error: s_scan: option 'attack' must be one of fgsm, pgd, minifool, got 'rdsa'\n"), "{x}");
    // Rows, labels and weights set from a script.
    assert!(e("d.take([0, 200]);").starts_with("error: take: index 200 at position 1 is outside 0..200\n"));
    assert!(
        e("d.with_weights([1.0]);").starts_with("error: with_weights: expected 200 weights (one per event), got 1\n")
    );
}

#[test]
fn checks_names_the_features_the_candidate_lacks() {
    let e = err(
        "let d = dataset(\"gaussians\", #{ n: 20, seed: 1 });\nlet c = d.select([\"x0\"]);\nchecks(d, c, #{ features: [\"x0\", \"x1\", \"x2\"] });",
    );
    assert!(
        e.starts_with(
            "error: checks: the candidate has no feature 'x1', 'x2' of the reference (candidate features: x0)\n  --> test.rhai:3:1\n"
        ),
        "{e}"
    );
}

#[test]
fn checks_threshold_typo_names_the_nested_option() {
    let e = err("let d = dataset(\"gaussians\", #{ n: 20, seed: 1 });\nchecks(d, d, #{ thresholds: #{ jds: 0.1 } });");
    assert!(e.starts_with("error: checks (thresholds): unknown option 'jds'\n"), "{e}");
    assert!(e.contains("= hint: did you mean 'jsd'? valid options: c2st_auc, chi2_p, corr, jsd, ks_p\n"), "{e}");
}

/// Every error of an `fgsm` call names `fgsm`, also those its PGD solver raises.
#[test]
fn fgsm_errors_name_fgsm() {
    let setup = "let d = dataset(\"gaussians\", #{ n: 50, seed: 1 }).select([\"x0\", \"x1\"]);\nlet m = mlp([2, 4, 1], #{ features: d.features, seed: 1 });\nlet u = uncertainty(d, #{ all: #{ abs: 0.1 } });\n";
    let e = |body: &str| err(&format!("{setup}{body}"));
    let x = e("fgsm(m, d, u, #{ target: 1.5 });");
    assert!(x.starts_with("error: fgsm: a target score needs a sigmoid model and a score in [0, 1], got 1.5"), "{x}");
    let x = e("fgsm(m, d, u, #{ norm: \"l3\" });");
    assert!(x.starts_with("error: fgsm: option 'norm' must be one of"), "{x}");
    let x = e("fgsm(m, d, u, #{ target: \"a\" });");
    assert!(x.starts_with("error: fgsm: "), "{x}");
    // The same goal error from pgd still names pgd.
    assert!(e("pgd(m, d, u, #{ target: 1.5 });").starts_with("error: pgd: a target score needs"));
}

#[test]
fn a_link_in_a_readable_folder_to_a_file_outside_is_refused() {
    let d = scratch("outlink");
    let outside = std::env::temp_dir().join(format!("nuisance_errors_secret_{}.csv", std::process::id()));
    std::fs::write(&outside, "a,label\n1,0\n").unwrap();
    let link = d.join("events.csv");
    std::os::unix::fs::symlink(&outside, &link).unwrap();
    let e = err(&format!("read_csv(\"{}\");", link.display()));
    let _ = std::fs::remove_file(&outside);
    assert!(
        e.starts_with(&format!("error: access denied: reading '{}' is outside the allowed read paths", link.display())),
        "{e}"
    );
}

#[test]
fn bad_systematics_definitions_are_clear_errors() {
    let d = "let d = dataset(\"collider\", #{ n: 20, seed: 1 });\n";
    // unknown column
    let e = err(&format!("{d}vary(d, systematics([#{{ name: \"JES\", kind: \"scale\", targets: [\"pt3\"], sigma: 0.1 }}]), #{{ JES: 1 }});"));
    assert!(e.starts_with("error: vary: unknown column 'pt3'; available: pt1, eta1,"), "{e}");
    assert!(e.contains("= hint: did you mean 'pt1'?"), "{e}");
    // circular derived features
    let e = err("systematics([], #{ derived: #{ a: \"b + 1\", b: \"a * 2\" } });");
    assert!(e.starts_with("error: systematics: circular derived features: a → b → a\n"), "{e}");
    // non-positive σ
    let e = err("systematics([#{ name: \"JES\", kind: \"scale\", targets: [\"pt1\"], sigma: 0 }]);");
    assert!(e.starts_with("error: systematics: nuisance 'JES': σ must be > 0, got 0\n"), "{e}");
    // up/down columns missing
    let e = err(&format!("{d}vary(d, systematics([#{{ name: \"a\", kind: \"alternative\", nominal: [\"pt1\"], up: [\"pt1_JES_up\"], down: [\"pt1_JES_down\"] }}]), #{{ a: 1 }});"));
    assert!(e.starts_with("error: vary: unknown column 'pt1_JES_up'; available:"), "{e}");
    let e = err("systematics([#{ name: \"a\", kind: \"alternative\", nominal: [\"pt1\"], up: [\"pt1_up\"] }]);");
    assert!(e.starts_with("error: systematics: nuisance 'a' needs 'down'\n"), "{e}");
    // a typo in an effect key, and an unknown nuisance in θ
    let e = err("systematics([#{ name: \"a\", kind: \"scale\", targets: [\"pt1\"], sigam: 0.1 }]);");
    assert!(e.contains("unknown key 'sigam' in nuisance 'a' (a scale effect) (did you mean 'sigma'?)"), "{e}");
    let e = err(&format!("{d}vary(d, systematics([#{{ name: \"JES\", kind: \"norm\", size: 0.1 }}]), #{{ JSE: 1 }});"));
    assert!(e.starts_with("error: systematics: no nuisance parameter 'JSE' (did you mean 'JES'?)"), "{e}");
}

#[test]
fn conservattack_refuses_set_models_and_says_why_and_rdsa_keeps_their_objects() {
    // A PFN's inputs are an object count and padded slots; CONSERVAttack keeps per-column
    // histograms and correlations, which padded slots do not have (this once panicked in the
    // result table). RDSA redraws the real objects' features and keeps every count; a missing
    // object σ is named.
    let s = "let pts = []; for i in 0..30 { pts.push([1.0 + i, 2.0]); }\n\
             let d = dataset(\"gaussians\", #{ n: 30, seed: 1 }).with_objects(\"part\", #{ pt: pts });\n\
             let m = pfn(\"part\", [\"pt\"], #{ phi: [4], f: [4], max_objects: 3, seed: 1 });\n";
    let e = err(&format!("{s}conservattack(m, d);"));
    assert!(
        e.starts_with(
            "error: conservattack: works on event-level models (inputs = the dataset's features), not on a pfn model: it keeps every input column's histogram"
        ),
        "{e}"
    );
    let ok = format!(
        "{s}let r = rdsa(m, d, #{{ features: [\"part.pt\"], steps: 5, seed: 1 }});\n\
         assert_eq(r.events.collection(\"part\").counts(), d.collection(\"part\").counts());"
    );
    common::run(&ok).unwrap();
    let e = err(&format!("{s}fgsm(m, d, uncertainty(d, #{{ all: #{{ abs: 0.1 }} }}));"));
    assert!(e.starts_with("error: uncertainty: has no σ for object feature 'part.pt' of the pfn model"), "{e}");
}

#[test]
fn chain_file_with_a_missing_column_is_named() {
    let e = err("let d = dataset(\"gaussians\", #{ n: 5, seed: 1 });\n\
                 d.write_parquet(\"out/err_chain_a.parquet\");\n\
                 d.select([\"x0\"]).write_parquet(\"out/err_chain_b.parquet\");\n\
                 chain([\"out/err_chain_a.parquet\", \"out/err_chain_b.parquet\"]);");
    assert!(e.starts_with("error: "), "{e}");
    assert!(e.contains("err_chain_b.parquet: has no column 'x1', which the chain's first file "), "{e}");
    assert!(e.contains("every file of a chain must have the same columns"), "{e}");
}

#[test]
fn chain_pattern_matching_nothing_says_so() {
    let e = err("chain(\"out/no_such_chain_*.parquet\");");
    assert!(e.starts_with("error: chain: no file matches 'out/no_such_chain_*.parquet'\n"), "{e}");
}

#[test]
fn particlenet_options_are_checked_with_clear_messages() {
    let e = err("particlenet(\"part\", [\"deta\", \"dphi\"], #{ points: [\"eta\"] });");
    assert!(e.starts_with("error: particlenet: points: 'eta' is not one of the object features [deta, dphi]"), "{e}");
    let e = err("particlenet(\"part\", [\"deta\", \"dphi\"], #{ conv: [[0, [8]]] });");
    assert!(e.starts_with("error: particlenet: EdgeConv block 0 has k = 0; k must be at least 1"), "{e}");
}

#[test]
fn part_options_are_checked_with_clear_messages() {
    let e = err("part(\"part\", [\"a\", \"b\"], #{ embed: [6], heads: 4 });");
    assert!(e.starts_with("error: part: option 'heads' 4 heads do not divide the model width 6"), "{e}");
    let e = err("part(\"part\", [\"a\", \"b\"], #{ pairs: true });");
    assert!(
        e.starts_with("error: part: option 'pair_inputs' 'pt' is not an object feature of the model (they are a, b)"),
        "{e}"
    );
    let e =
        err("import_torch_part(\"tests/data/part_fixture.safetensors\", \"part\", [\"logpt\", \"deta\", \"dphi\"]);");
    assert!(e.contains("part_fixture.safetensors: the file has a pair embedding: name the (pT, η, φ, E) object features (pair_inputs)"), "{e}");
}

#[test]
fn correction_targets_for_unknown_features_name_them() {
    let e = err("let s = dataset(\"gaussians\", #{ n: 50, seed: 1 }).select([\"x0\", \"x1\"]);\ncorrect(s, [target(dataset(\"gaussians\", #{ n: 50, seed: 2 }), \"x2\")]);");
    assert!(
        e.starts_with("error: correct: a target names feature 'x2', which the simulation does not have (features: x0, x1); did you mean 'x0'?"),
        "{e}"
    );
}

#[test]
fn correction_empty_histograms_and_negative_weights_are_refused() {
    let e = err("target_histogram(\"x0\", [0.0, 1.0, 2.0], [0.0, 0.0], [1.0, 1.0]);");
    assert!(e.starts_with("error: correction_target: target of 'x0': the histogram is empty (all counts 0)"), "{e}");
    let e = err("let s = dataset(\"gaussians\", #{ n: 3, seed: 1 }).select([\"x0\"]).with_weights([-1.0, 1.0, 1.0]);\ncorrect(s, [target(dataset(\"gaussians\", #{ n: 5 }), \"x0\")]);");
    assert!(e.contains("event weight 0 is -1"), "{e}");
    assert!(e.contains("a batch objective needs finite weights ≥ 0"), "{e}");
}

#[test]
fn fine_tuning_and_transfer_errors_name_the_option() {
    // A group index past the end lists the model's groups; a bad standardize choice lists
    // the valid ones; the detector response refuses derived object features (they would be
    // stale) and names them; data_efficiency names a size larger than the pool.
    let d = "let d = dataset(\"gaussians\", #{ n: 100, seed: 1 });\nlet m = mlp([20, 4, 1], #{ seed: 1 });\n";
    let e = err(&format!("{d}train(m, d, #{{ freeze: [5] }});"));
    assert!(
        e.starts_with(
            "error: train: option 'freeze' group index 5 is out of range: the model has 2 groups (layer0, layer1)\n"
        ),
        "{e}"
    );
    let e = err(&format!("{d}train(m, d, #{{ standardize: \"kept\" }});"));
    assert!(
        e.starts_with(
            "error: train: option 'standardize' must be \"auto\", \"keep\" or \"refit\" (or true/false), got 'kept'\n"
        ),
        "{e}"
    );
    let e = err(&format!("{d}data_efficiency(m, m, d, d, #{{ sizes: [50, 500] }});"));
    assert!(
        e.starts_with(
            "error: data_efficiency: option 'sizes' asks for 500 events, more than the 100 target-domain events\n"
        ),
        "{e}"
    );
    let jets = "let pts = []; for i in 0..3 { pts.push([10.0, 20.0]); }\n\
                let z = [[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]];\n\
                let j = dataset(\"gaussians\", #{ n: 3, seed: 1 }).with_objects(\"part\", #{ pt: pts, eta: z, phi: z, E: pts, charge: z, pid: z });\n";
    let e = err(&format!(
        "{jets}jet_response(j.derive_objects(\"part\", \"logpt\", \"log(pt)\"), #{{ preset: \"full\" }});"
    ));
    assert!(
        e.starts_with("error: jet_response: collection 'part' has features the response cannot carry: logpt; derive them after the response\n"),
        "{e}"
    );
}

#[test]
fn replace_head_names_a_width_the_output_cannot_take() {
    let e = err("replace_head(mlp([4, 1]), #{ outputs: 2 });");
    assert!(
        e.starts_with(
            "error: replace_head: option 'outputs' a sigmoid output layer cannot have 2 outputs (sigmoid: exactly 1"
        ),
        "{e}"
    );
}

#[test]
fn streamed_rdsa_without_a_reference_says_how_to_give_one() {
    let e = err("let d = dataset(\"gaussians\", #{ n: 50, seed: 1 });\n\
                 d.write_parquet(\"out/err_stream_rdsa.parquet\");\n\
                 let m = train(mlp([20, 4, 1]), d, #{ epochs: 1 }).model;\n\
                 stream_attack(chain(\"out/err_stream_rdsa.parquet\"), m, uncertainty(d, #{ all: #{ abs: 0.5 } }), #{ attack: \"rdsa\" });");
    assert!(
        e.starts_with("error: stream_attack: rdsa: RDSA draws from the marginals of a sample; streamed, each chunk would have its own. Give the sample as `options: #{ reference: … }`"),
        "{e}"
    );
}
