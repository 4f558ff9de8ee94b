//! ROOT jagged branches → object collections, through oxyroot.
//!
//! Two layouts are read: counted C arrays (`float x[n]`, the leaf title `x[n]/F`, which
//! uproot writes for jagged awkward arrays) and `std::vector<T>` branches. Elements may be
//! any integer width, `bool`, `float` or `double`; they are stored as f32. Grouping into
//! collections follows [`super::jagged`]; every oxyroot call runs under the reader's panic
//! guard, as in [`super::root`].

use std::path::Path;

use oxyroot::{RBuffer, ReaderTree, Slice, UnmarshalerInto};

use super::jagged::{assemble, plan, Leaf, LeafData, RawCollection};
use super::root::guarded;
use super::select::Source;
use super::ReadOptions;
use crate::error::{Error, Result};
use crate::io_guard;

/// How the objects of a jagged branch are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Layout {
    /// `T x[n]`: a C array counted by another branch.
    Counted,
    /// `std::vector<T>`.
    Vector,
}

/// Element types of numeric branches, flat (`root.rs`) or jagged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Elem {
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

impl Elem {
    /// The element type of a ROOT numeric type name (`float`, `int32_t`, `unsigned int`, …).
    pub(super) fn of(ty: &str) -> Option<Elem> {
        Some(match ty {
            "float" => Elem::F32,
            "double" => Elem::F64,
            "int8_t" | "char" => Elem::I8,
            "uint8_t" | "unsigned char" => Elem::U8,
            "int16_t" | "short" => Elem::I16,
            "uint16_t" | "unsigned short" => Elem::U16,
            "int32_t" | "int" => Elem::I32,
            "uint32_t" | "unsigned int" => Elem::U32,
            "int64_t" | "long" | "long long" => Elem::I64,
            "uint64_t" | "unsigned long" | "unsigned long long" => Elem::U64,
            "bool" => Elem::Bool,
            _ => return None,
        })
    }
}

/// The layout and element type of a jagged numeric branch type name (`float[]`,
/// `vector<float>`, `std::vector<int32_t>`), or `None`.
pub(super) fn jagged_type(ty: &str) -> Option<(Layout, Elem)> {
    let (layout, elem) = if let Some(e) = ty.strip_suffix("[]") {
        (Layout::Counted, e)
    } else {
        let inner = ty.strip_prefix("std::").unwrap_or(ty);
        (Layout::Vector, inner.strip_prefix("vector<")?.strip_suffix('>')?)
    };
    let elem = Elem::of(elem.trim())?;
    Some((layout, elem))
}

/// Reads the collections of a TTree with `n` entries; returns them and the branches used.
pub(super) fn read(
    src: Source<'_>,
    tree: &ReaderTree,
    opts: &ReadOptions,
    n: usize,
) -> Result<(Vec<RawCollection>, Vec<String>)> {
    let path = src.path;
    let branches: Vec<(String, Layout, Elem)> = guarded(path, "listing jagged branches", || {
        tree.branches()
            .filter(|b| b.branches().next().is_none())
            .filter_map(|b| jagged_type(&b.item_type_name()).map(|(l, e)| (b.name().to_string(), l, e)))
            .collect()
    })?;
    let leaves: Vec<Leaf> = branches.iter().map(|(name, _, _)| Leaf::plain(name)).collect();
    let groups = plan(src.func, &leaves, &opts.collections, None)?;
    let mut data: Vec<LeafData> = (0..leaves.len()).map(|_| LeafData::default()).collect();
    let mut used = Vec::new();
    // bytes of the branches already read, held until the collections are assembled
    let mut held = 0u64;
    for &k in groups.iter().flat_map(|g| g.members.iter().map(|(_, k)| k)) {
        let (name, layout, elem) = &branches[k];
        data[k] = read_branch(path, tree, name, (*layout, *elem), n, opts, held)?;
        held += leaf_bytes(&data[k]);
        used.push(name.clone());
    }
    Ok((assemble(path, &groups, &leaves, data)?, used))
}

