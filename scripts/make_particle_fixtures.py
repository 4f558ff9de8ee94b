"""Writes the jagged (particle-level) fixtures in tests/data and the values pyarrow and uproot
read from them, for src/data/io/parquet_lists.rs and src/data/io/root_jagged.rs.

Run from the crate root (pyarrow 26.0.1, awkward 2.14.0, uproot 5.7.7, numpy 2.4.6 made the
committed files):
    cargo test --release --lib -- --ignored write_vector_fixture   # oxyroot_vector.root
    python3 scripts/make_particle_fixtures.py

Files:
  pyarrow_lists.parquet   pyarrow, 6 events in 2 row groups of 3, snappy:
      jet_pt    float32          100 * (i + 1)
      label     int64            i % 2
      part_pt   list<float32>    lengths 3, 0, 1, 2, 4, 1; values 10*i + k + 0.5  (k = 0..len-1)
      part_eta  list<float64>    same lengths; values (k - 1) / 4 - i / 8
      part_pid  list<int32>      same lengths; values 211 * (-1)**k, 22 for k = 2
      trk_d0    list<float32>    lengths 1, 1, 0, 2, 0, 0; values 0.01 * (i + 1) * (k + 1)
    (pyarrow's default: nullable items, 32-bit offsets, compliant "element" item name)
  awkward_lists.parquet   ak.to_parquet, 4 events, the null-free layout awkward writes
    (large_list with non-nullable items, float64), and a list of records:
      jet_pt    float64          [50, 60, 70, 80]
      part_pt   large_list<double not null>   [[1.5, 2.5], [], [3.5], [4.5, 5.5, 6.5]]
      part_eta  large_list<double not null>   [[0.1, -0.1], [], [0.3], [1.0, -1.0, 0.0]]
      cand      large_list<struct<pt, eta>>   pt [[7], [8, 9], [], [10]], eta = pt / 100
  uproot_jagged.root      uproot, TTree "t", 5 entries, zlib:
      jet_pt    float            [10, 20, 30, 40, 50]
      npart     int32 counter, part_pt float[npart], part_eta double[npart], part_q int32[npart]
                (one ak.zip record, so the three share the counter);
                lengths 2, 0, 3, 1, 0; pt = 1 + i + k / 2, eta = k - i / 10, q = (-1)**(i + k)
      ntrk_d0   int32 counter, trk_d0 float[ntrk_d0], lengths 0, 1, 0, 2, 1, values 0.5 * (i + k)
  oxyroot_vector.root     TTree "t", 4 entries, std::vector<float> branches written by oxyroot
      (uproot cannot write std::vector in a TTree, and none of the shared ROOT files has one);
      the values are listed in the Rust writer (src/data/io/root_jagged.rs, write_vector_fixture)
      and read back here with uproot.
  jagged_expected.json    for each file, each column as pyarrow.Table.to_pylist() or
      uproot's tree.arrays(library="ak").to_list() gives it (float32 values widened exactly
      to double).
"""
import json

import awkward as ak
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import uproot

out = {}

# --- pyarrow_lists.parquet -----------------------------------------------------------------
lens = [3, 0, 1, 2, 4, 1]
trk_lens = [1, 1, 0, 2, 0, 0]


def pid(k):
    return 22 if k == 2 else 211 * (-1) ** k


table = pa.table({
    "jet_pt": pa.array([100.0 * (i + 1) for i in range(6)], pa.float32()),
    "label": pa.array([i % 2 for i in range(6)], pa.int64()),
    "part_pt": pa.array([[10 * i + k + 0.5 for k in range(n)] for i, n in enumerate(lens)], pa.list_(pa.float32())),
    "part_eta": pa.array([[(k - 1) / 4 - i / 8 for k in range(n)] for i, n in enumerate(lens)], pa.list_(pa.float64())),
    "part_pid": pa.array([[pid(k) for k in range(n)] for i, n in enumerate(lens)], pa.list_(pa.int32())),
    "trk_d0": pa.array([[0.01 * (i + 1) * (k + 1) for k in range(n)] for i, n in enumerate(trk_lens)],
                       pa.list_(pa.float32())),
})
pq.write_table(table, "tests/data/pyarrow_lists.parquet", row_group_size=3, compression="snappy")
back = pq.read_table("tests/data/pyarrow_lists.parquet")
out["pyarrow_lists.parquet"] = {c: back[c].to_pylist() for c in back.column_names}

# --- awkward_lists.parquet -----------------------------------------------------------------
cand_pt = [[7.0], [8.0, 9.0], [], [10.0]]
arr = ak.Array({
    "jet_pt": [50.0, 60.0, 70.0, 80.0],
    "part_pt": [[1.5, 2.5], [], [3.5], [4.5, 5.5, 6.5]],
    "part_eta": [[0.1, -0.1], [], [0.3], [1.0, -1.0, 0.0]],
    "cand": ak.zip({"pt": cand_pt, "eta": [[v / 100 for v in e] for e in cand_pt]}),
})
ak.to_parquet(arr, "tests/data/awkward_lists.parquet")
back = pq.read_table("tests/data/awkward_lists.parquet")
assert str(back.schema.field("part_pt").type) == "large_list<item: double not null>", back.schema
exp = {c: back[c].to_pylist() for c in ["jet_pt", "part_pt", "part_eta"]}
exp["cand_pt"] = [[r["pt"] for r in e] for e in back["cand"].to_pylist()]
exp["cand_eta"] = [[r["eta"] for r in e] for e in back["cand"].to_pylist()]
out["awkward_lists.parquet"] = exp

# --- uproot_jagged.root --------------------------------------------------------------------
plens = [2, 0, 3, 1, 0]
tlens = [0, 1, 0, 2, 1]
part = ak.zip({
    "pt": ak.values_astype(ak.Array([[1 + i + k / 2 for k in range(n)] for i, n in enumerate(plens)]), np.float32),
    "eta": ak.Array([[k - i / 10 for k in range(n)] for i, n in enumerate(plens)]),
    "q": ak.values_astype(ak.Array([[(-1) ** (i + k) for k in range(n)] for i, n in enumerate(plens)]), np.int32),
})
trk = ak.values_astype(ak.Array([[0.5 * (i + k) for k in range(n)] for i, n in enumerate(tlens)]), np.float32)
jet_pt = np.array([10, 20, 30, 40, 50], np.float32)
with uproot.recreate("tests/data/uproot_jagged.root", compression=uproot.ZLIB(1)) as f:
    f.mktree("t", {"jet_pt": jet_pt.dtype, "part": part.type, "trk_d0": trk.type})
    f["t"].extend({"jet_pt": jet_pt, "part": part, "trk_d0": trk})
t = uproot.open("tests/data/uproot_jagged.root")["t"]
assert t["part_pt"].typename == "float[]" and t["part_eta"].typename == "double[]", t.typenames()
out["uproot_jagged.root"] = {b: t[b].array(library="ak").to_list() for b in t.keys()}

# --- oxyroot_vector.root (read back only) --------------------------------------------------
t = uproot.open("tests/data/oxyroot_vector.root")["t"]
assert t["part_pt"].typename == "std::vector<float>", t.typenames()
out["oxyroot_vector.root"] = {b: t[b].array(library="ak").to_list() for b in t.keys()}
out["oxyroot_vector.root#typenames"] = {b: t[b].typename for b in t.keys()}

with open("tests/data/jagged_expected.json", "w") as fh:
    json.dump(out, fh, indent=1, sort_keys=True)
    fh.write("\n")
