//! Object collections: a variable number of objects per event (jet constituents, muons, …),
//! each object with the same named f32 features.
//!
//! A [`Collection`] is stored flat, as Arrow and awkward store lists: `offsets` (one more than
//! the number of events; event `i` owns objects `offsets[i]..offsets[i + 1]`) and one value
//! column per feature holding every object of every event. Nothing is padded; [`pad`] builds
//! the padded `[b × n × f]` block and its mask only when a model takes a batch.
//!
//! Like [`Dataset`](super::Dataset), a collection is a cheap-to-clone handle (`Arc` inside),
//! and its bytes (offsets and values) count against the session memory budget while any clone
//! lives: [`Collection::new`] refuses a collection that does not fit ([`Error::Memory`]);
//! collections derived from checked ones (take, filter, sort, …) are counted without failing.
//!
//! ```
//! use nuisance::data::collection::Collection;
//! // 3 events with 2, 0 and 1 objects
//! let c = Collection::new("part", vec![0, 2, 2, 3], vec!["pt".into()], vec![vec![5.0, 3.0, 7.0]]).unwrap();
//! assert_eq!(c.counts(), vec![2, 0, 1]);
//! assert_eq!(c.event("pt", 2).unwrap(), &[7.0]);
//! ```

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::memory::{self, Reservation};

/// Objects per event, stored as offsets + one value column per feature.
#[derive(Clone, Debug, PartialEq)]
pub struct Collection {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    name: String,
    offsets: Vec<usize>,
    features: Vec<String>,
    values: Vec<Vec<f32>>,
    /// The bytes above, counted against the session memory budget.
    _memory: Reservation,
}

impl PartialEq for Inner {
    fn eq(&self, o: &Self) -> bool {
        (&self.name, &self.offsets, &self.features, &self.values) == (&o.name, &o.offsets, &o.features, &o.values)
    }
}

/// Bytes of a collection's offsets and values.
fn collection_bytes(offsets: &[usize], values: &[Vec<f32>]) -> u64 {
    let n_values: usize = values.iter().map(Vec::len).sum();
    memory::bytes(offsets.len(), 8).saturating_add(memory::bytes(n_values, 4))
}

impl Collection {
    /// Builds a collection, checking the offsets (start at 0, never decrease), that each
    /// feature has one value per object, that names are unique and that values are finite.
    pub fn new(name: &str, offsets: Vec<usize>, features: Vec<String>, values: Vec<Vec<f32>>) -> Result<Self> {
        let c = Self::new_unchecked_finite(name, offsets, features, values)?;
        if let Some((j, k)) = c.first_nonfinite() {
            let event = c.event_of(k);
            let count = c.inner.values[j].iter().filter(|v| !v.is_finite()).count();
            return Err(Error::NonFinite {
                op: format!("collection '{name}'"),
                column: format!("{name}.{}", c.inner.features[j]),
                count,
                row: event,
            });
        }
        Ok(c)
    }

    /// Like [`Collection::new`] without the scan for NaN/Inf (the caller has done it).
    pub fn new_unchecked_finite(
        name: &str,
        offsets: Vec<usize>,
        features: Vec<String>,
        values: Vec<Vec<f32>>,
    ) -> Result<Self> {
        let op = "collection";
        if name.is_empty() {
            return Err(Error::arg(op, "a collection needs a non-empty name"));
        }
        if offsets.first() != Some(&0) || offsets.windows(2).any(|w| w[1] < w[0]) {
            return Err(Error::arg(op, format!("collection '{name}': offsets must start at 0 and never decrease")));
        }
        if features.len() != values.len() {
            return Err(Error::Shape {
                op: "collection",
                expected: format!("{} value columns for {} features", features.len(), features.len()),
                got: format!("{} columns", values.len()),
            });
        }
        let total = offsets[offsets.len() - 1];
        for (f, v) in features.iter().zip(&values) {
            if v.len() != total {
                return Err(Error::Shape {
                    op: "collection",
                    expected: format!("{total} values of '{name}.{f}' (one per object)"),
                    got: format!("{} values", v.len()),
                });
            }
        }
        let mut seen = std::collections::HashSet::new();
        for f in &features {
            if !seen.insert(f.as_str()) {
                return Err(Error::arg(op, format!("collection '{name}': duplicate feature name '{f}'")));
            }
        }
        let bytes = collection_bytes(&offsets, &values);
        let what = format!("collection '{name}' ({total} objects × {} features)", features.len());
        let _memory = memory::reserve(bytes, &what)?;
        Ok(Collection { inner: Arc::new(Inner { name: name.to_string(), offsets, features, values, _memory }) })
    }

