//! Scoring and acceptance of one event against the current state, in event order: faithful
//! (the reference's JSD cap and approximate correlation score, all features together) or
//! strict (one feature after the other, both limits against the clean sample).

use super::candidates::EventCands;
use super::options::ConservConfig;
use super::tally::Tally;
use super::NO_OP;
use crate::stats::incremental::{CorrelationTracker, Probe, RunningMoments};

/// np.array_split of the features into `k` chunks (one chunk for at most 2 features, as the
/// reference); empty chunks left out.
pub(super) fn chunks(d: usize, k: usize) -> Vec<Vec<usize>> {
    if d <= 2 || k <= 1 {
        return vec![(0..d).collect()];
    }
    let (base, extra) = (d / k, d % k);
    let mut out = Vec::new();
    let mut start = 0;
    for c in 0..k {
        let len = base + usize::from(c < extra);
        if len > 0 {
            out.push((start..start + len).collect());
        }
        start += len;
    }
    out
}

/// What the scoring reads besides the changing state.
pub(super) struct Ctx<'a> {
    pub(super) cfg: &'a ConservConfig,
    pub(super) n: usize,
    pub(super) d: usize,
    pub(super) chunks: Vec<Vec<usize>>,
    /// Strict: ‖C₀‖_F.
    pub(super) ref_norm: f64,
}

/// The changing state: working copy, histograms, moments.
pub(super) struct Live {
    pub(super) x: Vec<f64>,
    pub(super) tallies: Vec<Tally>,
    /// Faithful: moments of the current sample (strict: unused after the start).
    pub(super) moments: RunningMoments,
    /// Strict: the tracker against the clean correlation matrix.
    pub(super) tracker: Option<CorrelationTracker>,
}

/// Reusable buffers of the faithful scoring.
#[derive(Default)]
pub(super) struct Scratch {
    pub(super) js: Vec<f64>,
    pub(super) row: Vec<f64>,
    pub(super) old_slot: Vec<usize>,
    pub(super) best: Vec<(usize, f64)>,
    /// Candidates scored (some feature admits them by the JSD).
    pub(super) ks: Vec<usize>,
    /// Per tile of candidates: the values gathered, centred new values, new standard deviations, the new
    /// correlation entries and the squared row/column changes.
    pub(super) gv: Vec<f64>,
    pub(super) dn: Vec<f64>,
    pub(super) sn: Vec<f64>,
    pub(super) cn: Vec<f64>,
    pub(super) f2: Vec<f64>,
    /// JSD per slot of the event being scored, valid where `stamp` equals the event's stamp.
    pub(super) cache: Vec<Vec<(u64, f64)>>,
    pub(super) stamp: u64,
    /// Faithful, per chunk of features: means, variances, covariances × n/(n − 1), correlations,
    /// standard deviations and the event's centred values before its change.
    pub(super) m: Vec<f64>,
    pub(super) v: Vec<f64>,
    pub(super) kk: Vec<f64>,
    pub(super) r: Vec<f64>,
    pub(super) sd: Vec<f64>,
    pub(super) dold: Vec<f64>,
    /// Strict: the correlation setup of the feature being scored.
    pub(super) probe: Probe,
}

