"""Issue 4's tuning knobs at the estimator level: each test fails when its option stops changing
training the way it should. References are scikit-learn metrics, a second fit that must agree
(rows removed, epochs fewer, a sample weight for a class weight), torch's own layers, or the
network's forward pass written out in numpy.

Estimators run where ``device='auto'`` resolves (the run's ``--device``). Two fits that must be the
same training are compared with ``assert_same_training`` (bit for bit on the CPU, within the
design's tolerance on a GPU); one model's numbers computed two ways (the engine and numpy, torch
or a metric) to ``model_tolerance`` (float32 rounding on a GPU, where the engine computes in
float32)."""

import re
import warnings

import numpy as np
import pandas as pd
import pytest
import sklearn
import torch
from conftest import (
    assert_same_history,
    assert_same_model,
    assert_same_training,
    model_tolerance,
    training_tolerance,
)
from sklearn.base import clone
from sklearn.datasets import load_digits, load_iris, make_classification, make_regression
from sklearn.metrics import (
    accuracy_score,
    get_scorer,
    log_loss,
    make_scorer,
    mean_absolute_error,
    r2_score,
    recall_score,
)
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.class_weight import compute_sample_weight

from sknn_tune import MLPClassifier, MLPRegressor
from sknn_tune._engine import ACTIVATIONS, INITIALIZERS, OPTIMIZERS, SCHEDULES, StackedTrainer
from sknn_tune._engine.network import BN_EPS, split_buffers, split_flat
from sknn_tune.classifier import _LOSSES as CLASSIFIER_LOSSES
from sknn_tune.regressor import _LOSSES as REGRESSOR_LOSSES

HISTORY_COLUMNS = ["epoch", "train_loss", "val_loss", "val_score", "lr", "seconds", "diverged"]


@pytest.fixture(scope="module")
def clf_data():
    X, y = make_classification(n_samples=240, n_features=8, n_informative=5, n_redundant=0,
                               n_classes=3, n_clusters_per_class=1, random_state=0)
    X = StandardScaler().fit_transform(X)
    return train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)


@pytest.fixture(scope="module")
def reg_data():
    X, y = make_regression(n_samples=200, n_features=6, n_informative=4, noise=5.0,
                           random_state=0)
    X = StandardScaler().fit_transform(X)
    return train_test_split(X, y / y.std(), test_size=0.25, random_state=0)


# float64: these tests compare with float64 references (torch, scikit-learn) to ~1e-12.
def clf(**params):
    defaults = dict(hidden_layer_sizes=(16,), lr=1e-2, batch_size=32, max_epochs=20,
                    random_state=0, dtype="float64")
    return MLPClassifier(**{**defaults, **params})


def reg(**params):
    defaults = dict(hidden_layer_sizes=(16,), lr=1e-2, batch_size=32, max_epochs=20,
                    random_state=0, dtype="float64")
    return MLPRegressor(**{**defaults, **params})


def layers(est):
    """The predicting network's parameters as numpy: {(name, layer): array without member axis}."""
    params, buffers = est.model_.final_parameters()
    arch = est.model_.config.architecture
    views = split_flat(params, arch.parameter_layout())
    out = {key: value[0].cpu().numpy() for key, value in views.items()}
    for layer, (mean, var) in enumerate(split_buffers(buffers, arch)):
        out["running_mean", layer], out["running_var", layer] = (mean[0, 0].cpu().numpy(),
                                                                 var[0, 0].cpu().numpy())
    return out


def forward_by_hand(est, X, batch_statistics=False):
    """The ReLU network's raw outputs written out in numpy (eval mode unless told otherwise)."""
    p, arch = layers(est), est.model_.config.architecture
    h = X
    for layer in range(len(arch.hidden_layer_sizes)):
        z = h @ p["weight", layer] + p["bias", layer]
        if arch.batch_norm:
            if batch_statistics:
                mean, var = z.mean(0), z.var(0)
            else:
                mean, var = p["running_mean", layer], p["running_var", layer]
            z = (z - mean) / np.sqrt(var + BN_EPS) * p["bn_weight", layer] + p["bn_bias", layer]
        h = np.maximum(z, 0.0)
    return h @ p["weight", len(arch.hidden_layer_sizes)] + p["bias", len(arch.hidden_layer_sizes)]


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# ---------------------------------------------------------------------------------------------
# every registry entry trains


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_every_activation_trains(clf_data, activation):
    X_train, X_test, y_train, y_test = clf_data
    model = clf(activation=activation, max_epochs=25).fit(X_train, y_train)
    assert model.score(X_test, y_test) > 0.7  # chance is 1/3


