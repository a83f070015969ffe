"""Saving fitted estimators in a file that ``torch.load(..., weights_only=True)`` reads.

Pickle (and joblib) can run any code while it loads a file, so a pickled model is only as safe as
its source. :func:`save` writes a dict of tensors and plain Python values instead (see
:mod:`sknn_tune._plain`); :func:`load` reads it with the weights-only unpickler and rebuilds the
estimator from a fixed list of classes. The file holds the constructor parameters, the fitted
attributes and the trained model: the engine's trainer as its own ``__getstate__`` gives it (the
weights, the optimizer state, the early-stopping state and the training log, on the CPU), so an
attribute the trainer gains is saved without a change here.
"""

import pickle
import warnings

import torch
from sklearn.utils.validation import check_is_fitted

from . import neural_network
from ._base import _is_fitted_attribute
from ._engine import StackedTrainer
from ._engine.device import resolve_device
from ._plain import NotPlainDataError, from_plain, to_plain
from ._version import __version__
from .classifier import MLPClassifier
from .regressor import MLPRegressor

FORMAT = "sknn_tune.save"
# Raise when the layout of the file changes; load reads every version up to this one.
VERSION = 1
# name in the file -> class (scikit-learn's signature under its module's name)
_ESTIMATORS = {
    **{cls.__name__: cls for cls in (MLPClassifier, MLPRegressor)},
    **{f"neural_network.{cls.__name__}": cls
       for cls in (neural_network.MLPClassifier, neural_network.MLPRegressor)},
}
_NAMES = {cls: name for name, cls in _ESTIMATORS.items()}
_PLAIN_PARAMETER = ("plain data: a str, int, float, bool or None, a torch.device, or a list, tuple "
                    "or dict of those")


def save(estimator, path):
    """Save a fitted estimator in a file that loads without pickle.

    The file is written with :func:`torch.save` and holds only tensors and plain Python values
    (str, int, float, bool, None, lists, tuples and dicts), so that :func:`load` can read it with
    ``torch.load(..., weights_only=True)``, which runs no code from the file, unlike pickle. It
    keeps everything the estimator knows: its parameters, its fitted attributes (``classes_``,
    ``history_``, ...) and the trained model with its optimizer state, so the loaded estimator
    predicts the same and continues training (``partial_fit``, ``warm_start``) as this one would.
    Tensors are saved on the CPU, whatever device the model trained on.

    Parameters
    ----------
    estimator : MLPClassifier or MLPRegressor
        A fitted estimator. Its parameters must be plain data: a ``random_state`` that is a
        :class:`numpy.random.RandomState` or a callable ``scoring`` cannot be saved.
    path : str, os.PathLike or file-like object
        Where to write; a file-like object must be open for writing bytes.

    Raises
    ------
    TypeError
        If ``estimator`` is not an :class:`MLPClassifier` or :class:`MLPRegressor`.
    sklearn.exceptions.NotFittedError
        If ``estimator`` is not fitted.
    ValueError
        If a parameter is not plain data; the message names it.

    See Also
    --------
    load : Read the file back.

    Examples
    --------
    >>> import io
    >>> import torch
    >>> from sklearn.datasets import load_iris
    >>> from sknn_tune import MLPClassifier, load, save
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = MLPClassifier((8,), max_epochs=3, random_state=0).fit(X, y)
    >>> file = io.BytesIO()  # or a path such as "model.pt"
    >>> save(clf, file)
    >>> _ = file.seek(0)
    >>> content = torch.load(file, weights_only=True)
    >>> content["estimator"], content["params"]["hidden_layer_sizes"]
    ('MLPClassifier', (8,))
    """
    name = _NAMES.get(type(estimator))
    if name is None:
        raise TypeError(
            f"save() takes a fitted MLPClassifier or MLPRegressor; got "
            f"{type(estimator).__name__}. Save the last step of a pipeline, or pickle other "
            "objects with joblib.")
    check_is_fitted(estimator)
    params = {}
    for param, value in estimator.get_params(deep=False).items():
        try:
            params[param] = to_plain(value, param)
        except NotPlainDataError as error:
            raise ValueError(
                f"Cannot save {name}: its parameter {param}={value!r} is not {_PLAIN_PARAMETER} "
                f"({error}). Set it to such a value with set_params (an int seed for "
                "random_state, a scorer's name for scoring) and save again, or pickle the "
                "estimator with joblib.") from None
    attributes = {attribute: value for attribute, value in vars(estimator).items()
                  if _is_fitted_attribute(attribute) and attribute != "model_"}
    torch.save({
        "format": FORMAT,
        "version": VERSION,
        "sknn_tune_version": __version__,
        "estimator": name,
        "params": params,
        "attributes": to_plain(attributes, "attributes"),
        "model": to_plain(estimator.model_.__getstate__(), "model_"),
    }, path)


