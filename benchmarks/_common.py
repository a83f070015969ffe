"""Helpers shared by the benchmark scripts: device detection, timing, tables and JSON.

Benchmarks are scripts, not tests: they print a table and write JSON under ``benchmarks/results/``
(gitignored). Every CUDA call is guarded, so the same script runs on a CPU-only machine and on a GPU.
"""

import argparse
import contextlib
import datetime
import gc
import itertools
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import torch
from sklearn.base import clone

from sknn_tune._engine import _compat

RESULTS_DIR = Path(__file__).resolve().parent / "results"


# ------------------------------------------------------------------------------------------------
# device


def detect_device():
    """``'cuda'`` when a GPU is visible, else ``'cpu'`` (what ``device='auto'`` resolves to)."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def synchronize(device):
    """Wait for queued GPU work so that a timer read afterwards covers it; a no-op on CPU."""
    if str(device).startswith("cuda") and torch.cuda.is_available():
        torch.cuda.synchronize()


def machine_info(device):
    """What the numbers were measured on: CPU, thread counts, library versions, GPU name."""
    import numpy
    import sklearn

    info = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "processor": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "sklearn": sklearn.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "device": device,
        "blas": _blas_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "git": git_revision(),
    }
    try:
        import skorch

        info["skorch"] = skorch.__version__
    except ImportError:  # pragma: no cover - skorch is a runtime dependency
        info["skorch"] = None
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
    return info


def git_revision():
    """``<commit>`` of the checkout the benchmark ran from, ``+dirty`` when files differ from it."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "sknn_tune"],
                               cwd=root, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "")


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _blas_threads():
    """Thread pools numpy / scipy (and so scikit-learn's MLP) use, as threadpoolctl sees them."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    return [{"api": d.get("internal_api"), "threads": d.get("num_threads"),
             "library": Path(d.get("filepath", "")).name} for d in threadpool_info()]


def describe_machine(info):
    """One line for the console."""
    line = (f"{info['processor']} ({info['cpu_count']} CPUs), torch {info['torch']} with "
            f"{info['torch_threads']} intra-op threads, device {info['device']}")
    if "gpu" in info:
        line += f" ({info['gpu']}, CUDA {info['cuda']})"
    blas = ", ".join(f"{b['api']}:{b['threads']}" for b in info["blas"])
    line += f"; BLAS/OpenMP pools {blas}" if blas else ""
    return line + (f"; sknn_tune at {info['git']}" if info.get("git") else "")


# The environment variables that set the libraries' threads, recorded with every run.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY")


def command_line():
    """The command as typed, with the thread variables it ran under first:
    ``OMP_NUM_THREADS=1 python benchmarks/bench_search.py --quick``."""
    env = [f"{k}={os.environ[k]}" for k in THREAD_VARIABLES if k in os.environ]
    return " ".join([*env, "python", *sys.argv])


def thread_environment(*extra):
    """``{name: value or None}`` of the thread variables (and ``extra`` ones), for the JSON."""
    return {k: os.environ.get(k) for k in (*THREAD_VARIABLES, *extra)}


@contextlib.contextmanager
def limit_threads(n):
    """Run with ``n`` threads everywhere: torch's intra-op pool and, through threadpoolctl, the
    BLAS / OpenMP pools numpy and scikit-learn use. ``None`` leaves every library's default."""
    if n is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threadpool_limits(limits=n):
            yield
    finally:
        torch.set_num_threads(before)


# ------------------------------------------------------------------------------------------------
# timing


def fit_once(estimator, X, y, device="cpu"):
    """Fit a fresh clone of ``estimator``; return ``(wall_seconds, cpu_seconds, fitted)``.

    ``cpu_seconds`` is this process's CPU time (all its threads) over the fit: on a machine shared
    with other work it stays close to what the wall clock would read on an idle one when the fit
    runs one thread, while the wall clock also counts the time other processes held the cores.
    On CUDA the device is synchronised before starting and before reading the timers, so queued
    kernels are counted.
    """
    est = clone(estimator)
    gc.collect()
    elapsed, cpu = timed(lambda: est.fit(X, y), device)
    return elapsed, cpu, est