    /// Builds a collection from per-event lists, one `(feature, lists)` pair per feature; all
    /// features must have the same number of objects in every event.
    pub fn from_lists(name: &str, features: Vec<(String, Vec<Vec<f32>>)>) -> Result<Self> {
        let Some((f0, first)) = features.first() else {
            return Err(Error::arg("collection", format!("collection '{name}' needs at least one feature")));
        };
        let mut offsets = Vec::with_capacity(first.len() + 1);
        offsets.push(0);
        for e in first {
            offsets.push(offsets[offsets.len() - 1] + e.len());
        }
        for (f, lists) in &features[1..] {
            if lists.len() != first.len() {
                return Err(Error::Shape {
                    op: "collection",
                    expected: format!("{} events for '{name}.{f}' (as '{name}.{f0}')", first.len()),
                    got: format!("{} events", lists.len()),
                });
            }
            if let Some(i) = (0..lists.len()).find(|&i| lists[i].len() != first[i].len()) {
                return Err(Error::arg(
                    "collection",
                    format!(
                        "features '{f0}' and '{f}' of collection '{name}' differ in length at event {i} ({} and {} objects)",
                        first[i].len(),
                        lists[i].len()
                    ),
                ));
            }
        }
        let (names, values): (Vec<String>, Vec<Vec<f32>>) =
            features.into_iter().map(|(f, lists)| (f, lists.into_iter().flatten().collect())).unzip();
        Collection::new(name, offsets, names, values)
    }

    /// The collection's name (e.g. `part`).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Number of events.
    pub fn n_events(&self) -> usize {
        self.inner.offsets.len() - 1
    }

    /// Number of objects in all events together.
    pub fn n_objects(&self) -> usize {
        self.inner.offsets[self.n_events()]
    }

    /// The offsets: event `i` owns objects `offsets[i]..offsets[i + 1]`.
    pub fn offsets(&self) -> &[usize] {
        &self.inner.offsets
    }

    /// Feature names, in column order.
    pub fn features(&self) -> &[String] {
        &self.inner.features
    }

    /// Objects per event.
    pub fn counts(&self) -> Vec<usize> {
        self.inner.offsets.windows(2).map(|w| w[1] - w[0]).collect()
    }