def load(path, device="cpu"):
    """Load an estimator that :func:`save` wrote, without unpickling code.

    The file is read with ``torch.load(path, map_location="cpu", weights_only=True)``, which
    builds only tensors and plain Python values; the estimator is rebuilt from those. It predicts
    exactly as the saved one did, has the same ``history_`` and fitted attributes, and continues
    training (``partial_fit``, ``warm_start``) from the same weights and optimizer state.

    Parameters
    ----------
    path : str, os.PathLike or file-like object
        A file written by :func:`save`.
    device : str or torch.device, default='cpu'
        Where the model goes: 'cpu' loads a model trained on a GPU on a machine without one;
        'cuda', 'cuda:N' or 'auto' (CUDA when available) put it on a GPU. The estimator's
        ``device`` parameter is kept as saved; it decides where a fresh ``fit`` trains, and
        where ``partial_fit`` or ``warm_start`` continue (the model moves there). On any device
        the model keeps the dtype it was saved in, unless the estimator's ``dtype`` names
        another.

    Returns
    -------
    estimator : MLPClassifier or MLPRegressor
        The fitted estimator.

    Raises
    ------
    ValueError
        If the file is not one :func:`save` wrote (a pickle, say), was written by a newer version
        of sknn_tune's format, or ``device`` is not available.

    See Also
    --------
    save : Write the file.

    Examples
    --------
    >>> import io
    >>> from sklearn.datasets import load_diabetes
    >>> from sknn_tune import MLPRegressor, load, save
    >>> X, y = load_diabetes(return_X_y=True)
    >>> reg = MLPRegressor((16,), max_epochs=3, random_state=0).fit(X, y)
    >>> file = io.BytesIO()  # or a path such as "model.pt"
    >>> save(reg, file)
    >>> _ = file.seek(0)
    >>> loaded = load(file)
    >>> bool((loaded.predict(X) == reg.predict(X)).all())
    True
    >>> loaded.n_iter_, len(loaded.partial_fit(X, y).history_)
    (3, 4)
    """
    device = resolve_device(device)
    try:
        with warnings.catch_warnings():  # a pickle gets the error below, not torch's hints
            warnings.filterwarnings("ignore", "Detected pickle protocol", UserWarning)
            content = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, EOFError, KeyError, RuntimeError) as error:
        first_line = str(error).strip().partition("\n")[0]
        raise ValueError(
            f"{path!r} is not a file written by sknn_tune.save: torch.load(weights_only=True) "
            f"cannot read it ({type(error).__name__}: {first_line}). A model pickled with pickle "
            "or joblib loads with joblib.load, which can run code from the file: only load such "
            "files from a source you trust.") from error
    if not isinstance(content, dict) or content.get("format") != FORMAT:
        raise ValueError(f"{path!r} is not a file written by sknn_tune.save: it has no "
                         f"'format': {FORMAT!r} entry.")
    version = content.get("version")
    if type(version) is not int or not 1 <= version <= VERSION:
        raise ValueError(
            f"{path!r} was written in version {version!r} of sknn_tune's format (by sknn_tune "
            f"{content.get('sknn_tune_version')}); this sknn_tune reads versions 1 to {VERSION}. "
            "Upgrade sknn_tune to load it.")
    cls = _ESTIMATORS.get(content.get("estimator"))
    if cls is None:
        raise ValueError(f"{path!r} holds a {content.get('estimator')!r}, which sknn_tune cannot "
                         f"load; it loads {sorted(_ESTIMATORS)}.")
    estimator = cls().set_params(**from_plain(content["params"]))
    vars(estimator).update(from_plain(content["attributes"]))
    trainer = object.__new__(StackedTrainer)
    trainer.__setstate__(from_plain(content["model"]))
    # The model keeps the dtype it was saved in (nothing trained is rounded away) unless the
    # estimator asks for another.
    dtype = trainer.config.dtype if estimator.dtype is None else getattr(torch, estimator.dtype)
    estimator.model_ = trainer.to(device, dtype)
    return estimator
