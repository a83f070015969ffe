"""Self-tuning networks: MLPClassifierCV / MLPRegressorCV against untuned and tuned scikit-learn.

What is measured
----------------
On every data set of ``bench_accuracy.py`` (its ``DATASETS`` and ``load()``, at most 2000 rows),
each contender is a ``make_pipeline(StandardScaler(), estimator)`` scored by a shuffled
(stratified for classifiers) ``--outer-folds``-fold OUTER cross-validation (default 5), over
``--seeds`` seeds (default 3). A seed fixes the outer split (shared by every contender) and every
contender's ``random_state``. Scores are the estimators' own: accuracy for classifiers, R^2 for
regressors. Each outer fold fits a fresh clone of every contender in turn (so a change in machine
load hits all of them), timing the pipeline's ``fit`` (wall and this process's CPU seconds) with
the 1-minute load average before and after; a fit is flagged ``LOADED`` when the load exceeded
the threads it used (the core count for ``(a)`` and ``(d)``, which use every core). The
contenders:

``(a) cv``
    ``sknn_tune.MLPClassifierCV`` / ``MLPRegressorCV`` with its defaults (``random_state=seed,
    device='cpu'``): an inner 5-fold coarse successive-halving search of 27 candidates from 3 to
    81 epochs (``max_epochs='auto'`` on these sets' sizes), a fine stage of 9 candidates around
    the best (up to 81 epochs), a refit; all of it inside the timed ``fit``.
``(b) sklearn``
    ``sklearn.neural_network.MLPClassifier`` / ``MLPRegressor`` with its defaults
    (``random_state=seed``).
``(c) ours``
    ``sknn_tune.MLPClassifier`` / ``MLPRegressor`` with its defaults (``random_state=seed,
    device='cpu'``).
``ES refit``
    Not a contender: (a)'s chosen candidate refit once more on the outer training rows with
    early stopping (``early_stopping=True``, up to 3x (a)'s budget, best weights restored), scored
    on the same test rows; the column ``ES refit - a`` answers which refit generalises better.
``(d) search``
    ``RandomizedSearchCV(sklearn MLP, space, n_iter=36, cv=5, n_jobs=-1, random_state=seed)``
    (refit included): as many candidates x inner folds as ``(a)``'s two stages together
    (27 coarse + 9 fine = 36 candidates x 5 folds), over the closest space scikit-learn's MLP can
    express, each fit with ``(a)``'s full budget (``max_iter=81``) (so ``(d)`` trains several times
    the epochs of ``(a)``, whose halving stops most candidates at 3 to 27 epochs).

The space of ``(d)``, translated from ``sknn_tune.default_space(n)`` of the same inner training
size ``n`` that ``(a)`` uses (``ceil(outer train rows x 4/5)``), dict by dict:

* ``hidden_layer_sizes``: the same structures (``default_space(n)[0]["hidden_layer_sizes"]``);
* ``activation``: ``['relu', 'tanh']`` (ours also draws 'elu' and 'gelu', which scikit-learn lacks);
* stochastic dict -> one dict per batch size ``b`` of ours (``batch_size=[b]``), with ``solver``
  in ``['adam', 'sgd']`` (ours: adam, adamw, momentum; scikit-learn has no AdamW; its SGD gets
  ``momentum=0.9, nesterovs_momentum=False``, ours' 'momentum' rule), ``learning_rate_init``
  ``loguniform(1e-4, 3e-2)`` (ours' ``lr``) and ``alpha`` ``loguniform(1e-7 b, 1e-2 b)``:
  scikit-learn divides its L2 gradient by the batch size, so ``alpha = weight_decay x b`` gives
  ours' ``weight_decay`` range ``loguniform(1e-7, 1e-2)`` the same gradient. Dropout and batch
  normalisation have no counterpart and are left out;
* full-batch dict (ours has it on up to 2000 training rows, every set here) -> ``solver=['lbfgs']``
  with ``alpha`` ``loguniform(1e-7 n, 1e-2 n)`` (L-BFGS sees all ``n`` rows per step), repeated
  once per stochastic dict so that, as in ours, half the candidates are L-BFGS
  (``ParameterSampler`` picks one dict of a list uniformly);
* everything else scikit-learn's defaults (``tol=1e-4, n_iter_no_change=10``: its fits may stop
  before 81 iterations), ``max_iter=81``.

A separate timing: one default ``MLPClassifierCV(random_state=0, device='cpu')`` fit against one
default scikit-learn ``MLPClassifier(random_state=0)`` fit on
``make_classification(5000, 30, random_state=0)``, standardised.

Goals (printed as verdicts)
---------------------------
1. ``(a) >= (b) - 0.005`` on EVERY data set, and ``mean(a) - mean(b) >= +0.01`` (means over the
   data sets of each set's mean score, accuracies and R^2 alike);
2. ``mean(a) >= mean(d)``, in at most 1/3 of ``(d)``'s time (the sum of all fit times);
3. the single timing: ``MLPClassifierCV`` / scikit-learn ``MLPClassifier`` <= 10x.

Usage::

    python benchmarks/bench_selftuning.py                      # 3 seeds x 5 outer folds, 11 sets
    python benchmarks/bench_selftuning.py --quick              # smoke run, under a minute
    python benchmarks/bench_selftuning.py --seeds 1 --outer-folds 3 --datasets iris wine diabetes
    python benchmarks/bench_selftuning.py --skip search,single # leave out (d) and the timing

``--quick``: 1 seed, 2 outer folds, the data sets iris and diabetes (one classifier, one
regressor; at most 500 rows), ``(a)`` with ``n_iter=3, max_epochs=9`` (so ``(d)`` gets
``n_iter=4, max_iter=9``) and the single timing on 1000 rows: a smoke test, its verdicts mean
nothing. ``--threads T`` sets torch's and the BLAS pools' threads (default: each library's own,
all cores, as a user runs them; ``(d)``'s loky workers get one thread each either way). Results go
to ``benchmarks/results/bench_selftuning[_quick].json`` (or ``--out``): the machine, the command,
every fit (score, wall and CPU seconds, load before and after, flag, chosen parameters, epochs),
the per-set and mean rows and the verdicts.
"""

