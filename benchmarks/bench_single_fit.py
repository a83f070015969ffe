"""Time ONE fit of the same MLP with sknn_tune, scikit-learn and skorch.

Workloads (both standardised, 25 % held out for the accuracy column):

* ``digits``: ``load_digits`` (1797 × 64, 10 classes), MLP 64-128-64-10;
* ``synthetic``: ``make_classification(20000, 40, n_informative=20, n_classes=5)``, MLP 40-128-64-5.

Same config everywhere: ReLU, Adam with lr 1e-3, batch 64, no weight decay, no early stopping, exactly
``--epochs`` epochs. Contenders:

* ``sknn_tune``: ``sknn_tune.MLPClassifier(device='auto')`` on float64 input (float64 compute on CPU,
  float32 on CUDA) — the reference ("ours") of the ratio columns;
* ``sknn_tune f32 cpu``: the same on float32 input, on the CPU;
* ``sklearn``: ``sklearn.neural_network.MLPClassifier(solver='adam')`` on float64 input, ``alpha=0``,
  ``tol=0`` and ``n_iter_no_change=max_iter`` so it runs every epoch;
* ``sklearn f32``: the same on float32 input (scikit-learn keeps float32);
* ``skorch``: ``skorch.NeuralNetClassifier`` on an equivalent ``torch.nn`` module (float32, Adam,
  ``train_split=None``, ``verbose=0``, device ``cuda`` when there is one).

Each contender gets ``--warmup`` untimed fits, then the best of ``--repeats`` timed fits is reported;
the contenders take turns (one fit each per round) so that a change in machine load hits all of them.
Both the wall clock and the process CPU time are recorded: on a machine shared with other work, CPU
time with ``--threads 1`` is the steadier measure (see ``benchmarks/README.md``). Ratios are
``contender time / sknn_tune time``: above 1 means sknn_tune is faster.

**The GEMM floor.** In the same run, after the fits, the matrix products of one training step of
the same network (forward ``baddbmm``, weight-gradient and input-gradient ``bmm`` per layer; see
``_common.gemm_floor``) are timed alone at M=1 in each dtype and on each device the contenders
used, at the thread count in use, best of ``--floor-repeats``. Each row's achieved time per step,
``best time / (epochs x ceil(n_train / batch))``, is divided by its dtype's floor: the ``÷ floor``
column (target for a single fit of sknn_tune: at most 1.6x). The 1-min load average before and
after each contender's best fit and each floor is recorded; a row whose load exceeded the threads
in use is flagged ``LOADED`` (other work competed: discard it). Beside the floor, the step's other
kernels alone (``_common.step_kernels``: activations, loss, bias gradients, gradient copies, L2,
fused Adam) give ``bound ÷ floor``, what an eager step made of them cannot go below. skorch is left
out when it is not importable.
Run ``python benchmarks/bench_single_fit.py --help`` for the options.
"""

import argparse
import math
import sys

import numpy as np
import torch
from _common import (
    TorchMLP,
    describe_machine,
    detect_device,
    format_table,
    gemm_floor,
    kernel_floor,
    limit_threads,
    load_average,
    load_flag,
    machine_info,
    summarize_times,
    time_fits,
    write_json,
)
from sklearn.base import clone
from sklearn.datasets import load_digits, make_classification
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as SklearnMLP
from sklearn.preprocessing import StandardScaler
from torch import nn

try:
    from skorch import NeuralNetClassifier
except ImportError:  # the GPU image has no skorch unless gpu_check.sh installs it
    NeuralNetClassifier = None

from sknn_tune import MLPClassifier

HIDDEN = (128, 64)
LR = 1e-3
BATCH = 64
SEED = 0
REFERENCE = "sknn_tune"
TARGET_SINGLE_FIT = 1.6  # issue 15: a single fit at most 1.6x the GEMM floor

# ------------------------------------------------------------------------------------------------
# workloads


