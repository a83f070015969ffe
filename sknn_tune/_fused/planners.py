"""What to train: the fits a search, a cross-validation or a bagging ensemble will make, planned.

A planner turns "candidate ``params`` on fold ``fold``" into a :class:`Planned` member, exactly
as the estimator's own ``fit`` would plan it, or None when that fit cannot be fused (another
estimator, a fit parameter the engine does not take, a parameter error: scikit-learn then fits
it itself). Two planners: :class:`CVPlanner` for candidates x folds of one data set, and
:class:`BaggingPlanner` for an ensemble's members, planned beforehand by the ensemble.

The data are held by reference. A bare estimator's folds are row indices into one validated
``X``, validated once, whose targets every fold's plans share (:class:`Block`); with a pipeline
before the network, each distinct (fold, prefix parameters) is transformed once, and its block
lives as long as a plan refers to it.
"""

import contextlib
import threading
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
from sklearn import config_context, get_config
from sklearn.base import clone
from sklearn.model_selection import check_cv
from sklearn.pipeline import Pipeline
from sklearn.utils import check_array

from .._base import _BaseMLP
from .._engine import SCHEDULES
from .._engine.sparse_rows import as_rows
from .._fit_protocol import INPUT_DTYPES, IndexedRows
from .._sklearn_compat import _check_method_params, _safe_split
from .registry import array_digest, data_digest_of, fit_key, input_fingerprint, resume_key

__all__ = [
    "RESOURCE_PARAMETER",
    "BaggingPlanner",
    "Block",
    "CVPlanner",
    "DeviceCopies",
    "Planned",
    "same_splits",
    "split_estimator",
    "spread_request",
]

RESOURCE_PARAMETER = "max_epochs"
SPREAD_DEVICES = ("auto", "cuda")  # an estimator's device that lets its stacks go to any GPU


def split_estimator(estimator):
    """``(prefix, mlp)``: the steps before a final sknn_tune MLP (or None), and the MLP; or
    ``(None, None)`` when the estimator is not one the engine can fuse."""
    if isinstance(estimator, _BaseMLP):
        return None, estimator
    if isinstance(estimator, Pipeline) and isinstance(estimator.steps[-1][1], _BaseMLP):
        prefix = estimator[:-1] if len(estimator.steps) > 1 else None
        return prefix, estimator.steps[-1][1]
    return None, None


def spread_request(device):
    """An estimator's ``device`` when it lets its stacks go to any GPU ('auto', 'cuda'), else
    None ('cpu', 'cuda:1': exactly there)."""
    name = str(device)
    return name if name in SPREAD_DEVICES else None


def same_splits(splits):
    """A CV object that yields exactly ``splits`` (so scoring uses the folds we trained on)."""
    return check_cv([(np.asarray(train), np.asarray(test)) for train, test in splits])


class DeviceCopies:
    """One array's copies on devices, each made once when first asked for and shared (by the
    blocks that train on the array and by the :class:`IndexedRows` that score it)."""

    def __init__(self, X):
        self.X = X
        self._tensors, self._lock = {}, threading.Lock()

    def __call__(self, dtype, device):
        key = (dtype, str(device))
        with self._lock:
            if key not in self._tensors:
                self._tensors[key] = as_rows(self.X, dtype, device)
            return self._tensors[key]


