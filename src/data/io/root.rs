//! ROOT files: flat numeric branches of one TTree, through oxyroot.
//!
//! Branches of type `float`, `double`, `bool` and every integer width are columns (floats
//! are features by default, the rest only when listed, as for Parquet). Jagged numeric
//! branches (`float[]` counted arrays, `std::vector<float>`) are read as object collections
//! by [`super::root_jagged`]; fixed-size array and object branches are skipped, and every
//! non-flat branch is an error when listed as a feature.
//! `tree` chooses among several TTrees; without it a file with more than one is an error
//! listing their names.
//!
//! oxyroot reports many failures by panicking (ZSTD baskets hit `unimplemented!`), so every
//! call into it runs under [`io_guard::guarded`]: a panic becomes [`Error::Format`] naming the
//! file and the branch, and prints nothing.
//!
//! Before oxyroot sees the file, its header is checked: the magic bytes, and every offset and
//! size it holds (start of data, end of file, free-segment and streamer records) must lie
//! inside the file. Then [`super::root_scan`] walks every record of the file (every `TKey`:
//! baskets, the TTree, the streamer list, the list of keys): sizes inside the file, compressed
//! blocks adding up to the claimed object size, each object within the read limit and the
//! session memory budget, and every pointer oxyroot follows to a key landing on one. oxyroot
//! is then given the checked handle (`/proc/self/fd/N`, [`io_guard::fd_path`]), not the name.
//! The entry count is checked against the read limit, and jagged branches against the budget
//! as they are read ([`super::root_jagged`]).
//!
//! Counts inside the objects oxyroot streams (a TTree's cluster tables, a branch's basket
//! tables, a basket's entry count and offsets) are checked by [`super::root_objects`] before
//! oxyroot allocates from them: after the walk, the streamer list oxyroot reads at open, and
//! once the tree is chosen, the tree and the headers of the baskets its branches point at.
//! How deeply their objects nest is bounded too (oxyroot's reader recurses once per level).
//! One entry's `std::vector` length is checked as it is read ([`super::root_jagged`]).

use std::path::Path;

use ndarray::Array2;
use oxyroot::{Branch, Named, ReaderTree, RootFile};

use super::select::{finish_with, select, Kind, RawLabel, RawTable, Source};
use super::{root_jagged, root_objects, root_scan};
use super::{ReadOptions, ReadReport};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::io_guard;

/// Entries read between two checks of the interrupt flag.
const CHUNK: usize = 1 << 16;

/// Reads the flat branches of one TTree into a dataset (see the [module rules](super)).
pub fn read_root(path: &Path, opts: &ReadOptions) -> Result<(Dataset, ReadReport)> {
    let src = Source { func: "read_root", path, noun: "branch" };
    let (handle, len) = io_guard::open_regular(path)?;
    let header = check_header(path, &handle, len)?;
    let scan = root_scan::scan(path, &handle, len, &header)?;
    root_objects::check_streamer_list(path, &handle, len, &scan, header.seek_info)?;
    // oxyroot opens by name (and again for each branch): it is given the name of the handle
    // checked above, so it reads that file whatever `path` names by now.
    let by_fd = io_guard::fd_path(&handle, path);
    let mut file = guarded(path, "opening the file", || RootFile::open(&by_fd))?
        .map_err(|e| Error::format(path, format!("not a readable ROOT file: {e}")))?;
    let name = choose_tree(path, &file, opts.tree.as_deref())?;
    root_objects::check_tree(path, &handle, len, &scan, &name)?;
    let tree = guarded(path, &format!("reading TTree '{name}'"), || file.get_tree(&name))?
        .map_err(|e| Error::format(path, format!("reading TTree '{name}': {e}")))?;
    let n = usize::try_from(io_guard::bytes_for(path, &format!("TTree '{name}'"), tree.entries(), 1)?)
        .map_err(|_| Error::format(path, format!("TTree '{name}' claims {} entries", tree.entries())))?;
    let branches = guarded(path, "listing branches", || list_branches(&tree))?;
    let cols: Vec<(String, Kind)> = branches.iter().map(|(n, k, _)| (n.clone(), k.clone())).collect();
    let sel = select(src, &cols, opts)?;
    // the features (f32) and one branch being read (f64 or i64)
    let per_entry = 4 * sel.features.len() as u64 + 8;
    io_guard::check_alloc(path, &format!("{n} entries"), (n as u64).saturating_mul(per_entry))?;
    let mut x = Array2::<f32>::zeros((n, sel.features.len()));
    for (j, &i) in sel.features.iter().enumerate() {
        let v = read_branch(path, &tree, &branches[i], n, opts)?;
        for (dst, src) in x.column_mut(j).iter_mut().zip(v.as_f64()) {
            *dst = src as f32;
        }
    }
    let label = match sel.label {
        Some(i) => Some((cols[i].0.clone(), read_branch(path, &tree, &branches[i], n, opts)?.into_label())),
        None => None,
    };
    let weight = match sel.weight {
        Some(i) => {
            let v = read_branch(path, &tree, &branches[i], n, opts)?;
            Some((cols[i].0.clone(), v.as_f64().map(|w| w as f32).collect()))
        }
        None => None,
    };
    let names = sel.features.iter().map(|&i| cols[i].0.clone()).collect();
    let (jagged, used) = root_jagged::read(src, &tree, opts, n)?;
    let ignored = sel.ignored.into_iter().filter(|c| !used.contains(c)).collect();
    finish_with(src, RawTable { names, x, label, weight }, jagged, opts, ignored)
}

