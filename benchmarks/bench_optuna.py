"""Batched Bayesian search (FusedOptunaSearchCV, TPE) against fused random search, at equal budget.

Workload: ``make_classification(--n-samples (4000), 40, n_informative=20, n_classes=5)``,
standardised once, 25 % held out; an MLP 40-64-32-5 (ReLU, Adam, batch 64, ``--epochs`` (10) epochs),
``--folds`` (3) stratified folds. The search space has six per-member hyperparameters, all fused in
one stack: ``lr`` log-uniform in [1e-5, 1], ``weight_decay`` log-uniform in [1e-7, 1e-1], ``l1``
log-uniform in [1e-8, 1e-2], ``dropout`` uniform in [0, 0.6], ``beta1`` uniform in [0.5, 0.99] and
``noise_std`` uniform in [0, 1]: a space where most random points train poorly. Every contender gets
the same budget of ``--trials`` (32) candidates x folds:

* ``random``: :class:`sknn_tune.FusedRandomizedSearchCV` with ``n_iter=--trials`` (scipy
  distributions equal to the Optuna ones): every candidate in one fused batch;
* ``optuna-random``: :class:`sknn_tune.FusedOptunaSearchCV` with Optuna's ``RandomSampler``, batches
  of ``--batch-size`` (8): the cost of the batched ask / tell loop without a model of the scores;
* ``optuna-tpe``: ``FusedOptunaSearchCV`` with ``TPESampler`` (10 random start-up trials, then TPE
  with the constant liar over each batch), batches of ``--batch-size``;
* ``optuna-tpe+median``: the same with a ``MedianPruner`` (chunks of ``epochs`` // 8, // 4, // 2):
  equal number of trials, fewer member-epochs.

Each contender runs once per seed (``--seeds``, 0 1 2: the sampler's and the network's seed). The
table gives, averaged over seeds, the best mean CV accuracy after the first 8, 16, ... trials (the
``--trials``-th column is the search's result; for the random search, its first n candidates), the
mean CV accuracy of the second half of the trials (how well the sampler has learnt where to look;
failed and pruned trials count as 0 there), the held-out accuracy of the refitted best, the wall and
process CPU time of the search (with the refit; with ``--threads 1`` on a machine shared with other
work, CPU time is the steadier measure) and the member-epochs trained. Results go to
``benchmarks/results/optuna_<device>.json``. Run ``python benchmarks/bench_optuna.py --help``.
"""

import argparse
import time
import warnings

import numpy as np
import optuna
from _common import (
    describe_machine,
    detect_device,
    format_table,
    limit_threads,
    load_average,
    machine_info,
    write_json,
)
from optuna.distributions import FloatDistribution
from scipy.stats import loguniform, uniform
from sklearn.datasets import make_classification
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.preprocessing import StandardScaler

from sknn_tune import FusedOptunaSearchCV, FusedRandomizedSearchCV, MLPClassifier

SPACE = {  # name: (low, high, log)
    "lr": (1e-5, 1.0, True),
    "weight_decay": (1e-7, 1e-1, True),
    "l1": (1e-8, 1e-2, True),
    "dropout": (0.0, 0.6, False),
    "beta1": (0.5, 0.99, False),
    "noise_std": (0.0, 1.0, False),
}
CONTENDERS = ("random", "optuna-random", "optuna-tpe", "optuna-tpe+median")


def optuna_space():
    return {name: FloatDistribution(low, high, log=log) for name, (low, high, log) in SPACE.items()}


def scipy_space():
    return {name: loguniform(low, high) if log else uniform(low, high - low)
            for name, (low, high, log) in SPACE.items()}


def make_search(name, estimator, args, seed):
    cv = StratifiedKFold(args.folds, shuffle=True, random_state=0)
    if name == "random":
        return FusedRandomizedSearchCV(estimator, scipy_space(), n_iter=args.trials, cv=cv,
                                       random_state=seed)
    sampler = (optuna.samplers.RandomSampler(seed=seed) if name == "optuna-random"
               else optuna.samplers.TPESampler(seed=seed))
    pruner = optuna.pruners.MedianPruner() if name.endswith("+median") else None
    return FusedOptunaSearchCV(estimator, optuna_space(), n_trials=args.trials,
                               batch_size=args.batch_size, cv=cv, sampler=sampler, pruner=pruner)


def trial_scores(search, n_trials):
    """Mean CV score of each trial in the order they were proposed; NaN for a failed trial (and
    a pruned one, which has no score of the full budget)."""
    results = search.cv_results_
    scores = np.asarray(results["mean_test_score"], dtype=float)
    order = np.asarray(results.get("trial_number", np.arange(len(scores))))
    out = np.full(n_trials, np.nan)
    out[order] = scores
    return out