class Block:
    """Rows that members train on: an input ``X`` (validated, by reference) and targets
    aligned with its rows, with their copies on devices, made once and shared by every stack
    and thread that trains on them. ``X``'s copies come from ``copies`` when given (a
    :class:`DeviceCopies` of ``X`` that outlives the block), else are the block's own.
    """

    def __init__(self, X, copies=None):
        self.X = X
        self.Y, self._filled = None, None
        self._shared_X = copies
        self._lock = threading.Lock()
        self._copies = None  # (copies of X, copies of Y), made when a stack first asks

    @property
    def n_rows(self):
        return self.X.shape[0]

    @property
    def nbytes(self):
        X = self.X
        return (X.data.nbytes + X.indices.nbytes + X.indptr.nbytes) if sp.issparse(X) \
            else X.nbytes

    def takes(self, rows, Y):
        """Add the targets ``Y`` of ``rows`` of ``X`` (None: all), one per row; False, adding
        nothing, if they differ from targets already given for one of those rows (another
        encoding of them, which needs a block of its own)."""
        if rows is None:
            if self.Y is None:
                self.Y, self._filled = Y, None
                return True
            return self._filled is None and (Y is self.Y or np.array_equal(Y, self.Y))
        if self.Y is None:
            self.Y = np.zeros((self.n_rows, Y.shape[1]), dtype=Y.dtype)
            self._filled = np.zeros(self.n_rows, dtype=bool)
        if self._filled is None or Y.shape[1] != self.Y.shape[1]:
            return self._filled is None and np.array_equal(self.Y[rows], Y)
        known = self._filled[rows]
        if not np.array_equal(self.Y[rows[known]], Y[known]):
            return False
        self.Y[rows] = Y
        self._filled[rows] = True
        return True

    def tensors(self, dtype, device):
        """``(X, Y)`` on ``device`` in ``dtype``: ``X`` without a copy where it already is
        one (a float64 array for a float64 stack on the CPU)."""
        with self._lock:
            if self._copies is None:  # the targets are complete once a stack trains
                X = DeviceCopies(self.X) if self._shared_X is None else self._shared_X
                self._copies = (X, DeviceCopies(self.Y))
            copies_of_X, copies_of_Y = self._copies
        return copies_of_X(dtype, device), copies_of_Y(dtype, device)

    def release(self):
        """Drop the device copies of :meth:`tensors`: no stack that is still to train needs
        them (the next one to ask makes them again; shared copies of ``X`` stay with their
        owner)."""
        with self._lock:
            self._copies = None

    def __getstate__(self):  # what another process gets: the arrays, none of the copies
        return {"X": self.X, "Y": self.Y, "_filled": self._filled}

    def __setstate__(self, state):
        vars(self).update(state)
        self._shared_X, self._copies, self._lock = None, None, threading.Lock()


class Planned(NamedTuple):
    """One fit the fused stacks can train."""

    key: str  # its fit key: where scikit-learn's fit finds it
    plan: object  # its FitPlan
    block: Block  # the rows it trains on
    resume_key: str | None  # where successive halving finds it again, None: never continued
    spread: str | None  # the estimator's device if it lets the stack go to any GPU, else None