/// The entry count of a ROOT file's TTree (one unit: ROOT files are read whole) and its
/// top-level branches with their types, after the checks [`read_root`] makes before reading.
pub(crate) fn root_layout(path: &Path, tree: Option<&str>) -> Result<super::FileLayout> {
    let (handle, len) = io_guard::open_regular(path)?;
    let header = check_header(path, &handle, len)?;
    let scan = root_scan::scan(path, &handle, len, &header)?;
    root_objects::check_streamer_list(path, &handle, len, &scan, header.seek_info)?;
    let by_fd = io_guard::fd_path(&handle, path);
    let mut file = guarded(path, "opening the file", || RootFile::open(&by_fd))?
        .map_err(|e| Error::format(path, format!("not a readable ROOT file: {e}")))?;
    let name = choose_tree(path, &file, tree)?;
    root_objects::check_tree(path, &handle, len, &scan, &name)?;
    let tree = guarded(path, &format!("reading TTree '{name}'"), || file.get_tree(&name))?
        .map_err(|e| Error::format(path, format!("reading TTree '{name}': {e}")))?;
    let n = usize::try_from(io_guard::bytes_for(path, &format!("TTree '{name}'"), tree.entries(), 1)?)
        .map_err(|_| Error::format(path, format!("TTree '{name}' claims {} entries", tree.entries())))?;
    let columns = guarded(path, "listing branches", || {
        tree.branches()
            .map(|b| {
                let ty = b.item_type_name();
                let (kind, _) = classify(b, &ty);
                (b.name().to_string(), kind, ty)
            })
            .collect()
    })?;
    Ok(super::FileLayout { units: vec![n], columns })
}

