"""The fit protocol between the estimators and whoever trains many fits at once (sknn_tune._fit_protocol).

``fit`` must be exactly ``plan_fit`` + training + ``adopt``; a provider's member is adopted without
training; the fit key identifies the data itself, not a summary of it; and the estimators' modules
know nothing of the search.

Estimators run where ``device='auto'`` resolves (the run's ``--device``); a fit and plan + training
+ adopt are two trainings, compared with ``assert_same_training`` (bit for bit on the CPU).
"""

import ast
import pathlib
import pickle
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from conftest import assert_same_history, assert_same_training
from sklearn.base import clone
from sklearn.datasets import make_classification

from sknn_tune import MLPClassifier, MLPRegressor
from sknn_tune._engine import MemberData, StackedTrainer
from sknn_tune._engine.sparse_rows import as_rows
from sknn_tune._fit_protocol import providing
from sknn_tune._fused import registry as registry_module
from sknn_tune._fused.registry import Registry, fit_key, serving
from sknn_tune.exceptions import DivergenceError

PACKAGE = pathlib.Path(__file__).parents[1] / "sknn_tune"
X, Y = make_classification(120, 5, n_informative=3, n_redundant=0, n_classes=3, random_state=0)


def clf(**params):
    return MLPClassifier(**{"hidden_layer_sizes": (8,), "max_epochs": 3, "batch_size": 32,
                            "random_state": 0, **params})


def train(plan):
    trainer = StackedTrainer(plan.config, [plan.member])
    as_tensor = lambda a: torch.as_tensor(a, dtype=plan.config.dtype,  # noqa: E731
                                          device=plan.config.device)
    monitor = None if plan.monitor is None else (
        lambda trainer, members: [plan.monitor(trainer, i) for i in members])
    X = as_rows(plan.X, plan.config.dtype, plan.config.device)  # dense or sparse rows
    trainer.fit(X, as_tensor(plan.Y), [plan.data], monitor=monitor)
    return trainer


@pytest.mark.parametrize("params", [{}, {"early_stopping": True, "scoring": "accuracy"}])
def test_fit_is_plan_train_adopt(params):
    fitted = clf(**params).fit(X, Y)
    est = clf(**params)
    plan = est.plan_fit(X, Y)
    assert est.adopt(plan, train(plan)) is est
    assert_same_training(est.predict_proba(X), fitted.predict_proba(X))
    assert_same_history(est.history_.drop(columns="seconds"), fitted.history_.drop(columns="seconds"))
    assert (est.n_iter_, est.best_epoch_) == (fitted.n_iter_, fitted.best_epoch_)


def test_plan_fit_validates_parameters_and_inputs():
    with pytest.raises(ValueError, match="lr"):
        clf(lr=-1.0).plan_fit(X, Y)
    with pytest.raises(ValueError, match="0 sample"):
        clf().plan_fit(X[:0], Y[:0])


def test_adopt_rejects_another_network_and_raises_on_divergence():
    plan = clf().plan_fit(X, Y)
    other = clf(hidden_layer_sizes=(4,)).plan_fit(X, Y)
    with pytest.raises(ValueError, match="single trained member"):
        clf().adopt(plan, train(other))
    reg = MLPRegressor((8,), optimizer="sgd", lr=1e6, max_epochs=2, random_state=0)
    plan = reg.plan_fit(X, Y * 1e3)
    with pytest.raises(DivergenceError):
        reg.adopt(plan, train(plan))


def test_fit_adopts_the_provided_member_without_training(monkeypatch):
    plan = clf().plan_fit(X, Y)
    member = train(plan)
    trained = []
    monkeypatch.setattr(StackedTrainer, "fit", lambda self, *a, **k: trained.append(self))
    asked = []
    with providing(lambda plan: asked.append(plan) or member):
        est = clf().fit(X, Y)
    assert est.model_ is member and trained == [] and len(asked) == 1
    with providing(lambda plan: None):  # nothing provided: fit trains itself
        clf().fit(X, Y)
    assert len(trained) == 1


def test_serving_takes_each_registered_member_once_or_keeps_it():
    plan = clf().plan_fit(X, Y)
    first, second = train(plan), train(plan)
    registry = Registry()
    registry.register(fit_key(plan), plan, [first, second])
    with serving(registry, keep=True):
        assert clf().fit(X, Y).model_ is first
        assert clf().fit(X, Y).model_ is first
    with serving(registry):
        assert clf().fit(X, Y).model_ is first
        assert clf().fit(X, Y).model_ is second
        assert registry == {}
        assert clf().fit(X, Y).model_ not in (first, second)  # trained itself


def _key(params, X, Y, data):
    """The fit key of a plan with these parameters, input, targets and rows."""
    return fit_key(SimpleNamespace(params=params, X=X, rows=None, Y=Y, data=data))