def load_workload(name, quick, n_samples=None):
    if name == "digits":
        X, y = load_digits(return_X_y=True)
        if n_samples:
            X, y = X[:n_samples], y[:n_samples]
    else:
        n = n_samples or (4000 if quick else 20000)
        X, y = make_classification(n_samples=n, n_features=40, n_informative=20, n_classes=5,
                                   random_state=SEED)
    X_train, X_test, y_train, y_test = train_test_split(
        X.astype(np.float64), y, test_size=0.25, stratify=y, random_state=SEED)
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test), y_train, y_test


# ------------------------------------------------------------------------------------------------
# contenders: (name, estimator, input dtype, device to synchronise, epochs actually run)


def contenders(n_features, n_classes, epochs, device):
    ours = MLPClassifier(hidden_layer_sizes=HIDDEN, activation="relu", optimizer="adam", lr=LR,
                         batch_size=BATCH, max_epochs=epochs, early_stopping=False,
                         random_state=SEED, device=device)
    theirs = SklearnMLP(hidden_layer_sizes=HIDDEN, activation="relu", solver="adam",
                        learning_rate_init=LR, batch_size=BATCH, max_iter=epochs, alpha=0.0,
                        tol=0.0, n_iter_no_change=epochs, early_stopping=False, shuffle=True,
                        random_state=SEED)
    entries = [
        (REFERENCE, ours, np.float64, device, lambda est: est.n_iter_),
        ("sknn_tune f32 cpu", clone(ours).set_params(device="cpu"), np.float32, "cpu",
         lambda est: est.n_iter_),
        ("sklearn", theirs, np.float64, "cpu", lambda est: est.n_iter_),
        ("sklearn f32", theirs, np.float32, "cpu", lambda est: est.n_iter_),
    ]
    if NeuralNetClassifier is not None:
        skorch_net = NeuralNetClassifier(
            TorchMLP, module__n_features=n_features, module__hidden=HIDDEN,
            module__n_classes=n_classes, criterion=nn.CrossEntropyLoss, optimizer=torch.optim.Adam,
            lr=LR, batch_size=BATCH, max_epochs=epochs, iterator_train__shuffle=True,
            train_split=None, device=device, verbose=0)
        entries.append(("skorch", skorch_net, np.float32, device, lambda est: len(est.history)))
    return entries


def compute_dtype(name, input_dtype, device):
    """The dtype a contender computes in: sknn_tune on CUDA computes float32 whatever the input."""
    if name.startswith("sknn_tune") and str(device).startswith("cuda"):
        return "float32"
    return np.dtype(input_dtype).name


# ------------------------------------------------------------------------------------------------


