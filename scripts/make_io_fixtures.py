"""Writes tests/data/pyarrow_mixed.parquet, the small pyarrow-written fixture for src/data/io.

Run from the crate root with pyarrow installed (pyarrow 26.0.1 made the committed file):
    python3 scripts/make_io_fixtures.py

The file has 6 rows in 2 row groups of 3, zstd-compressed, and these columns:
    a      float32   0.5, 1.5, ..., 5.5
    b      float64   0.25 * i          (i = 0..5)
    small  int8      i - 3             (-3..2)
    big    uint64    2**40 + i
    dfl    dictionary<int32, float32>  values [10, 20] indexed by i % 2 -> 10,20,10,20,10,20
    cat    dictionary<int32, utf8>     "x"/"y" alternating
    flag   bool      i % 3 == 0
    label  int64     i % 2
    weight float32   1 + i / 8
    __index_level_0__ int64  100 + i  (what pandas writes for a non-default index)
"""
import pyarrow as pa
import pyarrow.parquet as pq

i = list(range(6))
table = pa.table({
    "a": pa.array([k + 0.5 for k in i], pa.float32()),
    "b": pa.array([0.25 * k for k in i], pa.float64()),
    "small": pa.array([k - 3 for k in i], pa.int8()),
    "big": pa.array([2**40 + k for k in i], pa.uint64()),
    "dfl": pa.DictionaryArray.from_arrays(pa.array([k % 2 for k in i], pa.int32()),
                                          pa.array([10.0, 20.0], pa.float32())),
    "cat": pa.DictionaryArray.from_arrays(pa.array([k % 2 for k in i], pa.int32()),
                                          pa.array(["x", "y"])),
    "flag": pa.array([k % 3 == 0 for k in i]),
    "label": pa.array([k % 2 for k in i], pa.int64()),
    "weight": pa.array([1 + k / 8 for k in i], pa.float32()),
    "__index_level_0__": pa.array([100 + k for k in i], pa.int64()),
})
pq.write_table(table, "tests/data/pyarrow_mixed.parquet", row_group_size=3, compression="zstd")

# --- ROOT fixtures (uproot 5.7.7, numpy 2.4.6) ---------------------------------------------
# tests/data/uproot_types.root: TTree "t", 5 entries, zlib, one flat branch per type:
#     f float32 = i + 0.5     d float64 = i / 4     i8 int8 = i - 2     u16 uint16 = 1000 * i
#     i64 int64 = -(2**40) + i    u64 uint64 = 2**62 + i    b bool = (i % 2 == 1)
#     label int32 = i % 2    jag double[] = [0.0] * i (jagged, with its counter njag int32)
# tests/data/uproot_zstd.root: TTree "t" with one branch f float32 = (i % 7) + 0.5 for
# i = 0..19999, ZSTD-compressed (big enough that uproot really compresses the basket), which
# oxyroot 0.1.25 cannot decompress (it panics); the reader must turn that into an error.
import numpy as np
import uproot
import awkward as ak

k = np.arange(5)
branches = {
    "f": (k + 0.5).astype(np.float32),
    "d": (k / 4).astype(np.float64),
    "i8": (k - 2).astype(np.int8),
    "u16": (1000 * k).astype(np.uint16),
    "i64": (-(2**40) + k).astype(np.int64),
    "u64": (2**62 + k).astype(np.uint64),
    "b": (k % 2 == 1),
    "label": (k % 2).astype(np.int32),
    "jag": ak.Array([[0.0] * int(j) for j in k]),
}
with uproot.recreate("tests/data/uproot_types.root", compression=uproot.ZLIB(1)) as f:
    f.mktree("t", {n: (v.type if isinstance(v, ak.Array) else v.dtype) for n, v in branches.items()})
    f["t"].extend(branches)
with uproot.recreate("tests/data/uproot_zstd.root", compression=uproot.ZSTD(1)) as f:
    f.mktree("t", {"f": np.float32})
    f["t"].extend({"f": (np.arange(20000) % 7 + 0.5).astype(np.float32)})
