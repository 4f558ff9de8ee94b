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
