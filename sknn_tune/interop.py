"""A fitted estimator's network in plain PyTorch and in skorch.

:func:`to_torch` rebuilds the trained network from ordinary ``torch.nn`` layers, for deployment,
export (TorchScript, ONNX) or any PyTorch code. :func:`to_skorch` wraps that module in a skorch net
with the estimator's training hyperparameters and optimizer state, so training can go on in skorch,
with its callbacks and loggers.
"""

import functools
import itertools

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.utils.validation import check_is_fitted
from skorch import NeuralNetClassifier, NeuralNetRegressor
from skorch.callbacks import EarlyStopping, EpochScoring
from skorch.dataset import ValidSplit
from skorch.utils import to_numpy
from torch import nn

from ._defaults import AUTO_BATCH_SIZE
from ._engine import ACTIVATIONS
from ._engine.device import usable_device
from ._engine.losses import HUBER_DELTA
from ._engine.network import BN_EPS, BN_MOMENTUM, split_buffers, split_flat
from ._engine.optimizers import OPTIMIZERS

__all__ = ["SkorchMLPClassifier", "SkorchMLPRegressor", "SoftmaxSquaredError", "to_skorch",
           "to_torch"]


# ------------------------------------------------------------------------------------------------
# torch


def to_torch(estimator, dtype=None):
    """The fitted network as a :class:`torch.nn.Sequential` of ordinary layers.

    Hidden layers become ``nn.Linear`` -> [``nn.BatchNorm1d`` with the running statistics] ->
    activation module -> [``nn.Dropout``]; the output layer is an ``nn.Linear`` with raw outputs:
    logits for a classifier (``softmax`` gives :meth:`predict_proba`; ``sigmoid`` for a multilabel
    one), the predictions for a regressor. The module is in eval mode, on the model's device, and
    holds the weights the estimator predicts with (the best epoch's, when early stopping restored them).

    Parameters
    ----------
    estimator : MLPClassifier or MLPRegressor
        A fitted estimator.
    dtype : torch.dtype, default=None
        The module's dtype; None keeps the model's (float64 when it was fitted on float64 data on
        the CPU, else float32).

    Returns
    -------
    module : torch.nn.Sequential
        Takes a float tensor ``(n_samples, n_features_in_)`` of ``dtype``.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If the estimator is not fitted.

    Examples
    --------
    >>> import torch
    >>> from sklearn.datasets import load_iris
    >>> from sknn_tune import MLPClassifier
    >>> from sknn_tune.interop import to_torch
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = MLPClassifier((8,), batch_norm=True, max_epochs=5, random_state=0).fit(X, y)
    >>> net = to_torch(clf)
    >>> [type(layer).__name__ for layer in net]
    ['Linear', 'BatchNorm1d', 'ReLU', 'Linear']
    >>> proba = net(torch.as_tensor(X, dtype=torch.float32)).softmax(dim=1).detach().numpy()
    >>> bool(abs(proba - clf.predict_proba(X)).max() < 1e-6)  # float32, the model's dtype
    True
    """
    return _build(estimator, dtype)[0]


def _build(estimator, dtype):
    """``(module, sources)``: the Sequential and, per parameter name, the ``(name, layer)`` of the
    flat parameter block it was copied from."""
    check_is_fitted(estimator)
    trainer = estimator.model_
    arch = trainer.config.architecture
    device = usable_device(trainer.config.device)
    dtype = trainer.config.dtype if dtype is None else dtype
    params, buffers = (t.to(device=device, dtype=dtype) for t in trainer.final_parameters())
    blocks = _torch_blocks(params, arch)
    stats = split_buffers(buffers[:1], arch)
    dropout = trainer.members[0].dropout
    n_steps = int(trainer.steps[0, 0])
    n_hidden = len(arch.hidden_layer_sizes)
    layers, sources = [], {}
    for layer, (fan_in, fan_out) in enumerate(itertools.pairwise(arch.layer_sizes)):
        linear = nn.Linear(fan_in, fan_out, dtype=dtype, device=device)
        sources |= {f"{len(layers)}.weight": ("weight", layer),
                    f"{len(layers)}.bias": ("bias", layer)}
        layers.append(linear)
        _copy(linear, weight=blocks["weight", layer], bias=blocks["bias", layer])
        if layer == n_hidden:
            break
        if arch.batch_norm:
            norm = nn.BatchNorm1d(fan_out, eps=BN_EPS, momentum=BN_MOMENTUM, dtype=dtype,
                                  device=device)
            sources |= {f"{len(layers)}.weight": ("bn_weight", layer),
                        f"{len(layers)}.bias": ("bn_bias", layer)}
            layers.append(norm)
            mean, var = stats[layer]
            _copy(norm, weight=blocks["bn_weight", layer], bias=blocks["bn_bias", layer],
                  running_mean=mean.reshape(-1), running_var=var.reshape(-1))
            norm.num_batches_tracked.fill_(n_steps)
        layers.append(ACTIVATIONS[arch.activation].module())
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers).eval(), sources


