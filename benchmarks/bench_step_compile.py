"""The training step's two open questions, measured on the device at hand.

1. ``update``: the optimizer update's two forms (``sknn_tune._engine.optimizers``) inside whole
   training epochs, at M = 16 and 80 members of a 40-128-64-5 ReLU MLP (Adam, batch 64), every
   member with its own lr (a random search) or all with one lr (a grid over something else):
   *grouped* (torch's fused kernel once per group of equal hyperparameters) against *column*
   (per-member ``(M, 1)`` columns, a handful of ops over the whole stack). The faster form on
   the CPU is ``trainer.CPU_COLUMN_UPDATE``; a GPU always takes the column form.
2. ``compile``: one training step (the static-buffer step a CUDA graph replays) eager against
   ``torch.compile`` of it; on CUDA also whole epochs with and without the CUDA graph.

Every time is the minimum of ``--repeats`` runs; the load average is printed before and after
each measurement (the machines are shared: a load above the threads in use inflates times).

    python benchmarks/bench_step_compile.py                  # both, on cuda when visible
    python benchmarks/bench_step_compile.py --only update --members 16 80
    python benchmarks/bench_step_compile.py --dry-run        # tiny sizes (gpu_check.sh --dry-run)

Measured on the shared 2-core CPU machine (torch 2.13, Adam, 2048 rows, batch 64: 32 steps an
epoch; ms per epoch, min of 5; grouped / column < 1: grouped faster):

=========================  ==========  ==========  ==========  ==========  =============
run (load avg. 1 min)      M=16 dist.  M=16 same   M=80 dist.  M=80 same
=========================  ==========  ==========  ==========  ==========  =============
f64, 1 thread (2.4-2.6)    146 / 165   133 / 171   849 / 1073  914 / 1182  0.77-0.88
f64, 1 thread (1.8-1.9)    135 / 167   137 / 165   835 / 1059  834 / 1099  0.76-0.83
f64, 2 threads (1.1-2.5)   111 / 128    97 / 108   545 / 740   553 / 678   0.74-0.90
f32, 1 thread (2.1-2.3)     69 / 81     66 / 79    383 / 434   359 / 422   0.84-0.88
=========================  ==========  ==========  ==========  ==========  =============

The grouped form (torch's fused CPU Adam: one pass per member row) beats the column form (about
ten memory passes over the whole stack) even with a distinct lr per member, so the CPU keeps it
(``trainer.CPU_COLUMN_UPDATE = False``); the column form is for the GPU, where launches cost.
``torch.compile`` (inductor) of the static-buffer step, f64, 1 thread: M=16 5.93 -> 5.34 ms a
step (1.11x), M=80 47.2 -> 37.9 ms (1.25x), load 0.75-1.9, after 13-15 s of compilation per stack
shape; with ``TrainStep``'s ``out=`` writes (a graph break) it was slower than eager (0.83x). Not
used by the engine: the compile time exceeds the gain of a typical fit, and the GPU answer is the
CUDA graph (measured by this script on CUDA, from ``gpu_check.sh``).
"""

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import detect_device, limit_threads, load_average, synchronize, write_json

from sknn_tune._engine import trainer as trainer_module
from sknn_tune._engine.network import Architecture
from sknn_tune._engine.trainer import (
    MemberConfig,
    MemberData,
    StackConfig,
    StackedTrainer,
)


def _load():
    value = load_average()
    return float("nan") if value is None else value


def _data(n, d, k, dtype, device, seed=0):
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=gen, dtype=dtype)
    Y = torch.nn.functional.one_hot(torch.randint(k, (n,), generator=gen), k).to(dtype)
    return X.to(device), Y.to(device)


def _stack(m, distinct_lr, args, device):
    arch = Architecture(args.n_features, tuple(args.hidden), args.n_outputs, "relu", False,
                        "softmax_log_loss")
    config = StackConfig(arch, args.optimizer, args.batch_size, "accuracy", args.dtype, device)
    lrs = np.logspace(-4, -2, m) if distinct_lr else np.full(m, 1e-3)
    members = [MemberConfig(seed=i, lr=float(lr), max_epochs=10**6) for i, lr in enumerate(lrs)]
    rows = np.arange(args.n_samples)
    return config, members, [MemberData(rows) for _ in range(m)]


