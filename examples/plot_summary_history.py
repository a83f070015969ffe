"""
Model summary and training history
==================================

Keras users look at a network with ``model.summary()`` and at its training with the
``History`` object that ``fit`` returns. A fitted :class:`~sknn_tune.MLPClassifier` or
:class:`~sknn_tune.MLPRegressor` has both: :meth:`~sknn_tune.MLPClassifier.summary` and the
``history_`` DataFrame, one row per epoch. This example tours them, together with
:func:`~sknn_tune.plot_history`, ``n_iter_``, ``best_epoch_`` and continuing a fit with
``warm_start``.
"""

# %%
# Fit a pipeline
# --------------
# Digits, a scaler and a two-hidden-layer network with early stopping (10 % of the training
# data held out for validation).
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sknn_tune import MLPClassifier, plot_history

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X.astype(np.float32), y, test_size=0.25, stratify=y, random_state=0)
pipe = make_pipeline(StandardScaler(), MLPClassifier(
    (128, 64), dropout=0.2, max_epochs=40, batch_size=64, early_stopping=True, patience=5,
    random_state=0))
pipe.fit(X_train, y_train)
clf = pipe[-1]
print(f"test accuracy {pipe.score(X_test, y_test):.3f}")

# %%
# The summary
# -----------
# One row per layer with its output shape and parameter count: the input's 64 pixels, two
# hidden layers with their ReLUs, and a 10-unit softmax output. Dropout has no parameters and
# does not appear.
print(clf.summary())

# %%
# The history
# -----------
# ``history_`` is a :class:`pandas.DataFrame`: the epoch (from 1), the mean training loss over
# the epoch's batches (measured with dropout active), the validation loss and score (accuracy
# for a classifier, R² for a regressor; NaN when there is no validation set), the learning rate
# and the seconds the epoch took.
print(clf.history_.head().round(4).to_string(index=False))

# %%
# ``n_iter_`` counts the epochs trained, and ``best_epoch_`` is the epoch whose weights the
# model predicts with: early stopping ended training ``patience`` epochs after the best
# validation loss and restored that epoch's weights.
print(f"n_iter_ = {clf.n_iter_}, best_epoch_ = {clf.best_epoch_}")
best = clf.history_.loc[clf.history_["epoch"] == clf.best_epoch_]
print(best.round(4).to_string(index=False))

# %%
# Being a DataFrame, the history saves with ``to_csv``, and pandas' own plotting works on it;
# :func:`~sknn_tune.plot_history` adds the conventions: training against validation, the best
# epoch marked, and any column by name. It takes the pipeline directly.
fig, axes = plt.subplots(1, 3, figsize=(15, 4))
plot_history(pipe, ax=axes[0])
axes[0].set_yscale("log")
plot_history(pipe, metric="score", ax=axes[1])
plot_history(pipe, metric="seconds", ax=axes[2], mark_best=False)
axes[2].set_ylim(bottom=0)
fig.tight_layout()

# %%
# Continuing a fit
# ----------------
# With ``warm_start=True`` another ``fit`` continues from the current weights and optimizer
# state for another ``max_epochs`` epochs, and the history grows instead of starting over.
# Here we turn early stopping off and train 10 more epochs: the training loss carries on
# from where the first fit left it, rather than starting again from a fresh network.
pipe.set_params(mlpclassifier__warm_start=True, mlpclassifier__early_stopping=False,
                mlpclassifier__max_epochs=10)
pipe.fit(X_train, y_train)
print(f"n_iter_ = {clf.n_iter_}, history rows = {len(clf.history_)}")
ax = plot_history(pipe, mark_best=False)
ax.set_yscale("log")
ax.axvline(clf.n_iter_ - 10 + 0.5, color="0.5", linestyle="--", label="warm start")
ax.legend()
ax.set_title("continued with warm_start, no validation set in the second fit")

# %%
# The second fit had no validation set (early stopping off, no ``X_val``), so its rows have
# NaN in the validation columns and that curve stops where the first fit ended. The second
# fit also trains on all the training rows, including the 10 % the first one held out for
# validation: those are new to the network, hence the small bump in the training loss.
#
# History after a search
# ----------------------
# A search refits the best candidate on all the training data; its history is that of
# ``best_estimator_``, and :func:`~sknn_tune.plot_history` takes the search itself.
search = GridSearchCV(
    make_pipeline(StandardScaler(), MLPClassifier((64,), max_epochs=15, random_state=0)),
    {"mlpclassifier__lr": [1e-3, 1e-2]}, cv=3).fit(X_train, y_train)
print(search.best_params_, f"cv accuracy {search.best_score_:.3f}")
ax = plot_history(search, mark_best=False)
ax.set_title(f"best candidate, {search.best_params_}")
