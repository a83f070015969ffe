"""Fused stacks on a dask cluster, submitted with the cluster's own client.

Under ``joblib.parallel_backend("dask")`` each stack is one dask task. They are submitted here
rather than through :class:`joblib.Parallel` because of what happens when workers die. A worker
that dies once is harmless: the scheduler runs its task again on another worker, and a stack, a
pure function of its job, gives the same members there. But when the workers running a task keep
dying, the scheduler gives up on it (``distributed.KilledWorker``), and joblib's dask backend
(joblib 1.6) never passes that error on to ``Parallel``, which then waits forever. Here the error
surfaces, names the stack and the worker, and says what to do.
"""

import sys
import uuid
import warnings

from .jobs import describe_job

__all__ = ["dask_client", "train_on_dask"]


def dask_client(backend):
    """The client of joblib's dask backend ``backend``; None for any other backend."""
    module = sys.modules.get("joblib._dask")  # imported wherever a dask backend exists
    if module is None or not isinstance(backend, module.DaskDistributedBackend):
        return None
    return backend.client


def train_on_dask(backend, train_stack, jobs):
    """``[train_stack(job) for job in jobs]``, each call a task on ``backend``'s dask cluster.

    At most two tasks per worker thread are submitted at a time (joblib's ``pre_dispatch``), so
    the scheduler does not hold every stack's data at once. Each task carries its job, data
    included, rather than scattering it: scattered data is lost with the worker that holds it,
    while a task that carries its data can run again on any worker (hence dask's warning about
    large graphs is silenced).
    Keyword arguments of the backend (``parallel_config(backend="dask", resources=...)``) go to
    every ``submit``.

    Raises
    ------
    RuntimeError
        When the scheduler has given up on a stack because the workers running it died; chained
        to ``distributed.KilledWorker``. The stacks still running are cancelled.
    """
    from distributed import KilledWorker, as_completed

    client = backend.client
    token = uuid.uuid4().hex[:8]
    results = [None] * len(jobs)
    waiting = list(range(len(jobs)))[::-1]
    submitted = {}  # key -> (index, future)
    running = as_completed()

    def submit():
        i = waiting.pop()
        key = f"sknn_tune-stack-{i + 1}-of-{len(jobs)}-{token}"
        with warnings.catch_warnings():  # the job carries its data on purpose: see above
            warnings.filterwarnings("ignore", "Sending large graph", UserWarning)
            future = client.submit(train_stack, jobs[i], key=key, pure=False,
                                   **getattr(backend, "submit_kwargs", {}))
        submitted[key] = i, future
        running.add(future)

    for _ in range(min(len(jobs), max(1, 2 * sum(client.nthreads().values())))):
        submit()
    try:
        for future in running:
            i, _ = submitted[future.key]
            try:
                results[i] = future.result()
            except KilledWorker as error:
                raise RuntimeError(_killed_message(error, i, jobs)) from error
            del submitted[future.key]
            future.release()
            if waiting:
                submit()
    finally:
        if submitted:  # an error: stop what still runs
            client.cancel([future for _, future in submitted.values()])
    return results


def _killed_message(error, i, jobs):
    worker = getattr(error.last_worker, "address", error.last_worker)
    return (
        f"Fused stack {i + 1} of {len(jobs)} ({describe_job(jobs[i])}) was not trained: "
        f"{error.allowed_failures + 1} dask "
        f"workers died while running it, the last one {worker}, and the scheduler gave up after "
        f"distributed.scheduler.allowed-failures={error.allowed_failures}. A worker usually dies "
        "when it runs out of memory (its nanny stops it above its memory_limit) or when native "
        "code crashes; the worker's log says which. Give the workers more memory, train smaller "
        "stacks with the search's max_members (each stack is one dask task), or raise "
        "distributed.scheduler.allowed-failures if workers are lost for other reasons.")