def _epoch_seconds(config, members, data, X, Y, args, device):
    """Minimum over repeats of the seconds per epoch (one warm-up epoch first)."""
    trainer = StackedTrainer(config, members)
    trainer.fit(X, Y, data, n_epochs=1)
    best = float("inf")
    for _ in range(args.repeats):
        synchronize(device)
        start = time.perf_counter()
        trainer.fit(X, Y, data, n_epochs=args.epochs)
        synchronize(device)
        best = min(best, (time.perf_counter() - start) / args.epochs)
    return best


def bench_update(args, device, X, Y):
    rows = []
    for m in args.members:
        for distinct in (True, False):
            config, members, data = _stack(m, distinct, args, device)
            load_before = _load()
            times = {}
            # Both forms with the eager step (a CUDA graph needs the column form); a GPU takes
            # the column form unless told otherwise.
            originals = trainer_module._column_update, trainer_module._step_mode
            trainer_module._step_mode = lambda device: "eager"
            try:
                for form in ("grouped", "column"):
                    trainer_module._column_update = lambda device, form=form: form == "column"
                    times[form] = _epoch_seconds(config, members, data, X, Y, args, device)
            finally:
                trainer_module._column_update, trainer_module._step_mode = originals
            row = {"members": m, "lr": "distinct" if distinct else "same",
                   "grouped_ms_per_epoch": 1e3 * times["grouped"],
                   "column_ms_per_epoch": 1e3 * times["column"],
                   "grouped_over_column": times["grouped"] / times["column"],
                   "load_before": load_before, "load_after": _load()}
            rows.append(row)
            print(f"update M={m:4d} lr={row['lr']:8s} grouped {row['grouped_ms_per_epoch']:8.2f} ms"
                  f"  column {row['column_ms_per_epoch']:8.2f} ms  grouped/column "
                  f"{row['grouped_over_column']:.2f}  load {load_before:.2f} -> {row['load_after']:.2f}",
                  flush=True)
    return rows


def _static_step(m, args, device, X, Y):
    """A trainer, its static step with one batch loaded, and the epoch's update."""
    config, members, data = _stack(m, True, args, device)
    trainer = StackedTrainer(config, members)
    original = trainer_module._step_mode
    trainer_module._step_mode = lambda device: "static"
    try:
        plan = trainer._plan(X, Y, data, None)
    finally:
        trainer_module._step_mode = original
    training = np.ones(m, dtype=bool)
    update = trainer_module._EpochUpdate(trainer, plan, training, trainer._learning_rates())
    b = args.batch_size
    rows = torch.arange(m * b, device=device).remainder(X.shape[0]).view(m, b)
    keys = torch.zeros(2, m, dtype=torch.int64, device=device)
    plan.static.load(X[rows], Y[rows], torch.ones(m, b, 1, dtype=args.dtype, device=device),
                     torch.ones(m, b, 1, dtype=torch.bool, device=device), keys,
                     torch.ones(m, 1, dtype=torch.bool, device=device))
    return plan.static, update


def _step_seconds(call, device, steps, repeats):
    best = float("inf")
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        for _ in range(steps):
            call()
        synchronize(device)
        best = min(best, (time.perf_counter() - start) / steps)
    return best


