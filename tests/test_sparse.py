"""Sparse input: scipy CSR / CSC matrices and sparse arrays train, predict and search as their
dense version does, to the last bit (on the CPU; within the design's tolerance on a GPU, through
``assert_same_training``), without the whole matrix ever made dense."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from conftest import assert_same_training, training_tolerance
from sklearn.base import clone
from sklearn.datasets import load_digits, make_regression
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder
from test_search import assert_same_search

from sknn_tune import FusedGridSearchCV, MLPClassifier, MLPRegressor
from sknn_tune._engine import sparse_rows as rows_module
from sknn_tune._engine.sparse_rows import SparseRows

X_DIGITS, Y_DIGITS = load_digits(return_X_y=True)
X_DIGITS, Y_DIGITS = X_DIGITS[:400], Y_DIGITS[:400]  # about half zeros
FORMATS = {"csr": sp.csr_matrix, "csc": sp.csc_matrix, "csr_array": sp.csr_array}


def clf(**params):
    return MLPClassifier(**{"hidden_layer_sizes": (16,), "max_epochs": 3, "patience": None,
                            "random_state": 0, "batch_size": 64, "dtype": "float64", **params})


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("params", [{}, {"dropout": 0.2, "noise_std": 0.1, "early_stopping": True}],
                         ids=["plain", "dropout-noise-early-stopping"])
def test_classifier_on_sparse_equals_dense(fmt, params):
    X_sparse = FORMATS[fmt](X_DIGITS)
    dense, sparse = clf(**params).fit(X_DIGITS, Y_DIGITS), clf(**params).fit(X_sparse, Y_DIGITS)
    for a, b in zip(dense.coefs_ + dense.intercepts_, sparse.coefs_ + sparse.intercepts_):
        assert_same_training(a, b)
    assert_same_training(sparse.predict_proba(X_sparse), dense.predict_proba(X_DIGITS))
    assert sparse.score(X_sparse, Y_DIGITS) == pytest.approx(dense.score(X_DIGITS, Y_DIGITS),
                                                             abs=training_tolerance())
    assert_same_training(sparse.history_["train_loss"], dense.history_["train_loss"])


def test_regressor_partial_fit_and_validation_set_on_sparse():
    X, y = make_regression(300, 40, n_informative=10, noise=1.0, random_state=0)
    X[np.abs(X) < 1.0] = 0.0
    X_sparse = sp.csr_matrix(X)
    reg = MLPRegressor((16,), max_epochs=3, patience=None, random_state=0)
    dense = reg.fit(X[:200], y[:200], X_val=X[200:], y_val=y[200:])
    assert_same_training(
        MLPRegressor((16,), max_epochs=3, patience=None, random_state=0).fit(
            X_sparse[:200], y[:200], X_val=X_sparse[200:], y_val=y[200:]).predict(X_sparse),
        dense.predict(X))
    a, b = (MLPRegressor((16,), random_state=0) for _ in range(2))
    for _ in range(2):
        a.partial_fit(X, y)
        b.partial_fit(sp.csc_matrix(X), y)
    assert_same_training(a.predict(X), b.predict(X_sparse))


def test_training_never_makes_the_whole_matrix_dense(monkeypatch):
    # 3000 rows x 20000 columns, 0.1% non-zero: dense would be 480 MB in float64.
    X = sp.random(3000, 20000, density=0.001, format="csr", random_state=0)
    y = np.asarray(X[:, :50].sum(axis=1)).ravel() > np.median(np.asarray(X[:, :50].sum(axis=1)))
    largest = []
    getitem = SparseRows.__getitem__

    def recorded(self, index):
        rows = getitem(self, index)  # dense rows, or a SparseBatch of columns and values
        largest.append(rows.numel() if isinstance(rows, torch.Tensor) else rows.values.numel())
        return rows

    monkeypatch.setattr(SparseRows, "__getitem__", recorded)
    model = MLPClassifier((8,), max_epochs=2, batch_size=100, patience=None, random_state=0)
    model.fit(X, y)
    assert model.predict(X[:5]).shape == (5,)
    assert max(largest) <= 1024 * 20000  # a batch, or a chunk of prediction rows
    assert max(largest) < X.shape[0] * X.shape[1] / 2


@pytest.mark.parametrize("params", [{}, {"dropout": 0.2, "noise_std": 0.1, "batch_norm": True}],
                         ids=["plain", "dropout-noise-batch-norm"])
def test_sparse_first_layer_product_equals_dense(params):
    # Rows under 1/8 full: the first layer multiplies the sparse rows (gathered weight rows,
    # scattered weight gradient) instead of densifying them; the same model to rounding.
    X = sp.random(600, 400, density=0.01, format="csr", random_state=0)
    y = (np.asarray(X[:, :40].sum(axis=1)).ravel() > 0).astype(int)
    assert isinstance(SparseRows(X, torch.float64, "cpu")[torch.tensor([[0, 1]])],
                      rows_module.SparseBatch)
    model = clf(early_stopping=True, **params)
    dense, sparse = clone_fit(model, X.toarray(), y), clone_fit(model, X, y)
    for a, b in zip(dense.coefs_ + dense.intercepts_, sparse.coefs_ + sparse.intercepts_):
        assert_same_training(a, b, cpu_atol=1e-12)
    assert_same_training(sparse.predict_proba(X), dense.predict_proba(X.toarray()), cpu_atol=1e-12)
    np.testing.assert_allclose(sparse.history_["val_loss"], dense.history_["val_loss"],
                               rtol=1e-7 if training_tolerance() == 0 else training_tolerance(),
                               atol=training_tolerance(1e-12))


def clone_fit(model, X, y):
    return clone(model).fit(X, y)


def test_sparse_rows_gather_matches_dense_rows():
    X = sp.random(50, 30, density=0.2, format="csr", random_state=1)
    X[3] = 0  # an empty row
    rows = SparseRows(X, torch.float64, "cpu")
    index = torch.tensor([[0, 3, 49], [7, 7, 2]])
    np.testing.assert_array_equal(rows[index].numpy(), X.toarray()[index.numpy()])
    np.testing.assert_array_equal(rows[None, 10:20].numpy()[0], X.toarray()[10:20])
    empty = SparseRows(sp.csr_matrix((4, 5)), torch.float32, "cpu")
    assert rows_module.dense(empty[torch.tensor([0, 3])]).abs().sum() == 0


def test_fused_search_over_one_hot_pipeline_equals_grid_search(trained):
    rng = np.random.default_rng(0)
    X = rng.integers(0, 6, size=(240, 4)).astype(str)
    y = (X[:, 0] == "1") | (X[:, 1] == "2")
    pipe = make_pipeline(OneHotEncoder(), clf())
    grid = {"mlpclassifier__lr": [1e-3, 1e-2]}
    fused = FusedGridSearchCV(pipe, grid, cv=3, scoring="neg_log_loss").fit(X, y)
    ref = GridSearchCV(pipe, grid, cv=3, scoring="neg_log_loss").fit(X, y)
    assert_same_search(fused, ref, X, atol=training_tolerance())
    assert trained.fused() == 6


def test_fused_search_over_tfidf_pipeline_equals_grid_search(trained):
    words = np.array("alpha beta gamma delta epsilon zeta eta theta iota kappa".split())
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 150)
    docs = [" ".join(rng.choice(words[:6] if label else words[4:], 8)) for label in y]
    pipe = make_pipeline(TfidfVectorizer(), clf())
    grid = {"mlpclassifier__lr": [1e-3, 1e-2]}
    fused = FusedGridSearchCV(pipe, grid, cv=3).fit(docs, y)
    ref = GridSearchCV(pipe, grid, cv=3).fit(docs, y)
    assert_same_search(fused, ref, np.array(docs, dtype=object), atol=training_tolerance())
    assert trained.fused() == 6


def test_sparse_input_tag():
    assert MLPClassifier().__sklearn_tags__().input_tags.sparse
    assert MLPRegressor().__sklearn_tags__().input_tags.sparse
    assert rows_module.as_rows(sp.csr_matrix(np.eye(3)), torch.float64, "cpu").shape == (3, 3)