    /// The largest number of objects in one event (0 without events).
    pub fn max_count(&self) -> usize {
        self.inner.offsets.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0)
    }

    /// Index of a feature, or an error listing the features.
    pub fn index_of(&self, op: &'static str, feature: &str) -> Result<usize> {
        self.inner.features.iter().position(|f| f == feature).ok_or_else(|| Error::UnknownColumn {
            op,
            name: format!("{}.{feature}", self.name()),
            available: self
                .inner
                .features
                .iter()
                .map(|f| format!("{}.{f}", self.name()))
                .collect::<Vec<_>>()
                .join(", "),
        })
    }

    /// All values of one feature (every object of every event), by column index.
    pub fn values_at(&self, j: usize) -> &[f32] {
        &self.inner.values[j]
    }

    /// All values of one feature (every object of every event), by name.
    pub fn values(&self, feature: &str) -> Result<&[f32]> {
        Ok(self.values_at(self.index_of("collection", feature)?))
    }

    /// The values of one feature for the objects of event `i`.
    pub fn event(&self, feature: &str, i: usize) -> Result<&[f32]> {
        let j = self.index_of("collection", feature)?;
        if i >= self.n_events() {
            return Err(Error::arg("collection", format!("event {i} out of range (0..{})", self.n_events())));
        }
        Ok(&self.inner.values[j][self.inner.offsets[i]..self.inner.offsets[i + 1]])
    }

    /// The event each object belongs to (one entry per object).
    pub fn event_index(&self) -> Vec<usize> {
        let mut out = Vec::with_capacity(self.n_objects());
        for (i, w) in self.inner.offsets.windows(2).enumerate() {
            out.extend(std::iter::repeat_n(i, w[1] - w[0]));
        }
        out
    }

    /// The event of object `k` (binary search in the offsets).
    pub fn event_of(&self, k: usize) -> usize {
        self.inner.offsets.partition_point(|&o| o <= k).saturating_sub(1)
    }

    /// (feature, object) of the first NaN/Inf value.
    fn first_nonfinite(&self) -> Option<(usize, usize)> {
        self.inner.values.iter().enumerate().find_map(|(j, v)| v.iter().position(|x| !x.is_finite()).map(|k| (j, k)))
    }

    /// The objects of the events `idx`, in that order (an event may repeat).
    pub fn take_events(&self, idx: &[usize]) -> Self {
        let off = &self.inner.offsets;
        let mut offsets = Vec::with_capacity(idx.len() + 1);
        offsets.push(0);
        for &i in idx {
            offsets.push(offsets[offsets.len() - 1] + off[i + 1] - off[i]);
        }
        let values = self
            .inner
            .values
            .iter()
            .map(|v| {
                let mut out = Vec::with_capacity(offsets[idx.len()]);
                for &i in idx {
                    out.extend_from_slice(&v[off[i]..off[i + 1]]);
                }
                out
            })
            .collect();
        self.rebuild(offsets, self.inner.features.clone(), values)
    }

    /// The objects where `keep` (one entry per object) is true; events keep their place and
    /// may become empty.
    pub fn filter_objects(&self, keep: &[bool]) -> Result<Self> {
        if keep.len() != self.n_objects() {
            return Err(Error::Shape {
                op: "filter_objects",
                expected: format!("{} mask values (one per object of '{}')", self.n_objects(), self.name()),
                got: format!("{} values", keep.len()),
            });
        }
        let mut offsets = Vec::with_capacity(self.n_events() + 1);
        offsets.push(0);
        let mut n = 0;
        for w in self.inner.offsets.windows(2) {
            n += keep[w[0]..w[1]].iter().filter(|&&k| k).count();
            offsets.push(n);
        }
        let values =
            self.inner.values.iter().map(|v| v.iter().zip(keep).filter(|(_, &k)| k).map(|(x, _)| *x).collect());
        Ok(self.rebuild(offsets, self.inner.features.clone(), values.collect()))
    }

    /// Within each event, objects ordered by `feature` (stable; ascending or descending),
    /// keeping at most `keep` objects per event.
    pub fn sort_objects(&self, feature: &str, descending: bool, keep: Option<usize>) -> Result<Self> {
        let key = self.values(feature)?;
        let mut order = Vec::with_capacity(self.n_objects());
        let mut offsets = Vec::with_capacity(self.n_events() + 1);
        offsets.push(0);
        for w in self.inner.offsets.windows(2) {
            let mut idx: Vec<usize> = (w[0]..w[1]).collect();
            // Values are finite (checked at construction), so total_cmp is the numeric order.
            if descending {
                idx.sort_by(|&a, &b| key[b].total_cmp(&key[a]));
            } else {
                idx.sort_by(|&a, &b| key[a].total_cmp(&key[b]));
            }
            idx.truncate(keep.unwrap_or(usize::MAX));
            order.extend_from_slice(&idx);
            offsets.push(order.len());
        }
        let values = self.inner.values.iter().map(|v| order.iter().map(|&k| v[k]).collect()).collect();
        Ok(self.rebuild(offsets, self.inner.features.clone(), values))
    }

    /// A copy with feature `name` set to `values` (one per object; replaced if it exists).
    pub fn with_feature(&self, name: &str, values: Vec<f32>) -> Result<Self> {
        let mut features = self.inner.features.clone();
        let mut cols = self.inner.values.clone();
        match features.iter().position(|f| f == name) {
            Some(j) => cols[j] = values,
            None => {
                features.push(name.to_string());
                cols.push(values);
            }
        }
        Collection::new_unchecked_finite(self.name(), self.inner.offsets.clone(), features, cols)
    }

    /// A copy under another name.
    pub fn renamed(&self, name: &str) -> Result<Self> {
        Collection::new_unchecked_finite(
            name,
            self.inner.offsets.clone(),
            self.inner.features.clone(),
            self.inner.values.clone(),
        )
    }

    fn rebuild(&self, offsets: Vec<usize>, features: Vec<String>, values: Vec<Vec<f32>>) -> Self {
        let _memory = memory::account(collection_bytes(&offsets, &values));
        Collection { inner: Arc::new(Inner { name: self.inner.name.clone(), offsets, features, values, _memory }) }
    }
}