/// Checks the fixed header of a ROOT file against the file's length (see the module docs).
fn check_header(path: &Path, f: &std::fs::File, len: u64) -> Result<root_scan::Header> {
    use std::io::Read;
    let mut head = Vec::with_capacity(64);
    f.take(64).read_to_end(&mut head).map_err(|e| Error::io(path, e))?;
    let bad = |m: &str| Error::format(path, format!("not a readable ROOT file: {m}"));
    if head.len() < 4 || &head[..4] != b"root" {
        return Err(bad("it does not start with the ROOT magic bytes"));
    }
    // Big-endian fields after the magic; the wide ones are 8 bytes in files above 2 GB.
    let mut at = 4;
    let mut int = |w: usize| -> Result<i64> {
        let b = head.get(at..at + w).ok_or_else(|| bad("the header is truncated"))?;
        at += w;
        let mut be = [0u8; 8];
        be[8 - w..].copy_from_slice(b);
        // sign-extend the 4-byte fields (ROOT's Int_t)
        let v = i64::from_be_bytes(be);
        Ok(if w == 4 { i64::from(v as u32 as i32) } else { v })
    };
    let version = int(4)?;
    let wide = if version >= 1_000_000 { 8 } else { 4 };
    let begin = int(4)?;
    let end = int(wide)?;
    let seek_free = int(wide)?;
    let nbytes_free = int(4)?;
    let _nfree = int(4)?;
    let nbytes_name = int(4)?;
    let _units = int(1)?;
    let _compress = int(4)?;
    let seek_info = int(wide)?;
    let nbytes_info = int(4)?;
    let len = i64::try_from(len).unwrap_or(i64::MAX);
    let within = |what: &str, start: i64, size: i64| {
        let ok = start >= 0 && size >= 0 && start.checked_add(size).is_some_and(|e| e <= len);
        if ok {
            Ok(())
        } else {
            Err(bad(&format!(
                "the header puts {what} at offset {start} with {size} bytes, outside the file's {len} bytes"
            )))
        }
    };
    within("the first record", 0, begin)?;
    within("the end of the data", 0, end)?;
    within("the list of free segments", seek_free, nbytes_free)?;
    within("the streamer list", seek_info, nbytes_info)?;
    within("the directory name", begin, nbytes_name)?;
    // all five are now non-negative
    let u = |v: i64| v as u64;
    Ok(root_scan::Header {
        begin: u(begin),
        end: u(end),
        seek_free: u(seek_free),
        nbytes_free: u(nbytes_free),
        nbytes_name: u(nbytes_name),
        seek_info: u(seek_info),
        nbytes_info: u(nbytes_info),
    })
}

/// The TTree to read: the one named, or the only one in the file.
fn choose_tree(path: &Path, file: &RootFile, wanted: Option<&str>) -> Result<String> {
    let mut trees: Vec<String> =
        file.keys().iter().filter(|k| k.class_name() == "TTree").map(|k| k.name().to_string()).collect();
    trees.dedup();
    let list = trees.join(", ");
    match wanted {
        Some(t) if trees.iter().any(|n| n == t) => Ok(t.to_string()),
        Some(t) => Err(Error::format(path, format!("no TTree named '{t}'; the file has: {list}"))),
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

/// How to read a flat branch: its element type.
use super::root_jagged::Elem as Leaf;

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
    let leaf = match Leaf::of(ty) {
        Some(leaf) => leaf,
        None if root_jagged::jagged_type(ty).is_some() => {
            let why = "is jagged (variable length per event); jagged branches are read as object collections \
                       (option `collections`)";
            return (Kind::Unusable(why.into()), None);
        }
        None if ty.ends_with("[]") => return (unusable("is jagged (variable length per event)"), None),
        None if ty.ends_with(']') => return (unusable(&format!("is a fixed-size array ({ty})")), None),
        None => return (Kind::Unusable(format!("is not numeric ({ty})")), None),
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
            Values::Int(values) => RawLabel::Int { values, valid: None },
        }
    }
}