def _torch_blocks(flat, arch):
    """Member 0's row of a flat ``(M, P)`` tensor as ``{(name, layer): tensor}`` shaped as the
    ``torch.nn`` layers hold them: ``(out, in)`` weights, 1-D biases and BatchNorm affines."""
    views = split_flat(flat[:1], arch.parameter_layout())
    return {key: view[0].T if key[0] == "weight" else view[0].reshape(-1)
            for key, view in views.items()}


@torch.no_grad()
def _copy(module, **tensors):
    for name, value in tensors.items():
        getattr(module, name).copy_(value)


# ------------------------------------------------------------------------------------------------
# skorch


class SoftmaxSquaredError(nn.Module):
    """Half the mean squared error between the softmax of the logits and the one-hot targets.

    The criterion of ``MLPClassifier(loss='squared_error')``; targets are class indices.

    Examples
    --------
    >>> import torch
    >>> from sknn_tune.interop import SoftmaxSquaredError
    >>> logits = torch.tensor([[0.0, 0.0], [10.0, -10.0]])
    >>> round(SoftmaxSquaredError()(logits, torch.tensor([0, 0])).item(), 4)
    0.0625
    """

    def forward(self, logits, target):
        proba = torch.softmax(logits, dim=-1)
        one_hot = F.one_hot(target.long(), proba.shape[-1]).to(proba.dtype)
        return 0.5 * ((proba - one_hot) ** 2).mean()


def _softmax(logits):
    return torch.softmax(logits, dim=-1)


def _labels(classes, codes):
    return np.asarray(classes)[to_numpy(codes).astype(np.int64)]


class _InModuleDtype:
    """Casts floating inputs to the module's dtype: a float64 model takes float32 data and back."""

    def infer(self, x, **fit_params):
        dtype = next(self.module_.parameters()).dtype
        if isinstance(x, torch.Tensor) and x.is_floating_point() and x.dtype != dtype:
            x = x.to(dtype)
        return super().infer(x, **fit_params)


class SkorchMLPClassifier(_InModuleDtype, NeuralNetClassifier):
    """:class:`skorch.NeuralNetClassifier` that speaks an sknn_tune classifier's labels.

    What :func:`to_skorch` returns for an ``MLPClassifier``: ``fit`` and ``partial_fit`` take the
    labels of ``classes`` (strings, say) and ``predict`` returns them, as the estimator does;
    inside, the module and the criterion see class indices (without ``classes`` it is plain
    skorch). Floating inputs are cast to the module's dtype. Everything else is skorch's.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_iris
    >>> from sknn_tune import MLPClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> labels = np.array(["setosa", "versicolor", "virginica"])[y]
    >>> net = MLPClassifier((8,), max_epochs=3, random_state=0).fit(X, labels).to_skorch()
    >>> type(net).__name__, net.predict(X[:2]).tolist()[0] in labels
    ('SkorchMLPClassifier', True)
    """

    def partial_fit(self, X, y=None, classes=None, **fit_params):
        return super().partial_fit(X, self._codes(y), classes, **fit_params)

    def _codes(self, y):
        if y is None or isinstance(y, torch.Tensor) or self.classes is None:
            return y  # a Dataset, indices already, or plain skorch without classes
        y = np.asarray(y)
        unseen = np.setdiff1d(y, self.classes_)
        if len(unseen):
            raise ValueError(f"y contains labels {unseen.tolist()} that are not in classes_ "
                             f"{self.classes_.tolist()}.")
        return np.searchsorted(self.classes_, y).astype(np.int64)

    def predict(self, X):
        return self.classes_[super().predict(X)]

    @property
    def _default_callbacks(self):
        # The accuracy scorer compares predict's labels with the targets: decode the indices.
        if self.classes is None:
            return super()._default_callbacks
        decode = functools.partial(_labels, self.classes)
        return [(name, EpochScoring("accuracy", name="valid_acc", lower_is_better=False,
                                    target_extractor=decode) if name == "valid_acc" else callback)
                for name, callback in super()._default_callbacks]