@pytest.mark.parametrize("init", ["auto", *sorted(INITIALIZERS)])
def test_every_initializer_trains(clf_data, init):
    X_train, X_test, y_train, y_test = clf_data
    assert clf(init=init).fit(X_train, y_train).score(X_test, y_test) > 0.7


@pytest.mark.parametrize("init, std", [
    ("normal", lambda fan_in, fan_out: 0.05),
    ("he_normal", lambda fan_in, fan_out: np.sqrt(2 / fan_in)),
    ("xavier_normal", lambda fan_in, fan_out: np.sqrt(2 / (fan_in + fan_out))),
    ("he_uniform", lambda fan_in, fan_out: np.sqrt(6 / fan_in) / np.sqrt(3)),
    ("xavier_uniform", lambda fan_in, fan_out: np.sqrt(6 / (fan_in + fan_out)) / np.sqrt(3)),
])
def test_initializer_scale(clf_data, init, std):
    X_train, _, y_train, _ = clf_data
    # One epoch at a negligible lr leaves the initial weights.
    model = clf(hidden_layer_sizes=(400,), init=init, lr=1e-12, max_epochs=1, optimizer="sgd")
    w = layers(model.fit(X_train, y_train))["weight", 0]
    assert np.std(w) == pytest.approx(std(8, 400), rel=0.05)


OPTIMIZER_LR = {"sgd": 0.1, "momentum": 0.03, "nesterov": 0.03, "adagrad": 0.05}


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_every_optimizer_trains(clf_data, optimizer):
    X_train, X_test, y_train, y_test = clf_data
    model = clf(optimizer=optimizer, lr=OPTIMIZER_LR.get(optimizer, 1e-2))
    model.fit(X_train, y_train)
    assert model.score(X_test, y_test) > 0.7
    assert model.history_["train_loss"].iloc[-1] < 0.7 * model.history_["train_loss"].iloc[0]


