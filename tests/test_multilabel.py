"""Multilabel classification: a 2-D 0/1 indicator ``y``, as scikit-learn's MLPClassifier takes it.

References: scikit-learn's MLP (classes_, predict's format, one SGD step from the same weights,
accuracy), torch's ``binary_cross_entropy_with_logits``, ``accuracy_score`` on indicator matrices,
refits without the weighted-away rows, and scikit-learn's own GridSearchCV.

Estimators run where ``device='auto'`` resolves (the run's ``--device``): two trainings are compared
with ``assert_same_training`` (bit for bit on the CPU, the design's tolerance on a GPU), one model's
numbers computed two ways with ``assert_same_model`` / ``model_tolerance`` (float32 on a GPU).
"""

import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from conftest import assert_same_model, assert_same_training, model_tolerance, training_tolerance
from sklearn.datasets import make_multilabel_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score
from sklearn.model_selection import GridSearchCV, KFold, cross_val_predict, train_test_split
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.preprocessing import StandardScaler

from sknn_tune import FusedGridSearchCV, MLPClassifier, load, save
from sknn_tune import model_selection as fused_model_selection
from sknn_tune._engine.losses import LOSSES

N_LABELS = 4
_X, _Y = make_multilabel_classification(n_samples=240, n_features=8, n_classes=N_LABELS,
                                        random_state=0)
X = StandardScaler().fit_transform(_X)
Y = _Y


def clf(**params):
    # float64: compared with scikit-learn's MLP and torch's losses to ~1e-12.
    defaults = dict(hidden_layer_sizes=(16,), lr=1e-2, batch_size=32, max_epochs=8, random_state=0,
                    dtype="float64")
    return MLPClassifier(**{**defaults, **params})


@pytest.fixture(scope="module")
def fitted():
    return clf().fit(X, Y)


# ---------------------------------------------------------------------------------------------
# the estimator against scikit-learn's MLP


def test_fitted_attributes_and_output_format_as_sklearn(fitted):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        theirs = SkMLPClassifier((16,), max_iter=3, random_state=0).fit(X, Y)
    assert fitted.multilabel_
    np.testing.assert_array_equal(fitted.classes_, theirs.classes_)  # label indices 0..L-1
    assert fitted.classes_.dtype == theirs.classes_.dtype
    ours_pred, their_pred = fitted.predict(X), theirs.predict(X)
    assert ours_pred.shape == their_pred.shape == Y.shape
    assert ours_pred.dtype == their_pred.dtype
    assert set(np.unique(ours_pred)) <= {0, 1}
    proba = fitted.predict_proba(X)
    assert proba.shape == theirs.predict_proba(X).shape == Y.shape
    assert proba.min() >= 0 and proba.max() <= 1
    assert not np.allclose(proba.sum(axis=1), 1.0)  # one sigmoid per label, not a softmax
    np.testing.assert_array_equal(ours_pred, (proba > 0.5).astype(int))  # sklearn's threshold
    np.testing.assert_allclose(fitted.predict_log_proba(X), np.log(proba))
    assert fitted.score(X, Y) == accuracy_score(Y, ours_pred)  # subset accuracy


def test_one_sgd_step_equals_sklearns_from_the_same_weights():
    # Full batch, plain SGD, no shuffling: from the same weights, one step of scikit-learn's
    # multilabel MLP (logistic outputs, binary log-loss summed over the labels) and one epoch of
    # ours give the same weights and the same training loss. (In float64 on any device: the
    # reference is scikit-learn's float64.)
    params = dict(optimizer="sgd", lr=0.1, batch_size=len(X), shuffle=False, patience=None,
                  dtype="float64")
    ours = clf(max_epochs=2, **params).fit(X, Y)
    theirs = SkMLPClassifier((16,), solver="sgd", momentum=0.0, learning_rate_init=0.1,
                             batch_size=len(X), shuffle=False, alpha=0.0, max_iter=1,
                             warm_start=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        theirs.fit(X, Y)
    assert theirs.out_activation_ == "logistic"
    theirs.coefs_ = ours.coefs_
    theirs.intercepts_ = ours.intercepts_
    theirs.partial_fit(X, Y)
    ours.partial_fit(X, Y)
    for mine, reference in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(mine, reference, rtol=1e-10, atol=1e-12)
    assert ours.history_["train_loss"].iloc[-1] == pytest.approx(theirs.loss_, rel=1e-10)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-10)


