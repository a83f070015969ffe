"""Fused stacks in worker processes of this machine (loky, joblib's own process pool).

A CPU stack of small networks spends most of a step in Python and in the dispatch of small
kernels, under the interpreter lock: two threads of stacks slow each other down instead of
adding throughput, while two processes each train at full speed. The workers are joblib's
reusable loky pool, started once per Python session (about a second per worker to import torch)
and kept for the next search. Each worker trains one stack at a time with one torch thread. The
data go to them as joblib sends arrays to its workers: an array over ``max_nbytes`` (1 MB) is
written once to a memory-mapped file that every worker maps, not copied into each job.

A worker that dies (killed, out of memory) fails only the stacks that had not come back: the
trained members of the others are kept, and the lost stacks are trained once more on a fresh
pool; a stack whose workers die again raises an error that names it and the cause. Ctrl-C
stops the workers: the stacks that finished are kept, and the others come back as members that
did not train, marked interrupted (each fit warns, as an interrupted plain fit does).
"""

import itertools

from joblib import Parallel, delayed
from joblib.externals.loky.process_executor import TerminatedWorkerError

from .jobs import describe_job, train_stack, untrained

__all__ = ["PROCESS_MAX_STEP_FLOPS", "PROCESS_MIN_STEPS", "pays", "stack_steps",
           "train_in_processes"]

# Below this many stack steps (one step of one stack, summed over a batch's stacks) a batch
# trains in this process: starting the pool (once per Python session) and sending the jobs cost
# about a second, what ~5000 steps of a small CPU stack take (~200 us each).
PROCESS_MIN_STEPS = 5000
# Above this many floating-point operations in a stack's step (on average over a batch's steps)
# the step is mostly the kernels' arithmetic, during which threads release the interpreter lock:
# threads then do as well, without sending the data and the members between processes. Measured
# on 2 cores: a random search of 5-25 member stacks of (32,)-(128, 64, 32) networks (~3 MFLOP a
# step) trains 1.6x faster in processes than in threads; workload B's stacks of 80 members of a
# 40-128-64-5 network (~420 MFLOP a step) 6 % slower (benchmarks/README.md).
PROCESS_MAX_STEP_FLOPS = 30e6


def stack_steps(job):
    """The training steps of ``job``'s stack: its longest member's epochs x batches."""
    batch = job.config.batch_size
    epochs = max(member.max_epochs for member in job.members)
    rows = max(len(data.train_rows) for data in job.data)
    return epochs * -(-rows // batch)


def step_flops(job):
    """The floating-point operations of one training step of ``job``'s stack: forward and
    backward (three products a layer), of every member's batch."""
    sizes = job.config.architecture.layer_sizes
    products = sum(fan_in * fan_out for fan_in, fan_out in itertools.pairwise(sizes))
    return 6 * job.config.batch_size * products * len(job.members)


def pays(jobs):
    """Whether ``jobs`` train faster in worker processes than in threads of this process: enough
    steps to pay for the workers, and steps too small to keep threads out of each other's way."""
    steps = [stack_steps(job) for job in jobs]
    total = sum(steps)
    if total < PROCESS_MIN_STEPS:
        return False
    return sum(n * step_flops(job) for n, job in zip(steps, jobs)) / total <= PROCESS_MAX_STEP_FLOPS


# A CPU stack step's time, for ordering the stacks (the longest first): a fixed cost per layer
# (Python and kernel dispatch) and the arithmetic at an effective rate. Measured on one core:
# 20-64-4 at batch 32 takes 0.68 ms a step with 2 members and 1.79 ms with 25; 20-128-64-32-4 at
# batch 64, 1.9 and 10.2 ms.
STEP_SECONDS_PER_LAYER = 0.3e-3
EFFECTIVE_FLOPS = 10e9


def estimated_seconds(job):
    """About how long ``job``'s stack trains on one core."""
    layers = len(job.config.architecture.layer_sizes) - 1
    per_step = STEP_SECONDS_PER_LAYER * layers + step_flops(job) / EFFECTIVE_FLOPS
    return stack_steps(job) * per_step


def _train_indexed(i, job):
    return i, train_stack(job)


def train_in_processes(jobs, n_workers):
    """``[train_stack(job) for job in jobs]`` in ``n_workers`` loky processes (see the module)."""
    results = [None] * len(jobs)
    # The longest stacks first, so that the workers finish together.
    pending = sorted(range(len(jobs)), key=lambda i: -estimated_seconds(jobs[i]))
    for attempt in range(2):
        try:
            for i, result in Parallel(n_jobs=n_workers, backend="loky", inner_max_num_threads=1,
                                      return_as="generator_unordered")(
                    delayed(_train_indexed)(i, jobs[i]) for i in list(pending)):
                results[i] = result
                pending.remove(i)
            return results
        except TerminatedWorkerError as error:
            if attempt == 1:
                raise RuntimeError(_lost_message(error, pending, jobs)) from error
        except KeyboardInterrupt:
            # joblib has stopped the workers; what had not come back did not train.
            for i in pending:
                results[i] = untrained(jobs[i])
            return results


def _lost_message(error, pending, jobs):
    stacks = "; ".join(f"stack {i + 1} of {len(jobs)} ({describe_job(jobs[i])})" for i in pending)
    return (f"Fused stacks were not trained: a worker process died while training them, and "
            f"again when they were trained once more ({stacks}). A worker usually dies when the "
            "machine runs out of memory or native code crashes. Train smaller stacks with the "
            "search's max_members, fewer at once with n_jobs, or in this process with "
            f"n_jobs=1. The pool's error: {error}")