# The documented lr multiplier at epoch t (from 0) with lr_decay=0.5, lr_step=3, max_epochs=12.
SCHEDULE_FACTORS = {
    "constant": lambda t: np.ones_like(t),
    "step": lambda t: 0.5 ** (t // 3),
    "exponential": lambda t: 0.5**t,
    "inverse": lambda t: 1 / (1 + 0.5 * t),
    "cosine": lambda t: 0.5 * (1 + np.cos(np.pi * t / 12)),
}


@pytest.mark.parametrize("schedule", sorted(SCHEDULES))
def test_every_lr_schedule_trains_and_follows_its_formula(clf_data, schedule):
    X_train, X_test, y_train, y_test = clf_data
    model = clf(lr_schedule=schedule, lr=3e-2, lr_decay=0.5, lr_step=3, max_epochs=12)
    model.fit(X_train, y_train)
    assert model.score(X_test, y_test) > 0.7
    lr = model.history_["lr"].to_numpy()
    if schedule in SCHEDULE_FACTORS:
        epochs = np.arange(12, dtype=float)
        np.testing.assert_allclose(lr, 3e-2 * SCHEDULE_FACTORS[schedule](epochs))
    elif schedule == "plateau":
        # Powers of lr_decay, never increasing.
        powers = np.log(lr / 3e-2) / np.log(0.5)
        np.testing.assert_allclose(powers, np.round(powers), atol=1e-9)
        assert np.all(np.diff(lr) <= 0)


def test_plateau_cuts_after_lr_step_epochs_without_improvement(clf_data):
    X_train, _, y_train, _ = clf_data
    # lr=1e-12: the training loss never improves by tol, so the lr halves every lr_step epochs.
    model = clf(lr_schedule="plateau", lr=1e-12, lr_decay=0.5, lr_step=2, max_epochs=7, tol=1e-3)
    lr = model.fit(X_train, y_train).history_["lr"].to_numpy()
    np.testing.assert_allclose(lr / 1e-12, [1, 1, 1, 0.5, 0.5, 0.25, 0.25])


def _hand_loss(name, Y, predicted):
    residual = predicted - Y
    return {
        "log_loss": lambda: log_loss(Y.argmax(1), predicted, labels=range(Y.shape[1])),
        "squared_error": lambda: 0.5 * np.mean(residual**2),
        "absolute_error": lambda: np.mean(np.abs(residual)),
        "huber": lambda: np.mean(np.where(np.abs(residual) <= 1, 0.5 * residual**2,
                                          np.abs(residual) - 0.5)),
    }[name]()


@pytest.mark.parametrize("loss", sorted(CLASSIFIER_LOSSES))
def test_every_classifier_loss_trains_and_is_what_it_says(clf_data, loss):
    X_train, X_test, y_train, y_test = clf_data
    model = clf(loss=loss, lr=3e-2).fit(X_train, y_train, X_val=X_test, y_val=y_test)
    assert model.score(X_test, y_test) > 0.7
    one_hot = np.eye(3)[y_test]
    expected = _hand_loss(loss, one_hot, model.predict_proba(X_test))
    assert model.history_["val_loss"].iloc[-1] == pytest.approx(expected, rel=model_tolerance(1e-9))


@pytest.mark.parametrize("loss", sorted(REGRESSOR_LOSSES))
def test_every_regressor_loss_trains_and_is_what_it_says(reg_data, loss):
    X_train, X_test, y_train, y_test = reg_data
    model = reg(loss=loss, max_epochs=30).fit(X_train, y_train, X_val=X_test, y_val=y_test)
    assert model.score(X_test, y_test) > 0.5
    expected = _hand_loss(loss, y_test, model.predict(X_test))
    assert model.history_["val_loss"].iloc[-1] == pytest.approx(expected, rel=model_tolerance(1e-9))
    assert model.history_["val_score"].iloc[-1] == pytest.approx(
        r2_score(y_test, model.predict(X_test)), rel=model_tolerance(1e-9))


# ---------------------------------------------------------------------------------------------
# regularisation


@pytest.fixture(scope="module")
def sparse_data():
    X, y = make_classification(n_samples=200, n_features=20, n_informative=3, n_redundant=0,
                               random_state=0)
    return StandardScaler().fit_transform(X), y


def test_l1_drives_weights_to_zero(sparse_data):
    X, y = sparse_data
    plain = clf().fit(X, y)
    lasso = clf(l1=1e-2).fit(X, y)
    near_zero = {name: np.mean(np.abs(layers(m)["weight", 0]) < 1e-2)
                 for name, m in [("plain", plain), ("l1", lasso)]}
    assert near_zero["plain"] < 0.1
    assert near_zero["l1"] > 0.4
    assert lasso.score(X, y) > 0.9
    # Biases are not penalised.
    assert np.mean(np.abs(layers(lasso)["bias", 0]) < 1e-2) < 0.5


@pytest.mark.parametrize("optimizer, weight_decay, lr", [
    ("sgd", 0.1, 0.1), ("adam", 0.1, 1e-2), ("adamw", 1.0, 1e-2)])
def test_weight_decay_shrinks_weights(sparse_data, optimizer, weight_decay, lr):
    X, y = sparse_data
    norms = [np.linalg.norm(layers(clf(optimizer=optimizer, lr=lr, weight_decay=wd).fit(X, y))
                            ["weight", 0]) for wd in (0.0, weight_decay)]
    assert norms[1] < 0.6 * norms[0]


# ---------------------------------------------------------------------------------------------
# class and sample weights


@pytest.fixture(scope="module")
def imbalanced():
    X, y = make_classification(n_samples=300, n_features=6, n_informative=3, n_redundant=0,
                               weights=[0.9, 0.1], class_sep=0.6, flip_y=0.0, random_state=3)
    return StandardScaler().fit_transform(X), y


def test_class_weight_balanced_lifts_rare_class_recall(imbalanced):
    X, y = imbalanced
    recall = {cw: recall_score(y, clf(class_weight=cw).fit(X, y).predict(X))
              for cw in (None, "balanced")}
    assert recall["balanced"] > recall[None] + 0.1


def test_class_weight_is_a_sample_weight(imbalanced):
    X, y = imbalanced

    def clf(**params):
        return MLPClassifier((8,), batch_size=32, max_epochs=4, random_state=0, **params)

    assert_same_training(
        clf(class_weight={0: 1.0, 1: 5.0}).fit(X, y).predict_proba(X),
        clf().fit(X, y, sample_weight=np.where(y == 1, 5.0, 1.0)).predict_proba(X))
    assert_same_training(
        clf(class_weight="balanced").fit(X, y).predict_proba(X),
        clf().fit(X, y, sample_weight=compute_sample_weight("balanced", y)).predict_proba(X))
    # With both, they multiply.
    w = np.linspace(0.5, 2, len(y))
    np.testing.assert_allclose(
        clf(class_weight="balanced").fit(X, y, sample_weight=w).predict_proba(X),
        clf().fit(X, y, sample_weight=w * compute_sample_weight("balanced", y)).predict_proba(X),
        rtol=max(1e-12, training_tolerance()), atol=training_tolerance())


@pytest.mark.parametrize("make", [clf, reg], ids=["classifier", "regressor"])
def test_zero_sample_weight_removes_rows(clf_data, reg_data, make):
    X, _, y, _ = clf_data if make is clf else reg_data
    # One batch per epoch (batch_size >= n): the weighted mean over all rows equals the mean over
    # the kept rows, so the two fits must agree to rounding.
    dropped = np.arange(len(y)) % 4 == 0
    weight = np.where(dropped, 0.0, 1.0)
    params = dict(batch_size=1000, max_epochs=15, lr=3e-2)
    weighted = make(**params).fit(X, y, sample_weight=weight)
    removed = make(**params).fit(X[~dropped], y[~dropped])
    predict = "predict_proba" if make is clf else "predict"
    np.testing.assert_allclose(getattr(weighted, predict)(X), getattr(removed, predict)(X),
                               rtol=max(1e-9, training_tolerance()), atol=training_tolerance(1e-12))
    np.testing.assert_allclose(weighted.history_["train_loss"], removed.history_["train_loss"],
                               rtol=max(1e-9, training_tolerance()))
    # ... and the weights did something.
    assert not np.allclose(getattr(make(**params).fit(X, y), predict)(X),
                           getattr(removed, predict)(X))


def test_integer_sample_weight_duplicates_rows(clf_data):
    X, _, y, _ = clf_data
    twice = np.arange(len(y)) % 3 == 0
    params = dict(batch_size=1000, max_epochs=10, lr=3e-2)
    weighted = clf(**params).fit(X, y, sample_weight=np.where(twice, 2.0, 1.0))
    duplicated = clf(**params).fit(np.vstack([X, X[twice]]), np.concatenate([y, y[twice]]))
    np.testing.assert_allclose(weighted.predict_proba(X), duplicated.predict_proba(X),
                               rtol=max(1e-9, training_tolerance()), atol=training_tolerance())


def test_sample_weight_through_a_pipeline(clf_data):
    X, _, y, _ = clf_data
    X = X * 5 - 2
    w = np.where(np.arange(len(y)) % 3 == 0, 0.1, 2.0)
    pipe = make_pipeline(StandardScaler(), clf())
    pipe.fit(X, y, mlpclassifier__sample_weight=w)
    direct = clf().fit(StandardScaler().fit_transform(X), y, sample_weight=w)
    X_scaled = pipe[0].transform(X)
    assert_same_training(pipe.predict_proba(X), direct.predict_proba(X_scaled))
    assert not np.allclose(pipe.predict_proba(X), clone(pipe).fit(X, y).predict_proba(X))


def test_sample_weight_through_metadata_routing_in_grid_search(clf_data):
    X, _, y, _ = clf_data
    w = np.where(np.arange(len(y)) % 3 == 0, 0.2, 1.5)
    cv = StratifiedKFold(2)
    grid = {"lr": [3e-3, 3e-2]}
    with sklearn.config_context(enable_metadata_routing=True):
        est = clf(max_epochs=8).set_fit_request(sample_weight=True).set_score_request(
            sample_weight=False)
        search = GridSearchCV(est, grid, cv=cv).fit(X, y, sample_weight=w)
    # The reference: each fold fitted by hand with its rows' weights, scored unweighted.
    for i, lr in enumerate(grid["lr"]):
        for k, (train, test) in enumerate(cv.split(X, y)):
            fitted = clf(max_epochs=8, lr=lr).fit(X[train], y[train], sample_weight=w[train])
            assert search.cv_results_[f"split{k}_test_score"][i] == pytest.approx(
                fitted.score(X[test], y[test]), rel=1e-6, abs=training_tolerance(1e-12))
    # Without the weights the fits differ: the routing carried them.
    unweighted = clf(max_epochs=8, lr=search.best_params_["lr"]).fit(X, y)
    assert not np.allclose(search.best_estimator_.predict_proba(X), unweighted.predict_proba(X))


# ---------------------------------------------------------------------------------------------
# early stopping, best weights, validation sets


@pytest.fixture(scope="module")
def noisy():
    # Few rows, many noisy features: a wide network overfits within a few epochs.
    X, y = make_classification(n_samples=160, n_features=30, n_informative=3, n_redundant=0,
                               flip_y=0.25, random_state=1)
    return StandardScaler().fit_transform(X), y


def overfitting(**params):
    defaults = dict(hidden_layer_sizes=(64,), lr=3e-2, batch_size=16, max_epochs=60,
                    early_stopping=True, validation_fraction=0.3, patience=4, tol=0.0,
                    random_state=0, dtype="float64")
    return MLPClassifier(**{**defaults, **params})


def test_early_stopping_stops_patience_epochs_after_the_best(noisy):
    X, y = noisy
    model = overfitting().fit(X, y)
    val_loss = model.history_["val_loss"].to_numpy()
    best = int(np.argmin(val_loss)) + 1  # tol=0: the first strict minimum
    assert model.best_epoch_ == best
    assert model.n_iter_ == best + 4 < 60
    assert len(model.history_) == model.n_iter_
    # With tol (as scikit-learn's MLP), patience counts from the last improvement by more than
    # tol, while the best epoch is the lowest validation loss.
    tolerant = overfitting(tol=0.05).fit(X, y)
    best, best_epoch, wait = np.inf, 0, 0
    for epoch, value in enumerate(tolerant.history_["val_loss"], start=1):
        wait = 0 if value < best - 0.05 else wait + 1
        if value < best:
            best, best_epoch = value, epoch
        if wait >= 4:
            break
    assert (tolerant.best_epoch_, tolerant.n_iter_) == (best_epoch, epoch)


def test_restore_best_weights_returns_the_best_epoch(noisy):
    X, y = noisy
    model = overfitting().fit(X, y)
    assert model.best_epoch_ < model.n_iter_
    # Same seed, same split, trained exactly best_epoch_ epochs: the same weights.
    reference = overfitting(max_epochs=model.best_epoch_, restore_best_weights=False).fit(X, y)
    assert reference.n_iter_ == model.best_epoch_
    assert_same_training(model.predict_proba(X), reference.predict_proba(X))
    # restore_best_weights=False keeps the last epoch's weights: those of a model trained as long.
    last = overfitting(restore_best_weights=False).fit(X, y)
    assert last.best_epoch_ == last.n_iter_ == model.n_iter_
    config = last.model_.config
    live = last.model_.predict(torch.as_tensor(X, dtype=config.dtype, device=config.device),
                               live=True)[0].cpu().numpy()
    np.testing.assert_array_equal(last.predict_proba(X), live)
    assert not np.allclose(last.predict_proba(X), model.predict_proba(X))


def test_explicit_validation_set(clf_data):
    X_train, X_val, y_train, y_val = clf_data
    model = clf().fit(X_train, y_train, X_val=X_val, y_val=y_val)
    history = model.history_
    assert history["val_loss"].notna().all() and history["val_score"].notna().all()
    # The last row is the final model on X_val, by scikit-learn's metrics.
    assert history["val_loss"].iloc[-1] == pytest.approx(
        log_loss(y_val, model.predict_proba(X_val)), rel=model_tolerance(1e-10))
    # (the history keeps the model's dtype: float32 on a GPU)
    assert history["val_score"].iloc[-1] == pytest.approx(
        accuracy_score(y_val, model.predict(X_val)), rel=model_tolerance())
    # X_val is not trained on: without early stopping the model equals one fitted without it.
    assert_same_training(model.predict_proba(X_val), clf().fit(X_train, y_train).predict_proba(X_val))
    with pytest.raises(ValueError, match="both X_val and y_val"):
        clf().fit(X_train, y_train, X_val=X_val)


def test_explicit_validation_set_drives_early_stopping(noisy):
    X, y = noisy
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.3, random_state=0)
    model = overfitting().fit(X_train, y_train, X_val=X_val, y_val=y_val)
    assert model.n_iter_ == model.best_epoch_ + 4
    assert model.history_["val_loss"].min() == pytest.approx(
        log_loss(y_val, model.predict_proba(X_val)), rel=model_tolerance(1e-10))