class _Planning:
    """What the plans of one batch share: each input validated once, each array hashed once,
    each block of rows made once."""

    def __init__(self, copies=None):
        self.copies = copies  # DeviceCopies of the search's X, shared with its IndexedRows
        self.inputs = {}  # (estimator class, data key) -> FitInputs
        self.validated = {}  # (estimator class, id(X)) -> (X, validated X)
        self.blocks = {}  # block key -> [Block] (one per encoding of the targets)
        self.block_of = {}  # id(FitInputs) -> (inputs, Block)
        self.digests = {}  # id(array) -> (array, digest)
        self.fingerprints = {}  # id(FitInputs) -> (inputs, fingerprint)

    def fit_inputs(self, mlp, data_key, X, y, sample_weight, rows):
        """The estimator's ``fit_inputs``, once per class and data; ``X`` itself validated once
        per class (later folds skip the finiteness scan of the same array)."""
        key = type(mlp), data_key
        if key not in self.inputs:
            known = self.validated.get((type(mlp), id(X)))
            with config_context(assume_finite=True) if known else contextlib.nullcontext():
                inputs = mlp.fit_inputs(X if known is None else known[1], y, sample_weight,
                                        rows=rows)
            if known is None:
                self.validated[type(mlp), id(X)] = (X, inputs.X)
            else:
                inputs.X = known[1]  # the very same validated array: one block for all folds
            self.inputs[key] = inputs
        return self.inputs[key]

    def block(self, block_key, inputs):
        """The :class:`Block` holding ``inputs``' rows and targets: one per ``block_key`` (the
        identity of the input) and encoding of the targets."""
        if id(inputs) not in self.block_of:
            blocks = self.blocks.setdefault(block_key, [])
            block = next((b for b in blocks if b.X is inputs.X and b.takes(inputs.rows, inputs.Y)),
                         None)
            if block is None:
                shared = self.copies is not None and self.copies.X is inputs.X
                block = Block(inputs.X, self.copies if shared else None)
                block.takes(inputs.rows, inputs.Y)
                blocks.append(block)
            self.block_of[id(inputs)] = (inputs, block)
        return self.block_of[id(inputs)][1]

    def digest(self, array):
        if array is None:
            return array_digest(None)
        if id(array) not in self.digests:
            self.digests[id(array)] = (array, array_digest(array))
        return self.digests[id(array)][1]

    def fingerprint(self, inputs):
        if id(inputs) not in self.fingerprints:
            self.fingerprints[id(inputs)] = (inputs, input_fingerprint(inputs.X, inputs.rows))
        return self.fingerprints[id(inputs)][1]

    def planned(self, mlp, inputs, block, continues):
        """The :class:`Planned` fit of ``mlp`` on ``inputs``."""
        plan = mlp.plan_from(inputs)
        fingerprint = self.fingerprint(inputs)
        key = fit_key(plan, fingerprint, data_digest_of(plan, self.digest))
        resume = None
        # A schedule over max_epochs gives a longer run other lrs: no prefix of it to continue.
        if continues and not SCHEDULES[plan.member.lr_schedule].uses_max_epochs:
            params = {k: v for k, v in plan.params.items()
                      if k not in (mlp.epochs_parameter, "verbose")}
            resume = resume_key(plan, params, fingerprint, seeded=mlp.random_state is not None)
        return Planned(key, plan, block, resume, spread_request(mlp.device))


class CVPlanner:
    """Plans candidates x folds of one estimator on one data set (searches, cross-validation).

    ``continues``: a later batch may continue this one's members (successive halving over
    ``max_epochs``), so plans carry a resume key.
    """

    def __init__(self, estimator, X, y, fit_params, continues=False):
        self.estimator = estimator
        self.X, self.y = X, y
        self.fit_params = fit_params
        self.continues = continues
        self.enabled = (split_estimator(estimator)[1] is not None
                        and self._weight_param_name(estimator) is not False)
        self.copies = None
        self.new_batch()

    def new_batch(self):
        """Forget what is kept per fold number (a batch's splits give other rows under the same
        number: successive halving over n_samples, an unseeded splitter)."""
        self._planning = _Planning(self.copies)

    def rows_by_reference(self):
        """What scikit-learn's fits and scorers get for ``X``: an :class:`IndexedRows` of it
        where the estimator is bare and ``X`` a float array its fit takes as it is (folds are
        then split and scored by index, from the device copy the stacks trained on), else
        ``X`` itself."""
        X = self.X
        if (not self.enabled or split_estimator(self.estimator)[0] is not None
                or not isinstance(X, np.ndarray) or X.ndim != 2 or X.dtype not in INPUT_DTYPES):
            return X
        try:  # as the estimator's fit validates it: finite, and taken without a copy
            if check_array(X, dtype=list(INPUT_DTYPES)) is not X:
                return X
        except ValueError:
            return X  # scikit-learn's fits report it, each as it does
        self.copies = DeviceCopies(X)
        self._planning.copies = self.copies
        return IndexedRows(X, None, self.copies)

    def _weight_param_name(self, estimator):
        """The fit parameter that carries sample weights, None if absent, False if a fit
        parameter is present that fusion does not understand."""
        names = set(self.fit_params)
        if not names:
            return None
        allowed = {"sample_weight"}
        if isinstance(estimator, Pipeline):
            if get_config()["enable_metadata_routing"]:
                # Routed by the steps' requests: fusable when the network, and no step before
                # it, asks for the weights under their own name.
                requests = [step.get_metadata_routing().fit.requests.get("sample_weight")
                            if hasattr(step, "get_metadata_routing") else None
                            for _, step in estimator.steps if step not in (None, "passthrough")]
                if requests[-1] is not True or any(r for r in requests[:-1]):
                    return False
            else:
                allowed = {f"{estimator.steps[-1][0]}__sample_weight"}
        return names.pop() if names <= allowed and len(names) == 1 else False

    def plan(self, params, fold, train):
        """The :class:`Planned` fit of candidate ``params`` on fold ``fold`` (training rows
        ``train``), or None if it cannot be fused."""
        estimator = clone(self.estimator).set_params(**params)
        prefix, mlp = split_estimator(estimator)
        if mlp is None:
            return None
        weight_name = self._weight_param_name(estimator)
        planning = self._planning
        try:  # a bad candidate is left to scikit-learn, which reports it with error_score
            if prefix is None:
                # Rows of the one X: validated whole, by reference.
                data_key = (fold, weight_name)
                weights = self.fit_params[weight_name] if weight_name else None
                inputs = planning.fit_inputs(mlp, data_key, self.X, self.y, weights,
                                             np.asarray(train))
                block_key = ("X", id(inputs.X))
            else:
                # The fold through the prefix, once per prefix parameters: the transformed rows
                # are the network's input (the steps may change their input in place: each fits
                # on its own copy of the fold).
                data_key = (fold, weight_name, repr(sorted(prefix.get_params().items())))
                if (type(mlp), data_key) not in planning.inputs:
                    X_train, y_train = _safe_split(estimator, self.X, self.y, train)
                    weights = None
                    if weight_name:  # indexed as scikit-learn's _fit_and_score does
                        weights = _check_method_params(self.X, self.fit_params, train)[weight_name]
                    X_train = clone(prefix).fit_transform(X_train, y_train)
                    planning.fit_inputs(mlp, data_key, X_train, y_train, weights, None)
                inputs = planning.inputs[type(mlp), data_key]
                block_key = data_key
            block = planning.block(block_key, inputs)
            return planning.planned(mlp, inputs, block, self.continues)
        except Exception:
            return None


