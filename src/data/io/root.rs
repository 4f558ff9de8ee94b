//! ROOT files: flat numeric branches of one TTree, through oxyroot.
//!
//! Branches of type `float`, `double`, `bool` and every integer width are columns (floats
//! are features by default, the rest only when listed, as for Parquet). Jagged (`float[]`),
//! fixed-size array and object branches are skipped by default and an error when listed.
//! `tree` chooses among several TTrees; without it a file with more than one is an error
//! listing their names.
//!
//! oxyroot reports many failures by panicking (ZSTD baskets hit `unimplemented!`), so every
//! call into it runs under `catch_unwind` and a panic becomes [`Error::Format`] naming the
//! file and the branch. The first such call installs a panic hook, chained to the previous
//! one, that stays silent for panics on a thread inside such a call, so these failures do not
//! print a panic message; other panics print as before.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::Once;

use ndarray::Array2;
use oxyroot::{Branch, Named, ReaderTree, RootFile};

use super::select::{finish, select, Kind, RawLabel, RawTable, Source};
use super::{ReadOptions, ReadReport};
use crate::data::Dataset;
use crate::error::{Error, Result};

/// Reads the flat branches of one TTree into a dataset (see the [module rules](super)).
pub fn read_root(path: &Path, opts: &ReadOptions) -> Result<(Dataset, ReadReport)> {
    let src = Source {
        func: "read_root",
        path,
        noun: "branch",
    };
    std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    let mut file = guarded(path, "opening the file", || RootFile::open(path))?
        .map_err(|e| Error::format(path, format!("not a readable ROOT file: {e}")))?;
    let name = choose_tree(path, &file, opts.tree.as_deref())?;
    let tree = guarded(path, &format!("reading TTree '{name}'"), || {
        file.get_tree(&name)
    })?
    .map_err(|e| Error::format(path, format!("reading TTree '{name}': {e}")))?;
    let n = usize::try_from(tree.entries()).unwrap_or(0);
    let branches = guarded(path, "listing branches", || list_branches(&tree))?;
    let cols: Vec<(String, Kind)> = branches
        .iter()
        .map(|(n, k, _)| (n.clone(), k.clone()))
        .collect();
    let sel = select(src, &cols, opts)?;
    let mut x = Array2::<f32>::zeros((n, sel.features.len()));
    for (j, &i) in sel.features.iter().enumerate() {
        let v = read_branch(path, &tree, &branches[i], n)?;
        for (dst, src) in x.column_mut(j).iter_mut().zip(v.as_f64()) {
            *dst = src as f32;
        }
    }
    let label = match sel.label {
        Some(i) => Some((
            cols[i].0.clone(),
            read_branch(path, &tree, &branches[i], n)?.into_label(),
        )),
        None => None,
    };
    let weight = match sel.weight {
        Some(i) => {
            let v = read_branch(path, &tree, &branches[i], n)?;
            Some((cols[i].0.clone(), v.as_f64().map(|w| w as f32).collect()))
        }
        None => None,
    };
    let names = sel.features.iter().map(|&i| cols[i].0.clone()).collect();
    finish(
        src,
        RawTable {
            names,
            x,
            label,
            weight,
        },
        opts,
        sel.ignored,
    )
}

/// The TTree to read: the one named, or the only one in the file.
fn choose_tree(path: &Path, file: &RootFile, wanted: Option<&str>) -> Result<String> {
    let mut trees: Vec<String> = file
        .keys()
        .iter()
        .filter(|k| k.class_name() == "TTree")
        .map(|k| k.name().to_string())
        .collect();
    trees.dedup();
    let list = trees.join(", ");
    match wanted {
        Some(t) if trees.iter().any(|n| n == t) => Ok(t.to_string()),
        Some(t) => Err(Error::format(
            path,
            format!("no TTree named '{t}'; the file has: {list}"),
        )),
        None if trees.len() == 1 => Ok(trees[0].clone()),
        None if trees.is_empty() => Err(Error::format(path, "expected a TTree, found none")),
        None => Err(Error::BadOption {
            func: "read_root".into(),
            key: "tree".into(),
            problem: format!(
                "is needed: {} has {} TTrees ({list}); choose one with #{{ tree: \"…\" }}",
                path.display(),
                trees.len()
            ),
        }),
    }
}

/// How to read a flat branch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Leaf {
    F32,
    F64,
    I8,
    U8,
    I16,
    U16,
    I32,
    U32,
    I64,
    U64,
    Bool,
}

/// Top-level branches: name, selection kind, and how to read it (for flat ones).
fn list_branches(tree: &ReaderTree) -> Vec<(String, Kind, Option<Leaf>)> {
    tree.branches()
        .map(|b| {
            let ty = b.item_type_name();
            let (kind, leaf) = classify(b, &ty);
            (b.name().to_string(), kind, leaf)
        })
        .collect()
}