def test_accuracy_comparable_to_sklearn_mlp():
    X_raw, Y_all = make_multilabel_classification(n_samples=600, n_features=12, n_classes=3,
                                                  random_state=0)
    X_train, X_test, Y_train, Y_test = train_test_split(X_raw, Y_all, test_size=0.3,
                                                        random_state=0)
    scaler = StandardScaler().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    # scikit-learn's initialisation (Glorot uniform), so that only the draws differ
    ours = MLPClassifier((32,), init="xavier_uniform", lr=3e-3, max_epochs=40, batch_size=32,
                         random_state=0)
    theirs = SkMLPClassifier((32,), learning_rate_init=3e-3, max_iter=40, batch_size=32,
                             random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        theirs.fit(X_train, Y_train)
        ours.fit(X_train, Y_train)
    ours_acc, theirs_acc = ours.score(X_test, Y_test), theirs.score(X_test, Y_test)
    majority = accuracy_score(Y_test, np.tile(Y_train.mean(0) > 0.5, (len(Y_test), 1)))
    assert theirs_acc > majority + 0.2
    assert abs(ours_acc - theirs_acc) < 0.04, (ours_acc, theirs_acc)


@pytest.mark.parametrize("loss", ["log_loss", "squared_error"])
def test_training_loss_is_the_torch_loss_of_the_sigmoid_outputs(loss):
    # The second full-batch epoch's training loss, from the weights the first left behind.
    pytest.importorskip("skorch")  # to_torch: sknn_tune.interop imports skorch
    params = dict(loss=loss, batch_size=len(X), shuffle=False, patience=None)
    est = clf(max_epochs=1, **params).fit(X, Y)
    net = est.to_torch()
    weight = next(net.parameters())  # on the model's device, in its dtype
    inputs = torch.as_tensor(X, dtype=weight.dtype, device=weight.device)
    logits = net(inputs).detach()
    target = torch.as_tensor(Y, dtype=logits.dtype, device=logits.device)
    if loss == "log_loss":
        expected = F.binary_cross_entropy_with_logits(logits, target, reduction="none").sum(1)
    else:
        expected = 0.5 * F.mse_loss(torch.sigmoid(logits), target, reduction="none").mean(1)
    est.partial_fit(X, Y)
    assert est.history_["train_loss"].iloc[-1] == pytest.approx(expected.mean().item(),
                                                                rel=model_tolerance(1e-12))
    assert_same_model(torch.sigmoid(est.to_torch()(inputs)).detach(), est.predict_proba(X),
                      cpu_rtol=1e-12)


def test_bce_stays_finite_where_the_sigmoid_saturates():
    out = torch.tensor([[[-800.0, -30.0, 0.0, 30.0, 800.0]]], dtype=torch.float64,
                       requires_grad=True)
    target = torch.tensor([[[1.0, 0.0, 1.0, 1.0, 0.0]]], dtype=torch.float64)
    value, grad = LOSSES["sigmoid_log_loss"].value_and_grad(out, target)
    reference = F.binary_cross_entropy_with_logits(out, target, reduction="none").sum(-1)
    (auto,) = torch.autograd.grad(reference.sum(), out)
    assert torch.isfinite(value).all() and value.item() > 1599
    torch.testing.assert_close(value, reference.detach(), rtol=1e-14, atol=0)
    torch.testing.assert_close(grad, auto, rtol=1e-14, atol=0)


# ---------------------------------------------------------------------------------------------
# inputs, weights, validation, continuing


def test_bool_float_sparse_and_column_targets():
    reference = clf().fit(X, Y).predict_proba(X)
    for y in (Y.astype(bool), Y.astype(float), sp.csr_matrix(Y)):
        assert_same_training(clf().fit(X, y).predict_proba(X), reference)
    single = clf()
    with pytest.warns(Warning, match="column-vector y"):
        single.fit(X, Y[:, :1])  # one column: binary labels, as scikit-learn
    assert not single.multilabel_ and single.predict(X).shape == (len(X),)


def test_zero_sample_weight_removes_rows():
    dropped = np.arange(len(X)) % 4 == 0
    params = dict(batch_size=1000, max_epochs=10, lr=3e-2)
    weighted = clf(**params).fit(X, Y, sample_weight=np.where(dropped, 0.0, 1.0))
    removed = clf(**params).fit(X[~dropped], Y[~dropped])
    np.testing.assert_allclose(weighted.predict_proba(X), removed.predict_proba(X),
                               rtol=max(1e-9, training_tolerance()), atol=training_tolerance(1e-12))
    twice = np.where(dropped, 2.0, 1.0)
    duplicated = clf(**params).fit(np.vstack([X, X[dropped]]), np.vstack([Y, Y[dropped]]))
    np.testing.assert_allclose(clf(**params).fit(X, Y, sample_weight=twice).predict_proba(X),
                               duplicated.predict_proba(X), rtol=max(1e-9, training_tolerance()),
                               atol=training_tolerance())
    assert not np.allclose(clf(**params).fit(X, Y).predict_proba(X), removed.predict_proba(X))


def test_class_weight_is_refused():
    est = clf(class_weight="balanced")
    with pytest.raises(ValueError, match="class_weight is not supported for multilabel"):
        est.fit(X, Y)
    assert not hasattr(est, "classes_")


def test_validation_score_is_subset_accuracy_and_loss_the_bce():
    X_train, X_val, Y_train, Y_val = train_test_split(X, Y, test_size=0.25, random_state=0)
    est = clf(patience=None, restore_best_weights=False).fit(X_train, Y_train, X_val=X_val,
                                                              y_val=Y_val)
    last = est.history_.iloc[-1]
    # (the history keeps the model's dtype: float32 on a GPU)
    assert last["val_score"] == pytest.approx(accuracy_score(Y_val, est.predict(X_val)),
                                              rel=model_tolerance(), abs=1e-12)
    proba = est.predict_proba(X_val)
    bce = -(Y_val * np.log(proba) + (1 - Y_val) * np.log(1 - proba)).sum(1).mean()
    # (on a GPU from float32 probabilities, whose rounding near 1 shows in log(1 - p): to the
    # design's tolerance)
    assert last["val_loss"] == pytest.approx(bce, rel=max(1e-10, training_tolerance()))


def test_early_stopping_splits_without_strata():
    # A label combination seen once fails a stratified split; scikit-learn does not stratify
    # multilabel targets, and neither do we.
    X_few, Y_few = X[:60], Y[:60]
    assert min(np.unique(Y_few, axis=0, return_counts=True)[1]) == 1
    with pytest.raises(ValueError, match="least populated class"):
        train_test_split(X_few, Y_few, test_size=0.2, stratify=Y_few, random_state=0)
    SkMLPClassifier((16,), early_stopping=True, validation_fraction=0.2, n_iter_no_change=2,
                    max_iter=60).fit(X_few, Y_few)
    est = clf(early_stopping=True, validation_fraction=0.2, patience=2, max_epochs=60)
    history = est.fit(X_few, Y_few).history_
    n_val = int(np.ceil(0.2 * len(X_few)))
    assert history["val_score"].between(0, 1).all()
    np.testing.assert_allclose(history["val_score"] * n_val, np.round(history["val_score"] * n_val))
    assert est.n_iter_ < 60
    assert est.best_epoch_ == history.loc[history["val_loss"].idxmin(), "epoch"]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.UndefinedMetricWarning")
def test_scoring_scores_the_indicator_matrix():
    est = clf(early_stopping=True, scoring="f1_samples", max_epochs=5).fit(X, Y)
    assert est.history_["val_score"].between(0, 1).all()


def test_partial_fit_continues_like_fit():
    est = clf()
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        est.partial_fit(X, Y)
    with pytest.raises(ValueError, match=r"label indices np.arange\(y.shape\[1\]\)"):
        clf().partial_fit(X, Y, classes=[0, 1])
    est.partial_fit(X, Y, classes=np.arange(N_LABELS)).partial_fit(X, Y)
    np.testing.assert_array_equal(est.classes_, np.arange(N_LABELS))
    assert_same_training(est.predict_proba(X), clf(max_epochs=2).fit(X, Y).predict_proba(X))
    with pytest.raises(ValueError, match="y has 3 labels"):
        est.partial_fit(X, Y[:, :3])
    with pytest.raises(ValueError, match="fitted on a label indicator matrix"):
        est.partial_fit(X, Y[:, 0])
    with pytest.raises(ValueError, match="fitted on class labels; y is a label indicator"):
        clf().fit(X, Y[:, 0]).partial_fit(X, Y)
    assert len(est.history_) == 2  # the refused calls trained nothing


def test_warm_start_continues_like_fit():
    est = clf(max_epochs=3, warm_start=True).fit(X, Y).fit(X, Y)
    assert_same_training(est.predict_proba(X), clf(max_epochs=6).fit(X, Y).predict_proba(X))
    with pytest.raises(ValueError, match="y has 3 labels"):
        est.fit(X, Y[:, :3])


def test_pickle_save_load_and_interop(fitted, tmp_path):
    proba = fitted.predict_proba(X)
    # The same weights; a pickle holds CPU tensors, so on a GPU run the loaded model predicts on
    # the CPU: the same numbers to float32 rounding there, bit for bit on a CPU run.
    assert_same_training(pickle.loads(pickle.dumps(fitted)).predict_proba(X), proba)
    save(fitted, tmp_path / "model.pt")
    loaded = load(tmp_path / "model.pt")
    assert loaded.multilabel_
    np.testing.assert_array_equal(loaded.predict(X), fitted.predict(X))


def test_to_skorch_refuses_multilabel(fitted):
    pytest.importorskip("skorch")  # sknn_tune.interop imports it
    with pytest.raises(ValueError, match="to_skorch has no skorch net for a multilabel"):
        fitted.to_skorch()


def test_multi_label_tag_as_sklearn():
    assert SkMLPClassifier().__sklearn_tags__().classifier_tags.multi_label
    assert MLPClassifier().__sklearn_tags__().classifier_tags.multi_label


# ---------------------------------------------------------------------------------------------
# fused search


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.UndefinedMetricWarning")
def test_fused_grid_search_equals_grid_search(trained):
    grid = [{"lr": [3e-3, 3e-2], "loss": ["log_loss", "squared_error"]},
            {"hidden_layer_sizes": [(8, 8)], "optimizer": ["rmsprop"], "early_stopping": [True]}]
    base = clf(max_epochs=4, batch_size=64)
    kwargs = dict(cv=KFold(3, shuffle=True, random_state=0), scoring=["accuracy", "f1_samples"],
                  refit="accuracy", return_train_score=True)
    fused = FusedGridSearchCV(base, grid, **kwargs).fit(X, Y)
    assert trained.fused() == 5 * 3 and trained.plain() == 1  # the fused stacks, then the refit
    reference = GridSearchCV(base, grid, **kwargs).fit(X, Y)
    a, b = fused.cv_results_, reference.cv_results_
    assert list(a) == list(b)
    for key in a:
        if key.endswith("_time"):
            continue
        if key == "params":
            assert a[key] == b[key]
        elif np.issubdtype(np.asarray(b[key]).dtype, np.floating):
            np.testing.assert_allclose(a[key], b[key], rtol=0, atol=training_tolerance(1e-6),
                                       err_msg=key)
        else:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    scores = np.asarray(a["mean_test_accuracy"])
    assert scores.max() - scores.min() > 1e-3  # candidates differ: a mix-up would show
    assert fused.best_params_ == reference.best_params_
    # The two refits are two trainings; the labels are decoded from the fused one's probabilities.
    proba = fused.predict_proba(X)
    assert_same_training(proba, reference.predict_proba(X))
    np.testing.assert_array_equal(fused.predict(X), (proba > 0.5).astype(int))
    if training_tolerance() == 0:
        np.testing.assert_array_equal(fused.predict(X), reference.predict(X))


def test_fused_cross_val_predict_equals_sklearns(trained):
    est = clf(max_epochs=4)
    fused = fused_model_selection.cross_val_predict(est, X, Y, cv=3, method="predict_proba")
    assert trained.fused() == 3 and trained.plain() == 0
    assert_same_training(fused, cross_val_predict(est, X, Y, cv=3, method="predict_proba"))
    assert fused.shape == Y.shape