/// Reads all `n` entries of a flat branch.
fn read_branch(
    path: &Path,
    tree: &ReaderTree,
    col: &(String, Kind, Option<Leaf>),
    n: usize,
    opts: &ReadOptions,
) -> Result<Values> {
    let (name, _, leaf) = col;
    let fail = |e: &dyn std::fmt::Display| Error::format(path, format!("reading branch '{name}': {e}"));
    let leaf = leaf.ok_or_else(|| fail(&"not a flat branch"))?;
    opts.check_interrupt()?;
    let vals = guarded(path, &format!("reading branch '{name}'"), || -> Result<Values> {
        let b = tree.branch(name).ok_or_else(|| fail(&"branch disappeared"))?;
        let float = |v: Result<Vec<f64>>| Ok(Values::Float(v?));
        let int = |v: Result<Vec<i64>>| Ok(Values::Int(v?));
        // At most n + 1 entries (one more shows a count mismatch), checking Ctrl-C as it goes.
        macro_rules! it {
            ($t:ty, $f:expr) => {
                b.as_iter::<$t>()
                    .map_err(|e| fail(&e))?
                    .take(n.saturating_add(1))
                    .enumerate()
                    .map(|(i, v)| if i % CHUNK == 0 { opts.check_interrupt().map(|_| $f(v)) } else { Ok($f(v)) })
                    .collect::<Result<Vec<_>>>()
            };
        }
        match leaf {
            Leaf::F32 => float(it!(f32, f64::from)),
            Leaf::F64 => float(it!(f64, |v| v)),
            Leaf::I8 => int(it!(i8, i64::from)),
            Leaf::U8 => int(it!(u8, i64::from)),
            Leaf::I16 => int(it!(i16, i64::from)),
            Leaf::U16 => int(it!(u16, i64::from)),
            Leaf::I32 => int(it!(i32, i64::from)),
            Leaf::U32 => int(it!(u32, i64::from)),
            Leaf::I64 => int(it!(i64, |v| v)),
            Leaf::U64 => {
                let v: Vec<u64> = it!(u64, |v| v)?;
                match v.iter().map(|&u| i64::try_from(u)).collect() {
                    Ok(signed) => Ok(Values::Int(signed)),
                    Err(_) => Ok(Values::Float(v.iter().map(|&u| u as f64).collect())),
                }
            }
            Leaf::Bool => int(it!(bool, i64::from)),
        }
    })??;
    let got = match &vals {
        Values::Float(v) => v.len(),
        Values::Int(v) => v.len(),
    };
    if got != n {
        let got = if got > n { format!("more than {n}") } else { got.to_string() };
        return Err(fail(&format!("expected {n} entries (the tree's count), got {got}")));
    }
    Ok(vals)
}