class BaggingPlanner:
    """Plans the members of a bagging ensemble: member ``i`` is the estimator the ensemble
    gives, fitted on rows ``rows`` (None: all, weighted) of ``X`` with its feature subset.

    The ensemble draws each member's seed, rows and features as scikit-learn's bagging does
    (:meth:`add`), in order; :meth:`plan` then hands the session member ``i`` as "fold" ``i`` of
    its one candidate.
    """

    continues = False
    enabled = True

    def __init__(self):
        self.members = []
        self._planning = _Planning()
        self._subsets = {}  # feature subset -> those columns of X

    def add(self, estimator, X, y, sample_weight, rows, features):
        """Plan ``estimator`` on rows ``rows`` of ``X[:, features]`` (``features`` None: all
        columns) with ``sample_weight``; whether it can be fused (else scikit-learn's fit of
        this member does what it does)."""
        prefix, mlp = split_estimator(estimator)
        planning = self._planning
        try:
            data_key = ("member", len(self.members))
            if prefix is not None:  # its own transformed rows
                # Indexed as scikit-learn's bagging indexes them (rows, then columns): the
                # prefix sees the same array, memory layout included, and so rounds the same.
                X_member = X if rows is None else X[rows]
                if features is not None:
                    X_member = X_member[:, features]
                y_member = y if rows is None else y[rows]
                X_member = prefix.fit_transform(X_member, y_member)
                inputs = planning.fit_inputs(mlp, data_key, X_member, y_member, sample_weight,
                                             None)
                block_key = data_key
            else:
                if features is not None:  # the subset's columns, once per subset
                    subset = features.tobytes()
                    if subset not in self._subsets:
                        self._subsets[subset] = X[:, features]
                    X = self._subsets[subset]
                inputs = planning.fit_inputs(mlp, data_key, X, y, sample_weight, rows)
                block_key = ("X", id(inputs.X))
            block = planning.block(block_key, inputs)
            self.members.append(planning.planned(mlp, inputs, block, False))
            return True
        except Exception:
            return False

    def new_batch(self):
        pass

    def plan(self, params, fold, train):
        return self.members[fold]