def test_fit_key_digests_the_data_not_a_summary():
    # Rows [1, 0, 1] and [0, 2, 0] have equal row sums and weighted row sums (the old digest).
    data = MemberData(np.arange(1), np.ones(1))
    params = clf().get_params()
    one = _key(params, np.array([[1.0, 0.0, 1.0]]), np.ones((1, 1)), data)
    two = _key(params, np.array([[0.0, 2.0, 0.0]]), np.ones((1, 1)), data)
    assert one != two
    assert one == _key(params, np.array([[1.0, 0.0, 1.0]]), np.ones((1, 1)), data)
    # Same numbers, other rows, weights, dtype or parameters: other fits.
    X3 = np.array([[1.0, 0.0, 1.0], [0.0, 2.0, 0.0]])
    rows = [MemberData(np.array([0]), np.ones(1)), MemberData(np.array([1]), np.ones(1)),
            MemberData(np.array([0]), np.full(1, 2.0)),
            MemberData(np.array([0]), np.ones(1), np.array([1]), np.ones(1))]
    keys = {_key(params, X3, np.ones((2, 1)), d) for d in rows}
    keys |= {_key(params, X3.astype(np.float32), np.ones((2, 1)), rows[0]),
             _key({**params, "lr": 0.5}, X3, np.ones((2, 1)), rows[0])}
    assert len(keys) == 6


def test_clones_share_a_key_across_random_states():
    rs = np.random.RandomState(0)
    one, two = clone(clf(random_state=rs)), clone(clf(random_state=rs))
    assert fit_key(one.plan_fit(X, Y)) == fit_key(two.plan_fit(X, Y))


def _imported_modules(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            yield "." * node.level + (node.module or ""), [alias.name for alias in node.names]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []


@pytest.mark.parametrize("module", ["_base.py", "classifier.py", "regressor.py",
                                    "_fit_protocol.py"])
def test_estimators_know_nothing_of_the_search(module):
    for name, names in _imported_modules(PACKAGE / module):
        assert "search" not in name and "search" not in names, (module, name)


def test_private_sklearn_names_only_through_the_compat_module():
    for path in PACKAGE.rglob("*.py"):
        if path.name == "_sklearn_compat.py":
            continue
        for name, names in _imported_modules(path):
            if not name.startswith("sklearn"):
                continue
            private = [n for n in [*name.split(".")[1:], *names]
                       if n.startswith("_") and not n.startswith("__")]
            assert not private, f"{path.relative_to(PACKAGE)} imports {name}: {private}"


def test_int_random_state_seeds_and_splits_as_a_random_state_does():
    for seed in (0, 7):
        by_int = clf(random_state=seed, early_stopping=True).plan_fit(X, Y)
        again = clf(random_state=seed, early_stopping=True).plan_fit(X, Y)
        by_state = clf(random_state=np.random.RandomState(seed), early_stopping=True).plan_fit(X, Y)
        for other in (again, by_state):
            assert other.member.seed == by_int.member.seed
            np.testing.assert_array_equal(other.data.val_rows, by_int.data.val_rows)


def _counting(method, calls):
    def counted(self, *args, **kwargs):
        calls.append(self)
        return method(self, *args, **kwargs)
    return counted


def test_history_follows_the_model():
    estimator = clf(max_epochs=2, patience=None)
    assert not hasattr(estimator, "history_")  # unfitted
    estimator.fit(X, Y)
    table = estimator.history_
    assert table is estimator.history_  # made once, when first read
    assert list(table["epoch"]) == [1, 2]
    estimator.partial_fit(X, Y)
    assert list(estimator.history_["epoch"]) == [1, 2, 3]
    with pytest.raises(ValueError):
        estimator.partial_fit(X[:, :3], Y)  # fails validation: the fitted model stays
    assert list(estimator.history_["epoch"]) == [1, 2, 3]
    refit = pickle.loads(pickle.dumps(estimator))
    assert refit.history_.equals(estimator.history_)


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
def test_registry_finds_a_fit_by_its_exact_data_without_hashing_it(sparse, monkeypatch):
    X, Y = make_classification(1000, 50, n_informative=5, n_classes=3, random_state=0)
    data = sp.csr_matrix(X) if sparse else X
    plan = clf().plan_fit(data, Y)
    member = train(plan)
    registry = Registry()
    registry.register(fit_key(plan), plan, member)
    # a copy of X, as scikit-learn's _safe_split hands each fit: found, and X is never hashed
    hashed = []
    digest = registry_module.array_digest
    monkeypatch.setattr(registry_module, "array_digest",
                        lambda *arrays: hashed.append(sum(a.size for a in arrays if a is not None))
                        or digest(*arrays))
    with serving(registry, keep=True):
        assert clf().fit(data.copy(), Y).model_ is member
    assert max(hashed) < X.size / 4  # sampled rows and the targets, not all of X
    # X that differs in one value outside the sampled rows (and -0.0 for 0.0): not the same fit
    for value in (X[1, 2] + 1.0, -0.0 if X[1, 2] == 0 else np.nextafter(X[1, 2], 9.0)):
        other = X.copy()
        other[1, 2] = value
        other = sp.csr_matrix(other) if sparse else other
        assert registry.key_of(clf().plan_fit(other, Y)) is None
    zero, negative_zero = X.copy(), X.copy()
    zero[1, 2], negative_zero[1, 2] = 0.0, -0.0
    assert not registry_module.same_bytes(zero, negative_zero)
    registry.clear()
    assert registry.key_of(plan) is None and not registry.inputs
