"""sknn_tune.neural_network against scikit-learn's own MLP: the same fits, number for number.

On the CPU in float64 the same ``random_state`` must give scikit-learn's weights, loss curve,
validation scores and iteration count (to float rounding: the engine's matrix products sum in
another order). scikit-learn's own test suite for its MLP runs against these classes too (CI,
through tests/sklearn_suites).
"""

import pickle
import re
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn import neural_network as sk
from sklearn.datasets import load_digits, make_multilabel_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.neural_network._stochastic_optimizers import AdamOptimizer, SGDOptimizer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from sknn_tune import FusedGridSearchCV, neural_network
from sknn_tune._engine import MemberConfig
from sknn_tune._engine.optimizers import SKLEARN_OPTIMIZERS

RTOL = 1e-10  # relative, after a few epochs of float64

X_MULTI, Y_MULTI = load_digits(n_class=3, return_X_y=True)
X_MULTI = MinMaxScaler().fit_transform(X_MULTI)[:150]
Y_MULTI = Y_MULTI[:150]
X_BINARY, Y_BINARY = X_MULTI[Y_MULTI < 2], Y_MULTI[Y_MULTI < 2]
X_LABELS, Y_LABELS = make_multilabel_classification(120, 8, n_classes=3, random_state=0)
X_REG, Y_REG = make_regression(120, 6, n_targets=2, noise=5.0, random_state=0)
Y_REG = StandardScaler().fit_transform(Y_REG)
TASKS = {
    "binary": ("classifier", X_BINARY, np.array(["no", "yes"])[Y_BINARY]),
    "multiclass": ("classifier", X_MULTI, Y_MULTI),
    "multilabel": ("classifier", X_LABELS, Y_LABELS),
    "regression": ("regressor", X_REG, Y_REG[:, 0]),
    "multioutput": ("regressor", X_REG, Y_REG),
    "poisson": ("regressor", X_REG, np.exp(Y_REG[:, 0])),
}
SOLVERS = {
    "adam": {"solver": "adam"},
    "sgd_nesterov": {"solver": "sgd", "learning_rate_init": 0.02},
    "sgd_momentum_invscaling": {"solver": "sgd", "nesterovs_momentum": False,
                                "learning_rate": "invscaling", "learning_rate_init": 0.2},
    "sgd_adaptive": {"solver": "sgd", "learning_rate": "adaptive", "tol": 10.0,
                     "n_iter_no_change": 1},
    "lbfgs": {"solver": "lbfgs"},
}


def pair(kind, **params):
    """(ours, scikit-learn's) with ``params``."""
    if kind == "classifier":
        return neural_network.MLPClassifier(device="cpu", **params), sk.MLPClassifier(**params)
    return neural_network.MLPRegressor(device="cpu", **params), sk.MLPRegressor(**params)