class SkorchMLPRegressor(_InModuleDtype, NeuralNetRegressor):
    """:class:`skorch.NeuralNetRegressor` shaped like an sknn_tune regressor.

    What :func:`to_skorch` returns for an ``MLPRegressor``: a single target may be 1-D in ``fit``
    and ``partial_fit``, ``predict`` returns it 1-D (as the estimator does), and inputs and targets
    are cast to the module's dtype. Everything else is skorch's.

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from sknn_tune import MLPRegressor
    >>> X, y = load_diabetes(return_X_y=True)
    >>> net = MLPRegressor((8,), max_epochs=3, random_state=0).fit(X, y / 100).to_skorch()
    >>> type(net).__name__, net.predict(X[:3]).shape
    ('SkorchMLPRegressor', (3,))
    """

    def get_loss(self, y_pred, y_true, *args, **kwargs):
        y_true = torch.as_tensor(y_true, device=y_pred.device).to(y_pred.dtype)
        if y_true.dim() == 1 and y_pred.dim() == 2 and y_pred.shape[1] == 1:
            y_true = y_true[:, None]
        return super().get_loss(y_pred, y_true, *args, **kwargs)

    def predict(self, X):
        out = super().predict(X)
        return out.ravel() if out.ndim == 2 and out.shape[1] == 1 else out


# The engine's loss -> the skorch criterion and its arguments.
_CRITERIA = {
    "softmax_log_loss": (nn.CrossEntropyLoss, {}),
    "softmax_squared_error": (SoftmaxSquaredError, {}),
    "squared_error": (nn.MSELoss, {}),
    "absolute_error": (nn.L1Loss, {}),
    "huber": (nn.HuberLoss, {"delta": HUBER_DELTA}),
}