# ---------------------------------------------------------------------------------------------
# scoring: early stopping on a named scikit-learn scorer


def test_scoring_accuracy_is_the_val_score_and_drives_early_stopping(noisy):
    X, y = noisy
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.4, random_state=0)
    model = overfitting(scoring="accuracy", patience=6)
    model.fit(X_train, y_train, X_val=X_val, y_val=y_val)
    score = model.history_["val_score"].to_numpy()
    # Best epoch: the first strict maximum of the accuracy (tol=0), not of the loss.
    assert model.best_epoch_ == int(np.argmax(score)) + 1
    assert model.n_iter_ == model.best_epoch_ + 6
    best_by_loss = int(np.argmin(model.history_["val_loss"])) + 1
    assert best_by_loss != model.best_epoch_  # the data make the two disagree
    # The restored model's accuracy on X_val is the recorded best, by scikit-learn's metric.
    assert accuracy_score(y_val, model.predict(X_val)) == score[model.best_epoch_ - 1]
    # Every epoch's value is that epoch's accuracy: check against models trained that long.
    for epochs in (1, 3):
        shorter = overfitting(max_epochs=epochs, scoring="accuracy")
        shorter.fit(X_train, y_train, X_val=X_val, y_val=y_val)
        assert score[epochs - 1] == pytest.approx(accuracy_score(y_val, shorter.predict(X_val)),
                                                  abs=training_tolerance())