def timed(call, device="cpu"):
    """Run ``call()``; return ``(wall_seconds, cpu_seconds)``, synchronising CUDA around it."""
    synchronize(device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning when max_iter is reached on purpose
        start, start_cpu = time.perf_counter(), time.process_time()
        call()
        synchronize(device)
        return time.perf_counter() - start, time.process_time() - start_cpu


def time_fits(jobs, *, repeats=3, warmup=1, before_fit=None, on_fit=None):
    """Time several contenders, interleaved: a round of every job, ``warmup + repeats`` times.

    ``jobs`` maps a name to ``(estimator, X, y, device)``. Interleaving spreads a change in machine
    load over every contender instead of penalising whichever ran during it; the first ``warmup``
    rounds are not timed. ``before_fit(name)`` runs before each fit (seeding), ``on_fit(name,
    round, wall, cpu)`` after each (progress; ``round`` is negative for warm-up rounds).
    Returns ``{name: (wall_times, cpu_times, last fitted estimator)}``.
    """
    wall = {name: [] for name in jobs}
    cpu = {name: [] for name in jobs}
    fitted = {}
    for round_ in range(warmup + repeats):
        for name, (estimator, X, y, device) in jobs.items():
            if before_fit is not None:
                before_fit(name)
            elapsed, cpu_s, fitted[name] = fit_once(estimator, X, y, device)
            if round_ >= warmup:
                wall[name].append(elapsed)
                cpu[name].append(cpu_s)
            if on_fit is not None:
                on_fit(name, round_ - warmup, elapsed, cpu_s)
    return {name: (wall[name], cpu[name], fitted[name]) for name in jobs}


def parse_skip(text, names):
    """``--skip``: the contenders of a comma-separated list of ``names`` keys (short name ->
    contender)."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [part for part in parts if part not in names]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown contender(s) {', '.join(unknown)}; "
                                         f"choose from {', '.join(names)}")
    return {names[part] for part in parts}


def load_average():
    """1-minute load average (other processes share the CPUs), or None where unsupported."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


@contextlib.contextmanager
def time_spent_in(owner, name):
    """Within the block, ``owner.name`` (a function or method) adds its wall time to the one-item
    list this yields (calls in threads at once add up); the original is put back after."""
    spent, original = [0.0], getattr(owner, name)

    def timed_call(*args, **kwargs):
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - started

    setattr(owner, name, timed_call)
    try:
        yield spent
    finally:
        setattr(owner, name, original)


def settle(threads, max_wait=120.0):
    """Wait (at most ``max_wait`` seconds) until the 1-min load average is at most ``threads``:
    the load of the run before (this script's own, on more threads) takes a minute to decay, and
    a timing started under it would be flagged LOADED. Returns the seconds waited."""
    started = time.perf_counter()
    while True:
        load = load_average()
        waited = time.perf_counter() - started
        if load is None or load <= threads or waited >= max_wait:
            return waited
        time.sleep(5.0)


def load_flag(before, after, threads):
    """``'LOADED'`` when the 1-min load average before or after a timing exceeds the threads it
    used (other work competed for the cores: discard the figure), else ``''``."""
    loads = [v for v in (before, after) if v is not None]
    return "LOADED" if threads and loads and max(loads) > threads else ""


# ------------------------------------------------------------------------------------------------
# the matrix-multiply floor


def step_products(layer_sizes, batch, m, dtype, device):
    """The matrix products of one training step of an ``m``-member stack, as the engine lays them
    out: per layer ``(fan_in, fan_out)`` the forward ``baddbmm`` (M, batch, in) x (M, in, out), the
    weight gradient ``bmm`` (M, in, batch) x (M, batch, out) and, except for the first layer, the
    input gradient ``bmm`` (M, batch, out) x (M, out, in), each one call over the whole stack
    (transposed operands are views, as in the step). Returns ``(run, flop)``: a function that runs
    them once (into preallocated outputs) and the floating-point operations of one run."""
    gen = torch.Generator(device="cpu").manual_seed(0)

    def rand(*shape):
        return torch.randn(*shape, generator=gen, dtype=dtype).to(device)

    calls, flop = [], 0
    for layer, (fan_in, fan_out) in enumerate(itertools.pairwise(layer_sizes)):
        x, w, b = rand(m, batch, fan_in), rand(m, fan_in, fan_out), rand(m, 1, fan_out)
        g = rand(m, batch, fan_out)
        z, dw, dx = (torch.empty(m, batch, fan_out, dtype=dtype, device=device),
                     torch.empty(m, fan_in, fan_out, dtype=dtype, device=device),
                     torch.empty(m, batch, fan_in, dtype=dtype, device=device))
        calls.append(lambda b=b, x=x, w=w, z=z: torch.baddbmm(b, x, w, out=z))
        calls.append(lambda x=x, g=g, dw=dw: torch.bmm(x.transpose(1, 2), g, out=dw))
        n_products = 2
        if layer > 0:
            calls.append(lambda g=g, w=w, dx=dx: torch.bmm(g, w.transpose(1, 2), out=dx))
            n_products = 3
        flop += n_products * 2 * m * batch * fan_in * fan_out

    def run():
        for call in calls:
            call()

    return run, flop


def gemm_floor(layer_sizes, batch, m, dtype, device="cpu", repeats=7, min_seconds=0.02):
    """The GEMM floor of a training step: the time of its matrix products alone
    (:func:`step_products`) for an ``m``-member stack of ``layer_sizes`` (input, hidden..., output)
    at ``batch`` rows and ``dtype``, with the threads currently set (``torch.get_num_threads()``).

    Each repeat runs the products back to back enough times to last ``min_seconds``; the best
    repeat's time per step counts (CUDA is synchronised around each repeat). Returns a dict:
    ``per_step_s`` (all M members), ``per_member_step_s`` (÷ M, what achieved per member-step is
    compared with), ``gflops`` achieved by the products, the thread count and the 1-min load
    average before and after, with ``flag`` 'LOADED' when the load exceeded the threads.
    """
    dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    run, flop = step_products(tuple(int(s) for s in layer_sizes), int(batch), int(m), dtype, device)
    out = _step_timing(run, layer_sizes, batch, m, dtype, device, repeats, min_seconds)
    out["gflops"] = flop / out["per_step_s"] / 1e9
    return out


def _step_timing(run, layer_sizes, batch, m, dtype, device, repeats, min_seconds):
    """:func:`_timed_per_step` of ``run``, one step of an ``m``-member stack, with the shapes,
    dtype and device it ran and the time per member-step."""
    out = _timed_per_step(run, device, repeats, min_seconds)
    out.update({"layer_sizes": list(layer_sizes), "batch": int(batch), "m": int(m),
                "dtype": str(dtype).replace("torch.", ""), "device": str(device),
                "per_member_step_s": out["per_step_s"] / m})
    return out


REPEAT_PAUSE_S = 3.0


def _timed_per_step(run, device, repeats, min_seconds):
    """Best time of one ``run()``: each repeat runs it back to back enough times to last
    ``min_seconds``; the second half of the repeats starts ``REPEAT_PAUSE_S`` later. A dict:
    ``per_step_s``, ``inner``, ``repeats``, ``threads``, the load average before and after,
    ``flag``."""
    threads = torch.get_num_threads()
    settle(threads)
    load_before = load_average()
    for _ in range(3):  # warm-up: first-call costs, caches, CUDA handles
        run()
    synchronize(device)
    inner, best = 1, math.inf
    while True:  # calibrate the inner count
        start = time.perf_counter()
        for _ in range(inner):
            run()
        synchronize(device)
        elapsed = time.perf_counter() - start
        best = min(best, elapsed / inner)
        if elapsed >= min_seconds or inner >= 2**16:
            break
        inner *= 2 if elapsed <= 0 else max(2, min(16, math.ceil(min_seconds / elapsed)))
    for repeat in range(repeats):
        if repeat == repeats // 2:
            # The shared machine slows down in bursts of seconds: half the repeats come later.
            time.sleep(REPEAT_PAUSE_S)
        start = time.perf_counter()
        for _ in range(inner):
            run()
        synchronize(device)
        best = min(best, (time.perf_counter() - start) / inner)
    load_after = load_average()
    return {"per_step_s": best, "inner": inner, "repeats": repeats, "threads": threads,
            "load_average": {"before": load_before, "after": load_after},
            "flag": load_flag(load_before, load_after, threads)}


def step_kernels(layer_sizes, batch, m, dtype, device):
    """Everything but the matrix products in one training step of an ``m``-member stack of a
    ReLU network with a softmax cross-entropy loss, trained by Adam with an L2 penalty, each as
    the one ATen kernel the engine calls (sknn_tune._engine.network.TrainStep and the trainer's
    update): per hidden layer the ReLU and its backward; the loss, its gradient and their
    reductions; each layer's bias gradient and the copies of the gradient blocks into the flat
    ``(M, P)`` gradient; the L2 term and the Adam update of the flat parameters (the engine's
    ``_compat`` kernels: ATen's ``threshold_backward`` and fused Adam where torch has them). Returns a
    function that runs them once. Their time is what an eager step spends beyond its products
    even with no Python at all: only fusing kernels (a compiler) would go below it."""
    gen = torch.Generator(device="cpu").manual_seed(0)

    def rand(*shape):
        return torch.randn(*shape, generator=gen, dtype=dtype).to(device)

    sizes = tuple(int(s) for s in layer_sizes)
    n_params = sum(a * b + b for a, b in itertools.pairwise(sizes))
    params, grad, exp_avg, exp_avg_sq = (rand(m, n_params) for _ in range(4))
    exp_avg_sq.abs_()
    l2 = torch.full((m, n_params), 1e-4, dtype=dtype, device=device)
    steps = list(torch.ones(m, dtype=torch.float32, device=device).unbind(0))
    rows = [list(t.unbind(0)) for t in (params, grad, exp_avg, exp_avg_sq)]
    hidden = [rand(m, batch, h) for h in sizes[1:-1]]
    weight_grads, bias_grads, blocks, offset = [], [], [], 0
    for fan_in, fan_out in itertools.pairwise(sizes):
        weight_grads.append(rand(m, fan_in, fan_out))
        blocks.append(grad[:, offset:offset + fan_in * fan_out].view(m, fan_in, fan_out))
        offset += fan_in * fan_out
        bias_grads.append(rand(m, batch, fan_out))
        blocks.append(grad[:, offset:offset + fan_out].view(m, 1, fan_out))
        offset += fan_out
    out, target = rand(m, batch, sizes[-1]), rand(m, batch, sizes[-1])

    def run():
        for z in hidden:
            torch.relu(z)
            _compat.relu_backward(z, z)
        log_p = torch.log_softmax(out, dim=-1)
        (target * log_p).sum(-1).sum(1)
        (torch.exp(log_p) - target).mul_(1.0 / batch)
        for layer, (dw, g) in enumerate(zip(weight_grads, bias_grads)):
            blocks[2 * layer].copy_(dw)
            blocks[2 * layer + 1].copy_(torch.sum(g, 1, keepdim=True))
        grad.addcmul_(l2, params)
        _compat.adam_(*rows, steps, 1e-3, 0.9, 0.999, 1e-8)

    return run


def kernel_floor(layer_sizes, batch, m, dtype, device="cpu", repeats=7, min_seconds=0.02):
    """The time of :func:`step_kernels` per step and per member-step, measured as
    :func:`gemm_floor` measures the products (same keys, no ``gflops``)."""
    dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    run = step_kernels(layer_sizes, int(batch), int(m), dtype, device)
    return _step_timing(run, layer_sizes, batch, m, dtype, device, repeats, min_seconds)


def floor_ratio_text(achieved, floor, target=None):
    """``'2.31x floor (target <= 1.3x)'`` for the console."""
    text = f"{achieved / floor:.2f}x floor"
    return text + (f" (target <= {target}x)" if target else "")


def summarize_times(wall, cpu=None):
    """Best and median of the wall (and CPU) times, plus every value."""
    out = {"best_s": min(wall), "median_s": statistics.median(wall), "all_s": list(wall)}
    if cpu:
        out.update(best_cpu_s=min(cpu), median_cpu_s=statistics.median(cpu), all_cpu_s=list(cpu))
    return out


# ------------------------------------------------------------------------------------------------
# output


def format_table(rows, columns):
    """Plain-text table. ``columns`` is ``[(key, header, format)]``; missing values print as '-'."""
    cells = [[header for _, header, _ in columns]]
    for row in rows:
        line = []
        for key, _, fmt in columns:
            value = row.get(key)
            line.append("-" if value is None else format(value, fmt))
        cells.append(line)
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    out = []
    for n, line in enumerate(cells):
        # first column left-aligned (names), the rest right-aligned (numbers)
        out.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                             for i, (c, w) in enumerate(zip(line, widths))))
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def format_markdown_table(rows, columns):
    """The same table as :func:`format_table`, as a GitHub pipe table (for ``benchmarks/README.md``,
    whose pipe tables the documentation build publishes); numbers right-aligned."""
    def cell(value, fmt):
        return "-" if value is None else format(value, fmt).replace("|", "\\|")

    lines = ["| " + " | ".join(header for _, header, _ in columns) + " |",
             "|" + "|".join(":---" if i == 0 else "---:" for i in range(len(columns))) + "|"]
    lines += ["| " + " | ".join(cell(row.get(key), fmt) for key, _, fmt in columns) + " |"
              for row in rows]
    return "\n".join(lines)


