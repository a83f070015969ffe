"""``sknn_tune.neural_network`` against scikit-learn's MLP: the same numbers, and a faster search.

``sknn_tune.neural_network.MLPClassifier`` / ``MLPRegressor`` take scikit-learn's exact constructor
(plus ``device`` and ``dtype``); on the CPU in float64 the same ``random_state`` must train the
same network as ``sklearn.neural_network``'s. Three sections, each fit of ours with
``device='cpu'`` (sections 1 and 2) beside scikit-learn's with identical parameters on the same
float64 data, in one run:

1. **exactness** (``exact``): for every data set below x ``solver`` ('lbfgs', 'sgd', 'adam') x
   ``activation`` ('identity', 'logistic', 'tanh', 'relu'), ``max_iter=10`` (``--max-iter``),
   ``random_state=0``, the other parameters scikit-learn's defaults: the max relative difference
   of the weights, ``max over coefs_ + intercepts_ of max|ours - theirs| / max|theirs|``, and
   whether ``n_iter_`` is the same. **Goals: every difference <= 1e-8; the same ``n_iter_`` in
   every fit.**
2. **default fits** (``defaults``): per data set, both estimators with their defaults (only
   ``random_state=0``; ours ``device='cpu'``): the fraction of rows of the data set with the same
   ``predict`` (classifiers: equal labels; regressors: every output within 1e-6 relative,
   ``np.isclose(rtol=1e-6, atol=1e-12)``), both ``n_iter_``, the weights' difference as in 1, and
   each fit's seconds. **Goals: agreement >= 99.9 % on every set; the same ``n_iter_`` on every
   set.**
3. **search** (``search``): a 24-candidate grid, ``hidden_layer_sizes`` (8,) / (16,) x ``alpha``
   1e-4 / 1e-2 x ``learning_rate_init`` 1e-3 / 3e-3 / 1e-2 x ``solver`` adam / sgd, over
   ``MLPClassifier(batch_size=16, max_iter=15, random_state=0)`` (scikit-learn's ``tol`` and
   ``n_iter_no_change``: fits may stop early), ``cv=5`` on the full digits set, ``refit=False``:
   ``GridSearchCV(sklearn.neural_network.MLPClassifier(...), n_jobs=-1)`` (``--n-jobs``; its
   sequential time on 2 cores is tens of seconds) against
   ``FusedGridSearchCV(sknn_tune.neural_network.MLPClassifier(device=<--device>, ...))``. Each
   search is timed once, after an untimed warm-up search of the same kind on 360 rows (imports,
   first-call costs, loky's processes), each timing after waiting (at most ``--max-settle``
   seconds) for the 1-min load average to fall to the core count, with the load before and after
   (``LOADED`` above the cores: discard). **Goals: the same ``best_params_``; max |diff| of
   ``mean_test_score`` <= 1e-3; scikit-learn's seconds / fused seconds >= 3 on a CPU.**

Data sets, float64: ``load_breast_cancer`` (binary), ``load_wine``, ``load_iris`` (multiclass),
all three through ``StandardScaler``; ``load_digits`` / 16 (multiclass, in [0, 1]);
``load_diabetes`` (regression) and ``load_linnerud`` (3 targets), X and y through
``StandardScaler``; ``make_regression(300, 10, n_targets=3, noise=5, random_state=0)`` (y
standardised). Sections 1 and 2 compare numbers, not times: they run with one thread (torch's and,
through threadpoolctl, the BLAS pools; ``--threads`` sets another count for every section), which
keeps the OpenMP busy-wait of a shared machine out of them; the search runs with each library's
own threads unless ``--threads`` is given. ConvergenceWarnings are silenced (in joblib's workers
too: ``PYTHONWARNINGS=ignore`` before any pool starts).

``--quick`` is a smoke run (60 rows per data set, 4 candidates x 2 folds of 200 rows, 2 epochs,
``GridSearchCV(n_jobs=1)``, no waiting for the load; its speed-up means nothing).
``--skip exact,defaults,search`` leaves sections out. Results go to
``benchmarks/results/sklearn_exact_<device>[_quick].json`` (``--out`` overrides). Run
``python benchmarks/bench_sklearn_exact.py --help``.
"""

