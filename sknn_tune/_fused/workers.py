"""Where stacks train: this process, its threads, worker processes, the active joblib backend's
workers, a dask cluster, or the GPUs; all behind one :meth:`Workers.run`.

Without a joblib backend context, CPU stacks train on ``n_jobs`` cores (None: as many as torch
has intra-op threads): a batch of many small steps (:func:`.processes.pays`) in that many worker
processes (:mod:`.processes`), another in as many threads of this process, one stack each with
one torch thread. On GPUs the stacks train one after another, or
in ``n_jobs`` threads (one thread per device by default when stacks spread over several GPUs).
Under a backend context (``parallel_config(backend=...)``: loky, dask, ray) the stacks are that
backend's tasks, with ``n_jobs`` workers (None: the context's). Stacks whose estimator says
``device='auto'`` or ``'cuda'`` are spread round-robin over the CUDA devices the worker sees.
"""

import contextlib
import os

import torch
from joblib import Parallel, delayed
from joblib.parallel import get_active_backend

from .._engine import device as engine_device
from . import processes
from .dask import dask_client, train_on_dask
from .jobs import train_stack

__all__ = ["Workers"]


class Workers:
    """The workers of one session, from the joblib backend active when it is made."""

    def __init__(self, n_jobs=None):
        self.n_jobs = n_jobs
        # What Parallel(prefer="threads") would use here: an explicit backend, else threads; and
        # the n_jobs of the parallel_config / parallel_backend context, if any.
        self.backend = get_active_backend(prefer="threads")[0]
        self._context_n_jobs = get_active_backend()[1]
        # A backend the user chose (parallel_config(backend=...)) is the same whatever we prefer.
        self._chosen_backend = type(get_active_backend(prefer="processes")[0]) is type(self.backend)

    def requested_jobs(self):
        """``n_jobs``, else the ``n_jobs`` of the backend context, else None."""
        return self.n_jobs if self.n_jobs is not None else self._context_n_jobs

    def parallel_stacks(self):
        """How many stacks train at once: one per worker of the backend, CPU thread or GPU."""
        n_jobs = self.requested_jobs()
        workers = self.backend.effective_n_jobs(1 if n_jobs is None else n_jobs)
        return max(workers, self.cpu_threads(), len(engine_device.available_devices()), 1)

    def stacks_per_device(self, spread):
        """How many stacks may train at once on one GPU: the concurrent stacks over the GPUs
        they are spread over (all on one device when the estimator names its device)."""
        devices = len(engine_device.available_devices()) if spread else 1
        return max(1, -(-self.parallel_stacks() // max(1, devices)))

    def cpu_threads(self):
        """Threads that train CPU stacks at once in this process, at most one per core: ``n_jobs``
        of the threading backend, and for ``n_jobs=None`` torch's intra-op threads (the cores
        one stack would use anyway); 1 elsewhere (processes, dask, GPUs place their own).

        Each thread trains its own stack, with one torch thread when there are as many stacks as
        threads: two stacks at once beat one stack on two intra-op threads (the thread sweeps in
        benchmarks/results).
        """
        if (not getattr(self.backend, "uses_threads", False) or engine_device.available_devices()
                or dask_client(self.backend) is not None):
            return 1
        n_jobs = self.requested_jobs()
        wanted = (torch.get_num_threads() if n_jobs is None
                  else self.backend.effective_n_jobs(n_jobs))
        return max(1, min(wanted, os.cpu_count() or 1))

    def process_workers(self, jobs):
        """How many worker processes train ``jobs``: one per core :meth:`cpu_threads` gives
        (at most one per stack) for CPU stacks where processes pay (:func:`.processes.pays`),
        without a backend of the user's; 0 (here) otherwise."""
        if (self._chosen_backend or len(jobs) < 2 or engine_device.available_devices()
                or any(job.config.device.type != "cpu" for job in jobs)):
            return 0
        cores = self.cpu_threads()
        if cores < 2 or not processes.pays(jobs):
            return 0
        return min(cores, len(jobs))

    def run(self, jobs, n_jobs, stack_threads=None):
        """``[train_stack(job) for job in jobs]`` on these workers: worker processes when
        :meth:`process_workers` says so, else ``n_jobs`` of the backend's, each stack's ops on
        ``stack_threads`` torch threads when given."""
        if dask_client(self.backend) is not None:  # see .dask: joblib hangs on lost workers
            return train_on_dask(self.backend, train_stack, jobs)
        n_processes = self.process_workers(jobs)
        if n_processes:
            return processes.train_in_processes(jobs, n_processes)
        # Threads on the CPU share the cores out: one torch thread each when there are as many
        # stacks, or every op's thread pool competes with the other stacks' for the same cores.
        with (_torch_threads(stack_threads) if stack_threads is not None
              else contextlib.nullcontext()):
            return Parallel(n_jobs=1 if n_jobs is None else n_jobs, backend=self.backend)(
                delayed(train_stack)(job) for job in jobs)


@contextlib.contextmanager
def _torch_threads(n):
    """torch's intra-op threads set to ``n`` within the context."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
