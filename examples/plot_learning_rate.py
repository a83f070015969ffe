"""
Learning rate: 0.01, 0.1 and 1.0
================================

The learning rate is the hyperparameter to tune first. Too small and training crawls; a bit
larger and it converges fast; too large and the updates overshoot, the loss grows instead of
shrinking, and eventually it overflows. :class:`~sknn_tune.MLPClassifier` then raises a
:class:`~sknn_tune.DivergenceError` rather than return a network that predicts NaN, and the
error keeps the history of the failed run so that you can look at it. Here we train with
three rates, one of which diverges, and plot all three.
"""

# %%
# Data
# ----
# Digits, three quarters for training, standardised, in float32.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from sknn_tune import DivergenceError, MLPClassifier, plot_histories

X, y = load_digits(return_X_y=True)
X_train, X_val, y_train, y_val = train_test_split(
    X.astype(np.float32), y, test_size=0.25, stratify=y, random_state=0)
scaler = StandardScaler().fit(X_train)
X_train, X_val = scaler.transform(X_train), scaler.transform(X_val)

# %%
# Three rates, one network
# ------------------------
# Stochastic gradient descent with momentum 0.9 (``optimizer='momentum'``), the tutorials'
# classic setting, and one hidden layer of 100 units. A fit that diverges raises; we catch the
# error and keep its ``history`` in place of the estimator, since the plotting functions accept
# both.
runs = {}
for lr in [0.01, 0.1, 1.0]:
    clf = MLPClassifier((100,), optimizer="momentum", lr=lr, max_epochs=20, batch_size=64,
                        random_state=0)
    try:
        runs[f"lr={lr}"] = clf.fit(X_train, y_train, X_val=X_val, y_val=y_val)
    except DivergenceError as error:
        print(error)
        runs[f"lr={lr}"] = error

for name, run in runs.items():
    history = run.history if isinstance(run, DivergenceError) else run.history_
    finite = history[np.isfinite(history["train_loss"])]
    print(f"{name}: training loss {finite['train_loss'].iloc[0]:.3g} after epoch 1, "
          f"{finite['train_loss'].iloc[-1]:.3g} after epoch {finite['epoch'].iloc[-1]}")

# %%
# The curves
# ----------
# The training loss on a logarithmic scale (the diverging run spans many orders of magnitude;
# its curve ends with an ``x`` at its last finite value) and the validation accuracy.
fig, (ax_loss, ax_score) = plt.subplots(1, 2, figsize=(11, 4))
plot_histories(runs, metric="train_loss", ax=ax_loss, mark_best=False)
ax_loss.set_yscale("log")
ax_loss.set_title("training loss")
plot_histories(runs, metric="score", ax=ax_score, mark_best=False)
ax_score.set_ylabel("validation accuracy")
ax_score.set_title("validation accuracy")
fig.tight_layout()

# %%
# What to take from it
# --------------------
# * ``lr=0.01`` learns steadily but slowly: after 20 epochs its training loss is still far
#   above that of ``lr=0.1``. On a problem this easy its validation accuracy catches up anyway;
#   slow is not wrong, only expensive.
# * ``lr=0.1`` drives the training loss down within a few epochs.
# * ``lr=1.0`` overshoots from the first epoch: each epoch multiplies the loss instead of
#   reducing it, and the validation accuracy jumps around far below the other two. Once the
#   numbers overflow, the fit stops with a :class:`~sknn_tune.DivergenceError` naming the
#   hyperparameters that usually cause it; the epoch that produced NaN is left out of the
#   plots, as its scores are meaningless.
#
# Search the learning rate on a logarithmic scale (0.001, 0.01, 0.1, ...), then refine around
# the best value. A rate that is fast but unstable can often be kept by decaying it during
# training (:ref:`sphx_glr_auto_examples_plot_lr_schedules.py`) or by an adaptive optimizer
# (:ref:`sphx_glr_auto_examples_plot_optimizers.py`). In a grid search, pass
# ``error_score=np.nan`` so that one diverging candidate does not stop the whole search.
