//! The strict option reader: a Rhai object map in, typed values out.
//!
//! Every script-visible function that takes options reads them through [`Opts`]: an unknown key
//! is an error naming the function, the key, the valid keys and the nearest match; an integer
//! is accepted where a float is expected; a wrong type names the option and the type found.

use rhai::{Array, Dynamic, FnPtr, ImmutableString, Map};

use crate::error::{Error, Result};

const READ: &[&str] = &["features", "label", "weight", "no_label", "no_weight", "drop_nonfinite"];
const READ_LISTS: &[&str] = &["features", "label", "weight", "no_label", "no_weight", "drop_nonfinite", "collections"];
const READ_TREE: &[&str] =
    &["features", "label", "weight", "no_label", "no_weight", "drop_nonfinite", "tree", "collections"];
const PLOT: &[&str] = &["title", "xlabel", "ylabel", "logy", "logx", "width", "height", "density"];

/// Every option key every function accepts: the one list the readers are held to (reading an
/// undeclared key is an internal error) and the documentation test compares with each
/// function's options table. Nested maps are declared as `"function what"` (the function's
/// documentation names their keys).
pub const DECLARED: &[(&str, &[&str])] = &[
    ("read_parquet", READ_LISTS),
    ("read_csv", READ),
    ("read_root", READ_TREE),
    ("read", READ_TREE),
    ("chain", &["features", "label", "weight", "no_label", "no_weight", "tree", "collections"]),
    ("dataset", &["n", "seed"]),
    ("split", &["seed"]),
    ("sample", &["seed", "replace"]),
    ("histogram", &["bins", "range", "weighted"]),
    ("correlation", &["weighted"]),
    ("describe", &["weighted"]),
    ("mlp", &["activation", "output", "dropout", "seed", "features"]),
    (
        "train",
        &[
            "epochs",
            "batch_size",
            "optimizer",
            "lr",
            "beta1",
            "beta2",
            "adam_eps",
            "weight_decay",
            "momentum",
            "schedule",
            "step_every",
            "gamma",
            "min_lr",
            "class_weights",
            "event_weights",
            "validation",
            "validation_fraction",
            "patience",
            "standardize",
            "seed",
            "target",
            "weight_attack",
            "adversarial",
            "freeze",
            "group_lr",
            "reinit",
            "warmup",
            "l1",
            "l1_output",
        ],
    ),
    (
        "jet_response",
        &[
            "preset",
            "collection",
            "track",
            "em",
            "hadron",
            "tracking_efficiency",
            "em_cell",
            "hadron_cell",
            "soft_mean",
            "soft_pt",
            "soft_radius",
            "track_pt_min",
            "neutral_pt_min",
            "seed",
        ],
    ),
    (
        "jet_response (resolution)",
        &["stochastic", "constant", "noise", "linear", "scale", "tail_fraction", "tail_width"],
    ),
    ("event_response", &["preset", "features", "efficiency", "truth", "derived", "seed"]),
    (
        "event_response (feature)",
        &[
            "absolute",
            "relative",
            "stochastic",
            "reference",
            "scale",
            "tail_fraction",
            "tail_width",
            "efficiency",
            "min",
            "periodic",
        ],
    ),
    ("replace_head", &["outputs", "output", "seed"]),
    ("data_efficiency", &["sizes", "seeds", "metric", "efficiency", "target", "scratch", "finetune", "plot", "title"]),
    ("train (weight_attack)", &["method", "rho", "eta", "gamma"]),
    ("train (adversarial)", &["attack", "ratio", "warmup", "every", "eval_events"]),
    ("evaluate", &["target"]),
    ("input_grad", &["objective", "class"]),
    ("import_torch", &["layers", "activation", "output", "tensors", "features", "mean", "std", "raw_inputs"]),
    ("sort_objects", &["descending", "keep"]),
    ("particlenet", &["conv", "fc", "points", "fusion", "max_objects", "output", "outputs", "seed"]),
    ("import_torch_particlenet", &["conv", "fc", "points", "fusion", "max_objects", "output", "outputs"]),
    (
        "part",
        &[
            "embed",
            "pair_embed",
            "heads",
            "blocks",
            "cls_blocks",
            "ffn_ratio",
            "fc",
            "embed_inputs",
            "pairs",
            "pair_inputs",
            "max_objects",
            "event_features",
            "output",
            "outputs",
            "seed",
        ],
    ),
    ("import_torch_part", &["embed_inputs", "pair_inputs", "max_objects", "event_features", "output", "mean", "std"]),
    ("pfn", &["phi", "f", "pooling", "max_objects", "event_features", "activation", "output", "outputs", "seed"]),
    (
        "import_torch_pfn",
        &[
            "event_features",
            "max_objects",
            "pooling",
            "activation",
            "output",
            "event_mean",
            "event_std",
            "object_mean",
            "object_std",
        ],
    ),
    (
        "train_detector",
        &["hidden", "l1", "lr", "epochs", "batch_size", "patience", "validation_fraction", "balanced", "seed"],
    ),
    (
        "correct",
        &[
            "features",
            "distance",
            "lambda",
            "sigma",
            "frozen",
            "derived",
            "hidden",
            "activation",
            "epochs",
            "batch_size",
            "lr",
            "tol",
            "patience",
            "freeze",
            "seed",
        ],
    ),
    ("correct (distance)", &["name", "weight", "smoothing", "bandwidth"]),
    ("rake", &["tol", "max_iter"]),
    ("correction_report", &["features", "truth", "c2st", "c2st_epochs", "sigma", "seed"]),
    ("plot_marginal", &["title", "xlabel", "ylabel", "width", "height"]),
    ("plot_correlation_change", &["title", "xlabel", "ylabel", "width", "height"]),
    ("checks", &["features", "bins", "regions", "thresholds", "weighted", "c2st", "c2st_epochs", "seed"]),
    ("checks (thresholds)", &["jsd", "corr", "ks_p", "chi2_p", "c2st_auc"]),
    ("multiplicity", &["name", "where"]),
    ("import_onnx", &["layers", "output", "features", "mean", "std"]),
    ("uncertainty", &["preset", "all", "features", "frozen", "correlation", "covariance", "groups", "scale"]),
    ("uncertainty (feature)", &["abs", "rel", "floor", "std_fraction", "frozen"]),
    ("uncertainty correlation", &["features", "matrix"]),
    ("uncertainty covariance", &["features", "matrix"]),
    ("uncertainty group", &["features", "rho"]),
    ("projection", &["clip_to_data", "clip", "integer", "sentinel", "frozen"]),
    ("chi2", &["form"]),
    ("fgsm", &["eps", "norm", "labels", "target", "direction", "project", "uncertainty"]),
    (
        "pgd",
        &[
            "eps",
            "norm",
            "steps",
            "step",
            "random_start",
            "seed",
            "labels",
            "target",
            "direction",
            "project",
            "uncertainty",
        ],
    ),
    (
        "minifool",
        &[
            "alpha",
            "beta",
            "margin",
            "target",
            "shift",
            "minimizer",
            "steps",
            "gtol",
            "ftol",
            "memory",
            "lr",
            "project",
            "uncertainty",
        ],
    ),
    (
        "rdsa",
        &[
            "k",
            "features",
            "steps",
            "bins",
            "unique_threshold",
            "continuous",
            "frozen",
            "sampling",
            "marginals",
            "subset",
            "stop_at_flip",
            "reference",
            "project",
            "uncertainty",
            "seed",
        ],
    ),
    (
        "conservattack",
        &[
            "mode",
            "steps",
            "bins",
            "min_change",
            "step",
            "alpha",
            "beta",
            "max_jsd_single_change",
            "max_frob_single_change",
            "use_no_change",
            "track_best_constraint_iter",
            "constraint_jsd",
            "constraint_rel_corr",
            "optimize_already_fooled",
            "randomize_step",
            "random_step_frac",
            "num_candidates",
            "feature_chunks",
            "min_values",
            "max_values",
            "project",
            "seed",
        ],
    ),
    ("s_scan", &["s", "attack", "options", "bisect", "split"]),
    ("stream_attack", &["attack", "options", "chunk", "out", "summary"]),
    ("stream_scores", &["chunk", "out", "summary", "output", "bins", "range", "edges"]),
    ("stream_histogram", &["bins", "range", "edges", "chunk", "summary"]),
    ("stream_cut", &["chunk", "out", "summary"]),
    ("attack_metrics", &["bins", "weighted"]),
    ("hvp", &["layer"]),
    ("hessian_top", &["k", "method", "steps", "tol", "layer", "vectors", "seed"]),
    ("hessian_trace", &["samples", "tol", "layer", "seed"]),
    ("hessian_density", &["steps", "runs", "points", "sigma", "layer", "seed"]),
    ("reduced_hessian", &["layer", "subspace", "k", "seed"]),
    ("sharpness", &["rho", "relative", "per_layer", "steps", "step"]),
    ("weight_attack", &["method", "rho", "eta", "gamma", "samples", "seed"]),
    ("plot_hist", PLOT),
    ("plot_lines", PLOT),
    ("plot_points", &["title", "xlabel", "ylabel", "band", "band_label", "reference", "width", "height"]),
    ("systematics", &["derived"]),
    ("systematics nuisance", &["name", "prior", "effects", "kind"]),
    (
        "systematics effect",
        &[
            "kind", "targets", "sigma", "relative", "seed", "nominal", "up", "down", "code", "size", "vars", "edges",
            "values",
        ],
    ),
    ("variations", &["thetas", "regions", "working_point", "histogram", "bins", "range"]),
    ("quantity", &["kind", "region", "threshold"]),
    ("plot_ratio", &["title", "xlabel", "ylabel", "width", "height"]),
    (
        "nuisance_attack",
        &[
            "method",
            "mode",
            "chi2",
            "steps",
            "step",
            "nuisances",
            "alpha",
            "beta",
            "margin",
            "minimizer",
            "max_iters",
            "quantity",
            "threshold",
            "region",
            "temperature",
            "direction",
            "target",
            "tolerance",
        ],
    ),
    ("plot_compare", &["bins", "range", "title", "xlabel", "ylabel", "logy", "logx", "width", "height", "density"]),
];