fn classify(b: &Branch, ty: &str) -> (Kind, Option<Leaf>) {
    let leaf = match ty {
        "float" => Leaf::F32,
        "double" => Leaf::F64,
        "int8_t" => Leaf::I8,
        "uint8_t" => Leaf::U8,
        "int16_t" => Leaf::I16,
        "uint16_t" => Leaf::U16,
        "int32_t" => Leaf::I32,
        "uint32_t" => Leaf::U32,
        "int64_t" => Leaf::I64,
        "uint64_t" => Leaf::U64,
        "bool" => Leaf::Bool,
        t if t.ends_with("[]") => return (unusable("is jagged (variable length per event)"), None),
        t if t.ends_with(']') => return (unusable(&format!("is a fixed-size array ({t})")), None),
        t => return (Kind::Unusable(format!("is not numeric ({t})")), None),
    };
    if b.branches().next().is_some() {
        return (unusable("has sub-branches"), None);
    }
    let kind = match leaf {
        Leaf::F32 | Leaf::F64 => Kind::Float,
        Leaf::Bool => Kind::Bool,
        _ => Kind::Int,
    };
    (kind, Some(leaf))
}

fn unusable(what: &str) -> Kind {
    Kind::Unusable(format!("{what}; only flat branches can be read"))
}

/// The values of one branch.
enum Values {
    Float(Vec<f64>),
    Int(Vec<i64>),
}

impl Values {
    fn as_f64(&self) -> Box<dyn Iterator<Item = f64> + '_> {
        match self {
            Values::Float(v) => Box::new(v.iter().copied()),
            Values::Int(v) => Box::new(v.iter().map(|&i| i as f64)),
        }
    }

    fn into_label(self) -> RawLabel {
        match self {
            Values::Float(v) => RawLabel::Float(v),
            Values::Int(values) => RawLabel::Int {
                values,
                valid: None,
            },
        }
    }
}

/// Reads all `n` entries of a flat branch.
fn read_branch(
    path: &Path,
    tree: &ReaderTree,
    col: &(String, Kind, Option<Leaf>),
    n: usize,
) -> Result<Values> {
    let (name, _, leaf) = col;
    let fail =
        |e: &dyn std::fmt::Display| Error::format(path, format!("reading branch '{name}': {e}"));
    let leaf = leaf.ok_or_else(|| fail(&"not a flat branch"))?;
    let vals = guarded(
        path,
        &format!("reading branch '{name}'"),
        || -> Result<Values> {
            let b = tree
                .branch(name)
                .ok_or_else(|| fail(&"branch disappeared"))?;
            let float = |v: Vec<f64>| Ok(Values::Float(v));
            let int = |v: Vec<i64>| Ok(Values::Int(v));
            macro_rules! it {
                ($t:ty) => {
                    b.as_iter::<$t>().map_err(|e| fail(&e))?
                };
            }
            match leaf {
                Leaf::F32 => float(it!(f32).map(f64::from).collect()),
                Leaf::F64 => float(it!(f64).collect()),
                Leaf::I8 => int(it!(i8).map(i64::from).collect()),
                Leaf::U8 => int(it!(u8).map(i64::from).collect()),
                Leaf::I16 => int(it!(i16).map(i64::from).collect()),
                Leaf::U16 => int(it!(u16).map(i64::from).collect()),
                Leaf::I32 => int(it!(i32).map(i64::from).collect()),
                Leaf::U32 => int(it!(u32).map(i64::from).collect()),
                Leaf::I64 => int(it!(i64).collect()),
                Leaf::U64 => {
                    let v: Vec<u64> = it!(u64).collect();
                    match v.iter().map(|&u| i64::try_from(u)).collect() {
                        Ok(signed) => int(signed),
                        Err(_) => float(v.iter().map(|&u| u as f64).collect()),
                    }
                }
                Leaf::Bool => int(it!(bool).map(i64::from).collect()),
            }
        },
    )??;
    let got = match &vals {
        Values::Float(v) => v.len(),
        Values::Int(v) => v.len(),
    };
    if got != n {
        return Err(fail(&format!(
            "expected {n} entries (the tree's count), got {got}"
        )));
    }
    Ok(vals)
}

thread_local! {
    /// True while this thread runs inside [`guarded`]: its panics are not printed.
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` (a call into oxyroot), turning a panic into a format error about `what`.
fn guarded<T>(path: &Path, what: &str, f: impl FnOnce() -> T) -> Result<T> {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(Cell::get) {
                previous(info);
            }
        }));
    });
    let was = QUIET.with(|q| q.replace(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    QUIET.with(|q| q.set(was));
    result.map_err(|payload| {
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown failure".into());
        Error::format(path, format!("{what}: the ROOT reader failed ({msg})"))
    })
}