def best_so_far(scores):
    """Best mean CV score among the first ``n`` trials, for each ``n``."""
    return np.maximum.accumulate(np.nan_to_num(scores, nan=-np.inf))


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-samples", type=int, default=4000, help="rows (default 4000)")
    parser.add_argument("--epochs", type=int, default=10, help="epochs per fit (default 10)")
    parser.add_argument("--folds", type=int, default=3, help="CV folds (default 3)")
    parser.add_argument("--trials", type=int, default=32, help="candidates per search (32)")
    parser.add_argument("--batch-size", type=int, default=8, help="Optuna batch size (8)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                        help="one search per contender and seed (default 0 1 2)")
    parser.add_argument("--only", nargs="+", choices=CONTENDERS, help="run only these")
    parser.add_argument("--threads", type=int,
                        help="torch / BLAS threads (default: the libraries' defaults)")
    parser.add_argument("--out", help="JSON path (default benchmarks/results/optuna_<device>.json)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    device = detect_device()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with limit_threads(args.threads):
        info = machine_info(device)
        print("optuna benchmark:", describe_machine(info), f"; load average {load_average()}")
        X, y = make_classification(args.n_samples, 40, n_informative=20, n_classes=5,
                                   random_state=0)
        X = StandardScaler().fit_transform(X)
        X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y,
                                                            random_state=0)
        print(f"{X_train.shape[0]} train / {X_test.shape[0]} test rows, MLP 40-64-32-5, "
              f"{args.epochs} epochs, {args.folds} folds, {args.trials} trials per search, "
              f"seeds {args.seeds}")
        runs = []
        for seed in args.seeds:
            estimator = MLPClassifier((64, 32), batch_size=64, max_epochs=args.epochs,
                                      random_state=seed)
            for name in args.only or CONTENDERS:
                search = make_search(name, estimator, args, seed)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # FitFailedWarning for diverging candidates
                    start, start_cpu = time.perf_counter(), time.process_time()
                    search.fit(X_train, y_train)
                    seconds = time.perf_counter() - start
                    cpu_seconds = time.process_time() - start_cpu
                scores = trial_scores(search, args.trials)
                curve = best_so_far(scores)
                late = scores[args.trials // 2:]
                run = {"contender": name, "seed": seed, "seconds": seconds,
                       "cpu_seconds": cpu_seconds,
                       "best_cv": float(search.best_score_), "best_params": search.best_params_,
                       "test_accuracy": float(search.score(X_test, y_test)),
                       "member_epochs": int(search.n_member_epochs_), "curve": curve.tolist(),
                       "scores": scores.tolist(),
                       "second_half_mean": float(np.mean(np.nan_to_num(late, nan=0.0))),
                       "n_failed": int(np.isnan(search.cv_results_["mean_test_score"]).sum())}
                if isinstance(search, FusedOptunaSearchCV):
                    run["n_pruned"] = sum(t.state.name == "PRUNED" for t in search.trials_)
                runs.append(run)
                print(f"  seed {seed} {name:18s} best CV {run['best_cv']:.4f}  test "
                      f"{run['test_accuracy']:.4f}  {seconds:6.1f} s ({cpu_seconds:.1f} s CPU)  "
                      f"{run['member_epochs']} member-epochs")

    checkpoints = sorted({n for n in (8, 16, args.trials) if n <= args.trials}
                         | set(range(args.batch_size, args.trials + 1, args.batch_size)))
    rows = []
    for name in args.only or CONTENDERS:
        mine = [r for r in runs if r["contender"] == name]
        row = {"contender": name,
               "test": np.mean([r["test_accuracy"] for r in mine]),
               "late": np.mean([r["second_half_mean"] for r in mine]),
               "seconds": np.mean([r["seconds"] for r in mine]),
               "cpu_seconds": np.mean([r["cpu_seconds"] for r in mine]),
               "epochs": np.mean([r["member_epochs"] for r in mine]),
               "pruned": (np.mean([r["n_pruned"] for r in mine]) if "n_pruned" in mine[0]
                          else None)}
        for n in checkpoints:
            row[f"at{n}"] = np.mean([r["curve"][n - 1] for r in mine])
        rows.append(row)
    columns = [("contender", "search", "s")]
    columns += [(f"at{n}", f"best CV @{n}", ".4f") for n in checkpoints]
    columns += [("late", "mean CV 2nd half", ".4f"), ("test", "test acc", ".4f"),
                ("seconds", "wall s", ".1f"), ("cpu_seconds", "CPU s", ".1f"),
                ("epochs", "member-epochs", ".0f"), ("pruned", "pruned", ".1f")]
    print(f"\nmeans over seeds {args.seeds}:")
    print(format_table(rows, columns))
    name = f"optuna_{device}"
    payload = {"benchmark": "optuna", "machine": info, "args": vars(args), "runs": runs,
               "summary": rows}
    path = write_json(name, payload, args.out)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