def bench_compile(args, device, X, Y):
    rows = []
    for m in args.compile_members or args.members:
        static, update = _static_step(m, args, device, X, Y)
        step = lambda static=static, update=update: static._body(update)  # noqa: E731
        load_before = _load()
        step()
        eager = _step_seconds(step, device, args.steps, args.repeats)
        row = {"members": m, "eager_ms_per_step": 1e3 * eager, "backend": args.backend}
        started = time.perf_counter()
        try:
            static.step.traceable = True  # no out= into strided views: no graph break
            compiled = torch.compile(step, backend=args.backend)
            compiled()
            synchronize(device)
            row["compile_s"] = time.perf_counter() - started
            row["compiled_ms_per_step"] = 1e3 * _step_seconds(compiled, device, args.steps,
                                                              args.repeats)
            row["eager_over_compiled"] = row["eager_ms_per_step"] / row["compiled_ms_per_step"]
        except Exception as exc:  # a backend missing here (no compiler): reported, not fatal
            row["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
        if device.type == "cuda":
            row.update(_graph_epochs(m, args, device, X, Y))
        row["load_before"], row["load_after"] = load_before, _load()
        rows.append(row)
        text = (f"compile M={m:4d} eager {row['eager_ms_per_step']:.3f} ms/step  "
                + (f"compiled ({args.backend}) {row['compiled_ms_per_step']:.3f} ms/step  "
                   f"eager/compiled {row['eager_over_compiled']:.2f}  compile {row['compile_s']:.1f} s"
                   if "error" not in row else f"compile failed: {row['error']}"))
        if "graph_ms_per_epoch" in row:
            text += (f"  | epoch eager {row['eager_ms_per_epoch']:.2f} ms, graph "
                     f"{row['graph_ms_per_epoch']:.2f} ms")
        print(text + f"  load {load_before:.2f} -> {row['load_after']:.2f}", flush=True)
    return rows


def _graph_epochs(m, args, device, X, Y):
    """On CUDA: seconds per epoch with the eager step and with the CUDA graph."""
    config, members, data = _stack(m, True, args, device)
    out = {}
    for mode in ("eager", "graph"):
        original = trainer_module._step_mode
        trainer_module._step_mode = lambda device, mode=mode: mode
        try:
            out[f"{mode}_ms_per_epoch"] = 1e3 * _epoch_seconds(config, members, data, X, Y, args,
                                                               device)
        finally:
            trainer_module._step_mode = original
    out["graph_failure"] = trainer_module.CUDA_GRAPHS.failure
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=detect_device())
    parser.add_argument("--only", choices=["update", "compile"], nargs="+",
                        default=["update", "compile"])
    parser.add_argument("--members", type=int, nargs="+", default=[16, 80])
    parser.add_argument("--compile-members", type=int, nargs="+", default=None,
                        help="members of the compile measurement (default: --members)")
    parser.add_argument("--n-samples", type=int, default=2048)
    parser.add_argument("--n-features", type=int, default=40)
    parser.add_argument("--hidden", type=int, nargs="+", default=[128, 64])
    parser.add_argument("--n-outputs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--optimizer", default="adam")
    parser.add_argument("--dtype", default=None, choices=["float32", "float64"],
                        help="default: float64 on cpu, float32 elsewhere")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per timed run (update)")
    parser.add_argument("--steps", type=int, default=50, help="steps per timed run (compile)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--backend", default="inductor", help="torch.compile backend")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes, one repeat")
    parser.add_argument("--out", default=None,
                        help="JSON file (default benchmarks/results/step_compile.json; 'none': "
                             "printed only)")
    args = parser.parse_args(argv)
    if args.dry_run:
        args.members, args.compile_members, args.n_samples, args.hidden = [2], None, 128, [8]
        args.epochs, args.steps, args.repeats, args.backend = 1, 2, 1, "eager"
    device = torch.device(args.device)
    args.dtype = getattr(torch, args.dtype or ("float64" if device.type == "cpu" else "float32"))
    X, Y = _data(args.n_samples, args.n_features, args.n_outputs, args.dtype, device)
    results = {"device": str(device), "dtype": str(args.dtype), "torch": torch.__version__}
    with limit_threads(args.threads):
        print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
              f"cpus {os.cpu_count()}, load {_load():.2f}", flush=True)
        if "update" in args.only:
            results["update"] = bench_update(args, device, X, Y)
        if "compile" in args.only:
            results["compile"] = bench_compile(args, device, X, Y)
    if args.out != "none":
        write_json("step_compile", results, args.out)


if __name__ == "__main__":
    main()