/// The bytes `d` holds (offsets and values).
fn leaf_bytes(d: &LeafData) -> u64 {
    8 * d.offsets.len() as u64 + 4 * d.values.len() as u64
}

/// Entries read between two checks of the memory budget and of the interrupt flag.
const CHUNK: usize = 1 << 14;

/// Reads all `n` entries of one jagged branch, while `held` bytes of other branches are kept.
/// The offsets are checked against the read limit and the session budget before they are
/// allocated, and the values as they grow (every [`CHUNK`] entries), so a branch larger than
/// the budget stops with [`Error::Memory`] naming the file and the branch.
fn read_branch(
    path: &Path,
    tree: &ReaderTree,
    name: &str,
    (layout, elem): (Layout, Elem),
    n: usize,
    opts: &ReadOptions,
    held: u64,
) -> Result<LeafData> {
    let fail = |e: &dyn std::fmt::Display| Error::format(path, format!("reading branch '{name}': {e}"));
    let what = format!("jagged branch '{name}'");
    io_guard::check_alloc(path, &what, held.saturating_add(8 * (n as u64 + 1)))?;
    opts.check_interrupt()?;
    let out = guarded(path, &format!("reading branch '{name}'"), || -> Result<LeafData> {
        let b = tree.branch(name).ok_or_else(|| fail(&"branch disappeared"))?;
        let mut out = LeafData::with_capacity(n);
        let step = |out: &LeafData| -> Result<()> {
            if out.offsets.len() % CHUNK == 0 {
                opts.check_interrupt()?;
                io_guard::check_alloc(path, &what, held.saturating_add(leaf_bytes(out)))?;
            }
            Ok(())
        };
        // At most n + 1 entries (one more shows a count mismatch).
        macro_rules! each {
            ($t:ty, $conv:expr) => {
                match layout {
                    Layout::Counted => {
                        for v in b.as_iter::<Slice<$t>>().map_err(|e| fail(&e))?.take(n.saturating_add(1)) {
                            out.push(v.into_vec().into_iter().map($conv));
                            step(&out)?;
                        }
                    }
                    Layout::Vector => {
                        // oxyroot's own iterator checks the type name; its entries are read by
                        // `vector_entry` instead, which bounds each entry's length
                        drop(b.as_iter::<Vec<$t>>().map_err(|e| fail(&e))?);
                        for v in b.get_basket(vector_entry::<$t>).take(n.saturating_add(1)) {
                            out.push(v.map_err(|e| fail(&e))?.into_iter().map($conv));
                            step(&out)?;
                        }
                    }
                }
            };
        }
        match elem {
            Elem::F32 => each!(f32, |x| x),
            Elem::F64 => each!(f64, |x| x as f32),
            Elem::I8 => each!(i8, f32::from),
            Elem::U8 => each!(u8, f32::from),
            Elem::I16 => each!(i16, f32::from),
            Elem::U16 => each!(u16, f32::from),
            Elem::I32 => each!(i32, |x| x as f32),
            Elem::U32 => each!(u32, |x| x as f32),
            Elem::I64 => each!(i64, |x| x as f32),
            Elem::U64 => each!(u64, |x| x as f32),
            Elem::Bool => each!(bool, |x| f32::from(u8::from(x))),
        }
        Ok(out)
    })??;
    let got = out.offsets.len() - 1;
    if got != n {
        let got = if got > n { format!("more than {n}") } else { got.to_string() };
        return Err(fail(&format!("expected {n} entries (the tree's count), got {got}")));
    }
    Ok(out)
}