/// Old option names still accepted for one release, with a deprecation warning:
/// `(function, old, new)`.
pub const RENAMED: &[(&str, &str, &str)] = &[
    ("minifool", "max_iters", "steps"),
    ("hessian_top", "max_iter", "steps"),
    ("hessian_density", "iters", "steps"),
    ("sharpness", "step_size", "step"),
    ("s_scan", "labels", "split"),
    ("input_grad", "target", "objective"),
    ("train", "eps", "adam_eps"),
];

/// Hints for keys that belong to another function: `(function, key, hint)`.
const ELSEWHERE: &[(&str, &str, &str)] = &[
    ("fgsm", "steps", "FGSM is one step of size eps; for several steps use pgd"),
    ("fgsm", "step", "FGSM is one step of size eps; for several steps use pgd"),
    ("fgsm", "random_start", "FGSM starts at the event; for a random start use pgd"),
];

/// The keys declared for `func`.
pub fn declared(func: &str) -> Option<&'static [&'static str]> {
    DECLARED.iter().find(|(f, _)| *f == func).map(|(_, k)| *k)
}

/// Reads one options map for one function. Call [`Opts::finish`] last.
pub struct Opts<'a> {
    func: &'static str,
    map: &'a Map,
    known: Vec<&'static str>,
    undeclared: Option<&'static str>,
}

