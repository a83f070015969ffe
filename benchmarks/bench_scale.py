"""Memory and time of a fused search at scale, against scikit-learn's search one fit at a time.

A bare ``MLPClassifier((64,), batch_size=512)`` searched over ``lr`` (``C`` candidates x 3 folds)
on ``N x 50`` float64 rows, two classes. Every contender runs in a fresh Python process of its
own that makes the data, measures its resident set (RSS), resets the high-water mark
(``/proc/self/clear_refs``), runs the search and reads the peak: the figure is the memory the
search *adds* over the process just before it (the data itself not counted). Contenders:

* ``fused``: :class:`sknn_tune.FusedGridSearchCV` (defaults);
* ``grid(ours, 1)`` / ``grid(ours, -1)``: :class:`~sklearn.model_selection.GridSearchCV` over our
  ``MLPClassifier``, ``n_jobs=1`` (the memory reference) and ``n_jobs=-1`` (the time reference;
  its loky workers' memory is not in the main process's RSS, so its memory column is left out);
* ``grid(sklearn, 1)``: GridSearchCV over scikit-learn's ``MLPClassifier`` (``max_iter`` epochs).

Targets (issue "the fused layer ... holding the data by reference"), 1M rows, 4 candidates:
added peak RSS of ``fused`` <= 1.3x that of ``grid(ours, 1)``; 1-epoch time <= ``grid(ours, -1)``;
4-epoch time <= 0.7x of it. Growth: the added RSS of ``fused`` against rows (100k / 300k / 1M) and
against candidates (4 / 16 / 64), with both slopes printed: it must grow with the rows, not with
candidates x folds.

    python benchmarks/bench_scale.py                 # the full run (a few minutes on 2 cores)
    python benchmarks/bench_scale.py --quick         # 100k rows only, for a smoke test
    python benchmarks/bench_scale.py --device cuda --memory-only   # gpu_check.sh's memory stage

``--memory-only`` runs ``fused`` and ``grid(ours, 1)`` at 1 epoch, 4 and 16 candidates; on a GPU
each row adds the peak GPU memory the search allocated over what was allocated before it
(``torch.cuda.max_memory_allocated``).
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

N_FEATURES = 50
FOLDS = 3
CONTENDERS = ("fused", "grid(ours, 1)", "grid(ours, -1)", "grid(sklearn, 1)")


def make_data(n_rows, seed=0):
    """``n_rows x 50`` standard-normal float64 rows; labels from a noisy linear rule."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_rows, N_FEATURES))
    w = rng.standard_normal(N_FEATURES)
    y = (X @ w + rng.standard_normal(n_rows) > 0).astype(np.int64)
    return X, y


def current_rss_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 2**10
    return float("nan")


def grid(n_candidates, prefix=""):
    return {f"{prefix}lr": list(np.geomspace(1e-4, 1e-1, n_candidates))}


def run_child(contender, n_rows, n_candidates, epochs, device="cpu"):
    """One contender's search in this process: a dict of its figures."""
    import gc

    import torch
    from _common import load_average, peak_memory, reset_peak_memory
    from sklearn.model_selection import GridSearchCV, KFold
    from sklearn.neural_network import MLPClassifier as SklearnMLP

    from sknn_tune import FusedGridSearchCV, MLPClassifier

    X, y = make_data(n_rows)
    cv = KFold(FOLDS)
    ours = MLPClassifier((64,), batch_size=512, max_epochs=epochs, patience=None, random_state=0,
                         device=device)
    if contender == "fused":
        search = FusedGridSearchCV(ours, grid(n_candidates), cv=cv)
    elif contender.startswith("grid(ours"):
        search = GridSearchCV(ours, grid(n_candidates), cv=cv,
                              n_jobs=-1 if contender.endswith("-1)") else 1)
    else:
        sk = SklearnMLP((64,), batch_size=512, max_iter=epochs, random_state=0)
        search = GridSearchCV(sk, {"learning_rate_init": grid(n_candidates)["lr"]}, cv=cv)
    gc.collect()
    before = current_rss_mib()
    reset_peak_memory("cpu")
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats()
        gpu_before = torch.cuda.memory_allocated()
    load_before = load_average()
    started = time.perf_counter()
    search.fit(X, y)
    wall = time.perf_counter() - started
    peak = peak_memory("cpu")["vm_hwm_mib"]
    gpu_added = (torch.cuda.max_memory_allocated() - gpu_before) / 2**20 if cuda else None
    return {"contender": contender, "rows": n_rows, "candidates": n_candidates, "epochs": epochs,
            "wall_s": wall, "rss_before_mib": before, "added_peak_mib": peak - before,
            "data_mib": X.nbytes / 2**20, "load_before": load_before, "load_after": load_average(),
            "best_score": float(search.best_score_), "device": device,
            "added_gpu_peak_mib": gpu_added}