/// One `std::vector<T>` entry, read as oxyroot's `Vec<T>` unmarshaler reads it (its
/// `rbytes/mod.rs`), except that the length is checked against the bytes left in the entry
/// before anything is reserved: oxyroot reserves what the length claims (up to 2³¹ values)
/// before reading them.
fn vector_entry<T: UnmarshalerInto<Item = T>>(r: &mut RBuffer) -> std::result::Result<Vec<T>, String> {
    r.do_skip_header().map_err(|e| e.to_string())?;
    let n = r.read_i32().map_err(|e| e.to_string())?;
    // every value takes its size in the entry (bool and the 8-bit types 1 byte)
    let size = std::mem::size_of::<T>().max(1) as i64;
    if n < 0 || i64::from(n) * size > r.len() {
        return Err(format!("an entry claims {n} values, but holds {} bytes", r.len().max(0)));
    }
    r.set_skip_header(None);
    let mut v = Vec::with_capacity(n as usize);
    for _ in 0..n {
        v.push(r.read_object_into::<T>().map_err(|e| e.to_string())?);
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::io::testutil::fixture;

    /// Writes `tests/data/oxyroot_vector.root` (see scripts/make_particle_fixtures.py): TTree
    /// `t`, 4 entries, `jet_pt` float = 1.5, 2.5, 3.5, 4.5 and std::vector<float> branches
    /// `part_pt` = [1, 2, 3], [], [0.25], [5, 6] and `part_eta` = [-1, 0, 1], [], [2.5], [0.5, -0.5].
    #[test]
    #[ignore = "writes the committed fixture; run by hand, see scripts/make_particle_fixtures.py"]
    fn write_vector_fixture() {
        let mut file = oxyroot::RootFile::create(fixture("oxyroot_vector.root")).unwrap();
        let mut tree = oxyroot::WriterTree::new("t");
        tree.new_branch("jet_pt", vec![1.5f32, 2.5, 3.5, 4.5].into_iter());
        let pt: Vec<Vec<f32>> = vec![vec![1.0, 2.0, 3.0], vec![], vec![0.25], vec![5.0, 6.0]];
        let eta: Vec<Vec<f32>> = vec![vec![-1.0, 0.0, 1.0], vec![], vec![2.5], vec![0.5, -0.5]];
        tree.new_branch("part_pt", pt.into_iter());
        tree.new_branch("part_eta", eta.into_iter());
        tree.write(&mut file).unwrap();
        file.close().unwrap();
    }

    #[test]
    fn jagged_branches_count_against_the_session_budget() {
        use crate::data::io::read_root;
        let p = fixture("uproot-HZZ.root");
        let o = ReadOptions { features: Some(vec!["MET_px".into()]), ..Default::default() };
        // Every record of the file is below 23 KiB once decompressed, and MET_px needs
        // 2421 × 12 bytes (≈ 28 KiB): both pass a 40 kB budget. Each jagged branch holds
        // 2422 offsets of 8 bytes (≈ 19 KiB) plus its values, so they cannot all be held at once.
        let b = crate::memory::Budget::new(40_000);
        let _g = crate::memory::enter(b.clone());
        let e = read_root(&p, &o).unwrap_err();
        assert_eq!(e.kind(), "memory");
        let msg = e.to_string();
        assert!(msg.starts_with(&format!("{}: jagged branch '", p.display())), "{msg}");
        assert_eq!(b.used(), 0);
        drop(_g);
        // With the default budget the same read succeeds.
        assert!(read_root(&p, &o).is_ok());
    }

    #[test]
    fn type_names() {
        assert_eq!(jagged_type("float[]"), Some((Layout::Counted, Elem::F32)));
        assert_eq!(jagged_type("int32_t[]"), Some((Layout::Counted, Elem::I32)));
        assert_eq!(jagged_type("vector<float>"), Some((Layout::Vector, Elem::F32)));
        assert_eq!(jagged_type("std::vector<double>"), Some((Layout::Vector, Elem::F64)));
        assert_eq!(jagged_type("vector<vector<float>>"), None);
        assert_eq!(jagged_type("float"), None);
        assert_eq!(jagged_type("TString[]"), None);
    }
}