impl<'a> Opts<'a> {
    /// A reader for `func`'s options (declared in [`DECLARED`]).
    pub fn new(func: &'static str, map: &'a Map) -> Self {
        Opts { func, map, known: Vec::new(), undeclared: None }
    }

    fn get(&mut self, key: &'static str) -> Option<&'a Dynamic> {
        self.known.push(key);
        if !declared(self.func).is_some_and(|k| k.contains(&key)) {
            self.undeclared.get_or_insert(key);
        }
        if let Some(v) = self.map.get(key).filter(|v| !v.is_unit()) {
            return Some(v);
        }
        let func = self.func;
        let (_, old, _) =
            RENAMED.iter().find(|(f, old, new)| *f == func && *new == key && self.map.contains_key(*old))?;
        self.known.push(old);
        crate::bindings::warn(&format!(
            "{func}: option '{old}' is deprecated and will be removed in the next release; use '{key}'"
        ));
        self.map.get(*old).filter(|v| !v.is_unit())
    }

    fn bad(&self, key: &str, problem: String) -> Error {
        Error::BadOption { func: self.func.to_string(), key: key.to_string(), problem }
    }

    fn wrong_type(&self, key: &str, expected: &str, v: &Dynamic) -> Error {
        self.bad(key, format!("must be {expected}, got {} ({v})", type_name(v)))
    }

    /// A float (an integer is accepted); `default` when absent.
    pub fn f64(&mut self, key: &'static str, default: f64) -> Result<f64> {
        Ok(self.f64_opt(key)?.unwrap_or(default))
    }

    /// A float if present.
    pub fn f64_opt(&mut self, key: &'static str) -> Result<Option<f64>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => as_f64(v).map(Some).ok_or_else(|| self.wrong_type(key, "a number", v)),
        }
    }

