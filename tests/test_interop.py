"""to_torch / to_skorch: the exported network predicts as the estimator does, and skorch training
continues from the estimator's weights and optimizer state exactly as ``partial_fit`` would.

Estimators train where ``device='auto'`` resolves (the run's ``--device``) and the exported module
and skorch net live on the model's device. The helpers ask for float64: the same network computed
by the engine and by ``torch.nn`` layers then agrees to 1e-12 on the CPU and to float32 rounding on
a GPU (``assert_same_outputs``); the default float32 is checked on its own.
"""

import pickle

import numpy as np
import pytest
import torch
from conftest import assert_same_model, run_device
from sklearn.exceptions import NotFittedError
from sklearn.metrics import log_loss, mean_squared_error
from torch import nn

from sknn_tune import MLPClassifier, MLPRegressor
from sknn_tune._engine import ACTIVATIONS, OPTIMIZERS

# sknn_tune.interop imports skorch (to_torch as well): without skorch nothing here can run.
pytest.importorskip("skorch")

from skorch import NeuralNetClassifier, NeuralNetRegressor
from skorch.callbacks import Callback, EarlyStopping
from skorch.dataset import ValidSplit

from sknn_tune.interop import SoftmaxSquaredError, to_skorch, to_torch

LABELS = np.array(["cat", "dog", "emu"])


@pytest.fixture(scope="module")
def clf_data():
    rng = np.random.RandomState(0)
    X = rng.randn(60, 4)
    codes = np.argmax(X[:, :3] + 0.3 * rng.randn(60, 3), axis=1)
    return X, LABELS[codes]


@pytest.fixture(scope="module")
def reg_data():
    rng = np.random.RandomState(1)
    X = rng.randn(60, 4)
    Y = np.c_[X[:, 0] - 2 * X[:, 1], np.sin(X[:, 2])] + 0.1 * rng.randn(60, 2)
    return X, Y


def clf(**params):
    defaults = dict(hidden_layer_sizes=(8, 6), lr=1e-2, batch_size=16, max_epochs=3,
                    random_state=0, dtype="float64")
    return MLPClassifier(**{**defaults, **params})


def reg(**params):
    defaults = dict(hidden_layer_sizes=(8,), lr=1e-2, batch_size=16, max_epochs=3,
                    random_state=0, dtype="float64")
    return MLPRegressor(**{**defaults, **params})


# The helpers above ask for float64, so the engine's outputs and torch's compare bit for bit
# on the CPU (the default, float32, is checked on its own below).
MODEL_DTYPE, NUMPY_DTYPE = torch.float64, np.float64


def outputs(module, X):
    """The module's outputs for ``X``, computed on the module's device in its dtype."""
    weight = next(module.parameters())
    with torch.no_grad():
        return module(torch.as_tensor(X, dtype=weight.dtype, device=weight.device)).cpu().numpy()


def assert_same_outputs(actual, expected, cpu_atol=1e-12):
    """The same network's outputs computed two ways (the engine; ``torch.nn`` layers or skorch):
    to ``cpu_atol`` on the CPU, to float32 rounding on a GPU (the engine's float32)."""
    assert_same_model(actual, expected, cpu_atol=cpu_atol)


# -------------------------------------------------------------------------------------------------
# to_torch


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_every_activation_has_its_torch_module(name):
    z = torch.linspace(-4, 4, 101, dtype=torch.float64).reshape(1, -1)
    module = ACTIVATIONS[name].module()
    assert isinstance(module, nn.Module)
    torch.testing.assert_close(module(z), ACTIVATIONS[name].forward(z), rtol=0, atol=1e-15)


@pytest.mark.parametrize("batch_norm", [False, True])
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_to_torch_reproduces_classifier_probabilities(clf_data, activation, batch_norm):
    X, y = clf_data
    est = clf(activation=activation, batch_norm=batch_norm, dropout=0.2).fit(X, y)
    net = est.to_torch()
    assert isinstance(net, nn.Sequential) and not net.training
    kinds = [type(layer) for layer in net]
    act = type(ACTIVATIONS[activation].module())
    per_hidden = [nn.Linear, *([nn.BatchNorm1d] if batch_norm else []), act, nn.Dropout]
    assert kinds == per_hidden * 2 + [nn.Linear]
    assert all(layer.p == 0.2 for layer in net if isinstance(layer, nn.Dropout))
    # On the model's device, in its dtype.
    weight = next(net.parameters())
    assert (weight.device.type, weight.dtype) == (run_device().type, MODEL_DTYPE)
    logits = outputs(net, X)
    assert logits.dtype == NUMPY_DTYPE
    assert_same_outputs(torch.softmax(torch.as_tensor(logits), 1).numpy(), est.predict_proba(X))
    np.testing.assert_array_equal(LABELS[logits.argmax(1)], est.predict(X))