import argparse
import functools
import os
import sys
import time
import warnings

import numpy as np
from _common import (
    command_line,
    describe_machine,
    detect_device,
    format_markdown_table,
    format_table,
    limit_threads,
    load_average,
    load_flag,
    machine_info,
    parse_skip,
    settle,
    thread_environment,
    timed,
    write_json,
)
from sklearn import neural_network as sk
from sklearn.datasets import (
    load_breast_cancer,
    load_diabetes,
    load_digits,
    load_iris,
    load_linnerud,
    load_wine,
    make_regression,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.preprocessing import StandardScaler

from sknn_tune import FusedGridSearchCV
from sknn_tune import neural_network as ours

SEED = 0
CORES = os.cpu_count() or 1
SOLVERS = ("lbfgs", "sgd", "adam")
ACTIVATIONS = ("identity", "logistic", "tanh", "relu")
SECTIONS = {"exact": "exact", "defaults": "defaults", "search": "search"}
QUICK_ROWS = 60
GOALS = {"max_rel_diff": 1e-8, "agreement": 0.999, "score_diff": 1e-3, "speedup": 3.0}
PREDICT_RTOL, PREDICT_ATOL = 1e-6, 1e-12

SEARCH = {
    "grid": {"hidden_layer_sizes": [(8,), (16,)], "alpha": [1e-4, 1e-2],
             "learning_rate_init": [1e-3, 3e-3, 1e-2], "solver": ["adam", "sgd"]},
    "base": {"batch_size": 16, "max_iter": 15, "random_state": SEED},
    "cv": 5, "warmup_rows": 360,
}
QUICK_SEARCH = {
    "grid": {"hidden_layer_sizes": [(8,)], "alpha": [1e-4, 1e-2], "solver": ["adam", "sgd"]},
    "base": {"batch_size": 16, "max_iter": 2, "random_state": SEED},
    "cv": 2, "warmup_rows": 100, "rows": 200,
}

# ------------------------------------------------------------------------------------------------
# data


def _scaled(a):
    return StandardScaler().fit_transform(np.asarray(a, dtype=np.float64))


def load_sets(quick):
    """``name -> (task, X, y)``, float64; ``quick``: ``QUICK_ROWS`` rows of each, drawn at random
    (the bundled sets are sorted by class)."""
    sets = {}
    X, y = load_breast_cancer(return_X_y=True)
    sets["breast_cancer"] = ("binary", _scaled(X), y)
    X, y = load_wine(return_X_y=True)
    sets["wine"] = ("multiclass", _scaled(X), y)
    X, y = load_iris(return_X_y=True)
    sets["iris"] = ("multiclass", _scaled(X), y)
    X, y = load_digits(return_X_y=True)
    sets["digits"] = ("multiclass", X / 16.0, y)
    X, y = load_diabetes(return_X_y=True)
    sets["diabetes"] = ("regression", _scaled(X), _scaled(y[:, None])[:, 0])
    X, Y = load_linnerud(return_X_y=True)
    sets["linnerud"] = ("multi-output", _scaled(X), _scaled(Y))
    X, Y = make_regression(300, 10, n_targets=3, noise=5.0, random_state=SEED)
    sets["make_regression"] = ("multi-output", X, _scaled(Y))
    if quick:
        rng = np.random.RandomState(SEED)
        for name, (task, X, y) in sets.items():
            rows = rng.permutation(len(X))[:QUICK_ROWS]
            sets[name] = (task, X[rows], y[rows])
    return sets


def pair(task, **params):
    """(ours with ``device='cpu'``, scikit-learn's), the same ``params``."""
    if task in ("binary", "multiclass"):
        return ours.MLPClassifier(device="cpu", **params), sk.MLPClassifier(**params)
    return ours.MLPRegressor(device="cpu", **params), sk.MLPRegressor(**params)


def fit_pair(task, X, y, **params):
    """Fit both; a dict with the fitted models (or the error) and each fit's seconds."""
    mine, theirs = pair(task, **params)
    out = {}
    for name, model in (("sklearn", theirs), ("ours", mine)):
        start = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.fit(X, y)
        except Exception as exc:  # a benchmark reports a failed fit and goes on
            out[name], out[f"{name}_error"] = None, f"{type(exc).__name__}: {exc}"
        else:
            out[name] = model
        out[f"{name}_s"] = time.perf_counter() - start
    return out


def rel_diff(theirs, mine):
    """max over ``coefs_ + intercepts_`` of max|ours - theirs| / max|theirs| (inf on a shape
    mismatch, nan when a weight is not finite)."""
    worst = 0.0
    for a, b in zip(theirs.coefs_ + theirs.intercepts_, mine.coefs_ + mine.intercepts_):
        a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        if a.shape != b.shape:
            return float("inf")
        if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
            return float("nan")
        worst = max(worst, float(np.max(np.abs(a - b)) / max(np.max(np.abs(a)), 1e-300)))
    return worst


def _fmt(value, fmt):
    return "-" if value is None else format(value, fmt)


def _verdict(ok):
    return "PASS" if ok else "FAIL"


# ------------------------------------------------------------------------------------------------
# 1. exactness


def run_exact(sets, max_iter):
    rows, fits = [], []
    for name, (task, X, y) in sets.items():
        for solver in SOLVERS:
            row = {"set": name, "task": task, "solver": solver}
            same = 0
            for activation in ACTIVATIONS:
                out = fit_pair(task, X, y, solver=solver, activation=activation,
                               max_iter=max_iter, random_state=SEED)
                theirs, mine = out["sklearn"], out["ours"]
                fit = {"set": name, "task": task, "solver": solver, "activation": activation,
                       "sklearn_s": out["sklearn_s"], "ours_s": out["ours_s"],
                       "error": out.get("ours_error") or out.get("sklearn_error")}
                if theirs is not None and mine is not None:
                    fit.update(max_rel_diff=rel_diff(theirs, mine), n_iter_sklearn=theirs.n_iter_,
                               n_iter_ours=mine.n_iter_,
                               same_n_iter=bool(theirs.n_iter_ == mine.n_iter_),
                               loss_sklearn=float(theirs.loss_), loss_ours=float(mine.loss_))
                    same += fit["same_n_iter"]
                else:
                    fit.update(max_rel_diff=None, same_n_iter=False)
                fits.append(fit)
                row[activation] = fit["max_rel_diff"]
            row["same_n_iter"] = f"{same}/{len(ACTIVATIONS)}"
            rows.append(row)
    diffs = [f["max_rel_diff"] for f in fits]
    finite = [d for d in diffs if d is not None and np.isfinite(d)]
    worst_fit = max(fits, key=lambda f: np.inf if f["max_rel_diff"] is None
                    or not np.isfinite(f["max_rel_diff"]) else f["max_rel_diff"])
    summary = {
        "n_fits": len(fits),
        "worst_rel_diff": max(finite) if len(finite) == len(fits) else float("nan"),
        "worst_fit": {k: worst_fit[k] for k in ("set", "solver", "activation")},
        "n_same_n_iter": sum(f["same_n_iter"] for f in fits),
        "errors": [f for f in fits if f["error"]],
    }
    summary["pass_diff"] = bool(len(finite) == len(fits)
                                and summary["worst_rel_diff"] <= GOALS["max_rel_diff"])
    summary["pass_n_iter"] = summary["n_same_n_iter"] == len(fits)
    columns = [("set", "data set", ""), ("task", "task", ""), ("solver", "solver", ""),
               *((a, a, ".1e") for a in ACTIVATIONS), ("same_n_iter", "same n_iter_", "")]
    print(format_table(rows, columns))
    print(f"  max relative |diff| of coefs_/intercepts_ after max_iter={max_iter}, per activation; "
          "same n_iter_: fits of the row with scikit-learn's iteration count")
    for f in summary["errors"]:
        print(f"  error: {f['set']} {f['solver']} {f['activation']}: {f['error']}")
    print(f"  {_verdict(summary['pass_diff'])}: worst relative |diff| "
          f"{summary['worst_rel_diff']:.2e} ({worst_fit['set']}, {worst_fit['solver']}, "
          f"{worst_fit['activation']}) (goal <= {GOALS['max_rel_diff']:g})")
    print(f"  {_verdict(summary['pass_n_iter'])}: same n_iter_ in {summary['n_same_n_iter']}/"
          f"{len(fits)} fits (goal: all)")
    print("\nas a GitHub table:\n" + format_markdown_table(rows, columns))
    return {"max_iter": max_iter, "table": rows, "fits": fits, "summary": summary}


# ------------------------------------------------------------------------------------------------
# 2. default fits


def agreement(task, theirs, mine, X):
    """Fraction of the rows of ``X`` whose predictions agree (see the module docstring)."""
    a, b = theirs.predict(X), mine.predict(X)
    if task in ("binary", "multiclass"):
        return float(np.mean(a == b))
    close = np.isclose(np.asarray(b, dtype=np.float64), a, rtol=PREDICT_RTOL, atol=PREDICT_ATOL)
    return float(np.mean(close.reshape(len(X), -1).all(axis=1)))


def run_defaults(sets):
    rows = []
    for name, (task, X, y) in sets.items():
        out = fit_pair(task, X, y, random_state=SEED)
        theirs, mine = out["sklearn"], out["ours"]
        row = {"set": name, "task": task, "rows": len(X), "sklearn_s": out["sklearn_s"],
               "ours_s": out["ours_s"],
               "error": out.get("ours_error") or out.get("sklearn_error")}
        if theirs is not None and mine is not None:
            row.update(n_iter_sklearn=theirs.n_iter_, n_iter_ours=mine.n_iter_,
                       same_n_iter="yes" if theirs.n_iter_ == mine.n_iter_ else "no",
                       agreement_pct=100 * agreement(task, theirs, mine, X),
                       max_rel_diff=rel_diff(theirs, mine))
        else:
            row.update(same_n_iter="no", agreement_pct=0.0)
        rows.append(row)
    summary = {"min_agreement_pct": min(r["agreement_pct"] for r in rows),
               "n_same_n_iter": sum(r["same_n_iter"] == "yes" for r in rows), "n_sets": len(rows)}
    summary["pass_agreement"] = summary["min_agreement_pct"] >= 100 * GOALS["agreement"]
    summary["pass_n_iter"] = summary["n_same_n_iter"] == len(rows)
    columns = [("set", "data set", ""), ("task", "task", ""), ("rows", "rows", "d"),
               ("agreement_pct", "same predict %", ".2f"), ("n_iter_sklearn", "n_iter_ sklearn", "d"),
               ("n_iter_ours", "n_iter_ ours", "d"), ("same_n_iter", "same n_iter_", ""),
               ("max_rel_diff", "max rel diff W", ".1e"), ("sklearn_s", "sklearn s", ".3f"),
               ("ours_s", "ours s", ".3f")]
    print(format_table(rows, columns))
    print("  default parameters, random_state=0; same predict: rows of the data set with equal "
          f"labels (regressors: every output within rtol {PREDICT_RTOL:g}); max rel diff W: the max "
          "relative |diff| of coefs_/intercepts_ as in section 1; seconds: one fit each, one "
          "thread unless --threads")
    for r in rows:
        if r["error"]:
            print(f"  error: {r['set']}: {r['error']}")
    print(f"  {_verdict(summary['pass_agreement'])}: lowest agreement "
          f"{summary['min_agreement_pct']:.2f} % (goal >= {100 * GOALS['agreement']:g} %)")
    print(f"  {_verdict(summary['pass_n_iter'])}: same n_iter_ on {summary['n_same_n_iter']}/"
          f"{len(rows)} sets (goal: every set)")
    print("\nas a GitHub table:\n" + format_markdown_table(rows, columns))
    return {"table": rows, "summary": summary}


# ------------------------------------------------------------------------------------------------
# 3. search


def search_data(quick):
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    if quick:
        rows = np.random.RandomState(SEED).permutation(len(X))[:QUICK_SEARCH["rows"]]
        X, y = X[rows], y[rows]
    return X, y


def build(name, spec, device, n_jobs):
    if name == "fused":
        return FusedGridSearchCV(ours.MLPClassifier(device=device, **spec["base"]), spec["grid"],
                                 cv=spec["cv"], refit=False, error_score=np.nan)
    return GridSearchCV(sk.MLPClassifier(**spec["base"]), spec["grid"], cv=spec["cv"],
                        n_jobs=n_jobs, refit=False, error_score=np.nan)


def time_search(name, spec, X, y, device, n_jobs, max_settle):
    """An untimed warm-up search on ``warmup_rows`` rows, then the search once; its row."""
    rows = spec["warmup_rows"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        build(name, spec, device, n_jobs).fit(X[:rows], y[:rows])
    waited = settle(CORES, max_settle)
    search = build(name, spec, device, n_jobs)
    load_before = load_average()
    wall, cpu = timed(lambda: search.fit(X, y), device if name == "fused" else "cpu")
    load_after = load_average()
    row = {"name": "FusedGridSearchCV(sknn_tune)" if name == "fused"
           else "GridSearchCV(sklearn)", "n_jobs": "-" if name == "fused" else n_jobs,
           "device": device if name == "fused" else "cpu", "seconds": wall, "cpu_s": cpu,
           "best_score": float(search.best_score_), "load_before": load_before,
           "load_after": load_after, "flag": load_flag(load_before, load_after, CORES),
           "settle_wait_s": waited}
    if name == "fused":
        row["member_epochs"] = getattr(search, "n_member_epochs_", None)
    return row, search


def run_search(args, device):
    spec = QUICK_SEARCH if args.quick else SEARCH
    X, y = search_data(args.quick)
    n_candidates = int(np.prod([len(v) for v in spec["grid"].values()]))
    print(f"\nsearch: digits {X.shape[0]} x {X.shape[1]}, {n_candidates} candidates x "
          f"{spec['cv']} folds, MLPClassifier({', '.join(f'{k}={v}' for k, v in spec['base'].items())}),"
          f" refit=False; fused on {device}, GridSearchCV(n_jobs={args.n_jobs}) on the CPU",
          flush=True)
    results, searches = {}, {}
    with limit_threads(args.threads):
        for name in ("fused", "sklearn"):
            results[name], searches[name] = time_search(name, spec, X, y, device, args.n_jobs,
                                                        args.max_settle)
            print(f"  {results[name]['name']}: {results[name]['seconds']:.2f} s, load "
                  f"{_fmt(results[name]['load_before'], '.2f')} -> "
                  f"{_fmt(results[name]['load_after'], '.2f')} {results[name]['flag']}", flush=True)
    fused, theirs = searches["fused"], searches["sklearn"]
    a = np.asarray(fused.cv_results_["mean_test_score"], dtype=np.float64)
    b = np.asarray(theirs.cv_results_["mean_test_score"], dtype=np.float64)
    same_candidates = [dict(p) for p in fused.cv_results_["params"]] == \
        [dict(p) for p in theirs.cv_results_["params"]]
    diff = np.where(np.isnan(a) & np.isnan(b), 0.0, np.abs(a - b))
    speedup = results["sklearn"]["seconds"] / results["fused"]["seconds"]
    results["fused"]["ratio"], results["sklearn"]["ratio"] = 1.0, speedup
    check = {"same_candidates": same_candidates,
             "same_best_params": fused.best_params_ == theirs.best_params_,
             "best_params_fused": fused.best_params_, "best_params_sklearn": theirs.best_params_,
             "max_abs_score_diff": float(np.max(diff)), "speedup": speedup,
             "fused": a.tolist(), "sklearn": b.tolist()}
    check["pass_best"] = bool(check["same_best_params"])
    check["pass_scores"] = bool(check["max_abs_score_diff"] <= GOALS["score_diff"])
    check["pass_speedup"] = bool(speedup >= GOALS["speedup"])
    rows = [results["fused"], results["sklearn"]]
    columns = [("name", "contender", ""), ("n_jobs", "n_jobs", ""), ("device", "device", ""),
               ("seconds", "seconds", ".2f"), ("ratio", "÷ fused", ".2f"), ("cpu_s", "cpu s", ".2f"),
               ("best_score", "best score", ".4f"), ("member_epochs", "member-epochs", ""),
               ("load_before", "load0", ".2f"), ("load_after", "load1", ".2f"), ("flag", "flag", "")]
    print()
    print(format_table(rows, columns))
    print("  seconds: one search each (refit off) after an untimed warm-up search; ÷ fused: "
          "seconds / fused seconds; cpu s: this process's CPU time (loky's workers not in it); "
          "member-epochs: epochs the fused stacks trained, all fits together; load0/load1: 1-min "
          f"load average before / after, LOADED when above the {CORES} cores (discard)")
    print(f"  {_verdict(check['pass_best'])}: same best_params_ "
          f"({'yes' if check['same_best_params'] else 'no'}: fused {fused.best_params_}, "
          f"sklearn {theirs.best_params_})")
    print(f"  {_verdict(check['pass_scores'])}: max |diff| of mean_test_score "
          f"{check['max_abs_score_diff']:.2g} over {len(a)} candidates (goal <= "
          f"{GOALS['score_diff']:g})")
    print(f"  {_verdict(check['pass_speedup'])}: GridSearchCV(sklearn) / fused = {speedup:.2f}x "
          f"(goal >= {GOALS['speedup']:g}x on a CPU)")
    print("\nas a GitHub table:\n" + format_markdown_table(rows, columns))
    return {"n_samples": X.shape[0], "n_features": X.shape[1], "n_candidates": n_candidates,
            "cv": spec["cv"], "grid": spec["grid"], "base": spec["base"], "n_jobs": args.n_jobs,
            "results": rows, "check": check}


# ------------------------------------------------------------------------------------------------


def goal_lines(report):
    """``[(section, text, passed)]`` of every goal measured."""
    out = []
    if "exact" in report:
        s = report["exact"]["summary"]
        out += [("exact", f"coefs_/intercepts_ max rel |diff| {s['worst_rel_diff']:.2e} <= "
                          f"{GOALS['max_rel_diff']:g}", s["pass_diff"]),
                ("exact", f"same n_iter_ {s['n_same_n_iter']}/{s['n_fits']}", s["pass_n_iter"])]
    if "defaults" in report:
        s = report["defaults"]["summary"]
        out += [("defaults", f"predict agreement {s['min_agreement_pct']:.2f} % >= "
                             f"{100 * GOALS['agreement']:g} %", s["pass_agreement"]),
                ("defaults", f"same n_iter_ {s['n_same_n_iter']}/{s['n_sets']} sets",
                 s["pass_n_iter"])]
    if "search" in report:
        c = report["search"]["check"]
        out += [("search", "same best_params_", c["pass_best"]),
                ("search", f"max |diff| mean_test_score {c['max_abs_score_diff']:.2g} <= "
                           f"{GOALS['score_diff']:g}", c["pass_scores"]),
                ("search", f"speed-up {c['speedup']:.2f}x >= {GOALS['speedup']:g}x",
                 c["pass_speedup"])]
    return out


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="device of the fused search (default auto: cuda when present); "
                             "sections 1 and 2 always fit on the CPU")
    parser.add_argument("--max-iter", type=int, default=10,
                        help="max_iter of the exactness fits (10)")
    parser.add_argument("--n-jobs", type=int,
                        help="n_jobs of GridSearchCV(sklearn) (default -1: a loky process per "
                             "core; --quick 1: starting loky's processes is most of a smoke run)")
    parser.add_argument("--threads", type=int,
                        help="threads for torch and (threadpoolctl) BLAS/OpenMP in every section; "
                             "default: 1 for the exactness and default fits, each library's own "
                             "for the search")
    parser.add_argument("--max-settle", type=float, metavar="S",
                        help="the longest wait for the load average to fall to the core count "
                             "before each timed search (60 s, --quick 0; 0: do not wait)")
    parser.add_argument("--skip", type=functools.partial(parse_skip, names=SECTIONS),
                        default=set(), metavar="LIST",
                        help="comma-separated sections to leave out: exact, defaults, search")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke run: {QUICK_ROWS} rows per data set, a 4-candidate x 2-fold "
                             "search of 200 rows, 2 epochs; writes *_quick.json")
    parser.add_argument("--out", help="JSON path (default benchmarks/results/"
                                      "sklearn_exact_<device>[_quick].json)")
    args = parser.parse_args(argv)
    if args.max_settle is None:
        args.max_settle = 0.0 if args.quick else 60.0
    if args.n_jobs is None:
        args.n_jobs = 1 if args.quick else -1
    return args