    /// A float that must be > 0.
    pub fn positive(&mut self, key: &'static str, default: f64) -> Result<f64> {
        let v = self.f64(key, default)?;
        if v > 0.0 && v.is_finite() {
            Ok(v)
        } else {
            Err(self.bad(key, format!("must be > 0, got {v}")))
        }
    }

    /// A non-negative integer; `default` when absent.
    pub fn usize(&mut self, key: &'static str, default: usize) -> Result<usize> {
        Ok(self.usize_opt(key)?.unwrap_or(default))
    }

    /// A non-negative integer if present.
    pub fn usize_opt(&mut self, key: &'static str) -> Result<Option<usize>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => match v.as_int() {
                Ok(i) if i >= 0 => Ok(Some(i as usize)),
                Ok(i) => Err(self.bad(key, format!("must be >= 0, got {i}"))),
                Err(_) => Err(self.wrong_type(key, "an integer", v)),
            },
        }
    }

    /// A seed (non-negative integer) if present.
    pub fn seed(&mut self) -> Result<Option<u64>> {
        Ok(self.usize_opt("seed")?.map(|s| s as u64))
    }

    /// A boolean; `default` when absent.
    pub fn bool(&mut self, key: &'static str, default: bool) -> Result<bool> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.as_bool().map_err(|_| self.wrong_type(key, "true or false", v)),
        }
    }

    /// A string if present.
    pub fn string_opt(&mut self, key: &'static str) -> Result<Option<String>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => match v.clone().into_immutable_string() {
                Ok(s) => Ok(Some(s.to_string())),
                Err(_) => Err(self.wrong_type(key, "a string", v)),
            },
        }
    }

    /// A string; `default` when absent.
    pub fn string(&mut self, key: &'static str, default: &str) -> Result<String> {
        Ok(self.string_opt(key)?.unwrap_or_else(|| default.to_string()))
    }

    /// One of `choices`; `default` when absent. The error lists the valid values.
    pub fn choice(
        &mut self,
        key: &'static str,
        choices: &[&'static str],
        default: &'static str,
    ) -> Result<&'static str> {
        let Some(s) = self.string_opt(key)? else { return Ok(default) };
        choices.iter().copied().find(|c| *c == s).ok_or_else(|| {
            let near = crate::error::nearest(&s, choices.iter().copied());
            let hint = near.map_or(String::new(), |n| format!(" (did you mean '{n}'?)"));
            self.bad(key, format!("must be one of {}, got '{s}'{hint}", choices.join(", ")))
        })
    }

    /// A list of strings if present (a single string counts as a list of one).
    pub fn strings_opt(&mut self, key: &'static str) -> Result<Option<Vec<String>>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) if v.is_string() => Ok(Some(vec![v.to_string()])),
            Some(v) => match v.read_lock::<Array>() {
                Some(a) => a
                    .iter()
                    .map(|e| e.clone().into_immutable_string().map(|s| s.to_string()))
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map(Some)
                    .map_err(|_| self.wrong_type(key, "an array of strings", v)),
                None => Err(self.wrong_type(key, "an array of strings", v)),
            },
        }
    }

    /// A list of numbers if present.
    pub fn floats_opt(&mut self, key: &'static str) -> Result<Option<Vec<f64>>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => match v.read_lock::<Array>() {
                Some(a) => a
                    .iter()
                    .map(as_f64)
                    .collect::<Option<Vec<_>>>()
                    .map(Some)
                    .ok_or_else(|| self.wrong_type(key, "an array of numbers", v)),
                None => Err(self.wrong_type(key, "an array of numbers", v)),
            },
        }
    }

    /// A `[lo, hi]` pair with lo < hi, if present.
    pub fn range_opt(&mut self, key: &'static str) -> Result<Option<(f64, f64)>> {
        match self.floats_opt(key)? {
            None => Ok(None),
            Some(v) if v.len() == 2 && v[0] < v[1] => Ok(Some((v[0], v[1]))),
            Some(v) => Err(self.bad(key, format!("must be [lo, hi] with lo < hi, got {v:?}"))),
        }
    }

    /// A nested map if present.
    pub fn map_opt(&mut self, key: &'static str) -> Result<Option<Map>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.read_lock::<Map>().map(|m| Some(m.clone())).ok_or_else(|| self.wrong_type(key, "a map", v)),
        }
    }

    /// A function pointer or closure if present.
    pub fn fn_ptr_opt(&mut self, key: &'static str) -> Result<Option<FnPtr>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.clone().try_cast::<FnPtr>().map(Some).ok_or_else(|| self.wrong_type(key, "a function", v)),
        }
    }

    /// A value of a custom type `T` if present.
    pub fn custom_opt<T: Clone + 'static>(&mut self, key: &'static str, type_label: &str) -> Result<Option<T>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.clone().try_cast::<T>().map(Some).ok_or_else(|| self.wrong_type(key, type_label, v)),
        }
    }

    /// Any value if present, unchecked (for the caller to interpret).
    pub fn raw(&mut self, key: &'static str) -> Option<Dynamic> {
        self.get(key).cloned()
    }

    /// Whether `key` was given (without reading it).
    pub fn given(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    /// Errors on the first key that no getter asked for (with a hint when the key is an old
    /// name or belongs to another function), and on an old and a new name given together.
    pub fn finish(self) -> Result<()> {
        if let Some(k) = self.undeclared {
            return Err(Error::arg(self.func, format!("internal error: option '{k}' is read but not declared")));
        }
        for (f, old, new) in RENAMED {
            if *f == self.func && self.map.contains_key(*old) && self.map.contains_key(*new) {
                return Err(self.bad(old, format!("is the old name of '{new}': give only '{new}'")));
            }
        }
        let mut keys: Vec<&str> = self.map.keys().map(|k| k.as_str()).collect();
        keys.sort_unstable();
        if let Some(k) = keys.into_iter().find(|k| !self.known.contains(k)) {
            let mut valid: Vec<String> = self.known.iter().map(|s| s.to_string()).collect();
            valid.sort();
            valid.dedup();
            let suggestion = suggestion(self.func, k, &valid);
            return Err(Error::UnknownOption { func: self.func.to_string(), key: k.to_string(), valid, suggestion });
        }
        Ok(())
    }
}

