#!/usr/bin/env python3
"""Write tests/data/reference_subset.f32: the first 2,000 reference test events with
PyTorch's outputs, for the model-import test (src/model/io.rs).

Layout: little-endian float32, 2,000 rows × 24 columns, row-major, no header:
x0 … x19, label (0/1), logit, score, fgsm_flipped (0/1) — features from
gaussians_test.parquet, outputs from reference_test_outputs.parquet (same row order).

Usage: python3 scripts/make_reference_subset.py [FIXTURES_DIR]   (needs numpy, pyarrow)
"""
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

N = 2000
fixtures = Path(sys.argv[1] if len(sys.argv) > 1 else "/work/shared/fixtures")
out = Path(__file__).resolve().parent.parent / "tests" / "data" / "reference_subset.f32"

events = pq.read_table(fixtures / "gaussians_test.parquet").slice(0, N).to_pydict()
outputs = pq.read_table(fixtures / "reference_test_outputs.parquet").slice(0, N).to_pydict()
cols = [np.asarray(events[f"x{i}"], dtype=np.float32) for i in range(20)]
cols.append(np.asarray(events["label"], dtype=np.float32))
cols.append(np.asarray(outputs["logit"], dtype=np.float32))
cols.append(np.asarray(outputs["score"], dtype=np.float32))
cols.append(np.asarray(outputs["fgsm_flipped"], dtype=np.float32))
table = np.stack(cols, axis=1).astype("<f4")
assert table.shape == (N, 24)
out.parent.mkdir(parents=True, exist_ok=True)
out.write_bytes(table.tobytes())
print(f"wrote {out} ({out.stat().st_size} bytes)")
