"""Workload A throughput: milliseconds per model-epoch of a 784-256-128-10 MLP, M models at once.

Workload A (the throughput workload): 60000 x 784 synthetic rows (float32 standard normal; labels: the
argmax of a fixed random linear map to 10 classes), MLP 784-256-128-10, ReLU, Adam, lr 1e-3,
batch 256, no early stopping. Contenders:

* ``sknn_tune M=<m>``: the stacked engine (``sknn_tune._engine.StackedTrainer``) training ``m``
  members together, each on all rows with its own seed; the configuration comes from
  ``MLPClassifier.plan_fit`` (``_plan_fit`` in older checkouts; the plan a plain ``fit`` trains), so
  the engine gets exactly what the estimator would give it. ``--members`` lists the stack sizes
  (default 1 256 1024 4096); a size that runs out of memory is reported and skipped, and a size
  whose projected time (linear in M from the previous size above 1) would overrun ``--budget-s`` is
  skipped too;
* ``skorch``: ``skorch.NeuralNetClassifier`` on the equivalent ``torch.nn`` module, one model
  (when skorch is importable).

Each contender trains ``--epochs`` epochs (default 2); the first is a warm-up and the best later
epoch counts (CUDA synchronised at every epoch's end). Reported: seconds per epoch of the whole
stack and **ms per model-epoch** = that / M, and the speed-up against skorch. The 1-min load
average before and after each is recorded. Results go to
``benchmarks/results/throughput_<device>.json``. Run ``python benchmarks/bench_throughput.py --help``.
"""

import argparse
import gc
import sys
import time
from dataclasses import replace

import numpy as np
import torch
from _common import (
    TorchMLP,
    describe_machine,
    detect_device,
    format_markdown_table,
    format_table,
    limit_threads,
    load_average,
    load_flag,
    machine_info,
    synchronize,
    write_json,
)

from sknn_tune import MLPClassifier
from sknn_tune._engine.trainer import StackedTrainer

try:
    from skorch import NeuralNetClassifier
except ImportError:  # the GPU image has no skorch unless gpu_check.sh installs it
    NeuralNetClassifier = None

HIDDEN = (256, 128)
N_CLASSES = 10
BATCH = 256
LR = 1e-3
SEED = 0


def load_data(n_samples, n_features):
    """Synthetic workload A: standard normal X (float32), labels from a fixed random linear map."""
    rng = np.random.default_rng(SEED)
    X = rng.standard_normal((n_samples, n_features), dtype=np.float32)
    teacher = rng.standard_normal((n_features, N_CLASSES), dtype=np.float32)
    return X, np.argmax(X @ teacher, axis=1).astype(np.int64)


def time_epochs(train, n_epochs, device):
    """Run ``train(on_epoch)``; return the seconds of each epoch (synchronised at its end)."""
    stamps = []

    def on_epoch(*_):
        synchronize(device)
        stamps.append(time.perf_counter())

    synchronize(device)
    start = time.perf_counter()
    train(on_epoch)
    return list(np.diff([start, *stamps]))


def run_engine(X, y, m, args, device):
    """``m`` members on all rows, ``args.epochs`` epochs; return the per-epoch seconds."""
    est = MLPClassifier(hidden_layer_sizes=HIDDEN, activation="relu", optimizer="adam", lr=LR,
                        batch_size=BATCH, max_epochs=args.epochs, early_stopping=False,
                        random_state=SEED, device=device)
    # the estimator's planning step: public ``plan_fit`` where the package has it, else private
    plan = est.plan_fit(X, y) if hasattr(est, "plan_fit") else est._plan_fit(X, y, None)
    config = plan.config
    trainer = StackedTrainer(config, [replace(plan.member, seed=plan.member.seed + i)
                                      for i in range(m)])
    X_t = torch.as_tensor(plan.X, dtype=config.dtype, device=config.device)
    Y_t = torch.as_tensor(plan.Y, dtype=config.dtype, device=config.device)

    def train(on_epoch):
        trainer.fit(X_t, Y_t, [plan.data] * m, on_epoch=on_epoch)

    return time_epochs(train, args.epochs, device), str(config.dtype).replace("torch.", "")


def run_skorch(X, y, args, device):
    net = NeuralNetClassifier(
        TorchMLP, module__n_features=X.shape[1], module__hidden=HIDDEN, module__n_classes=N_CLASSES,
        criterion=torch.nn.CrossEntropyLoss, optimizer=torch.optim.Adam, lr=LR, batch_size=BATCH,
        max_epochs=args.epochs, iterator_train__shuffle=True, train_split=None, device=device,
        verbose=0)
    torch.manual_seed(SEED)
    synchronize(device)
    net.fit(X, y)
    return [float(d) for d in net.history[:, "dur"]]


def free(device):
    gc.collect()
    if str(device).startswith("cuda"):
        torch.cuda.empty_cache()