def test_scoring_on_the_held_out_split_and_with_a_callable(noisy):
    X, y = noisy
    by_name = overfitting(scoring="balanced_accuracy").fit(X, y)
    assert by_name.n_iter_ == int(np.argmax(by_name.history_["val_score"])) + 1 + 4
    scorer = make_scorer(lambda t, p: get_scorer("balanced_accuracy")._score_func(t, p))
    by_callable = overfitting(scoring=scorer).fit(X, y)
    assert_same_history(by_name.history_.drop(columns="seconds"),
                        by_callable.history_.drop(columns="seconds"))
    # Without scoring, the column is the accuracy and the loss decides.
    plain = overfitting().fit(X, y)
    assert plain.n_iter_ == int(np.argmin(plain.history_["val_loss"])) + 1 + 4


def test_regressor_scoring_neg_mean_absolute_error(reg_data):
    X_train, X_val, y_train, y_val = reg_data
    model = reg(scoring="neg_mean_absolute_error", early_stopping=True, patience=3, tol=0.0,
                max_epochs=40).fit(X_train, y_train, X_val=X_val, y_val=y_val)
    score = model.history_["val_score"].to_numpy()
    assert (score <= 0).all()
    assert model.best_epoch_ == int(np.argmax(score)) + 1
    assert -mean_absolute_error(y_val, model.predict(X_val)) == pytest.approx(
        score[model.best_epoch_ - 1], rel=model_tolerance(1e-10))
    assert "scoring" in model.get_params()