def test_to_torch_copies_batch_norm_statistics(clf_data):
    X, y = clf_data
    est = clf(batch_norm=True).fit(X, y)
    norm = est.to_torch()[1]
    assert (norm.eps, norm.momentum) == (1e-5, 0.1)
    assert not torch.equal(norm.running_mean, torch.zeros_like(norm.running_mean))
    assert not torch.equal(norm.running_var, torch.ones_like(norm.running_var))
    assert int(norm.num_batches_tracked) == 3 * 4  # 3 epochs of 4 batches


@pytest.mark.parametrize(("activation", "batch_norm"),
                         [("relu", False), ("tanh", True), ("elu", True)])
def test_to_torch_reproduces_multi_output_regressor(reg_data, activation, batch_norm):
    X, Y = reg_data
    est = reg(activation=activation, batch_norm=batch_norm).fit(X, Y)
    out = outputs(est.to_torch(), X)
    assert out.shape == (len(X), 2)
    assert_same_outputs(out, est.predict(X))


@pytest.mark.parametrize("data_dtype", [np.float32, np.float64])
def test_to_torch_float32_model_and_dtype_argument(reg_data, data_dtype):
    # The default dtype is float32, whatever the data's.
    X, Y = reg_data
    est = reg(dtype=None).fit(X.astype(data_dtype), Y)
    net = to_torch(est)
    assert next(net.parameters()).dtype == torch.float32
    assert_same_outputs(outputs(net, X.astype(np.float32)), est.predict(X), cpu_atol=1e-6)
    wide = to_torch(est, dtype=torch.float64)
    assert next(wide.parameters()).dtype == torch.float64
    np.testing.assert_allclose(outputs(wide, X), est.predict(X), rtol=0, atol=1e-5)


def test_to_torch_holds_the_restored_best_weights(reg_data):
    X, Y = reg_data
    est = reg(early_stopping=True, patience=2, max_epochs=60, lr=0.3, validation_fraction=0.3)
    est.fit(X, Y)
    assert est.best_epoch_ < est.n_iter_  # the weights predicted with are not the last ones
    assert_same_outputs(outputs(est.to_torch(), X), est.predict(X))


def test_to_torch_module_is_independent_of_the_estimator(reg_data):
    X, Y = reg_data
    est = reg().fit(X, Y)
    before = est.predict(X)
    net = est.to_torch()
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
    np.testing.assert_array_equal(est.predict(X), before)


# -------------------------------------------------------------------------------------------------
# to_skorch


@pytest.mark.parametrize(("loss", "criterion"),
                         [("log_loss", nn.CrossEntropyLoss), ("squared_error", SoftmaxSquaredError)])
@pytest.mark.parametrize("batch_norm", [False, True])
def test_to_skorch_classifier_predicts_like_estimator(clf_data, loss, criterion, batch_norm):
    X, y = clf_data
    est = clf(loss=loss, batch_norm=batch_norm, dropout=0.1).fit(X, y)
    net = est.to_skorch()
    assert isinstance(net, NeuralNetClassifier) and net.initialized_
    assert net.criterion is criterion
    np.testing.assert_array_equal(net.classes_, est.classes_)
    np.testing.assert_array_equal(net.predict(X), est.predict(X))
    assert_same_outputs(net.predict_proba(X), est.predict_proba(X))
    # float32 data goes through a float64 module as well (a GPU's module is float32 itself)
    assert_same_outputs(net.predict_proba(X.astype(np.float32)), est.predict_proba(X),
                        cpu_atol=1e-6)
    assert net.score(X, y) == pytest.approx(est.score(X, y))


@pytest.mark.parametrize(("loss", "criterion"), [("squared_error", nn.MSELoss),
                                                 ("absolute_error", nn.L1Loss),
                                                 ("huber", nn.HuberLoss)])
def test_to_skorch_regressor_predicts_like_estimator(reg_data, loss, criterion):
    X, Y = reg_data
    est = reg(loss=loss, batch_norm=True).fit(X, Y)
    net = to_skorch(est)
    assert isinstance(net, NeuralNetRegressor) and net.criterion is criterion
    assert_same_outputs(net.predict(X), est.predict(X))
    single = reg(loss=loss).fit(X, Y[:, 0])
    net = single.to_skorch()
    assert net.predict(X).shape == (len(X),)
    assert_same_outputs(net.predict(X), single.predict(X))