/// An attack's options read from a script's map, with the session's seed streams: what the
/// attack registry's `configure` functions read through.
pub struct ScriptOptions<'a, 'm> {
    pub opts: &'a mut Opts<'m>,
    pub ctx: &'a crate::bindings::Ctx,
}

impl crate::attack::AttackOptions for ScriptOptions<'_, '_> {
    fn f64(&mut self, key: &'static str, default: f64) -> Result<f64> {
        self.opts.f64(key, default)
    }

    fn f64_opt(&mut self, key: &'static str) -> Result<Option<f64>> {
        self.opts.f64_opt(key)
    }

    fn positive(&mut self, key: &'static str, default: f64) -> Result<f64> {
        self.opts.positive(key, default)
    }

    fn usize(&mut self, key: &'static str, default: usize) -> Result<usize> {
        self.opts.usize(key, default)
    }

    fn usize_opt(&mut self, key: &'static str) -> Result<Option<usize>> {
        self.opts.usize_opt(key)
    }

    fn bool(&mut self, key: &'static str, default: bool) -> Result<bool> {
        self.opts.bool(key, default)
    }

    fn choice(&mut self, key: &'static str, choices: &[&'static str], default: &'static str) -> Result<&'static str> {
        self.opts.choice(key, choices, default)
    }