# ---------------------------------------------------------------------------------------------
# train-only randomness: batch norm, dropout, noise


def test_batch_norm_uses_running_statistics_at_predict(clf_data):
    X_train, X_test, y_train, _ = clf_data
    model = clf(batch_norm=True).fit(X_train, y_train)
    p = layers(model)
    assert not np.allclose(p["running_mean", 0], 0) and not np.allclose(p["running_var", 0], 1)
    proba = model.predict_proba(X_test)
    assert_same_model(proba, softmax(forward_by_hand(model, X_test)), cpu_rtol=1e-10)
    # One sample alone predicts as it does inside a batch: no batch statistics at predict...
    assert_same_model(model.predict_proba(X_test[3:4]), proba[3:4], cpu_rtol=1e-12)
    # ... which would give other probabilities.
    batch_stats = softmax(forward_by_hand(model, X_test, batch_statistics=True))
    assert np.abs(batch_stats - proba).max() > 1e-3


def test_batch_norm_running_statistics_match_torch(clf_data):
    X_train, _, y_train, _ = clf_data
    # Full batch, SGD at lr=0: the running statistics follow torch's BatchNorm1d exactly.
    model = clf(batch_norm=True, batch_size=1000, max_epochs=3, optimizer="sgd", lr=1e-300)
    p = layers(model.fit(X_train, y_train))
    bn = torch.nn.BatchNorm1d(16, dtype=torch.float64)
    z = torch.as_tensor(X_train @ p["weight", 0] + p["bias", 0])
    for _ in range(3):
        bn(z)
    # (torch's BatchNorm1d in float64 on the CPU; a GPU's statistics are float32's)
    assert_same_model(p["running_mean", 0], bn.running_mean.numpy(), cpu_rtol=1e-10)
    assert_same_model(p["running_var", 0], bn.running_var.numpy(), cpu_rtol=1e-10)