/// A call into oxyroot, its panics turned into format errors about `what`.
pub(super) fn guarded<T>(path: &Path, what: &str, f: impl FnOnce() -> T) -> Result<T> {
    io_guard::guarded(path, "ROOT reader", what, f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::io::read_parquet;
    use crate::data::io::testutil::{fixture, shared, tmpdir};

    fn opts(features: &[&str]) -> ReadOptions {
        ReadOptions { features: Some(features.iter().map(|s| s.to_string()).collect()), ..Default::default() }
    }

    #[test]
    fn hzz_flat_branches_agree_with_parquet_table() {
        let p = fixture("uproot-HZZ.root");
        let o = ReadOptions { weight: Some("EventWeight".into()), ..opts(&["NMuon", "MET_px", "MET_py"]) };
        let (ds, rep) = read_root(&p, &o).unwrap();
        // data/README.md: tree `events`, 2,421 entries, muon counts 0:59 1:949 2:1371 3:34 4:8
        assert_eq!(ds.len(), 2421);
        let nm = ds.column("NMuon").unwrap();
        let counts: Vec<usize> = (0..5).map(|k| nm.iter().filter(|&&v| v == k as f32).count()).collect();
        assert_eq!(counts, vec![59, 949, 1371, 34, 8]);
        // the bool trigger flag is skipped and listed; jagged branches are collections, and
        // the counter NMuon is the multiplicity of the `Muon` collection
        assert!(rep.ignored_columns.iter().any(|c| c == "triggerIsoMu24"));
        assert!(!rep.ignored_columns.iter().any(|c| c == "Muon_Px"));
        let mult: Vec<f32> = ds.collection("t", "Muon").unwrap().counts().into_iter().map(|k| k as f32).collect();
        assert_eq!(mult, nm.to_vec());
        // The parquet table was converted from this tree: weight = EventWeight (bit-equal),
        // met = hypot(MET_px, MET_py) in float32 (agrees to rounding).
        let (pq, _) = read_parquet(&fixture("cms_tutorial_hzz_events.parquet"), &Default::default()).unwrap();
        assert_eq!(ds.weight().unwrap(), pq.weight().unwrap());
        let (px, py) = (ds.column("MET_px").unwrap(), ds.column("MET_py").unwrap());
        for ((x, y), m) in px.iter().zip(py).zip(pq.column("met").unwrap()) {
            assert!((x.hypot(*y) - m).abs() <= 1e-5 * m.max(1.0), "{x} {y} {m}");
        }
    }

    #[test]
    fn hzz_default_rule_takes_float_branches_only() {
        let (ds, rep) = read_root(&fixture("uproot-HZZ.root"), &Default::default()).unwrap();
        // uproot typenames: 21 scalar `float` branches (MET_px, MET_py, EventWeight and
        // 6 MC particles × px/py/pz = 18); 23 jagged branches form the collections Jet (6),
        // Muon (6), Electron (6), Photon (5); 51 branches in all, so 7 are ignored (the 4
        // counters, MCleptonPDGid, NPrimaryVertices, triggerIsoMu24).
        assert_eq!((ds.n_features(), rep.ignored_columns.len()), (21, 7));
        let colls: Vec<(&str, usize)> = ds.collections().iter().map(|c| (c.name(), c.features().len())).collect();
        assert_eq!(colls, vec![("Jet", 6), ("Muon", 6), ("Electron", 6), ("Photon", 5)]);
        assert!(ds.label().is_none() && ds.weight().is_none());
    }

    #[test]
    fn jagged_branch_listed_is_clear_error() {
        let e = read_root(&fixture("uproot-HZZ.root"), &opts(&["Muon_Px"])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "read_root: branch 'Muon_Px' is jagged (variable length per event); jagged branches are read as object \
             collections (option `collections`)"
        );
    }

    #[test]
    fn reads_every_integer_width_and_bool() {
        // Values from scripts/make_io_fixtures.py, i = 0..4.
        let p = fixture("uproot_types.root");
        let (ds, rep) = read_root(&p, &Default::default()).unwrap();
        assert_eq!(ds.names(), &["f", "d"]);
        assert_eq!(ds.label().unwrap(), &[0, 1, 0, 1, 0]);
        assert_eq!(rep.ignored_columns, vec!["i8", "u16", "i64", "u64", "b", "njag"]);
        // jag = [0.0] * i: the collection `jag` (no '_' in the name) with lengths 0..4
        assert_eq!(ds.collection("t", "jag").unwrap().counts(), vec![0, 1, 2, 3, 4]);
        let (ds, _) = read_root(&p, &opts(&["i8", "u16", "i64", "u64", "b", "d"])).unwrap();
        // row 3: i8 = 1, u16 = 3000, i64 = -2^40 + 3 (f32: -2^40), u64 = 2^62 + 3 (f32: 2^62),
        // b = true, d = 0.75
        let want = [1.0, 3000.0, -1_099_511_627_776.0, 4_611_686_018_427_387_904.0, 1.0, 0.75];
        assert_eq!(ds.x().row(3).to_vec(), want.to_vec());
        let e = read_root(&p, &opts(&["jag"])).unwrap_err().to_string();
        assert!(e.contains("'jag' is jagged"), "{e}");
    }

    #[test]
    fn zstd_basket_panic_becomes_format_error() {
        // oxyroot 0.1.25 hits `unimplemented!` on ZSTD baskets; that must not escape.
        let p = fixture("uproot_zstd.root");
        let e = read_root(&p, &opts(&["f"])).unwrap_err();
        assert_eq!(e.kind(), "format");
        let msg = e.to_string();
        assert!(msg.starts_with(&format!("{}: ", p.display())) && msg.contains("branch 'f'"), "{msg}");
        assert!(msg.contains("the ROOT reader failed"), "{msg}");
    }

    #[test]
    fn missing_garbage_and_truncated_files() {
        let e = read_root(Path::new("/nonexistent/x.root"), &Default::default()).unwrap_err();
        assert_eq!(e.kind(), "io");
        let dir = tmpdir("root_bad");
        let junk = dir.join("junk.root");
        std::fs::write(&junk, vec![7u8; 4096]).unwrap();
        assert_eq!(read_root(&junk, &Default::default()).unwrap_err().kind(), "format");
        // the first 100 kB of a 213 kB file: the header points past the end
        let bytes = std::fs::read(fixture("uproot-HZZ.root")).unwrap();
        let cut = dir.join("cut.root");
        std::fs::write(&cut, &bytes[..100_000]).unwrap();
        assert_eq!(read_root(&cut, &Default::default()).unwrap_err().kind(), "format");
    }

    #[test]
    fn header_sizes_outside_the_file_are_refused_before_oxyroot() {
        let dir = tmpdir("root_header");
        let bytes = std::fs::read(fixture("uproot_types.root")).unwrap();
        let len = bytes.len();
        // Small-file header, big-endian: "root", fVersion at 4, fBEGIN at 8, fEND at 12,
        // fSeekFree, fNbytesFree, nfree, fNbytesName, fUnits (1 byte), fCompress at 33,
        // fSeekInfo at 37, fNbytesInfo at 41.
        let patched = |at: usize, v: i32| {
            let mut b = bytes.clone();
            b[at..at + 4].copy_from_slice(&v.to_be_bytes());
            let p = dir.join(format!("h{at}_{v}.root"));
            std::fs::write(&p, b).unwrap();
            read_root(&p, &Default::default()).unwrap_err().to_string()
        };
        let e = patched(12, len as i32 + 1);
        let want = format!(
            "the header puts the end of the data at offset 0 with {} bytes, outside the file's {len} bytes",
            len + 1
        );
        assert!(e.ends_with(&want), "{e}");
        assert!(patched(8, -1).contains("the header puts the first record at offset 0 with -1 bytes"));
        assert!(patched(37, i32::MAX).contains("the streamer list"));
        let mut b = bytes.clone();
        b[..4].copy_from_slice(b"toor");
        let p = dir.join("magic.root");
        std::fs::write(&p, b).unwrap();
        let e = read_root(&p, &Default::default()).unwrap_err().to_string();
        assert!(e.ends_with("not a readable ROOT file: it does not start with the ROOT magic bytes"), "{e}");
    }

    #[test]
    fn interrupt_flag_stops_the_read() {
        let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let o = ReadOptions { interrupt: Some(flag), ..Default::default() };
        assert_eq!(read_root(&fixture("uproot_types.root"), &o).unwrap_err().kind(), "interrupted");
    }

    #[test]
    fn issue63_tree_choice_and_agreement_with_parquet() {
        let Some(p) = shared("uproot-issue63.root") else {
            return;
        };
        let e = read_root(&p, &Default::default()).unwrap_err();
        assert_eq!(e.kind(), "bad_option");
        let msg = e.to_string();
        assert!(msg.contains("WtLoop_nominal, WtLoop_Fake_nominal, WtLoop_meta"), "{msg}");
        let e = read_root(&p, &ReadOptions { tree: Some("nope".into()), ..Default::default() });
        assert!(e.unwrap_err().to_string().contains("no TTree named 'nope'"));
        let o = ReadOptions {
            tree: Some("WtLoop_nominal".into()),
            label: Some("elmu".into()),
            weight: Some("weight_nominal".into()),
            ..opts(&["met", "eventNumber", "njets"])
        };
        let (ds, _) = read_root(&p, &o).unwrap();
        // data/README.md: the parquet table is this tree; label = elmu, weight = weight_nominal.
        let (pq, _) = read_parquet(&shared("atlas_wt_dilepton_mc16a.parquet").unwrap(), &Default::default()).unwrap();
        assert_eq!(ds.len(), 9812);
        assert_eq!(ds.column("met").unwrap(), pq.column("met").unwrap());
        assert_eq!(ds.column("njets").unwrap(), pq.column("njets").unwrap());
        assert_eq!(ds.label(), pq.label());
        assert_eq!(ds.weight(), pq.weight());
        // uproot: eventNumber[:3] = 3562236, 3564512, 3563085 (below 2^24, exact in f32)
        assert_eq!(
            ds.column("eventNumber").unwrap().slice(ndarray::s![..3]).to_vec(),
            vec![3562236.0, 3564512.0, 3563085.0]
        );
    }
}
