"""
Learning-rate decay schedules
=============================

A large learning rate makes fast progress early but keeps the weights bouncing around a
minimum; a small one settles but crawls. Decay schedules start large and shrink the rate as
training goes on. :class:`~sknn_tune.MLPClassifier` and :class:`~sknn_tune.MLPRegressor` offer
the common ones through ``lr_schedule`` (with ``lr_decay`` and ``lr_step``), applied once per
epoch:

* ``'step'``: multiply by ``lr_decay`` every ``lr_step`` epochs;
* ``'exponential'``: multiply by ``lr_decay`` every epoch;
* ``'inverse'``: ``lr / (1 + lr_decay * epoch)``, the classic "time-based" decay;
* ``'cosine'``: anneal along half a cosine to zero at ``max_epochs``;
* ``'plateau'``: multiply by ``lr_decay`` when the validation loss has not improved for
  ``lr_step`` epochs (it reacts to the data rather than the clock).

The rate of each epoch is the ``lr`` column of ``history_``.
"""

# %%
# Data and fits
# -------------
# A regression problem this time: Friedman's synthetic benchmark #1 (10 features, 5 of them
# used by a nonlinear formula, plus Gaussian noise), 1000 samples to train on and 1000 to
# validate. Targets are standardised too. SGD with momentum at ``lr=0.1``, 30 epochs; the decay
# parameters are chosen so that each schedule ends at a few percent of the initial rate.
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.datasets import make_friedman1
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from sknn_tune import MLPRegressor, plot_histories

X, y = make_friedman1(n_samples=2000, noise=1.0, random_state=0)
y = (y - y.mean()) / y.std()
X_train, X_val, y_train, y_val = train_test_split(
    X.astype(np.float32), y.astype(np.float32), test_size=0.5, random_state=0)
scaler = StandardScaler().fit(X_train)
X_train, X_val = scaler.transform(X_train), scaler.transform(X_val)

schedules = {
    "constant": {},
    "step": {"lr_decay": 0.3, "lr_step": 10},
    "exponential": {"lr_decay": 0.93},
    "inverse": {"lr_decay": 0.2},
    "cosine": {},
    "plateau": {"lr_decay": 0.3, "lr_step": 3},
}
models = {
    name: MLPRegressor((64, 64), optimizer="momentum", lr=0.1, lr_schedule=name,
                       max_epochs=30, batch_size=64, random_state=0, **params)
    .fit(X_train, y_train, X_val=X_val, y_val=y_val)
    for name, params in schedules.items()
}
print(pd.DataFrame({
    "lr at the end": [m.history_["lr"].iloc[-1] for m in models.values()],
    "lowest val loss": [m.history_["val_loss"].min() for m in models.values()],
    "at epoch": [int(m.history_["val_loss"].idxmin()) + 1 for m in models.values()],
    "final val loss": [m.history_["val_loss"].iloc[-1] for m in models.values()],
    "final val R²": [m.history_["val_score"].iloc[-1] for m in models.values()],
}, index=list(models)).round(4).to_string())

# %%
# The schedules and their validation loss
# ---------------------------------------
# ``metric='lr'`` draws the learning rate of each epoch, here on a logarithmic scale.
fig, (ax_lr, ax_val) = plt.subplots(1, 2, figsize=(11, 4))
plot_histories(models, metric="lr", ax=ax_lr, mark_best=False)
ax_lr.set_yscale("log")
ax_lr.set_title("learning rate")
plot_histories(models, metric="val_loss", ax=ax_val, mark_best=False)
ax_val.set_ylim(0.045, 0.11)
ax_val.set_title("validation loss")
fig.tight_layout()

# %%
# What to take from it
# --------------------
# * At a constant rate the validation loss keeps bouncing from epoch to epoch: the lowest
#   value it touches (in this run the lowest of all six) is not where it ends.
# * The decaying schedules calm that down and end at or next to their best epoch, so the model
#   you get is the best one the run produced, without early stopping. Here ``'plateau'`` ends
#   with the lowest final validation loss.
# * A schedule that decays early (``'inverse'``, ``'exponential'``) also slows progress early:
#   in a budget of 30 epochs they end behind. ``'cosine'`` keeps a high rate for longer and
#   adapts to ``max_epochs``; ``'plateau'`` only cuts when progress stalls.
#
# None of them is a free win: the initial rate, the decay and the number of epochs interact,
# so tune them together. A schedule earns most when it lets you start from a rate that
# would be too unstable to keep to the end.
