//! `cargo bench --bench train`: training and FGSM speed of the fused and candle MLP paths on
//! the reference task (generated events). Prints one JSON line per measurement; run several
//! times and compare medians (the machines are noisy).

use nuisance::bench::model as bench;

fn main() -> nuisance::Result<()> {
    let quick = std::env::args().any(|a| a == "--quick");
    let fused_only = std::env::args().any(|a| a == "--fused-only");
    let n_train = if quick { 20_000 } else { 200_000 };
    let train = bench::reference_gaussians(n_train, 20, 1)?;
    let test = bench::reference_gaussians(100_000, 20, 2)?;
    println!("{}", bench::train_fused(&train, Some(&test), 5, 256)?);
    if std::env::args().any(|a| a == "--train-only") {
        return Ok(());
    }
    if !fused_only {
        println!("{}", bench::train_candle(&train, 1, 256)?);
    }
    let mut model = bench::reference_model(3)?;
    model.fit_standardization(&train)?;
    let trained =
        nuisance::model::train(&model, &train, &Default::default(), &nuisance::optim::Control::quiet())?.model;
    let trained = trained.as_mlp().cloned().ok_or_else(|| nuisance::Error::arg("bench", "expected an MLP"))?;
    println!("{}", bench::forward_fused(&trained, &test, 4096)?);
    println!("{}", bench::fgsm_fused(&trained, &test, 4096, 0.1)?);
    if !fused_only {
        println!("{}", bench::fgsm_candle(&trained, &test, 4096, 0.1)?);
    }
    Ok(())
}