import argparse
import functools
import math
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from scipy.stats import loguniform
from sklearn import datasets
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import KFold, RandomizedSearchCV, StratifiedKFold
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.neural_network import MLPRegressor as SkMLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parent))
# the checkout's sknn_tune, not an installed one elsewhere
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))
from _common import (
    describe_machine,
    fit_once,
    format_table,
    limit_threads,
    load_average,
    load_flag,
    machine_info,
    parse_skip,
    write_json,
)
from bench_accuracy import DATASETS, MAX_ROWS, QUICK_ROWS, load

from sknn_tune import (
    MLPClassifier,
    MLPClassifierCV,
    MLPRegressor,
    MLPRegressorCV,
    default_space,
)
from sknn_tune._self_tuning import _auto_epochs

CORES = os.cpu_count() or 1
CV, SKLEARN, OURS, SEARCH, SINGLE = "cv", "sklearn", "ours", "search", "single"
CONTENDERS = (CV, SKLEARN, OURS, SEARCH)
LABELS = {CV: "(a) MLP*CV", SKLEARN: "(b) sklearn", OURS: "(c) ours", SEARCH: "(d) RSCV(sklearn)"}
SKIP_NAMES = {name: name for name in (*CONTENDERS, SINGLE)}
QUICK_DATASETS = ("iris", "diabetes")
INNER_FOLDS = 5  # MLPClassifierCV's default cv, and (d)'s
QUICK_CV = {"n_iter": 3, "max_epochs": 9}
SINGLE_ROWS, QUICK_SINGLE_ROWS = 5000, 1000

# goals
EVERY_SET_MARGIN = 0.005  # (a) >= (b) - 0.005 on every set
MEAN_GAIN = 0.01  # mean(a) - mean(b) >= +0.01
TIME_FRACTION = 1 / 3  # time(a) <= time(d) / 3
SINGLE_RATIO = 10.0  # one MLPClassifierCV fit <= 10x one sklearn MLPClassifier fit
ES_EPOCH_FACTOR = 3  # the early-stopping refit may train this many times (a)'s budget