def write_json(name, payload, path=None):
    """Write ``payload`` to ``path`` or ``benchmarks/results/<name>.json``; return the path."""
    path = Path(path) if path is not None else RESULTS_DIR / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=_json_default) + "\n")
    return path


def _json_default(value):
    if hasattr(value, "item"):  # numpy / torch scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


# ------------------------------------------------------------------------------------------------
# memory


def reset_peak_memory(device):
    """Start a new peak-memory window for :func:`peak_memory`; return whether the host one could be.

    On Linux, writing ``5`` to ``/proc/self/clear_refs`` resets this process's resident-set
    high-water mark (``VmHWM``, which ``getrusage``'s ``ru_maxrss`` reads too) to the current RSS,
    so the next reading is the peak of what ran in between. Elsewhere the host figure stays the
    process's peak since it started. On CUDA, ``torch.cuda.reset_peak_memory_stats`` is called.
    """
    if str(device).startswith("cuda") and torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_memory(device):
    """Peak memory in MiB: ``ru_maxrss`` (``resource.getrusage``; this process only, not worker
    processes such as joblib's), ``VmHWM`` where ``/proc`` has it, and on CUDA
    ``torch.cuda.max_memory_allocated``. See :func:`reset_peak_memory` for the window."""
    out = {"ru_maxrss_mib": None, "vm_hwm_mib": None}
    try:
        import resource

        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        out["ru_maxrss_mib"] = maxrss / 2**20 if sys.platform == "darwin" else maxrss / 2**10
    except ImportError:  # pragma: no cover - Windows
        pass
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    out["vm_hwm_mib"] = int(line.split()[1]) / 2**10
    except (OSError, ValueError, IndexError):
        pass
    if str(device).startswith("cuda") and torch.cuda.is_available():
        out["cuda_max_allocated_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return out


# ------------------------------------------------------------------------------------------------
# the skorch contender's module


class TorchMLP(torch.nn.Module):
    """``n_features -> hidden... -> n_classes`` with ReLU, raw logits out (skorch's module)."""

    def __init__(self, n_features=40, hidden=(128, 64), n_classes=5):
        super().__init__()
        layers, width = [], n_features
        for h in hidden:
            layers += [torch.nn.Linear(width, h), torch.nn.ReLU()]
            width = h
        layers.append(torch.nn.Linear(width, n_classes))
        self.net = torch.nn.Sequential(*layers)

    def forward(self, X):
        return self.net(X)