/// Stacks collections event-wise; all must have the same name and features.
pub fn concat(parts: &[&Collection]) -> Result<Collection> {
    let first = parts.first().ok_or_else(|| Error::Empty { op: "concat", what: "the list of collections".into() })?;
    for (k, p) in parts.iter().enumerate().skip(1) {
        if p.features() != first.features() {
            return Err(Error::Shape {
                op: "concat",
                expected: format!(
                    "the features of collection '{}' in part 0 [{}]",
                    first.name(),
                    first.features().join(", ")
                ),
                got: format!("[{}] in part {k}", p.features().join(", ")),
            });
        }
    }
    let mut offsets = vec![0];
    for p in parts {
        let base = offsets[offsets.len() - 1];
        offsets.extend(p.offsets()[1..].iter().map(|o| o + base));
    }
    let values = (0..first.features().len())
        .map(|j| parts.iter().flat_map(|p| p.values_at(j).iter().copied()).collect())
        .collect();
    Ok(first.rebuild(offsets, first.features().to_vec(), values))
}

/// A padded batch: `values` is row-major `[b × max_len × f]` (features in collection order),
/// `mask` is `[b × max_len]`, 1 for a real object and 0 for padding (whose values are 0).
#[derive(Clone, Debug, PartialEq)]
pub struct Padded {
    /// Events in the batch.
    pub batch: usize,
    /// Objects per event after padding/truncation.
    pub max_len: usize,
    /// Features per object.
    pub n_features: usize,
    /// `batch × max_len × n_features` values, row-major.
    pub values: Vec<f32>,
    /// `batch × max_len` mask, row-major.
    pub mask: Vec<f32>,
}