# ------------------------------------------------------------------------------------------------
# contenders


def cv_settings(quick, n_inner=None):
    """``(n_iter, max_epochs, n_search)`` of contender (a) on ``n_inner`` inner training rows
    (max_epochs='auto' resolved as its fit does; 'auto' without rows), and the candidates (d)
    gets for them."""
    defaults = MLPClassifierCV().get_params()
    n_iter = QUICK_CV["n_iter"] if quick else defaults["n_iter"]
    max_epochs = QUICK_CV["max_epochs"] if quick else defaults["max_epochs"]
    if max_epochs == "auto" and n_inner is not None:
        max_epochs = _auto_epochs(n_inner)
    n_fine = max(1, n_iter // 3)  # MLPClassifierCV's n_fine=None
    return n_iter, max_epochs, n_iter + n_fine


def inner_rows(n_outer_train):
    """The training rows of one inner fold, as MLPClassifierCV.fit counts them."""
    return math.ceil(n_outer_train * (1 - 1 / INNER_FOLDS))


def sklearn_space(n_train):
    """The closest scikit-learn MLP space to ``default_space(n_train)`` (see the docstring)."""
    ours = default_space(n_train)
    out, full_batch = [], []
    for sub in ours:
        common = {"hidden_layer_sizes": list(sub["hidden_layer_sizes"]),
                  "activation": ["relu", "tanh"]}
        if list(sub["optimizer"]) == ["lbfgs"]:
            full_batch.append({**common, "solver": ["lbfgs"],
                               "alpha": loguniform(1e-7 * n_train, 1e-2 * n_train)})
            continue
        for batch in sub["batch_size"]:
            out.append({**common, "solver": ["adam", "sgd"], "batch_size": [int(batch)],
                        "learning_rate_init": loguniform(1e-4, 3e-2),
                        "alpha": loguniform(1e-7 * batch, 1e-2 * batch)})
    # as many full-batch dicts as stochastic ones: half the candidates, as in ours
    out += [dict(d) for d in full_batch for _ in range(max(1, len(out)))]
    return out


def make_contender(name, task, seed, n_outer_train, quick):
    classify = task == "classification"
    n_inner = inner_rows(n_outer_train)
    n_iter, max_epochs, n_search = cv_settings(quick, n_inner)
    if name == CV:
        est = (MLPClassifierCV if classify else MLPRegressorCV)(random_state=seed, device="cpu")
        if quick:
            est.set_params(n_iter=n_iter, max_epochs=max_epochs)
    elif name == SKLEARN:
        est = (SkMLPClassifier if classify else SkMLPRegressor)(random_state=seed)
    elif name == OURS:
        est = (MLPClassifier if classify else MLPRegressor)(random_state=seed, device="cpu")
    else:
        base = (SkMLPClassifier if classify else SkMLPRegressor)(
            max_iter=max_epochs, momentum=0.9, nesterovs_momentum=False, random_state=seed)
        est = RandomizedSearchCV(base, sklearn_space(n_inner), n_iter=n_search, cv=INNER_FOLDS,
                                 n_jobs=-1, random_state=seed)
    return make_pipeline(StandardScaler(), est)


def fit_threads(name):
    """The threads a contender's fit uses, for the LOADED flag: (a) trains a stack per torch
    thread, (d) runs one loky worker per core; the others the torch / BLAS threads."""
    import torch

    return CORES if name in (CV, SEARCH) else torch.get_num_threads()


def details(name, fitted):
    """What a fitted contender chose: parameters, epochs."""
    est = fitted[-1]
    if name == CV:
        return {"best_params": est.best_params_, "best_inner_score": est.best_score_,
                "n_member_epochs": int(est.n_member_epochs_),
                "refit_epochs": int(est.best_estimator_.n_iter_)}
    if name == SEARCH:
        return {"best_params": est.best_params_, "best_inner_score": float(est.best_score_),
                "refit_epochs": int(est.best_estimator_.n_iter_)}
    return {"epochs": int(est.n_iter_)}


def evaluate(name, task, X, y, train, test, seed, quick):
    """Fit a fresh pipeline of contender ``name`` on ``train``, score it on ``test``."""
    pipe = make_contender(name, task, seed, len(train), quick)
    threads = fit_threads(name)
    before = load_average()
    record = {"seed": seed}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            wall, cpu, fitted = fit_once(pipe, X[train], y[train])
            score = float(fitted.score(X[test], y[test]))
        record.update(details(name, fitted))
        if name == CV:
            record.update(early_stopping_refit(fitted, X[train], y[train], X[test], y[test]))
    except Exception as exc:  # a failed fit is a result, not the end of the run
        wall, cpu, score = math.nan, math.nan, math.nan
        record["error"] = f"{type(exc).__name__}: {exc}"
        print(f"    {LABELS[name]} FAILED: {record['error']}", flush=True)
    after = load_average()
    record.update(score=score, fit_s=wall, fit_cpu_s=cpu, threads=threads,
                  load_average={"before": before, "after": after},
                  flag=load_flag(before, after, threads))
    return record


def early_stopping_refit(fitted, X_train, y_train, X_test, y_test):
    """The refit the issue asks to weigh against (a)'s fixed budget: the chosen candidate refit
    with early stopping on a validation split (up to ES_EPOCH_FACTOR x the budget, best weights
    restored). Untimed in (a)'s time; L-BFGS takes no early stopping: its score is (a)'s."""
    cv = fitted[-1]
    params = cv.best_estimator_.get_params()
    if params.get("optimizer") == "lbfgs":
        return {"es_score": float(fitted.score(X_test, y_test)), "es_epochs": None,
                "es_skipped": "lbfgs"}
    est = clone(cv.best_estimator_).set_params(early_stopping=True,
                                               max_epochs=ES_EPOCH_FACTOR * cv.max_epochs_)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        wall, _, refit = fit_once(make_pipeline(StandardScaler(), est), X_train, y_train)
    return {"es_score": float(refit.score(X_test, y_test)), "es_fit_s": wall,
            "es_epochs": int(refit[-1].n_iter_)}


def warm_up(contenders):
    """Untimed tiny fits of every contender: imports, torch's first calls, loky's workers."""
    X, y = datasets.make_classification(120, 5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in contenders:
            pipe = make_contender(name, "classification", 0, len(X), quick=True)
            est = pipe[-1]
            if name == CV:
                est.set_params(n_iter=3, max_epochs=3, cv=2)
            elif name == SEARCH:
                est.set_params(n_iter=2, cv=2, estimator__max_iter=3)
            else:
                est.set_params(**{"max_epochs" if name == OURS else "max_iter": 3})
            pipe.fit(X, y)


# ------------------------------------------------------------------------------------------------
# runs


def run_dataset(name, args, contenders):
    task, X, y = load(name, QUICK_ROWS if args.quick else MAX_ROWS)
    row = {"dataset": name, "task": task, "n_rows": len(X), "n_features": X.shape[1],
           "fits": {c: [] for c in contenders}}
    started = time.perf_counter()
    for seed in range(args.seeds):
        outer = (StratifiedKFold if task == "classification" else KFold)(
            n_splits=args.outer_folds, shuffle=True, random_state=seed)
        for fold, (train, test) in enumerate(outer.split(X, y)):
            parts = []
            for c in contenders:
                record = evaluate(c, task, X, y, train, test, seed, args.quick)
                record["fold"] = fold
                row["fits"][c].append(record)
                parts.append(f"{c} {record['score']:.4f} {record['fit_s']:.1f}s")
            print(f"  {name} seed {seed} fold {fold}: " + ", ".join(parts)
                  + f"  (load {_fmt(load_average())})", flush=True)
    row["wall_s"] = time.perf_counter() - started
    summarize_row(row, contenders)
    return row


def summarize_row(row, contenders):
    for c in contenders:
        fits = row["fits"][c]
        scores = [f["score"] for f in fits]
        row[f"{c}_score"] = float(np.mean(scores))
        row[f"{c}_fit_s"] = float(np.mean([f["fit_s"] for f in fits]))
        row[f"{c}_total_s"] = float(np.sum([f["fit_s"] for f in fits]))
        row[f"{c}_loaded"] = sum(f["flag"] == "LOADED" for f in fits)
    fits = [f for c in contenders for f in row["fits"][c]]
    loads = [v for f in fits for v in f["load_average"].values() if v is not None]
    row["load_min"], row["load_max"] = (min(loads), max(loads)) if loads else (None, None)
    row["loaded"] = f"{sum(f['flag'] == 'LOADED' for f in fits)}/{len(fits)}"
    if CV in contenders:
        row["es_score"] = float(np.mean([f.get("es_score", np.nan) for f in row["fits"][CV]]))
        row["es_minus_a"] = row["es_score"] - row[f"{CV}_score"]
    if CV in contenders and SKLEARN in contenders:
        row["a_minus_b"] = row[f"{CV}_score"] - row[f"{SKLEARN}_score"]
    if CV in contenders and SEARCH in contenders:
        row["a_minus_d"] = row[f"{CV}_score"] - row[f"{SEARCH}_score"]
    row["n_fits"] = len(row["fits"][contenders[0]]) if contenders else 0


def mean_row(rows, contenders, label="mean", keep=None):
    chosen = [r for r in rows if keep is None or keep(r)]
    if not chosen:
        return None
    out = {"dataset": label, "task": "", "n_rows": None}
    keys = [f"{c}_{k}" for c in contenders for k in ("score", "fit_s", "total_s")]
    keys += [k for k in ("a_minus_b", "a_minus_d", "es_score", "es_minus_a") if k in chosen[0]]
    for key in keys:
        out[key] = float(np.mean([r[key] for r in chosen]))
    for c in contenders:  # time sums over everything, not means of means
        out[f"{c}_total_s"] = float(np.sum([r[f"{c}_total_s"] for r in chosen]))
    loads = [v for r in chosen for v in (r["load_min"], r["load_max"]) if v is not None]
    out["load_min"], out["load_max"] = (min(loads), max(loads)) if loads else (None, None)
    flagged = [tuple(map(int, r["loaded"].split("/"))) for r in chosen]
    out["loaded"] = f"{sum(a for a, _ in flagged)}/{sum(b for _, b in flagged)}"
    return out


def _fmt(value):
    return "-" if value is None else f"{value:.2f}"


def single_timing(args):
    """One default MLPClassifierCV fit against one default sklearn MLPClassifier fit."""
    n = QUICK_SINGLE_ROWS if args.quick else SINGLE_ROWS
    X, y = datasets.make_classification(n, 30, random_state=0)
    X = StandardScaler().fit_transform(X)
    jobs = {CV: MLPClassifierCV(random_state=0, device="cpu"),
            SKLEARN: SkMLPClassifier(random_state=0)}
    if args.quick:
        jobs[CV].set_params(**QUICK_CV)
    out = {"n_rows": n, "n_features": 30}
    for name, est in jobs.items():
        threads = fit_threads(name)
        before = load_average()
        wall, cpu, fitted = fit_once(est, X, y)
        after = load_average()
        out[name] = {"fit_s": wall, "fit_cpu_s": cpu, "threads": threads,
                     "load_average": {"before": before, "after": after},
                     "flag": load_flag(before, after, threads),
                     "epochs": int(fitted.best_estimator_.n_iter_ if name == CV
                                   else fitted.n_iter_)}
        if name == CV:
            out[name].update(n_member_epochs=int(fitted.n_member_epochs_),
                             best_params=fitted.best_params_)
        epochs = (f"{out[name]['n_member_epochs']} member-epochs, refit {out[name]['epochs']}"
                  if name == CV else f"{out[name]['epochs']} epochs")
        print(f"  single fit, {LABELS[name]}: {wall:.1f} s wall, {cpu:.1f} s CPU ({epochs}), load "
              f"{_fmt(before)} -> {_fmt(after)} {out[name]['flag']}", flush=True)
    out["ratio"] = out[CV]["fit_s"] / out[SKLEARN]["fit_s"]
    return out


def verdicts(rows, mean, single, contenders):
    """The goals, each ``{'goal', 'measured', 'met'}`` (met None when not measured)."""
    out = []
    if CV in contenders and SKLEARN in contenders:
        worst = min(rows, key=lambda r: r["a_minus_b"])
        out.append({"goal": f"(a) >= (b) - {EVERY_SET_MARGIN} on every data set",
                    "measured": f"worst {worst['dataset']}: {worst['a_minus_b']:+.4f}; "
                                f"{sum(r['a_minus_b'] >= -EVERY_SET_MARGIN for r in rows)} of "
                                f"{len(rows)} sets ok",
                    "met": all(r["a_minus_b"] >= -EVERY_SET_MARGIN for r in rows)})
        out.append({"goal": f"mean(a) - mean(b) >= +{MEAN_GAIN}",
                    "measured": f"{mean['a_minus_b']:+.4f}",
                    "met": bool(mean["a_minus_b"] >= MEAN_GAIN)})
    else:
        out.append({"goal": "(a) against (b)", "measured": "skipped", "met": None})
    if CV in contenders and SEARCH in contenders:
        fraction = mean[f"{CV}_total_s"] / mean[f"{SEARCH}_total_s"]
        out.append({"goal": "mean(a) >= mean(d)",
                    "measured": f"{mean[f'{CV}_score']:.4f} vs {mean[f'{SEARCH}_score']:.4f} "
                                f"({mean['a_minus_d']:+.4f})",
                    "met": bool(mean["a_minus_d"] >= 0)})
        out.append({"goal": "time(a) <= time(d) / 3 (sum of fit times)",
                    "measured": f"{mean[f'{CV}_total_s']:.0f} s vs {mean[f'{SEARCH}_total_s']:.0f}"
                                f" s: {fraction:.2f} of (d)'s",
                    "met": bool(fraction <= TIME_FRACTION)})
    else:
        out.append({"goal": "(a) against (d)", "measured": "skipped", "met": None})
    if CV in contenders:  # a measurement, not a goal: which refit generalises better
        better = sum(r["es_minus_a"] > 0 for r in rows)
        out.append({"goal": "refit: fixed budget (a) against early stopping (measured)",
                    "measured": f"early stopping {mean['es_minus_a']:+.4f} on average, better "
                                f"on {better} of {len(rows)} sets",
                    "met": None})
    if single is not None:
        out.append({"goal": f"single fit MLPClassifierCV / sklearn MLPClassifier <= {SINGLE_RATIO}x"
                            f" ({single['n_rows']} x 30)",
                    "measured": f"{single[CV]['fit_s']:.1f} s / {single[SKLEARN]['fit_s']:.1f} s "
                                f"= {single['ratio']:.1f}x",
                    "met": bool(single["ratio"] <= SINGLE_RATIO)})
    else:
        out.append({"goal": "single fit", "measured": "skipped", "met": None})
    return out


def columns(contenders):
    cols = [("dataset", "data set", "s"), ("task", "task", "s"), ("n_rows", "rows", "d")]
    cols += [(f"{c}_score", f"{LABELS[c][:3]} score", ".4f") for c in contenders]
    if CV in contenders:
        cols.append(("es_minus_a", "ES refit - a", "+.4f"))
    if CV in contenders and SKLEARN in contenders:
        cols.append(("a_minus_b", "a - b", "+.4f"))
    if CV in contenders and SEARCH in contenders:
        cols.append(("a_minus_d", "a - d", "+.4f"))
    cols += [(f"{c}_fit_s", f"{LABELS[c][:3]} s/fit", ".2f") for c in contenders]
    cols += [("load_min", "load min", ".2f"), ("load_max", "load max", ".2f"),
             ("loaded", "LOADED fits", "s")]
    return cols


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1 (default 3; quick 1)")
    parser.add_argument("--outer-folds", type=int, default=None,
                        help="outer cross-validation folds (default 5; quick 2)")
    parser.add_argument("--datasets", nargs="+", choices=list(DATASETS), metavar="NAME",
                        help=f"subset of: {', '.join(DATASETS)} (quick: {' '.join(QUICK_DATASETS)})")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 1 seed, 2 outer folds, 2 small sets, MLP*CV with "
                             f"n_iter={QUICK_CV['n_iter']}, max_epochs={QUICK_CV['max_epochs']}")
    parser.add_argument("--skip", type=functools.partial(parse_skip, names=SKIP_NAMES),
                        default=set(), metavar="LIST",
                        help="comma-separated contenders to leave out: cv (a), sklearn (b), "
                             "ours (c), search (d), single (the separate timing)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch and BLAS threads (default: the libraries' own, all cores)")
    parser.add_argument("--out", help="JSON path (default benchmarks/results/"
                                      "bench_selftuning[_quick].json)")
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    if args.seeds is None:
        args.seeds = 1 if args.quick else 3
    if args.outer_folds is None:
        args.outer_folds = 2 if args.quick else 5
    names = args.datasets or (list(QUICK_DATASETS) if args.quick else list(DATASETS))
    contenders = [c for c in CONTENDERS if c not in args.skip]
    started = time.perf_counter()
    with limit_threads(args.threads):
        info = machine_info("cpu")
        n_iter, max_epochs, n_search = cv_settings(args.quick)
        print("self-tuning benchmark:", describe_machine(info),
              f"; load average {_fmt(load_average())}")
        print(f"seeds {args.seeds}, {args.outer_folds} outer folds, data sets {' '.join(names)}; "
              f"(a) n_iter={n_iter}, max_epochs={max_epochs}; (d) n_iter={n_search}, "
              f"max_iter=(a)'s budget, cv={INNER_FOLDS}, n_jobs=-1\n", flush=True)
        warm_up([c for c in CONTENDERS if c in contenders
                 or (SINGLE not in args.skip and c in (CV, SKLEARN))])
        rows = [run_dataset(name, args, contenders) for name in names] if contenders else []
        mean = mean_row(rows, contenders) if rows and contenders else None
        single = None
        if SINGLE not in args.skip:
            single = single_timing(args)
    shown = list(rows)
    if mean is not None:
        for task in ("classification", "regression"):
            sub = mean_row(rows, contenders, f"mean ({task[:5]}.)", lambda r, t=task: r["task"] == t)
            if sub is not None and len(sub) and len({r["task"] for r in rows}) > 1:
                shown.append(sub)
        shown.append(mean)
    if shown:
        print()
        print(format_table(shown, columns(contenders)))
    if mean is not None:
        totals = ", ".join(f"{LABELS[c]} {mean[f'{c}_total_s']:.0f} s" for c in contenders)
        print(f"\nsum of fit times: {totals}")
    results = verdicts(rows, mean, single, contenders if mean is not None else [])
    print("\ngoals:")
    for v in results:
        met = {True: "MET", False: "NOT MET", None: "-"}[v["met"]]
        print(f"  [{met}] {v['goal']}: {v['measured']}")
    if args.quick:
        print("  (--quick: a smoke run, the verdicts mean nothing)")
    print(f"\n{time.perf_counter() - started:.0f} s in all")
    path = write_json("bench_selftuning" + ("_quick" if args.quick else ""), {
        "machine": info, "command": " ".join(["python benchmarks/bench_selftuning.py", *argv]),
        "omp": {k: v for k, v in os.environ.items() if k.startswith("OMP_")},
        "quick": args.quick, "seeds": args.seeds, "outer_folds": args.outer_folds,
        "contenders": {c: LABELS[c] for c in contenders},
        "cv_settings": {"n_iter": n_iter, "max_epochs": max_epochs, "search_n_iter": n_search},
        "rows": rows, "mean": mean, "single": single, "verdicts": results,
        "wall_s": time.perf_counter() - started}, path=args.out)
    print(f"wrote {path}")
    return rows


if __name__ == "__main__":
    main()