def run(args, device):
    X, y = load_data(args.n_samples, args.n_features)
    arch = "-".join(str(s) for s in (X.shape[1], *HIDDEN, N_CLASSES))
    print(f"\nworkload A: {X.shape[0]} x {X.shape[1]}, MLP {arch}, ReLU, Adam, batch {BATCH}, "
          f"{args.epochs} epochs (first = warm-up); device {device}", flush=True)
    threads = torch.get_num_threads()
    rows, started, last = [], time.perf_counter(), None
    jobs = [("sknn_tune", m) for m in args.members]
    if NeuralNetClassifier is not None and not args.no_skorch:
        jobs.append(("skorch", 1))
    for kind, m in jobs:
        label = f"sknn_tune M={m}" if kind == "sknn_tune" else "skorch"
        left = args.budget_s - (time.perf_counter() - started)
        if kind == "sknn_tune" and last is not None:
            projected = last * m * args.epochs
            if projected > left:
                print(f"  {label:<18} skipped: projected {projected:.0f} s > {left:.0f} s left")
                rows.append({"name": label, "m": m, "status": f"skipped (projected {projected:.0f} s)"})
                continue
        print(f"  {label:<18} ...", end=" ", flush=True)
        load_before = load_average()
        free(device)
        try:
            if kind == "sknn_tune":
                epochs, dtype = run_engine(X, y, m, args, device)
            else:
                epochs, dtype = run_skorch(X, y, args, device), "float32"
        except torch.OutOfMemoryError as exc:
            free(device)
            print("out of memory")
            rows.append({"name": label, "m": m, "status": "out of memory",
                         "error": str(exc).splitlines()[0]})
            continue
        load_after = load_average()
        timed = epochs[1:] or epochs
        epoch_s = min(timed)
        per_model = epoch_s / m
        if kind == "sknn_tune" and m > 1:  # M=1 is overhead-bound: no basis for a projection
            last = per_model
        print(f"{epoch_s:.3f} s/epoch, {per_model * 1e3:.2f} ms per model-epoch", flush=True)
        rows.append({"name": label, "m": m, "status": "ok", "dtype": dtype, "device": device,
                     "epoch_s": epoch_s, "all_epoch_s": epochs, "ms_per_model_epoch": per_model * 1e3,
                     "load_before": load_before, "load_after": load_after,
                     "flag": load_flag(load_before, load_after, threads)})
    skorch_row = next((r for r in rows if r["name"] == "skorch" and r["status"] == "ok"), None)
    for r in rows:
        if skorch_row is not None and r.get("ms_per_model_epoch"):
            r["speedup_vs_skorch"] = skorch_row["ms_per_model_epoch"] / r["ms_per_model_epoch"]
    columns = [("name", "contender", ""), ("status", "status", ""), ("dtype", "dtype", ""),
               ("epoch_s", "s/epoch (stack)", ".3f"), ("ms_per_model_epoch", "ms/model-epoch", ".3f"),
               ("speedup_vs_skorch", "x skorch", ".1f"), ("load_before", "load0", ".2f"),
               ("load_after", "load1", ".2f"), ("flag", "flag", "")]
    print()
    print(format_table(rows, columns))
    print("  s/epoch: best epoch after the first of the whole stack; ms/model-epoch: that / M; "
          "x skorch: skorch's ms per model-epoch / the row's; load0/load1: 1-min load average "
          f"before / after, LOADED when above the {threads} threads in use")
    print("\nas a GitHub table:\n" + format_markdown_table(rows, columns))
    return {"n_samples": X.shape[0], "n_features": X.shape[1], "architecture": arch,
            "threads": threads, "results": rows}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="device (default auto: cuda when present)")
    parser.add_argument("--n-samples", type=int, default=60000, help="rows (default 60000)")
    parser.add_argument("--n-features", type=int, default=784, help="features (default 784)")
    parser.add_argument("--members", type=int, nargs="+", default=[1, 256, 1024, 4096],
                        help="stack sizes M to time (default 1 256 1024 4096)")
    parser.add_argument("--epochs", type=int, default=2,
                        help="epochs per contender; the first is a warm-up (default 2)")
    parser.add_argument("--budget-s", type=float, default=150.0,
                        help="skip stack sizes projected to end after this many seconds (150)")
    parser.add_argument("--no-skorch", action="store_true", help="leave skorch out")
    parser.add_argument("--threads", type=int,
                        help="torch / BLAS threads (default: each library's own)")
    parser.add_argument("--out", help="JSON path (default benchmarks/results/throughput_<device>.json)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    device = detect_device() if args.device == "auto" else args.device
    with limit_threads(args.threads):
        info = machine_info(device)
        print("throughput benchmark:", describe_machine(info), f"; load average {load_average()}")
        print("command:", " ".join(["python", *sys.argv]))
        workload = run(args, device)
    payload = {"benchmark": "throughput", "machine": info, "command": sys.argv,
               "config": {"hidden_layer_sizes": HIDDEN, "activation": "relu", "optimizer": "adam",
                          "lr": LR, "batch_size": BATCH, "epochs": args.epochs,
                          "members": args.members, "n_samples": args.n_samples,
                          "n_features": args.n_features, "budget_s": args.budget_s,
                          "threads": args.threads, "seed": SEED},
               "workload": workload}
    path = write_json(f"throughput_{device}", payload, args.out)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