/// Pads the objects of `events` to `max_len` per event (the first `max_len` objects of a
/// longer event are kept, in stored order): the block a set model takes.
pub fn pad(c: &Collection, events: &[usize], max_len: usize) -> Result<Padded> {
    let f = c.features().len();
    if let Some(&i) = events.iter().find(|&&i| i >= c.n_events()) {
        return Err(Error::arg("pad", format!("event {i} out of range (0..{})", c.n_events())));
    }
    let size = events.len().checked_mul(max_len).and_then(|m| m.checked_mul(f.max(1)));
    let Some(size) = size.filter(|&s| s <= isize::MAX as usize / 4) else {
        return Err(Error::arg(
            "pad",
            format!("{} events × {max_len} objects × {f} features is too large", events.len()),
        ));
    };
    let mut values = vec![0.0f32; size];
    let mut mask = vec![0.0f32; events.len() * max_len];
    let off = c.offsets();
    for (b, &i) in events.iter().enumerate() {
        let n = (off[i + 1] - off[i]).min(max_len);
        for k in 0..n {
            mask[b * max_len + k] = 1.0;
            for j in 0..f {
                values[(b * max_len + k) * f + j] = c.values_at(j)[off[i] + k];
            }
        }
    }
    Ok(Padded { batch: events.len(), max_len, n_features: f, values, mask })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Events with objects pt/eta: e0 = (3, 0.5), (9, -1); e1 = (); e2 = (4, 2), (1, 0), (6, -2)
    pub(crate) fn sample() -> Collection {
        let pt = vec![3.0, 9.0, 4.0, 1.0, 6.0];
        let eta = vec![0.5, -1.0, 2.0, 0.0, -2.0];
        Collection::new("part", vec![0, 2, 2, 5], vec!["pt".into(), "eta".into()], vec![pt, eta]).unwrap()
    }

    #[test]
    fn collections_count_against_the_session_budget_while_a_clone_lives() {
        let b = crate::memory::Budget::new(2000);
        let _g = crate::memory::enter(b.clone());
        // sample(): 4 offsets × 8 bytes + 5 objects × 2 features × 4 bytes = 72 bytes
        let c = sample();
        assert_eq!(b.used(), 72);
        // A dataset holding it counts its own 3 × 1 × 4 bytes and shares the collection's.
        let ds = crate::Dataset::new(vec!["a".into()], ndarray::Array2::zeros((3, 1)), None, None).unwrap();
        let with = ds.with_collection(c.clone()).unwrap();
        assert_eq!(b.used(), 72 + 12);
        drop((c, ds));
        assert_eq!(b.used(), 72 + 12);
        // A derived collection counts its own bytes: 2 offsets + 2 objects × 2 features.
        let one = with.collection("t", "part").unwrap().take_events(&[0]);
        assert_eq!(b.used(), 72 + 12 + 16 + 16);
        drop((with, one));
        assert_eq!(b.used(), 0);
        // 300 objects of 2 features (2400 bytes of values) do not fit in 2000 bytes.
        let e =
            Collection::new("big", vec![0, 300], vec!["pt".into(), "eta".into()], vec![vec![1.0; 300]; 2]).unwrap_err();
        assert_eq!(e.kind(), "memory");
        assert_eq!(
            e.to_string(),
            "collection 'big' (300 objects × 2 features): needs 2.4 KiB, but the session memory budget of 2.0 KiB \
             has 2.0 KiB left (0 B in use)"
        );
    }

    #[test]
    fn construction_checks_offsets_lengths_and_values() {
        let c = sample();
        assert_eq!((c.n_events(), c.n_objects(), c.max_count()), (3, 5, 3));
        assert_eq!(c.counts(), vec![2, 0, 3]);
        assert_eq!(c.event_index(), vec![0, 0, 2, 2, 2]);
        assert_eq!((0..5).map(|k| c.event_of(k)).collect::<Vec<_>>(), vec![0, 0, 2, 2, 2]);
        let bad = Collection::new("c", vec![0, 2, 1], vec!["a".into()], vec![vec![1.0, 2.0]]);
        assert!(bad.unwrap_err().to_string().contains("never decrease"));
        let short = Collection::new("c", vec![0, 3], vec!["a".into()], vec![vec![1.0]]).unwrap_err();
        assert_eq!(short.to_string(), "collection: expected 3 values of 'c.a' (one per object), got 1 values");
        // NaN in object 2, which belongs to event 1 (offsets 0, 1, 3)
        let nan = Collection::new("c", vec![0, 1, 3], vec!["a".into()], vec![vec![1.0, 2.0, f32::NAN]]).unwrap_err();
        assert_eq!(
            nan.to_string(),
            "collection 'c': 1 non-finite value(s) (NaN or Inf) in column 'c.a', first at row 1"
        );
        let e = c.values("phi").unwrap_err();
        assert_eq!(e.to_string(), "collection: unknown column 'part.phi'; available: part.pt, part.eta");
    }

    #[test]
    fn from_lists_checks_lengths_per_event() {
        let pt = vec![vec![3.0, 9.0], vec![], vec![4.0, 1.0, 6.0]];
        let eta = vec![vec![0.5, -1.0], vec![], vec![2.0, 0.0, -2.0]];
        let c = Collection::from_lists("part", vec![("pt".into(), pt.clone()), ("eta".into(), eta)]).unwrap();
        assert_eq!(c, sample());
        let bad = vec![vec![0.5, -1.0], vec![1.0], vec![2.0, 0.0, -2.0]];
        let e = Collection::from_lists("part", vec![("pt".into(), pt), ("eta".into(), bad)]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "collection: features 'pt' and 'eta' of collection 'part' differ in length at event 1 (0 and 1 objects)"
        );
    }

    #[test]
    fn take_filter_sort_keep_objects_with_their_events() {
        let c = sample();
        let t = c.take_events(&[2, 0, 2]);
        assert_eq!(t.offsets(), &[0, 3, 5, 8]);
        assert_eq!(t.values("pt").unwrap(), &[4.0, 1.0, 6.0, 3.0, 9.0, 4.0, 1.0, 6.0]);
        let f = c.filter_objects(&[true, false, false, true, true]).unwrap();
        assert_eq!(f.counts(), vec![1, 0, 2]);
        assert_eq!(f.values("eta").unwrap(), &[0.5, 0.0, -2.0]);
        // descending pt: e0 = 9, 3; e2 = 6, 4, 1; keep 2 → e2 = 6, 4
        let s = c.sort_objects("pt", true, Some(2)).unwrap();
        assert_eq!(s.offsets(), &[0, 2, 2, 4]);
        assert_eq!(s.values("pt").unwrap(), &[9.0, 3.0, 6.0, 4.0]);
        assert_eq!(s.values("eta").unwrap(), &[-1.0, 0.5, -2.0, 2.0]);
        let a = c.sort_objects("eta", false, None).unwrap();
        assert_eq!(a.values("eta").unwrap(), &[-1.0, 0.5, -2.0, 0.0, 2.0]);
    }

    #[test]
    fn concat_appends_offsets() {
        let c = sample();
        let j = concat(&[&c, &c.take_events(&[0])]).unwrap();
        assert_eq!(j.offsets(), &[0, 2, 2, 5, 7]);
        assert_eq!(j.values("pt").unwrap(), &[3.0, 9.0, 4.0, 1.0, 6.0, 3.0, 9.0]);
        let other = c.with_feature("phi", vec![0.0; 5]).unwrap();
        assert_eq!(concat(&[&c, &other]).unwrap_err().kind(), "shape");
    }

    #[test]
    fn pad_fills_values_and_mask() {
        let c = sample();
        // events 2 (3 objects, truncated to 2), 1 (empty), 0 (2 objects); max_len 2, f = 2
        let p = pad(&c, &[2, 1, 0], 2).unwrap();
        assert_eq!((p.batch, p.max_len, p.n_features), (3, 2, 2));
        assert_eq!(p.mask, vec![1.0, 1.0, 0.0, 0.0, 1.0, 1.0]);
        let want = vec![4.0, 2.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 3.0, 0.5, 9.0, -1.0];
        assert_eq!(p.values, want);
        // a longer max_len pads with zeros and mask 0
        let p = pad(&c, &[0], 4).unwrap();
        assert_eq!(p.mask, vec![1.0, 1.0, 0.0, 0.0]);
        assert_eq!(p.values, vec![3.0, 0.5, 9.0, -1.0, 0.0, 0.0, 0.0, 0.0]);
        assert!(pad(&c, &[3], 2).unwrap_err().to_string().contains("event 3 out of range"));
    }
}