def run(contender, n_rows, n_candidates, epochs, device="cpu"):
    """:func:`run_child` in a fresh process."""
    out = subprocess.run(
        [sys.executable, __file__, "--child", contender, str(n_rows), str(n_candidates), str(epochs),
         device],
        check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def slope(points):
    """Least-squares slope of ``[(x, y)]``."""
    x, y = np.array(points, dtype=float).T
    return float(np.polyfit(x, y, 1)[0])


def memory_stage(args):
    """``--memory-only``: the added peak memory of ``fused`` and ``grid(ours, 1)``, host and GPU."""
    from _common import format_table, machine_info, write_json

    n = args.rows or 1_000_000
    rows = [run(contender, n, candidates, 1, args.device)
            for candidates in (4, 16) for contender in ("fused", "grid(ours, 1)")]
    columns = [("contender", "contender", ""), ("device", "device", ""), ("rows", "rows", "d"),
               ("candidates", "cand.", "d"), ("wall_s", "wall s", ".2f"),
               ("added_peak_mib", "added RSS MiB", ".0f"),
               ("added_gpu_peak_mib", "added GPU MiB", ".0f"), ("load_before", "load", ".2f")]
    for row in rows:
        if row["added_gpu_peak_mib"] is None:
            row["added_gpu_peak_mib"] = float("nan")
    print(format_table(rows, columns))
    key = "added_gpu_peak_mib" if args.device.startswith("cuda") else "added_peak_mib"
    ratios = {c: rows[2 * i][key] / rows[2 * i + 1][key] for i, c in enumerate((4, 16))}
    for candidates, ratio in ratios.items():
        print(f"fused / grid(ours, 1), {candidates} candidates, {key}: {ratio:.2f}x (target <= 1.3x)")
    payload = {"machine": machine_info(args.device), "rows": rows,
               "summary": {f"memory_ratio_{c}_candidates": r for c, r in ratios.items()}}
    print(f"wrote {write_json('scale_memory', payload, args.out)}")


def main():
    from _common import format_table, machine_info, write_json

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100k rows, 1 epoch only")
    parser.add_argument("--device", default="cpu", help="the estimators' device (cpu, cuda)")
    parser.add_argument("--rows", type=int, default=None, help="rows of the large runs")
    parser.add_argument("--memory-only", action="store_true",
                        help="fused and grid(ours, 1) at 1 epoch, 4 and 16 candidates")
    parser.add_argument("--out", default=None, help="JSON path (default: results/scale*.json)")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        contender, n_rows, n_candidates, epochs, device = args.child
        print(json.dumps(run_child(contender, int(n_rows), int(n_candidates), int(epochs), device)))
        return
    if args.memory_only:
        memory_stage(args)
        return

    big = 100_000 if args.quick else 1_000_000
    rows = []
    columns = [("contender", "contender", ""), ("rows", "rows", "d"),
               ("candidates", "cand.", "d"), ("epochs", "epochs", "d"),
               ("wall_s", "wall s", ".2f"), ("added_peak_mib", "added RSS MiB", ".0f"),
               ("data_mib", "X MiB", ".0f"), ("load_before", "load", ".2f"),
               ("load_after", "load after", ".2f")]
    for epochs in (1,) if args.quick else (1, 4):
        for contender in CONTENDERS:
            if contender == "grid(sklearn, 1)" and epochs != 1:
                continue
            rows.append(run(contender, big, 4, epochs))
            print(format_table(rows[-1:], columns).splitlines()[-1], flush=True)
    growth_rows = [] if args.quick else [run("fused", n, 4, 1) for n in (100_000, 300_000)]
    growth_candidates = [] if args.quick else [run("fused", big, c, 1) for c in (16, 64)]
    rows += growth_rows + growth_candidates
    print()
    print(format_table(rows, columns))

    def pick(contender, epochs, candidates=4, n=big):
        return next(r for r in rows if r["contender"] == contender and r["epochs"] == epochs
                    and r["candidates"] == candidates and r["rows"] == n)

    fused, seq1, seqall = (pick(c, 1) for c in ("fused", "grid(ours, 1)", "grid(ours, -1)"))
    summary = {
        "memory_ratio_vs_grid_ours_1": fused["added_peak_mib"] / seq1["added_peak_mib"],
        "time_ratio_1_epoch_vs_grid_ours_all": fused["wall_s"] / seqall["wall_s"],
    }
    if not args.quick:
        summary["time_ratio_4_epochs_vs_grid_ours_all"] = (
            pick("fused", 4)["wall_s"] / pick("grid(ours, -1)", 4)["wall_s"])
        by_rows = [(r["rows"], r["added_peak_mib"]) for r in [*growth_rows, fused]]
        by_candidates = [(r["candidates"] * FOLDS, r["added_peak_mib"])
                         for r in [fused, *growth_candidates]]
        summary["mib_per_100k_rows"] = slope(by_rows) * 1e5
        summary["mib_per_member"] = slope(by_candidates)
        summary["data_mib_per_100k_rows"] = N_FEATURES * 8 * 1e5 / 2**20
    print()
    print(f"fused added RSS / grid(ours, 1):  {summary['memory_ratio_vs_grid_ours_1']:.2f}x "
          "(target <= 1.3x)")
    print(f"fused 1-epoch time / grid(ours, -1): {summary['time_ratio_1_epoch_vs_grid_ours_all']:.2f}x "
          "(target <= 1x)")
    if not args.quick:
        print(f"fused 4-epoch time / grid(ours, -1): "
              f"{summary['time_ratio_4_epochs_vs_grid_ours_all']:.2f}x (target <= 0.7x)")
        print(f"growth: {summary['mib_per_100k_rows']:.1f} MiB per 100k rows (X itself: "
              f"{summary['data_mib_per_100k_rows']:.1f}), {summary['mib_per_member']:.2f} MiB per "
              "candidate x fold member")
    path = write_json("scale", {"machine": machine_info("cpu"), "rows": rows, "summary": summary})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