def fit_both(kind, X, y, fit=("fit",), sample_weight=None, **params):
    ours, theirs = pair(kind, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", RuntimeWarning)  # scikit-learn's overflows
        for method in fit:
            kwargs = {} if sample_weight is None else {"sample_weight": sample_weight}
            if method == "partial_fit" and kind == "classifier":
                kwargs["classes"] = np.unique(y) if np.ndim(y) == 1 else None
            try:
                getattr(theirs, method)(X, y, **kwargs)
            except ValueError as error:  # a diverging fit: ours must fail the same way
                with pytest.raises(ValueError, match=re.escape(str(error))):
                    getattr(ours, method)(X, y, **kwargs)
                return None, None
            getattr(ours, method)(X, y, **kwargs)
    return ours, theirs


def assert_same_fit(ours, theirs, rtol=RTOL):
    assert ours.n_iter_ == theirs.n_iter_
    assert ours.t_ == theirs.t_
    assert len(ours.coefs_) == len(theirs.coefs_) == ours.n_layers_ - 1
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_allclose(a, b, rtol=0, atol=rtol * np.abs(b).max())
    np.testing.assert_allclose(ours.loss_, theirs.loss_, rtol=rtol)
    for name in ("loss_curve_", "validation_scores_"):
        if getattr(theirs, name, None) is not None:
            np.testing.assert_allclose(getattr(ours, name), getattr(theirs, name), rtol=rtol)
        else:
            assert getattr(ours, name, None) is None
    for name in ("best_loss_", "best_validation_score_", "out_activation_", "n_outputs_"):
        assert getattr(ours, name, None) == pytest.approx(getattr(theirs, name, None), rel=rtol)


@pytest.mark.parametrize("solver", sorted(SOLVERS))
@pytest.mark.parametrize("activation", ["relu", "logistic", "tanh", "identity"])
@pytest.mark.parametrize("task", sorted(TASKS))
def test_same_fit_as_sklearn(task, activation, solver):
    kind, X, y = TASKS[task]
    params = {"hidden_layer_sizes": (7, 5), "activation": activation, "max_iter": 8,
              "batch_size": 32, "alpha": 1e-3, "random_state": 4, **SOLVERS[solver]}
    if task == "poisson":
        params["loss"] = "poisson"
    ours, theirs = fit_both(kind, X, y, **params)
    if ours is None:
        return  # both diverged, with the same error
    assert_same_fit(ours, theirs)
    if kind == "classifier":
        np.testing.assert_array_equal(ours.predict(X[:40]), theirs.predict(X[:40]))
    else:
        np.testing.assert_allclose(ours.predict(X[:40]), theirs.predict(X[:40]), rtol=RTOL)


@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel", "regression"])
def test_same_early_stopping_as_sklearn(task):
    kind, X, y = TASKS[task]
    ours, theirs = fit_both(kind, X, y, hidden_layer_sizes=(9,), solver="sgd",
                            learning_rate_init=0.1, early_stopping=True, validation_fraction=0.2,
                            n_iter_no_change=3, tol=1e-3, max_iter=60, random_state=1)
    assert theirs.n_iter_ < 60, "the test must stop early"
    assert_same_fit(ours, theirs)


def test_same_convergence_stop_and_weights_as_sklearn():
    # defaults (adam, batch 'auto', tol 1e-4): training stops once the loss stalls
    kind, X, y = TASKS["multiclass"]
    ours, theirs = fit_both(kind, X, y, hidden_layer_sizes=(12,), learning_rate_init=0.01,
                            max_iter=500, random_state=0)
    assert theirs.n_iter_ < 500
    assert_same_fit(ours, theirs, rtol=1e-8)


@pytest.mark.parametrize("shuffle", [True, False])
def test_same_sample_weights_and_shuffle_as_sklearn(shuffle):
    kind, X, y = TASKS["multiclass"]
    weight = np.random.RandomState(0).uniform(0.0, 2.0, len(y))
    ours, theirs = fit_both(kind, X, y, sample_weight=weight, hidden_layer_sizes=(6,),
                            solver="sgd", max_iter=5, batch_size=40, shuffle=shuffle,
                            random_state=2, alpha=0.01)
    assert_same_fit(ours, theirs)


def test_same_warm_start_and_partial_fit_as_sklearn():
    kind, X, y = TASKS["binary"]
    params = {"hidden_layer_sizes": (6,), "solver": "sgd", "learning_rate": "invscaling",
              "learning_rate_init": 0.3, "max_iter": 4, "random_state": 5}
    ours, theirs = fit_both(kind, X, y, fit=("fit", "fit"), warm_start=True, **params)
    assert_same_fit(ours, theirs)
    assert len(ours.loss_curve_) == 8
    ours, theirs = fit_both(kind, X, y, fit=("partial_fit",) * 3, **params)
    assert_same_fit(ours, theirs)
    ours, theirs = fit_both(kind, X, y, fit=("fit", "partial_fit"), **params)
    assert_same_fit(ours, theirs)


def test_random_state_instance_is_drawn_from_as_sklearn():
    _kind, X, y = TASKS["regression"]
    params = {"hidden_layer_sizes": (5,), "max_iter": 3, "early_stopping": True}
    ours = neural_network.MLPRegressor(**params, random_state=np.random.RandomState(7))
    theirs = sk.MLPRegressor(**params, random_state=np.random.RandomState(7))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours.fit(X, y)
        theirs.fit(X, y)
    assert_same_fit(ours, theirs)


def test_float32_input_trains_in_float32_as_sklearn():
    kind, X, y = TASKS["multiclass"]
    ours, theirs = fit_both(kind, X.astype(np.float32), y, hidden_layer_sizes=(5,), max_iter=3,
                            random_state=0)
    assert ours.model_.config.dtype == torch.float32
    assert ours.coefs_[0].dtype == theirs.coefs_[0].dtype == np.float32
    assert ours.predict_proba(X[:5].astype(np.float32)).dtype == np.float32
    assert_same_fit(ours, theirs, rtol=1e-4)


def test_coefs_set_by_hand_are_what_it_predicts_with_and_continues_from():
    kind, X, y = TASKS["binary"]
    ours, theirs = fit_both(kind, X, y, hidden_layer_sizes=(4,), solver="sgd", max_iter=2,
                            random_state=0)
    for model in (ours, theirs):
        model.coefs_[0] = model.coefs_[0] * 0.5
        model.intercepts_[1] = model.intercepts_[1] + 1.0
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours.partial_fit(X, y)
        theirs.partial_fit(X, y)
    assert_same_fit(ours, theirs)


# ------------------------------------------------------------------------------------------------
# the engine's scikit-learn update rules against scikit-learn's optimizer classes


@pytest.mark.parametrize("form", ["grouped", "columns"])
@pytest.mark.parametrize("rule", sorted(SKLEARN_OPTIMIZERS))
def test_sklearn_update_rule_matches_sklearn_optimizer(rule, form):
    gen = np.random.RandomState(0)
    start = gen.normal(size=(2, 6))
    lrs = [0.1, 0.1, 0.03, 0.03, 0.5]  # a changing lr: scikit-learn's velocity carries the old one
    members = [MemberConfig(seed=0, momentum=0.8, beta1=0.85, beta2=0.99, epsilon=1e-6),
               MemberConfig(seed=1, momentum=0.5, beta1=0.7, beta2=0.9, epsilon=1e-3)]
    entry = SKLEARN_OPTIMIZERS[rule]
    params = torch.tensor(start)
    state = {name: torch.zeros_like(params) for name in entry.state_names}
    steps = torch.zeros(2, 1, dtype=torch.float32)
    references = []
    for member, row in zip(members, start):
        param = [row.copy()]
        if rule == "sklearn_adam":
            references.append((param, AdamOptimizer(param, 0.1, member.beta1, member.beta2,
                                                    member.epsilon)))
        else:
            references.append((param, SGDOptimizer(param, 0.1, momentum=member.momentum,
                                                   nesterov=rule == "sklearn_nesterov")))
    for t, lr in enumerate(lrs):
        grads = gen.normal(size=(2, 6))
        steps += 1
        grad = torch.tensor(grads)
        if form == "columns":
            hyper = {name: torch.tensor([[float(getattr(m, name))] for m in members],
                                        dtype=torch.float64) for name in entry.hyper_names}
            entry.columns(params, grad, state, steps, torch.full((2, 1), lr, dtype=torch.float64),
                          hyper, None)
        else:
            for i, member in enumerate(members):
                entry.update([params[i]], [grad[i]], {k: [v[i]] for k, v in state.items()},
                             [steps[i]], lr, {name: float(getattr(member, name))
                                              for name in entry.hyper_names})
        for (param, optimizer), g in zip(references, grads):
            optimizer.learning_rate = lr if rule != "sklearn_adam" else optimizer.learning_rate
            if rule == "sklearn_adam":
                optimizer.learning_rate_init = lr
            optimizer.update_params(param, [g])
        np.testing.assert_allclose(params.numpy(), [p[0] for p, _ in references], rtol=1e-13,
                                   err_msg=f"step {t}")


# ------------------------------------------------------------------------------------------------
# everywhere scikit-learn's MLP works


def test_fused_grid_search_gives_sklearns_grid_search_results():
    _kind, X, y = TASKS["multiclass"]
    grid = {"alpha": [1e-4, 1e-1], "learning_rate_init": [0.01, 0.1],
            "solver": ["adam", "sgd"]}
    base = {"hidden_layer_sizes": (8,), "max_iter": 6, "random_state": 0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fused = FusedGridSearchCV(neural_network.MLPClassifier(device="cpu", **base), grid,
                                  cv=3).fit(X, y)
        reference = GridSearchCV(sk.MLPClassifier(**base), grid, cv=3).fit(X, y)
    assert fused.n_member_epochs_ == 8 * 3 * 6  # every fit trained fused
    np.testing.assert_allclose(fused.cv_results_["mean_test_score"],
                               reference.cv_results_["mean_test_score"], rtol=0, atol=1e-12)
    assert fused.best_params_ == reference.best_params_


def test_pickles_pipelines_pandas_and_string_labels():
    frame = pd.DataFrame(X_MULTI[:, :10], columns=[f"f{i}" for i in range(10)])
    labels = np.array(["a", "b", "c"])[Y_MULTI]
    model = make_pipeline(StandardScaler(), neural_network.MLPClassifier(
        (6,), max_iter=3, random_state=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(frame, labels)
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.predict(frame), model.predict(frame))
    assert set(model.predict(frame)) <= set(labels)
    assert list(model.feature_names_in_) == list(frame.columns)
    direct = neural_network.MLPClassifier((6,), max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        direct.fit(frame, labels)
    assert list(direct.feature_names_in_) == list(frame.columns)
    # sknn_tune's pickle-free file, which continues training as the saved estimator would
    from sknn_tune import load, save

    path = f"{pytest.importorskip('tempfile').mkdtemp()}/model.pt"
    save(direct, path)
    loaded = load(path)
    assert type(loaded) is neural_network.MLPClassifier
    np.testing.assert_array_equal(loaded.predict_proba(frame), direct.predict_proba(frame))
    loaded.partial_fit(frame, labels)
    direct.partial_fit(frame, labels)
    np.testing.assert_array_equal(loaded.coefs_[0], direct.coefs_[0])


def test_sklearn_names_and_values_are_accepted_and_validated_as_sklearn():
    assert neural_network.MLPClassifier().get_params().keys() - {"device", "dtype"} == \
        sk.MLPClassifier().get_params().keys()
    assert neural_network.MLPRegressor().get_params().keys() - {"device", "dtype"} == \
        sk.MLPRegressor().get_params().keys()
    for params in ({"solver": "rmsprop"}, {"learning_rate": "cosine"}, {"max_iter": 0},
                   {"activation": "sigmoid"}):
        with pytest.raises(ValueError) as ours:
            neural_network.MLPClassifier(**params).fit(X_BINARY, Y_BINARY)
        with pytest.raises(ValueError) as theirs:
            sk.MLPClassifier(**params).fit(X_BINARY, Y_BINARY)
        assert str(ours.value) == str(theirs.value)
    assert not hasattr(neural_network.MLPClassifier(solver="lbfgs"), "partial_fit")


# ------------------------------------------------------------------------------------------------
# what sknn_tune's own estimators gain: L-BFGS and the adaptive learning rate


def test_own_estimators_train_with_lbfgs_and_refuse_what_it_cannot_do():
    from sknn_tune import MLPClassifier

    clf = MLPClassifier((16,), optimizer="lbfgs", max_epochs=200, weight_decay=1e-2, tol=1e-4,
                        random_state=0).fit(X_MULTI, Y_MULTI)
    assert clf.score(X_MULTI, Y_MULTI) == 1.0
    assert 0 < clf.n_iter_ < 200 and len(clf.history_) == clf.n_iter_
    assert clf.model_.lbfgs_results[0].status == 0
    with pytest.warns(ConvergenceWarning, match="L-BFGS stopped after 3 iterations"):
        MLPClassifier((16,), optimizer="lbfgs", max_epochs=3).fit(X_MULTI, Y_MULTI)
    with pytest.raises(ValueError, match="without dropout, batch_norm"):
        MLPClassifier(optimizer="lbfgs", dropout=0.1, batch_norm=True).fit(X_MULTI, Y_MULTI)
    with pytest.raises(ValueError, match="has none"):
        clf.to_skorch()


def test_own_estimators_adaptive_lr_divides_when_stalled():
    from sknn_tune import MLPClassifier

    clf = MLPClassifier((8,), optimizer="sgd", lr=0.05, lr_schedule="adaptive", lr_decay=0.2,
                        patience=2, tol=10.0, max_epochs=100, random_state=0).fit(X_MULTI, Y_MULTI)
    lrs = clf.history_["lr"].to_numpy()
    # every 2 epochs without improvement by tol the lr is divided by 5, until <= 1e-6: a stop
    assert lrs[-1] <= 1e-6 < lrs[-2 - 1] and clf.n_iter_ < 100
    np.testing.assert_allclose(np.unique(lrs)[::-1], 0.05 * 0.2 ** np.arange(len(np.unique(lrs))))


def test_fused_searches_with_lbfgs_and_halving_give_sklearns_results():
    from sklearn.experimental import enable_halving_search_cv  # noqa: F401
    from sklearn.model_selection import HalvingGridSearchCV

    from sknn_tune import FusedHalvingGridSearchCV

    _, X, y = TASKS["multiclass"]
    base = {"hidden_layer_sizes": (6,), "random_state": 0, "max_iter": 5}
    grid = {"solver": ["lbfgs", "adam"], "alpha": [1e-4, 1.0]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fused = FusedGridSearchCV(neural_network.MLPClassifier(device="cpu", **base), grid,
                                  cv=3).fit(X, y)
        reference = GridSearchCV(sk.MLPClassifier(**base), grid, cv=3).fit(X, y)
    np.testing.assert_allclose(fused.cv_results_["mean_test_score"],
                               reference.cv_results_["mean_test_score"], rtol=0, atol=1e-12)
    grid = {"learning_rate_init": [1e-3, 1e-2, 3e-2], "solver": ["adam", "sgd"]}
    halving = {"resource": "max_iter", "min_resources": 2, "max_resources": 8, "factor": 2,
               "cv": 3}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fused = FusedHalvingGridSearchCV(neural_network.MLPClassifier(device="cpu", **base),
                                         grid, **halving).fit(X, y)
        reference = HalvingGridSearchCV(sk.MLPClassifier(**base), grid, **halving).fit(X, y)
    np.testing.assert_allclose(fused.cv_results_["mean_test_score"],
                               reference.cv_results_["mean_test_score"], rtol=0, atol=1e-12)
    assert fused.best_params_ == reference.best_params_
    assert fused.n_member_epochs_ < sum(reference.cv_results_["param_max_iter"]) * 3, \
        "later rounds continue the members of earlier ones"