@pytest.mark.parametrize("option", [{"dropout": 0.5}, {"noise_std": 1.0}], ids=["dropout", "noise"])
def test_dropout_and_noise_act_only_in_training(clf_data, option):
    X_train, X_test, y_train, _ = clf_data
    model = clf(**option).fit(X_train, y_train)
    proba = model.predict_proba(X_test)
    np.testing.assert_array_equal(model.predict_proba(X_test), proba)  # deterministic
    # The plain network, no mask and no rescaling: inverted dropout / noise are off at predict.
    assert_same_model(proba, softmax(forward_by_hand(model, X_test)), cpu_rtol=1e-10)
    assert_same_model(model.predict_proba(X_test[:1]), proba[:1], cpu_rtol=1e-12)
    # ... but they changed training.
    assert np.abs(clf().fit(X_train, y_train).predict_proba(X_test) - proba).max() > 1e-3


# ---------------------------------------------------------------------------------------------
# what users look at: history, summary, progress bar


def test_history_columns_and_train_loss(clf_data):
    X_train, _, y_train, _ = clf_data
    model = clf(max_epochs=5, batch_size=1000, optimizer="sgd", lr=0.1).fit(X_train, y_train)
    history = model.history_
    assert isinstance(history, pd.DataFrame)
    assert list(history.columns) == HISTORY_COLUMNS
    assert model.n_iter_ == model.best_epoch_ == 5
    np.testing.assert_array_equal(history["epoch"], np.arange(1, 6))
    assert history[["val_loss", "val_score"]].isna().all().all()
    np.testing.assert_allclose(history["lr"], 0.1)
    assert (history["seconds"] > 0).all()
    # Full batch: epoch k's training loss is the loss of the weights after k-1 epochs.
    after_four = clf(max_epochs=4, batch_size=1000, optimizer="sgd", lr=0.1).fit(X_train, y_train)
    assert history["train_loss"].iloc[-1] == pytest.approx(
        log_loss(y_train, after_four.predict_proba(X_train)), rel=max(1e-10, training_tolerance()))


@pytest.mark.parametrize("batch_norm", [False, True])
def test_summary_counts_equal_torch_layers(clf_data, batch_norm):
    X_train, _, y_train, _ = clf_data
    model = clf(hidden_layer_sizes=(12, 7), batch_norm=batch_norm, max_epochs=1)
    model.fit(X_train, y_train)
    modules = []
    for fan_in, fan_out in [(8, 12), (12, 7)]:
        modules.append(torch.nn.Linear(fan_in, fan_out))
        if batch_norm:
            modules.append(torch.nn.BatchNorm1d(fan_out))
        modules.append(torch.nn.ReLU())
    net = torch.nn.Sequential(*modules, torch.nn.Linear(7, 3))
    trainable = sum(p.numel() for p in net.parameters())
    frozen = sum(b.numel() for name, b in net.named_buffers() if "running" in name)
    text = model.summary()

    def count(label):
        return int(re.search(rf"{label} params: ([\d,]+)", text).group(1).replace(",", ""))

    assert count("Trainable") == trainable == model.model_.config.architecture.n_parameters()
    assert count("Non-trainable") == frozen == model.model_.buffers.shape[1]
    assert count("Total") == trainable + frozen
    assert text.startswith('Model: "MLPClassifier"')
    assert text.count("batch_norm_") == (2 if batch_norm else 0)


def test_verbose_shows_a_progress_bar_and_quiet_prints_nothing(clf_data, capsys):
    X_train, _, y_train, _ = clf_data
    clf(max_epochs=3).fit(X_train, y_train)
    assert capsys.readouterr() == ("", "")
    clf(max_epochs=3, verbose=1).fit(X_train, y_train, X_val=X_train, y_val=y_train)
    out, err = capsys.readouterr()
    assert out == ""
    assert "MLPClassifier" in err and "3/3" in err and "loss=" in err and "val_loss=" in err


# ---------------------------------------------------------------------------------------------
# continuing: partial_fit, warm_start, Ctrl-C


def test_classifier_partial_fit(clf_data):
    X_train, _, y_train, _ = clf_data
    model = clf()
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        clone(model).partial_fit(X_train, y_train)
    model.partial_fit(X_train, y_train, classes=[0, 1, 2])
    assert model.n_iter_ == 1 and len(model.history_) == 1
    model.partial_fit(X_train, y_train)
    assert model.n_iter_ == 1 and len(model.history_) == 2  # n_iter_: the last call, as sklearn
    # Two calls are two epochs of one fit.
    assert_same_training(model.predict_proba(X_train),
                         clf(max_epochs=2).fit(X_train, y_train).predict_proba(X_train))
    with pytest.raises(ValueError, match=r"labels \[7\]"):
        model.partial_fit(X_train, np.where(y_train == 2, 7, y_train))
    # classes= may name a class the first batch lacks.
    some = y_train != 2
    partial = clf().partial_fit(X_train[some], y_train[some], classes=[0, 1, 2])
    assert partial.predict_proba(X_train).shape == (len(X_train), 3)
    np.testing.assert_array_equal(partial.classes_, [0, 1, 2])