@pytest.mark.parametrize(("optimizer", "torch_class", "settings"), [
    ("sgd", torch.optim.SGD, {"momentum": 0}),
    ("momentum", torch.optim.SGD, {"momentum": 0.8, "nesterov": False}),
    ("nesterov", torch.optim.SGD, {"momentum": 0.8, "nesterov": True}),
    ("adagrad", torch.optim.Adagrad, {"eps": 1e-10}),
    ("rmsprop", torch.optim.RMSprop, {"alpha": 0.9, "eps": 1e-8}),
    ("adam", torch.optim.Adam, {"betas": (0.8, 0.99)}),
    ("adamw", torch.optim.AdamW, {"betas": (0.8, 0.99)}),
])
def test_to_skorch_translates_hyperparameters(clf_data, optimizer, torch_class, settings):
    X, y = clf_data
    est = clf(optimizer=optimizer, lr=0.03, momentum=0.8, rho=0.9, beta1=0.8, beta2=0.99,
              weight_decay=1e-3, batch_norm=True, batch_size=20, max_epochs=2).fit(X, y)
    net = est.to_skorch()
    assert (net.lr, net.batch_size, net.max_epochs) == (0.03, 20, 2)
    assert net.optimizer is torch_class and isinstance(net.optimizer_, torch_class)
    names = {id(p): name for name, p in net.module_.named_parameters()}
    decayed = set()
    for group in net.optimizer_.param_groups:
        assert group["lr"] == 0.03
        for key, value in settings.items():
            assert group[key] == value
        if group["weight_decay"] > 0:
            assert group["weight_decay"] == 1e-3
            decayed |= {names[id(p)] for p in group["params"]}
    # weight decay on the Linear weights only, as in the estimator
    assert decayed == {"0.weight", "3.weight", "6.weight"}  # Linear, BatchNorm1d, ReLU, ...


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_skorch_partial_fit_continues_exactly_like_ours(clf_data, optimizer):
    # One full batch per epoch: skorch's step and the estimator's partial_fit step are the same
    # step (same loss, same optimizer state), so the weights and the BatchNorm statistics agree.
    # In float64 on any device: in float32 the rounding noise of
    # torch.optim's bias-before-BatchNorm gradient (exactly 0 in the engine) becomes Adam steps.
    X, y = clf_data
    est = clf(optimizer=optimizer, lr=0.05, weight_decay=1e-2, batch_norm=True, batch_size=60,
              dtype="float64")
    est.fit(X, y)
    net = est.to_skorch(max_epochs=1)
    net.partial_fit(X, y)
    est.partial_fit(X, y)
    for theirs, ours in zip(net.module_.state_dict().values(), est.to_torch().state_dict().values()):
        torch.testing.assert_close(theirs, ours, rtol=0, atol=1e-6)
    np.testing.assert_allclose(net.predict_proba(X), est.predict_proba(X), rtol=0, atol=1e-6)


class EpochCounter(Callback):
    def initialize(self):
        self.epochs = 0
        return self

    def on_epoch_end(self, net, **kwargs):
        self.epochs += 1


def test_skorch_partial_fit_keeps_training_classifier_with_callbacks(clf_data):
    X, y = clf_data
    est = clf(max_epochs=5).fit(X, y)
    counter = EpochCounter()
    net = est.to_skorch(max_epochs=10, callbacks=[("count", counter)],
                        train_split=ValidSplit(4, stratified=True))
    before = log_loss(y, net.predict_proba(X), labels=est.classes_)
    net.partial_fit(X, y)
    assert counter.epochs == 10
    losses = net.history[:, "train_loss"]
    assert losses[-1] < losses[0]
    assert log_loss(y, net.predict_proba(X), labels=est.classes_) < before
    # skorch's accuracy callback compares predicted labels with decoded targets
    assert net.history[-1, "valid_acc"] > 0.7
    with pytest.raises(ValueError, match=r"labels \['yak'\] that are not in classes_"):
        net.partial_fit(X[:2], np.array(["cat", "yak"]))
    loaded = pickle.loads(pickle.dumps(net))
    np.testing.assert_array_equal(loaded.predict(X), net.predict(X))


def test_skorch_partial_fit_keeps_training_regressor(reg_data):
    X, Y = reg_data
    est = reg(max_epochs=5).fit(X.astype(np.float32), Y[:, 0])
    net = est.to_skorch(max_epochs=10)
    before = mean_squared_error(Y[:, 0], net.predict(X))
    net.partial_fit(X, Y[:, 0])  # float64 data, 1-D target
    losses = net.history[:, "train_loss"]
    assert losses[-1] < losses[0]
    assert mean_squared_error(Y[:, 0], net.predict(X)) < before


def test_to_skorch_early_stopping_and_overrides(reg_data):
    X, Y = reg_data
    est = reg(early_stopping=True, patience=3, tol=1e-3, validation_fraction=0.25).fit(X, Y)
    net = est.to_skorch()
    assert isinstance(net.train_split, ValidSplit) and net.train_split.cv == 0.25
    stopping = dict(net.callbacks_)["early_stopping"]
    assert isinstance(stopping, EarlyStopping)
    assert (stopping.patience, stopping.threshold, stopping.threshold_mode) == (3, 1e-3, "abs")
    assert to_skorch(est, train_split=None, lr=0.5).lr == 0.5
    assert reg().fit(X, Y).to_skorch().train_split is None


@pytest.mark.parametrize("make", [clf, reg])
@pytest.mark.parametrize("export", ["to_torch", "to_skorch"])
def test_unfitted_estimator_raises(make, export):
    est = make()
    with pytest.raises(NotFittedError):
        getattr(est, export)()
    with pytest.raises(NotFittedError):
        {"to_torch": to_torch, "to_skorch": to_skorch}[export](est)
