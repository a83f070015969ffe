"""No host synchronisation inside an epoch: between an epoch's first step and its end, the engine
never reads a device tensor on the host nor copies host data to the device.

On a GPU each such call stalls the stream (and breaks CUDA-graph capture); on the CPU it is
harmless, so this is where it is checked: the calls are instrumented and any of them inside an
epoch fails the test. The stack holds what makes steps differ: early-stopped, diverged and
short-fold members, dropout, noise, sample weights (some zero) and a validation monitor.
"""

import functools

import numpy as np
import pytest
import scipy.sparse
import torch
from sklearn.datasets import make_classification

from sknn_tune import FusedGridSearchCV, MLPClassifier
from sknn_tune._engine import network, trainer

HOST_READS = ("item", "cpu", "numpy", "tolist", "__bool__", "__int__", "__float__")
HOST_WRITES = ("as_tensor", "tensor", "from_numpy")


@pytest.fixture
def epoch_probe(monkeypatch):
    """``calls``: every host read / host->device copy made inside an epoch (with its name)."""
    state = {"inside": False, "steps": 0}
    calls = []

    def guard(name, original):
        @functools.wraps(original)
        def wrapped(*args, **kwargs):
            if state["inside"]:
                calls.append(name)
            return original(*args, **kwargs)
        return wrapped

    for name in HOST_READS:
        monkeypatch.setattr(torch.Tensor, name, guard(name, getattr(torch.Tensor, name)))
    for name in HOST_WRITES:
        monkeypatch.setattr(torch, name, guard(name, getattr(torch, name)))

    step_call = network.TrainStep.__call__

    def step(self, *args, **kwargs):
        state["inside"] = True  # from the epoch's first step on
        state["steps"] += 1
        return step_call(self, *args, **kwargs)

    run_epoch = trainer.StackedTrainer._run_epoch

    def epoch(self, *args, **kwargs):
        try:
            return run_epoch(self, *args, **kwargs)
        finally:
            state["inside"] = False

    monkeypatch.setattr(network.TrainStep, "__call__", step)
    monkeypatch.setattr(trainer.StackedTrainer, "_run_epoch", epoch)
    return calls, state


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
@pytest.mark.parametrize("step_mode", ["eager", "static"])
def test_no_host_sync_inside_an_epoch(epoch_probe, step_mode, sparse, monkeypatch):
    # "static": the step on static buffers with the column update, as a CUDA graph replays it.
    if step_mode == "static":
        monkeypatch.setattr(trainer, "_step_mode", lambda device: "static")
    calls, state = epoch_probe
    X, y = make_classification(100, 6, n_informative=4, n_redundant=0, n_classes=3,
                               random_state=0)
    if sparse:  # rows densified a batch at a time on the device
        X = scipy.sparse.csr_matrix(np.where(np.abs(X) > 1.0, X, 0.0))
    weight = np.random.default_rng(0).uniform(0.5, 2.0, len(y))
    weight[:10] = 0.0
    est = MLPClassifier((8,), dropout=0.2, noise_std=0.1, early_stopping=True, patience=1,
                        scoring="accuracy", optimizer="sgd", max_epochs=6, batch_size=16,
                        random_state=0, device="cpu")
    # lr 1e6 diverges at once, patience 1 stops before patience 4: members stop at different epochs
    # (the epochs after see inactive members); 3 folds of 100 rows differ in length.
    search = FusedGridSearchCV(est, {"lr": [0.05, 1e6], "patience": [1, 4]}, cv=3, refit=False)
    with pytest.warns(UserWarning):  # the diverged candidate's scores
        search.fit(X, y, sample_weight=weight)
    assert state["steps"] > 0 and not state["inside"]
    assert calls == []
    assert len(set(search.cv_results_["mean_test_score"].round(9))) > 1


SCALAR_READS = ("aten::item", "aten::_local_scalar_dense")


def _scalar_reads(n_rows, step_mode, monkeypatch):
    """The C++-level scalar reads (``aten::item``, ``aten::_local_scalar_dense``: a host sync
    each on a GPU) of a 2-epoch fit of a mixed stack on ``n_rows`` rows, batch 8."""
    from torch.profiler import profile

    from sknn_tune._engine import Architecture, MemberConfig, MemberData, StackConfig

    monkeypatch.setattr(trainer, "_step_mode", lambda device: step_mode)
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(n_rows, 5, generator=gen)
    Y = torch.nn.functional.one_hot(torch.randint(0, 3, (n_rows,), generator=gen), 3).float()
    arch = Architecture(5, (8, 6), 3, ("relu", "tanh"), False, "softmax_log_loss")
    config = StackConfig(arch, ("adam", "momentum"), 8, "accuracy", torch.float32,
                         torch.device("cpu"))
    members = [MemberConfig(seed=1, dropout=0.2, noise_std=0.1, weight_decay=1e-3, max_epochs=2),
               MemberConfig(seed=2, lr=0.01, l1=1e-4, max_epochs=2)]
    rows = np.arange(n_rows)
    weight = np.random.default_rng(0).uniform(0.5, 2.0, n_rows)
    data = [MemberData(rows, weight), MemberData(rows[: n_rows // 2])]
    with profile() as prof:
        trainer.StackedTrainer(config, members).fit(X, Y, data)
    return sum(1 for event in prof.events()
               if event.name in SCALAR_READS and not _inside_cpu_fused_optimizer(event))


def _inside_cpu_fused_optimizer(event):
    """Whether a scalar read is torch's CPU fused optimizer kernel reading a step count: a read
    of a CPU tensor inside a CPU kernel, no device involved (on a GPU the engine takes the
    column rules, the "static" variant, whose reads are counted)."""
    parent = event.cpu_parent
    while parent is not None:
        if parent.name.startswith("aten::_fused_"):
            return True
        parent = parent.cpu_parent
    return False


@pytest.mark.parametrize("step_mode", ["eager", "static"])
def test_scalar_reads_do_not_grow_with_the_steps_of_an_epoch(step_mode, monkeypatch):
    # What the Python-level probe above cannot see: scalar reads inside ATen and torch's Python
    # layer. Four times the steps per epoch, the same number of reads (they are per epoch).
    assert _scalar_reads(32, step_mode, monkeypatch) == _scalar_reads(128, step_mode, monkeypatch)