def run_workload(name, args, device):
    X_train, X_test, y_train, y_test = load_workload(name, args.quick, args.n_samples)
    n_classes = len(np.unique(y_train))
    arch = "-".join(str(s) for s in (X_train.shape[1], *HIDDEN, n_classes))
    print(f"\n== {name}: {X_train.shape[0]} train / {X_test.shape[0]} test rows, MLP {arch}, "
          f"{args.epochs} epochs, batch {BATCH}, best of {args.repeats} (+{args.warmup} warm-up)")
    entries = [c for c in contenders(X_train.shape[1], n_classes, args.epochs, device)
               if not args.only or any(part in c[0] for part in args.only)]
    jobs = {label: (estimator, X_train.astype(dtype), y_train.astype(np.int64), sync_device)
            for label, estimator, dtype, sync_device, _ in entries}
    load_before = load_average()
    loads = {label: [] for label in jobs}  # (before, after) of each timed fit

    def before_fit(label):
        torch.manual_seed(SEED)  # skorch's initialisation and shuffling
        loads[label].append([load_average(), None])

    def on_fit(label, r, wall, cpu):
        loads[label][-1][1] = load_average()
        if r < 0:
            loads[label].pop()
        print(f"  {'warm-up' if r < 0 else f'run {r + 1}':<8} {label:<18} {wall:8.3f} s  "
              f"(cpu {cpu:.3f} s)", flush=True)

    timings = time_fits(jobs, repeats=args.repeats, warmup=args.warmup, before_fit=before_fit,
                        on_fit=on_fit)
    threads = torch.get_num_threads()
    layer_sizes = (X_train.shape[1], *HIDDEN, n_classes)
    steps = args.epochs * math.ceil(X_train.shape[0] / BATCH)  # member-steps of one fit
    floors = {}
    for label, _, dtype, sync_device, _ in entries:
        key = (str(sync_device), compute_dtype(label, dtype, sync_device))
        if key not in floors:
            floors[key] = gemm_floor(layer_sizes, BATCH, 1, key[1], key[0],
                                     repeats=args.floor_repeats)
            floors[key]["kernels"] = kernel_floor(layer_sizes, BATCH, 1, key[1], key[0],
                                                  repeats=args.floor_repeats)
    rows = []
    for label, _, dtype, sync_device, epochs_run in entries:
        wall, cpu, fitted = timings[label]
        accuracy = accuracy_score(y_test, fitted.predict(X_test.astype(dtype)))
        stats = summarize_times(wall, cpu)
        n_epochs = int(epochs_run(fitted))
        if n_epochs != args.epochs:
            print(f"  warning: {label} ran {n_epochs} epochs, not {args.epochs}", file=sys.stderr)
        best_load = loads[label][int(np.argmin(wall))]
        floor = floors[(str(sync_device), compute_dtype(label, dtype, sync_device))]
        per_step = stats["best_s"] / (n_epochs * math.ceil(X_train.shape[0] / BATCH))
        rows.append({"name": label, "dtype": np.dtype(dtype).name, "device": str(sync_device),
                     **stats, "s_per_epoch": stats["best_s"] / n_epochs, "epochs": n_epochs,
                     "accuracy": accuracy, "us_per_step": per_step * 1e6,
                     "floor_us_per_step": floor["per_member_step_s"] * 1e6,
                     "x_floor": per_step / floor["per_member_step_s"],
                     "kernels_us_per_step": floor["kernels"]["per_member_step_s"] * 1e6,
                     "bound_x_floor": 1 + (floor["kernels"]["per_member_step_s"]
                                           / floor["per_member_step_s"]),
                     "target_x_floor": TARGET_SINGLE_FIT if label.startswith("sknn_tune") else None,
                     "load_before": best_load[0], "load_after": best_load[1],
                     "flag": load_flag(*best_load, threads)})

    ref = next((r for r in rows if r["name"] == REFERENCE), None)
    ratios = {}
    for r in rows:
        r["ratio"] = r["best_s"] / ref["best_s"] if ref else None
        r["ratio_cpu"] = r["best_cpu_s"] / ref["best_cpu_s"] if ref else None
        if ref is not None and r["name"] in ("sklearn", "skorch"):
            ratios[f"{r['name']}/ours"] = r["ratio"]
            ratios[f"{r['name']}/ours (cpu time)"] = r["ratio_cpu"]
    print()
    print(format_table(rows, [
        ("name", "contender", ""), ("dtype", "dtype", ""), ("device", "device", ""),
        ("best_s", "wall s", ".3f"), ("s_per_epoch", "s/epoch", ".4f"),
        ("best_cpu_s", "cpu s", ".3f"), ("accuracy", "accuracy", ".4f"),
        ("ratio", "÷ ours", ".2f"), ("ratio_cpu", "÷ ours (cpu)", ".2f"),
        ("us_per_step", "µs/step", ".1f"), ("floor_us_per_step", "floor µs", ".1f"),
        ("x_floor", "÷ floor", ".2f"), ("target_x_floor", "target", ".1f"),
        ("kernels_us_per_step", "kernels µs", ".1f"), ("bound_x_floor", "bound ÷ floor", ".2f"),
        ("load_before", "load0", ".2f"), ("load_after", "load1", ".2f"), ("flag", "flag", "")]))
    if ratios:
        print("  " + "   ".join(f"{k} = {v:.2f}x" for k, v in ratios.items()))
    for (floor_device, floor_dtype), f in floors.items():
        print(f"  GEMM floor {floor_device} {floor_dtype}, M=1, {f['threads']} threads: "
              f"{f['per_member_step_s'] * 1e6:.1f} µs/step ({f['gflops']:.1f} GFLOP/s), other "
              f"kernels {f['kernels']['per_member_step_s'] * 1e6:.1f} µs; load "
              f"{_fmt(f['load_average']['before'])} -> {_fmt(f['load_average']['after'])} {f['flag']}")
    print(f"  µs/step: best time / ({steps} steps = {args.epochs} epochs x ceil({X_train.shape[0]}"
          f" / {BATCH})); ÷ floor: that / the floor of the row's device and dtype (target for "
          f"sknn_tune <= {TARGET_SINGLE_FIT}x); load0/load1: 1-min load average before / after "
          f"the best fit, LOADED when above the {threads} threads in use (discard); kernels µs:"
          " the step's other kernels alone (_common.step_kernels); bound ÷ floor: (floor + "
          "kernels) / floor, what an eager step of these kernels cannot go below")
    return {"n_train": X_train.shape[0], "n_test": X_test.shape[0], "architecture": arch,
            "steps_per_fit": steps, "results": rows, "ratios": ratios,
            "gemm_floor": list(floors.values()), "threads": threads,
            "load_average": {"before": load_before, "after": load_average()}}


