"""bench/drift, SciPy side: the same report as Warden's offline drift on the same raw float64 tables.

Usage: python3 bench/drift/scipy_drift.py <data dir>   (run.ts starts it; needs numpy and scipy)

Loads reference.f64 and current.f64 (little-endian float64, column-major; see make-data.ts) with
numpy.fromfile and computes, per column:
  * data quality: share of NaN (missing) cells in each table;
  * numeric: scipy.stats.wasserstein_distance(ref, cur) / max(np.std(ref), 0.001) on the finite values
    (Evidently's normed Wasserstein; the 0.001 floor never binds on this data), drift when >= 0.1;
  * categorical: scipy.spatial.distance.jensenshannon of the category count vectors (codes 0..k-1 in
    the same order for both tables, natural log), drift when >= 0.1;
and the dataset drift share (drifted features / features; dataset drift when >= 0.5).
Prints one JSON line: wall time (load + tests) and peak RSS (getrusage ru_maxrss, KiB on Linux).
"""

import json
import os
import resource
import sys
import time

started = time.perf_counter()
import numpy as np  # noqa: E402
from scipy.spatial.distance import jensenshannon  # noqa: E402
from scipy.stats import wasserstein_distance  # noqa: E402

imported = time.perf_counter()

THRESHOLD = 0.1
DATASET_DRIFT_SHARE = 0.5
STD_FLOOR = 0.001


def main(data_dir: str) -> None:
    with open(os.path.join(data_dir, "meta.json"), encoding="utf8") as f:
        meta = json.load(f)
    names, rows, categorical = meta["names"], meta["rows"], set(meta["categorical"])

    t0 = time.perf_counter()
    c0 = time.process_time()
    ref = np.fromfile(meta["files"]["reference"], dtype="<f8").reshape(len(names), rows)
    cur = np.fromfile(meta["files"]["current"], dtype="<f8").reshape(len(names), rows)
    t1 = time.perf_counter()

    columns = []
    for j, name in enumerate(names):
        r, c = ref[j], cur[j]
        ref_missing = float(np.isnan(r).mean())
        cur_missing = float(np.isnan(c).mean())
        r = r[np.isfinite(r)]
        c = c[np.isfinite(c)]
        if name in categorical:
            k = int(max(r.max(), c.max())) + 1
            ref_counts = np.bincount(r.astype(np.int64), minlength=k)
            cur_counts = np.bincount(c.astype(np.int64), minlength=k)
            test, score = "jensenshannon", float(jensenshannon(ref_counts, cur_counts))
        else:
            test = "wasserstein"
            score = float(wasserstein_distance(r, c) / max(np.std(r), STD_FLOOR))
        columns.append(
            {
                "name": name,
                "kind": "categorical" if name in categorical else "numeric",
                "test": test,
                "score": score,
                "drift": score >= THRESHOLD,
                "referenceMissingShare": ref_missing,
                "currentMissingShare": cur_missing,
            }
        )
    drift_share = sum(c["drift"] for c in columns) / len(columns)
    t2 = time.perf_counter()
    c2 = time.process_time()

    print(
        json.dumps(
            {
                "loadSeconds": t1 - t0,
                "reportSeconds": t2 - t1,
                "wallSeconds": t2 - t0,
                "cpuSeconds": c2 - c0,
                "importSeconds": imported - started,
                "maxRssMB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "driftShare": drift_share,
                "datasetDrift": drift_share >= DATASET_DRIFT_SHARE,
                "versions": {"numpy": np.__version__, "scipy": __import__("scipy").__version__, "python": sys.version.split()[0]},
                "columns": columns,
            }
        )
    )


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: scipy_drift.py <data dir>")
    main(sys.argv[1])
