"""warm_start and partial_fit as scikit-learn's MLP: a cosine horizon restarts, changed
hyperparameters take effect at the next warm fit, and the same errors."""

import pickle

import numpy as np
import pytest
import torch
from conftest import assert_same_training
from sklearn.datasets import load_iris
from sklearn.neural_network import MLPClassifier as SklearnMLPClassifier
from sklearn.neural_network import MLPRegressor as SklearnMLPRegressor

from sknn_tune import MLPClassifier, MLPRegressor

X, Y = load_iris(return_X_y=True)


def clf(**params):
    return MLPClassifier(**{"hidden_layer_sizes": (8,), "max_epochs": 5, "patience": None,
                            "random_state": 0, **params})


def test_cosine_horizon_restarts_with_every_warm_fit():
    model = clf(lr_schedule="cosine", warm_start=True).fit(X, Y)
    weights = model.coefs_[0].copy()
    model.fit(X, Y)
    lr = model.history_["lr"].to_numpy()
    np.testing.assert_array_equal(lr[5:], lr[:5])  # the second fit's own horizon
    assert lr[5] == model.lr
    assert not np.allclose(model.coefs_[0], weights)  # it trained (lr 0 would not)


def test_cosine_partial_fit_past_max_epochs_keeps_training():
    model = clf(lr_schedule="cosine")
    for _ in range(12):
        model.partial_fit(X, Y, classes=[0, 1, 2])
    lr = model.history_["lr"].to_numpy()
    assert np.all(lr > 0)
    np.testing.assert_array_equal(lr[5:10], lr[:5])  # a new horizon every max_epochs epochs


def test_other_schedules_continue_their_decay_across_warm_fits():
    model = clf(lr_schedule="exponential", lr_decay=0.5, warm_start=True).fit(X, Y).fit(X, Y)
    one_fit = clf(lr_schedule="exponential", lr_decay=0.5, max_epochs=10).fit(X, Y)
    np.testing.assert_array_equal(model.history_["lr"], one_fit.history_["lr"])


def test_changed_batch_size_takes_effect_at_the_next_warm_fit():
    model = clf(warm_start=True, batch_size=50).fit(X, Y)
    assert int(model.model_.steps[0, 0]) == 5 * 3
    model.set_params(batch_size=16).fit(X, Y)
    assert model.model_.config.batch_size == 16
    assert int(model.model_.steps[0, 0]) == 5 * 3 + 5 * 10  # Adam's state carried on


@pytest.mark.parametrize("new_optimizer", ["sgd", "momentum", "rmsprop"])
def test_changed_optimizer_takes_effect_with_its_own_fresh_state(new_optimizer):
    model = clf(warm_start=True, optimizer="adam").fit(X, Y)
    start = model.model_.select([0])
    model.set_params(optimizer=new_optimizer, lr=0.05, momentum=0.5).fit(X, Y)
    assert model.model_.config.optimizer == new_optimizer
    # The same as a fresh trainer of the new optimizer started from the first fit's weights.
    reference = clf(optimizer=new_optimizer, lr=0.05, momentum=0.5, max_epochs=5)
    reference_model = reference.fit(X, Y).model_
    assert set(reference_model.state) == set(model.model_.state)
    assert int(model.model_.steps[0, 0]) == int(reference_model.steps[0, 0])
    assert not torch.equal(model.model_.params, start.params)


def test_changed_optimizer_hyperparameter_takes_effect():
    first = clf(warm_start=True, optimizer="sgd", lr=1e-3).fit(X, Y)
    same = clf(warm_start=True, optimizer="sgd", lr=1e-3).fit(X, Y).fit(X, Y)
    first.set_params(lr=0.1).fit(X, Y)
    assert first.history_["lr"].iloc[-1] == 0.1
    assert not np.allclose(first.coefs_[0], same.coefs_[0])


@pytest.mark.parametrize("relabel", [lambda y: np.where(y == 2, 1, y),   # a class missing
                                     lambda y: np.where(y == 2, 3, y)])  # a new class
def test_warm_fit_with_other_classes_raises_as_sklearn(relabel):
    theirs = SklearnMLPClassifier((8,), max_iter=3, warm_start=True, random_state=0).fit(X, Y)
    ours = clf(warm_start=True).fit(X, Y)
    with pytest.raises(ValueError) as expected:
        theirs.fit(X, relabel(Y))
    with pytest.raises(ValueError) as got:
        ours.fit(X, relabel(Y))
    assert str(got.value) == str(expected.value)
    assert ours.n_iter_ == 5 and len(ours.history_) == 5  # the fitted model is kept


@pytest.mark.parametrize("ours, theirs", [
    (lambda: clf(early_stopping=True), lambda: SklearnMLPClassifier(early_stopping=True)),
    (lambda: MLPRegressor(early_stopping=True), lambda: SklearnMLPRegressor(early_stopping=True)),
])
def test_partial_fit_with_early_stopping_raises_as_sklearn(ours, theirs):
    kwargs = {"classes": [0, 1, 2]} if isinstance(ours(), MLPClassifier) else {}
    with pytest.raises(ValueError) as expected:
        theirs().partial_fit(X, Y, **kwargs)
    estimator = ours()
    with pytest.raises(ValueError) as got:
        estimator.partial_fit(X, Y, **kwargs)
    assert str(got.value) == str(expected.value)
    assert not hasattr(estimator, "classes_") and not hasattr(estimator, "model_")


def test_models_pickled_before_schedule_start_existed_still_load():
    model = clf(lr_schedule="cosine", warm_start=True).fit(X, Y)
    state = model.model_.__getstate__()
    del state["schedule_start"]
    old = pickle.loads(pickle.dumps(model))
    old.model_.__setstate__(state)
    np.testing.assert_array_equal(old.model_.schedule_start, [0])
    # The same weights; the state holds CPU tensors, so on a GPU run the old model predicts on the
    # CPU: to float32 rounding there, bit for bit on a CPU run.
    assert_same_training(old.predict_proba(X), model.predict_proba(X))