impl Ctx<'_> {
    /// The JSD of moving feature `j` of the scored event from slot `a` to `b`, cached per slot.
    #[inline]
    pub(super) fn cached_jsd(t: &Tally, cache: &mut [(u64, f64)], stamp: u64, a: usize, b: usize) -> f64 {
        let e = &mut cache[b];
        if e.0 != stamp {
            *e = (stamp, t.jsd_if_moved(a, b));
        }
        e.1
    }

    /// Faithful scoring and acceptance of event `i`; returns the number of values changed.
    ///
    /// The correlation score is computed for the candidates some feature admits by its JSD
    /// (the others cannot be chosen), a tile at a time, one quantity over the whole tile after
    /// the other (straight loops the compiler vectorises).
    pub(super) fn accept_faithful(&self, live: &mut Live, sc: &mut Scratch, i: usize, ev: &EventCands<'_>) -> usize {
        const TILE: usize = 64;
        let (d, c, w, cfg) = (self.d, ev.c, ev.w, self.cfg);
        let nf = self.n as f64;
        sc.row.clear();
        sc.row.extend_from_slice(&live.x[i * d..(i + 1) * d]);
        sc.old_slot.clear();
        sc.old_slot.extend((0..d).map(|j| live.tallies[j].slot(sc.row[j])));
        if sc.cache.len() != d {
            sc.cache = live.tallies.iter().map(|t| vec![(0, 0.0); t.c.len()]).collect();
        }
        sc.stamp += 1;
        let first = usize::from(cfg.use_no_change);
        // JSD of every candidate (padding: infinite, never admissible).
        let js = &mut sc.js;
        js.clear();
        js.resize(d * w, f64::INFINITY);
        for j in 0..d {
            let t = &live.tallies[j];
            for k in 0..ev.n[j] {
                let b = ev.slots[j * w + k];
                if b != NO_OP {
                    js[j * w + k] = Self::cached_jsd(t, &mut sc.cache[j], sc.stamp, sc.old_slot[j], b as usize);
                }
            }
        }
        sc.best.clear();
        sc.best.resize(d, (usize::MAX, f64::INFINITY));
        let row = &sc.row;
        for chunk in &self.chunks {
            let dc = chunk.len();
            let mom = &live.moments;
            let (m, v, kk, r, sd, dold) = (&mut sc.m, &mut sc.v, &mut sc.kk, &mut sc.r, &mut sc.sd, &mut sc.dold);
            m.clear();
            m.extend(chunk.iter().map(|&j| mom.mean(j)));
            v.clear();
            v.extend(chunk.iter().map(|&j| mom.cov(j, j)));
            kk.resize(dc * dc, 0.0);
            r.resize(dc * dc, 0.0);
            for (a, &ja) in chunk.iter().enumerate() {
                for (b, &jb) in chunk.iter().enumerate() {
                    let cv = mom.cov(ja, jb);
                    kk[a * dc + b] = cv * nf / (nf - 1.0);
                    r[a * dc + b] = cv / (v[a] * v[b]).sqrt();
                }
            }
            sd.clear();
            sd.extend(v.iter().map(|v| (v + 1e-10).sqrt()));
            dold.clear();
            dold.extend(chunk.iter().zip(m.iter()).map(|(&j, m)| row[j] - m));
            let (m, v, kk, r, sd, dold) = (&sc.m[..], &sc.v[..], &sc.kk[..], &sc.r[..], &sc.sd[..], &sc.dold[..]);
            // Only candidates some feature of the chunk admits by its JSD need the score.
            sc.ks.clear();
            sc.ks.extend((first..c).filter(|&k| chunk.iter().any(|&j| js[j * w + k] <= cfg.max_jsd_single_change)));
            sc.gv.resize(dc * TILE, 0.0);
            sc.dn.resize(dc * TILE, 0.0);
            sc.sn.resize(dc * TILE, 0.0);
            sc.cn.resize(dc * dc * TILE, 0.0);
            sc.f2.resize(dc * TILE, 0.0);
            // The reference's divisions by n and n − 1, as products with the reciprocals.
            let (inv_n, inv_n1) = (1.0 / nf, 1.0 / (nf - 1.0));
            for ks in sc.ks.chunks(TILE) {
                let len = ks.len();
                for (a, &j) in chunk.iter().enumerate() {
                    for (g, &k) in sc.gv[a * TILE..a * TILE + len].iter_mut().zip(ks) {
                        *g = ev.vals[j * w + k];
                    }
                }
                // The reference scores feature j's candidate k with candidate k of every other
                // feature, ddof 0 variances against ddof 1 covariances.
                for (a, &j) in chunk.iter().enumerate() {
                    let vals = &sc.gv[a * TILE..a * TILE + len];
                    let dn = &mut sc.dn[a * TILE..a * TILE + len];
                    let sn = &mut sc.sn[a * TILE..a * TILE + len];
                    let (ma, va, da, xj) = (m[a], v[a], dold[a], row[j]);
                    for ((dn, sn), &nv) in dn.iter_mut().zip(sn.iter_mut()).zip(vals) {
                        let mn = ma + (nv - xj) * inv_n;
                        *dn = nv - mn;
                        let vn = va + (*dn * *dn - da * da) * inv_n1;
                        *sn = (vn + 1e-10).sqrt();
                    }
                }
                for a in 0..dc {
                    for b in 0..dc {
                        let (kab, dd, sdb) = (kk[a * dc + b], dold[a] * dold[b], sd[b]);
                        let (dna, dnb) = (&sc.dn[a * TILE..a * TILE + len], &sc.dn[b * TILE..b * TILE + len]);
                        let sna = &sc.sn[a * TILE..a * TILE + len];
                        let cn = &mut sc.cn[(a * dc + b) * TILE..(a * dc + b) * TILE + len];
                        for (((cn, &x), &y), &s) in cn.iter_mut().zip(dna).zip(dnb).zip(sna) {
                            let cov = kab + (x * y - dd) * inv_n1;
                            *cn = cov / (s * sdb + 1e-10);
                        }
                    }
                }
                for a in 0..dc {
                    let f2 = &mut sc.f2[a * TILE..a * TILE + len];
                    f2.iter_mut().for_each(|f| *f = 0.0);
                    for b in 0..dc {
                        let rab = r[a * dc + b];
                        let ab = &sc.cn[(a * dc + b) * TILE..(a * dc + b) * TILE + len];
                        let ba = &sc.cn[(b * dc + a) * TILE..(b * dc + a) * TILE + len];
                        for ((f, &x), &y) in f2.iter_mut().zip(ab).zip(ba) {
                            let (rd, cd) = (x - rab, y - rab);
                            *f += rd * rd + cd * cd;
                        }
                    }
                }
                for (a, &j) in chunk.iter().enumerate() {
                    let raa = r[a * dc + a];
                    let aa = &sc.cn[(a * dc + a) * TILE..(a * dc + a) * TILE + len];
                    let f2 = &sc.f2[a * TILE..a * TILE + len];
                    let best = &mut sc.best[j];
                    for ((&k, &f), &x) in ks.iter().zip(f2).zip(aa) {
                        let jv = js[j * w + k];
                        if jv.is_nan() || jv > cfg.max_jsd_single_change {
                            continue;
                        }
                        let dd = x - raa;
                        let frob = (f - dd * dd).sqrt();
                        if frob.is_nan() || frob > cfg.max_frob_single_change {
                            continue;
                        }
                        let cost = cfg.alpha * jv + cfg.beta * frob;
                        if cost < best.1 {
                            *best = (k, cost);
                        }
                    }
                }
            }
        }
        // Every feature's choice applied together; nothing admissible: candidate 0 (no change
        // with use_no_change, else the reference's first candidate).
        let mut changed = 0;
        for j in 0..d {
            let k = if sc.best[j].0 == usize::MAX { 0 } else { sc.best[j].0 };
            let nv = ev.vals[j * w + k];
            if nv != sc.row[j] {
                live.tallies[j].apply(sc.old_slot[j], ev.slots[j * w + k] as usize);
                live.moments.change(&sc.row, j, nv, 1.0);
                sc.row[j] = nv;
                changed += 1;
            }
        }
        live.x[i * d..(i + 1) * d].copy_from_slice(&sc.row);
        changed
    }

    /// Strict scoring and acceptance of event `i`, one feature after the other, each against
    /// the clean histograms and the clean correlation matrix.
    pub(super) fn accept_strict(&self, live: &mut Live, sc: &mut Scratch, i: usize, ev: &EventCands<'_>) -> usize {
        let (d, cfg) = (self.d, self.cfg);
        // Margins for the rounding of the incremental updates against the checks' recomputation.
        let jsd_cap = cfg.constraint_jsd * (1.0 - 1e-9);
        let rel_cap = cfg.constraint_rel_corr * (1.0 - 1e-6);
        let cur = &mut sc.row;
        cur.clear();
        cur.extend_from_slice(&live.x[i * d..(i + 1) * d]);
        let mut changed = 0;
        let Some(tracker) = live.tracker.as_mut() else { return 0 };
        if sc.cache.len() != d {
            sc.cache = live.tallies.iter().map(|t| vec![(0, 0.0); t.c.len()]).collect();
        }
        for j in 0..d {
            sc.stamp += 1;
            let a = live.tallies[j].slot(cur[j]);
            let t = &live.tallies[j];
            let mut best: Option<(f64, f64, usize)> = None;
            // The correlation row's setup, once per feature, at its first admissible JSD.
            let mut probed = false;
            for k in 0..ev.n[j] {
                let nv = ev.vals[j * ev.w + k];
                if nv == cur[j] {
                    continue;
                }
                let b = ev.slots[j * ev.w + k] as usize;
                let jv = Self::cached_jsd(t, &mut sc.cache[j], sc.stamp, a, b);
                if !(jv <= cfg.max_jsd_single_change && jv < jsd_cap) {
                    continue;
                }
                if !probed {
                    tracker.probe(cur, j, 1.0, &mut sc.probe);
                    probed = true;
                }
                let rel = tracker.relative_change_probed(&mut sc.probe, nv);
                let frob = rel * self.ref_norm;
                if !(frob <= cfg.max_frob_single_change && rel < rel_cap) {
                    continue;
                }
                let cost = cfg.alpha * jv + cfg.beta * frob;
                if best.is_none_or(|(bc, _, _)| cost < bc) {
                    best = Some((cost, nv, b));
                }
            }
            if let Some((_, nv, b)) = best {
                live.tallies[j].apply(a, b);
                tracker.apply(cur, j, nv, 1.0);
                cur[j] = nv;
                changed += 1;
            }
        }
        live.x[i * d..(i + 1) * d].copy_from_slice(&sc.row);
        changed
    }
}