def to_skorch(estimator, **params):
    """The fitted network as an initialized skorch net, ready to train on.

    A :class:`SkorchMLPClassifier` (a :class:`skorch.NeuralNetClassifier`) or
    :class:`SkorchMLPRegressor` (a :class:`skorch.NeuralNetRegressor`) whose module is
    :func:`to_torch`'s, with the estimator's ``lr``, ``batch_size``, ``max_epochs``, optimizer
    (the ``torch.optim`` class with the same momentum, betas, rho and weight decay, and the
    optimizer state the estimator's training left, so ``partial_fit`` continues where it stopped)
    and loss as the criterion. Its ``predict`` and ``predict_proba`` equal the estimator's.

    Parameters
    ----------
    estimator : MLPClassifier or MLPRegressor
        A fitted estimator.
    **params
        skorch parameters that replace or add to the translated ones, e.g. ``callbacks``,
        ``max_epochs``, ``train_split``, ``device``, ``verbose``.

    Returns
    -------
    net : SkorchMLPClassifier or SkorchMLPRegressor
        The initialized net.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If the estimator is not fitted.

    Notes
    -----
    The criteria are ``CrossEntropyLoss`` (classifier, ``loss='log_loss'``),
    :class:`SoftmaxSquaredError` (classifier, ``loss='squared_error'``), ``MSELoss``, ``L1Loss``
    and ``HuberLoss(delta=1)`` (regressor). ``MSELoss`` is twice the estimator's
    ``'squared_error'`` (half the mean squared error), so plain SGD steps twice as far in skorch;
    the adaptive optimizers do not notice the factor. Weight decay applies to the weight matrices
    only, as in the estimator (a skorch parameter group exempts the biases and BatchNorm).
    With ``early_stopping`` the net holds out ``validation_fraction`` of the data (stratified
    for a classifier) and has an ``EarlyStopping`` callback on the validation loss with the
    estimator's ``patience`` and ``tol``. Nothing in skorch corresponds to ``l1``,
    ``noise_std``, ``lr_schedule``, ``class_weight``, ``scoring`` or sample weights: add skorch
    callbacks (``LRScheduler``, say) for what is needed. ``fit`` in skorch also starts from the
    exported weights (skorch keeps a module instance) but with a fresh optimizer.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_iris
    >>> from sknn_tune import MLPClassifier
    >>> from sknn_tune.interop import to_skorch
    >>> X, y = load_iris(return_X_y=True)
    >>> labels = np.array(["setosa", "versicolor", "virginica"])[y]
    >>> clf = MLPClassifier((8,), max_epochs=5, random_state=0).fit(X, labels)
    >>> net = to_skorch(clf)
    >>> type(net).__name__, net.lr, net.batch_size, net.optimizer.__name__
    ('SkorchMLPClassifier', 0.001, 200, 'Adam')
    >>> bool((net.predict(X) == clf.predict(X)).all())
    True
    >>> net = net.partial_fit(X, labels)  # one more epoch, in skorch
    >>> bool(net.history[-1, "train_loss"] < clf.history_["train_loss"].iloc[-1])
    True
    """
    module, sources = _build(estimator, None)
    trainer = estimator.model_
    config, member = trainer.config, trainer.members[0]
    if config.architecture.loss not in _CRITERIA:  # a multilabel classifier's sigmoid losses
        raise ValueError(
            f"to_skorch has no skorch net for a multilabel {type(estimator).__name__} (loss "
            f"{config.architecture.loss!r}): use to_torch(), whose logits give predict_proba "
            "through torch.sigmoid, in a skorch.NeuralNet with BCEWithLogitsLoss.")
    if config.optimizer not in OPTIMIZERS:  # L-BFGS, scikit-learn's update rules
        raise ValueError(
            f"to_skorch continues training with a torch.optim optimizer; this model trained with "
            f"{config.optimizer!r}, which has none. Use to_torch() and pick an optimizer.")
    classifier = config.architecture.loss.startswith("softmax_")
    optimizer_entry = OPTIMIZERS[config.optimizer]
    optimizer = optimizer_entry.torch_class
    criterion, criterion_args = _CRITERIA[config.architecture.loss]
    translated = {
        "criterion": criterion, "optimizer": optimizer, "lr": member.lr,
        "max_epochs": member.max_epochs,
        # The estimator's batch size (the stack's is a full batch's padded width when larger).
        "batch_size": AUTO_BATCH_SIZE if estimator.batch_size == "auto" else estimator.batch_size,
        "iterator_train__shuffle": True, "train_split": None, "device": str(usable_device(config.device)),
        "verbose": int(estimator.verbose),
        **{f"criterion__{k}": v for k, v in criterion_args.items()},
        **{f"optimizer__{k}": v for k, v in optimizer_entry.torch_kwargs(member).items()},
        "optimizer__weight_decay": member.weight_decay,
    }
    if member.weight_decay > 0:
        # The estimator decays the weight matrices only.
        translated["optimizer__param_groups"] = [
            (name, {"weight_decay": 0.0}) for name, (kind, _) in sources.items() if kind != "weight"]
    if member.early_stopping:
        translated["train_split"] = ValidSplit(estimator.validation_fraction, stratified=classifier)
        translated["callbacks"] = [("early_stopping", EarlyStopping(
            monitor="valid_loss", patience=member.patience, threshold=member.tol,
            threshold_mode="abs", load_best=member.restore_best_weights))]
    if classifier:
        translated |= {"classes": estimator.classes_, "predict_nonlinearity": _softmax}
    net_class = SkorchMLPClassifier if classifier else SkorchMLPRegressor
    net = net_class(module, **{**translated, **params}).initialize()
    if net.module_ is module and net.optimizer is optimizer:
        _load_optimizer_state(net.optimizer_, dict(module.named_parameters()), sources, trainer)
    return net


def _load_optimizer_state(optimizer, parameters, sources, trainer):
    """Put the engine's optimizer state (same names as torch.optim's) into ``optimizer``."""
    n_steps = float(trainer.steps[0, 0])
    if n_steps == 0 or not trainer.state:
        return
    arch = trainer.config.architecture
    # Parameter-shaped state only; torch.optim derives Adam's beta powers from the step count.
    state = {name: _torch_blocks(trainer.state[name], arch)
             for name in OPTIMIZERS[trainer.config.optimizer].state_names}
    # torch.optim keeps the step count as a float scalar tensor (SGD has none).
    step_dtype = torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32
    has_step = not isinstance(optimizer, torch.optim.SGD)
    for param_name, source in sources.items():
        param = parameters[param_name]
        entry = {name: blocks[source].to(param).clone() for name, blocks in state.items()}
        if has_step:
            entry["step"] = torch.tensor(n_steps, dtype=step_dtype)
        optimizer.state[param] = entry