    fn string(&mut self, key: &'static str, default: &str) -> Result<String> {
        self.opts.string(key, default)
    }

    fn strings_opt(&mut self, key: &'static str) -> Result<Option<Vec<String>>> {
        self.opts.strings_opt(key)
    }

    fn floats_opt(&mut self, key: &'static str) -> Result<Option<Vec<f64>>> {
        self.opts.floats_opt(key)
    }

    fn number(&mut self, key: &'static str) -> Result<Option<crate::attack::Number>> {
        use crate::attack::Number;
        Ok(self.opts.raw(key).map(|v| match (v.as_int(), as_f64(&v)) {
            (Ok(i), _) => Number::Int(i),
            (_, Some(f)) => Number::Float(f),
            _ => Number::Other(type_name(&v)),
        }))
    }

    fn seed(&mut self) -> Result<u64> {
        Ok(self.ctx.seed_or_next(self.opts.seed()?))
    }

    fn projection(&mut self, key: &'static str) -> Result<Option<crate::attack::Projection>> {
        self.opts.custom_opt(key, "a Projection")
    }

    fn uncertainty(&mut self, key: &'static str) -> Result<Option<crate::attack::UncertaintyModel>> {
        self.opts.custom_opt(key, "an Uncertainty")
    }

    fn dataset(&mut self, key: &'static str) -> Result<Option<crate::data::Dataset>> {
        self.opts.custom_opt(key, "a Dataset")
    }

    fn given(&self, key: &str) -> bool {
        self.opts.given(key)
    }
}

/// A hint for an unknown key `k` of `func`: another function's name for one of `valid`
/// (`step_size` → `step`), a note where the key belongs (`steps` in `fgsm` → `pgd`), or the
/// functions that take it. `None` leaves the nearest-key guess.
fn suggestion(func: &str, k: &str, valid: &[String]) -> Option<String> {
    if let Some((_, _, new)) = RENAMED.iter().find(|(_, old, new)| *old == k && valid.iter().any(|v| v == new)) {
        return Some(format!("did you mean '{new}'?"));
    }
    if let Some((_, _, hint)) = ELSEWHERE.iter().find(|(f, key, _)| *f == func && *key == k) {
        return Some((*hint).to_string());
    }
    if crate::error::nearest(k, valid.iter().map(String::as_str)).is_some() {
        return None;
    }
    let users: Vec<&str> = DECLARED
        .iter()
        .filter(|(f, keys)| *f != func && !f.contains(' ') && keys.contains(&k))
        .map(|(f, _)| *f)
        .collect();
    match users.as_slice() {
        [] => None,
        [one] => Some(format!("'{k}' is an option of {one}")),
        many => Some(format!("'{k}' is an option of {}", many.join(", "))),
    }
}

/// A number as f64 (ints and floats).
pub fn as_f64(v: &Dynamic) -> Option<f64> {
    v.as_float().ok().or_else(|| v.as_int().ok().map(|i| i as f64))
}

/// The script-facing name of a value's type.
pub fn type_name(v: &Dynamic) -> String {
    match v.type_name() {
        "i64" => "an integer".into(),
        "f64" => "a float".into(),
        "bool" => "a boolean".into(),
        "string" | "ImmutableString" => "a string".into(),
        "array" => "an array".into(),
        "map" => "a map".into(),
        "()" => "nothing".into(),
        other => other.rsplit("::").next().unwrap_or(other).to_string(),
    }
}