def main(argv=None):
    # Before any pool starts: joblib's loky workers inherit the environment.
    os.environ["PYTHONWARNINGS"] = "ignore"
    args = parse_args(argv)
    device = detect_device() if args.device == "auto" else args.device
    info = machine_info(device)
    print("sklearn-exact benchmark:", describe_machine(info), f"; load average {load_average()}")
    print("command:", command_line())
    sets = load_sets(args.quick)
    report, seconds = {}, {}
    for section, title in (("exact", f"1. exactness: max_iter={args.max_iter}, every solver x "
                                     "activation"),
                           ("defaults", "2. default fits")):
        if section in args.skip:
            continue
        shapes = ", ".join(f"{n} {X.shape[0]}x{X.shape[1]} {t}" for n, (t, X, _) in sets.items())
        print(f"\n{title} ({shapes})", flush=True)
        start = time.perf_counter()
        with limit_threads(args.threads or 1):
            report[section] = (run_exact(sets, args.max_iter) if section == "exact"
                               else run_defaults(sets))
        seconds[section] = time.perf_counter() - start
    if "search" not in args.skip:
        start = time.perf_counter()
        report["search"] = run_search(args, device)
        seconds["search"] = time.perf_counter() - start
    goals = goal_lines(report)
    print("\ngoals:")
    for section, text, passed in goals:
        print(f"  {_verdict(passed)} [{section}] {text}")
    print("section seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in seconds.items()))
    payload = {
        "benchmark": "sklearn_exact",
        "machine": info,
        "command": sys.argv,
        "environment": thread_environment("PYTHONWARNINGS"),
        "config": {"device": device, "max_iter": args.max_iter, "n_jobs": args.n_jobs,
                   "threads": args.threads, "max_settle_s": args.max_settle,
                   "skip": sorted(args.skip), "quick": args.quick, "seed": SEED, "goals": GOALS,
                   "sets": {n: {"task": t, "rows": X.shape[0], "features": X.shape[1]}
                            for n, (t, X, _) in sets.items()}},
        "sections": report,
        "section_seconds": seconds,
        "goals": [{"section": s, "goal": text, "pass": passed} for s, text, passed in goals],
    }
    name = f"sklearn_exact_{device}" + ("_quick" if args.quick else "")
    path = write_json(name, payload, args.out)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