def _fmt(load):
    return "-" if load is None else f"{load:.2f}"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=20, help="epochs per fit (default 20)")
    parser.add_argument("--repeats", type=int, default=3, help="timed fits; the best counts (3)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed fits first (default 1)")
    parser.add_argument("--workloads", nargs="+", choices=("digits", "synthetic"),
                        default=["digits", "synthetic"])
    parser.add_argument("--only", nargs="+", metavar="NAME",
                        help="run only contenders whose name contains one of these")
    parser.add_argument("--threads", type=int,
                        help="threads for torch and (threadpoolctl) BLAS/OpenMP, every contender alike; "
                             "default: each library's own (the core count)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="device of sknn_tune and skorch (default auto: cuda when present)")
    parser.add_argument("--n-samples", type=int,
                        help="rows of the workload (default all: 1797 digits / 20000 synthetic)")
    parser.add_argument("--floor-repeats", type=int, default=7,
                        help="repeats of the GEMM floor timing; the best counts (7)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 2 epochs, 1 repeat, 4000 synthetic rows; writes *_quick.json")
    parser.add_argument("--out", help="JSON path (default benchmarks/results/single_fit_<device>"
                                      "[_<N>threads][_quick].json)")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.repeats = 2, 1
    return args


def main(argv=None):
    args = parse_args(argv)
    device = detect_device() if args.device == "auto" else args.device
    with limit_threads(args.threads):
        info = machine_info(device)
        load = load_average()
        print("single fit benchmark:", describe_machine(info)
              + ("" if load is None else f"; 1-min load average {load:.1f}"))
        workloads = {name: run_workload(name, args, device) for name in args.workloads}
    payload = {
        "benchmark": "single_fit",
        "machine": info,
        "config": {"hidden_layer_sizes": HIDDEN, "activation": "relu", "optimizer": "adam",
                   "lr": LR, "batch_size": BATCH, "epochs": args.epochs, "repeats": args.repeats,
                   "warmup": args.warmup, "quick": args.quick, "seed": SEED,
                   "threads": args.threads, "n_samples": args.n_samples,
                   "target_x_floor": TARGET_SINGLE_FIT},
        "workloads": workloads,
    }
    name = (f"single_fit_{device}" + (f"_{args.threads}threads" if args.threads else "")
            + ("_quick" if args.quick else ""))
    path = write_json(name, payload, args.out)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