/// Converts an array of numbers into f64s, naming `what` in the error.
pub fn floats(func: &str, what: &str, a: &Array) -> Result<Vec<f64>> {
    a.iter()
        .enumerate()
        .map(|(i, v)| {
            as_f64(v).ok_or_else(|| Error::arg(func, format!("{what}[{i}] must be a number, got {}", type_name(v))))
        })
        .collect()
}

/// Converts an array of strings, naming `what` in the error.
pub fn strings(func: &str, what: &str, a: &Array) -> Result<Vec<String>> {
    a.iter()
        .enumerate()
        .map(|(i, v)| {
            v.clone()
                .into_immutable_string()
                .map(|s: ImmutableString| s.to_string())
                .map_err(|_| Error::arg(func, format!("{what}[{i}] must be a string, got {}", type_name(v))))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(src: &str) -> Map {
        rhai::Engine::new().eval::<Map>(src).unwrap()
    }

    #[test]
    fn int_accepted_for_float_and_defaults_apply() {
        let m = map("#{ eps: 1 }");
        let mut o = Opts::new("pgd", &m);
        assert_eq!(o.f64("eps", 0.1).unwrap(), 1.0);
        assert_eq!(o.usize("steps", 10).unwrap(), 10);
        o.finish().unwrap();
    }

    #[test]
    fn unknown_key_names_function_key_and_nearest() {
        let m = map("#{ stpes: 3 }");
        let mut o = Opts::new("pgd", &m);
        o.usize("steps", 10).unwrap();
        o.f64("eps", 0.1).unwrap();
        let e = o.finish().unwrap_err();
        assert_eq!(e.to_string(), "pgd: unknown option 'stpes'");
        assert_eq!(e.hint(), "did you mean 'steps'? valid options: eps, steps");
    }

    #[test]
    fn wrong_type_names_the_option() {
        let m = map(r#"#{ steps: "ten" }"#);
        let e = Opts::new("pgd", &m).usize("steps", 10).unwrap_err();
        assert_eq!(e.to_string(), "pgd: option 'steps' must be an integer, got a string (ten)");
    }

    #[test]
    fn choice_lists_valid_values() {
        let m = map(r#"#{ method: "lanczoss" }"#);
        let e = Opts::new("spectrum", &m).choice("method", &["power", "lanczos"], "power").unwrap_err();
        assert_eq!(
            e.to_string(),
            "spectrum: option 'method' must be one of power, lanczos, got 'lanczoss' (did you mean 'lanczos'?)"
        );
    }

    #[test]
    fn negative_integer_rejected() {
        let m = map("#{ n: -3 }");
        let e = Opts::new("head", &m).usize("n", 1).unwrap_err();
        assert_eq!(e.to_string(), "head: option 'n' must be >= 0, got -3");
    }

    /// The option keys declared for each function (the list the readers are held to) are the
    /// keys of its documentation's options table; a nested map's keys are named in its parent
    /// function's documentation; renamed keys point at declared ones.
    #[test]
    fn declared_keys_match_every_documented_options_table() {
        let session = crate::session::Session::new(crate::session::Config::default()).unwrap();
        let docs = crate::docs::collect(session.engine());
        let mut problems = Vec::new();
        for (func, keys) in DECLARED {
            let declared: std::collections::BTreeSet<String> = keys.iter().map(|k| k.to_string()).collect();
            assert_eq!(declared.len(), keys.len(), "{func} declares a key twice");
            if let Some((parent, _)) = func.split_once(' ') {
                let text: String = docs.iter().filter(|d| d.name == parent).map(|d| d.doc.as_str()).collect();
                let words: std::collections::BTreeSet<&str> =
                    text.split(|c: char| !(c.is_alphanumeric() || c == '_')).collect();
                for k in *keys {
                    if !words.contains(k) {
                        problems.push(format!("{func}: key '{k}' is not mentioned in {parent}'s documentation"));
                    }
                }
                continue;
            }
            let documented: std::collections::BTreeSet<String> =
                docs.iter().filter(|d| d.name == *func).flat_map(|d| d.option_keys()).collect();
            if documented != declared {
                problems.push(format!(
                    "{func}: declared {:?} but documented {:?}",
                    declared.difference(&documented).collect::<Vec<_>>(),
                    documented.difference(&declared).collect::<Vec<_>>()
                ));
            }
        }
        // Every options table belongs to a declared function.
        for d in &docs {
            if !d.option_keys().is_empty() && declared(&d.name).is_none() && !d.name.contains("::") {
                problems.push(format!("{}: has an options table but declares no options", d.name));
            }
        }
        for (func, old, new) in RENAMED {
            let keys = declared(func).unwrap_or(&[]);
            if !keys.contains(new) || keys.contains(old) {
                problems.push(format!("{func}: renamed '{old}' → '{new}' must declare only the new name"));
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    #[test]
    fn old_names_work_with_one_warning_and_clash_with_the_new_ones() {
        let mut s =
            crate::session::Session::new(crate::session::Config { capture: true, ..Default::default() }).unwrap();
        let src = "let d = dataset(\"gaussians\", #{ n: 200, seed: 1 });\n\
                   let m = mlp([20, 4, 1], #{ features: d.features, seed: 1 });\n\
                   let u = uncertainty(d, #{ all: #{ abs: 0.5 } });\n\
                   let a = minifool(m, d, u, #{ max_iters: 3 });\n\
                   let b = minifool(m, d, u, #{ max_iters: 3 });\n\
                   let c = minifool(m, d, u, #{ steps: 3 });\n\
                   a.table[\"iterations\"] == c.table[\"iterations\"]";
        let same = s.eval_source(src).unwrap();
        assert!(same.as_bool().unwrap());
        // One warning, however often the old name is used.
        assert_eq!(
            s.take_output(),
            "warning: minifool: option 'max_iters' is deprecated and will be removed in the next release; use 'steps'\n"
        );
        let e = s.eval_source("minifool(m, d, u, #{ max_iters: 3, steps: 4 })").unwrap_err();
        assert_eq!(e.report.message, "minifool: option 'max_iters' is the old name of 'steps': give only 'steps'");
    }

    #[test]
    fn unknown_keys_point_at_the_right_name_or_function() {
        let m = map("#{ step_size: 0.1 }");
        let mut o = Opts::new("pgd", &m);
        o.f64("eps", 1.0).unwrap();
        o.f64("step", 0.1).unwrap();
        let e = o.finish().unwrap_err();
        assert_eq!(e.hint(), "did you mean 'step'?; valid options: eps, step");
        let m = map("#{ steps: 3 }");
        let mut o = Opts::new("fgsm", &m);
        o.f64("eps", 1.0).unwrap();
        let e = o.finish().unwrap_err();
        assert_eq!(e.hint(), "FGSM is one step of size eps; for several steps use pgd; valid options: eps");
        let m = map("#{ bisect: 3 }");
        let mut o = Opts::new("pgd", &m);
        o.f64("eps", 1.0).unwrap();
        assert_eq!(o.finish().unwrap_err().hint(), "'bisect' is an option of s_scan; valid options: eps");
        // Reading a key the function does not declare is an internal error, caught by any test
        // that runs the reader.
        let m = map("#{}");
        let mut o = Opts::new("pgd", &m);
        o.f64("epsilon", 1.0).unwrap();
        assert!(o.finish().unwrap_err().to_string().contains("internal error: option 'epsilon'"));
    }

    #[test]
    fn correlation_warns_about_constant_columns_instead_of_a_silent_nan() {
        let mut s =
            crate::session::Session::new(crate::session::Config { capture: true, ..Default::default() }).unwrap();
        let src = "let d0 = dataset(\"gaussians\", #{ n: 50, seed: 1 });\n\
                   let d = d0.select([\"x0\", \"x1\"]).with_column(\"c\", d0[\"x0\"].map(|v| 1.0));\n\
                   let c = d.correlation();\n\
                   c[2][2].is_nan && c[2][0].is_nan && !c[0][1].is_nan";
        assert!(s.eval_source(src).unwrap().as_bool().unwrap());
        assert_eq!(
            s.take_output(),
            "warning: correlation: c has no spread (constant, or zero total weight): its rows and columns are NaN\n"
        );
    }
}