def test_regressor_partial_fit(reg_data):
    X_train, _, y_train, _ = reg_data
    model = reg()
    for _ in range(3):
        model.partial_fit(X_train, y_train)
    assert model.n_iter_ == 1 and len(model.history_) == 3
    assert_same_training(model.predict(X_train), reg(max_epochs=3).fit(X_train, y_train).predict(X_train))


def test_warm_start_continues(clf_data):
    X_train, _, y_train, _ = clf_data
    model = clf(max_epochs=6, warm_start=True).fit(X_train, y_train)
    first = model.history_["train_loss"].to_numpy()
    model.fit(X_train, y_train)
    assert model.n_iter_ == 6 and len(model.history_) == 12
    losses = model.history_["train_loss"].to_numpy()
    np.testing.assert_array_equal(losses[:6], first)
    assert losses[6:].mean() < first.mean() and losses[-1] < first[-1]
    # Six and six epochs are twelve epochs of one fit (optimizer state carried over).
    assert_same_training(model.predict_proba(X_train),
                         clf(max_epochs=12).fit(X_train, y_train).predict_proba(X_train))
    # Without warm_start, fit starts again.
    cold = clf(max_epochs=6).fit(X_train, y_train).fit(X_train, y_train)
    assert cold.n_iter_ == 6
    with pytest.raises(ValueError, match="cannot change the network's structure"):
        model.set_params(hidden_layer_sizes=(8,)).fit(X_train, y_train)


def test_ctrl_c_keeps_the_model_trained_so_far(clf_data, monkeypatch):
    X_train, _, y_train, _ = clf_data
    end_epoch = StackedTrainer._end_epoch

    def interrupted_after_three(self, *args, **kwargs):
        end_epoch(self, *args, **kwargs)
        if self.epochs_done[0] == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(StackedTrainer, "_end_epoch", interrupted_after_three)
    model = clf(max_epochs=20)
    with pytest.warns(RuntimeWarning, match="interrupted at epoch 3"):
        model.fit(X_train, y_train)
    monkeypatch.undo()
    assert model.n_iter_ == 3 and len(model.history_) == 3
    assert_same_training(model.predict_proba(X_train),
                         clf(max_epochs=3).fit(X_train, y_train).predict_proba(X_train))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a normal fit afterwards does not warn
        clf(max_epochs=2, patience=None).fit(X_train, y_train)


# ------------------------------------------------------------------------------------------------
# divergence bookkeeping and the weight attributes


def test_diverged_epoch_has_no_validation_score_and_float64_blow_up_is_caught():
    from sknn_tune import DivergenceError

    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)  # float64: the loss grows for many epochs before inf
    clf = MLPClassifier((64,), optimizer="momentum", lr=1.0, batch_size=32, max_epochs=30,
                        early_stopping=True, random_state=0, dtype="float64")  # (on a GPU too)
    with pytest.raises(DivergenceError) as info:
        clf.fit(X, y)
    history = info.value.history
    last = history.iloc[-1]
    first_loss = history["train_loss"].iloc[0]
    assert (not np.isfinite(last["train_loss"])) or last["train_loss"] > 1e6 * first_loss
    assert np.isnan(last["val_loss"]) and np.isnan(last["val_score"])
    assert history["val_score"].iloc[:-1].notna().all()


def test_coefs_and_intercepts_are_the_predicting_weights():
    X, y = load_iris(return_X_y=True)
    clf = MLPClassifier((6, 4), max_epochs=5, random_state=0, dtype="float64").fit(X, y)
    assert [w.shape for w in clf.coefs_] == [(4, 6), (6, 4), (4, 3)]
    assert [b.shape for b in clf.intercepts_] == [(6,), (4,), (3,)]
    h = X
    for w, b in zip(clf.coefs_[:-1], clf.intercepts_[:-1]):
        h = np.maximum(h @ w + b, 0.0)
    logits = h @ clf.coefs_[-1] + clf.intercepts_[-1]
    proba = np.exp(logits - logits.max(1, keepdims=True))
    assert_same_model(proba / proba.sum(1, keepdims=True), clf.predict_proba(X), cpu_rtol=1e-10)
    assert not hasattr(MLPClassifier(), "coefs_")
