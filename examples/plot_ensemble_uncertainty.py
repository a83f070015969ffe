"""
Ensembles and their uncertainty: bagging and seed ensembles trained as one stack
================================================================================

An ensemble of networks predicts better than one network, and the spread of its members says
where it does not know. :class:`~sknn_tune.ensemble.FusedBaggingRegressor` is scikit-learn's
:class:`~sklearn.ensemble.BaggingRegressor` (same parameters, same draws, same predictions) with
every member trained in one stacked model; its ``predict(X, return_std=True)`` also returns the
members' standard deviation. With ``bootstrap=False`` every member sees all the data and differs
from the others only by its seed: a *seed ensemble* (or deep ensemble).
"""

# %%
# A 1-D regression with a gap
# ---------------------------
# Noisy samples of :math:`\sin(x) + x/4` on two intervals, none between them nor beyond them.
import matplotlib.pyplot as plt
import numpy as np

from sknn_tune import MLPRegressor
from sknn_tune.ensemble import FusedBaggingRegressor

rng = np.random.RandomState(0)
x_train = np.concatenate([rng.uniform(-4, -1.5, 60), rng.uniform(1.5, 4, 60)])
y_train = np.sin(x_train) + x_train / 4 + rng.normal(0, 0.15, x_train.size)
X_train = x_train.reshape(-1, 1)
x_plot = np.linspace(-7, 7, 300)
X_plot = x_plot.reshape(-1, 1)

network = MLPRegressor((64, 64), activation="relu", max_epochs=150, batch_size=32, lr=1e-2,
                       random_state=0)

# %%
# Two ensembles of 16 members, each trained as one stack
# ------------------------------------------------------
# Bagging draws each member's rows with replacement (as bootstrap counts in ``sample_weight``);
# the seed ensemble gives every member all rows and its own initial weights and batch order.
ensembles = {
    "bagging (bootstrap rows)": FusedBaggingRegressor(network, n_estimators=16, random_state=0),
    "seed ensemble (bootstrap=False)": FusedBaggingRegressor(network, n_estimators=16,
                                                             bootstrap=False, random_state=0),
}
for ensemble in ensembles.values():
    ensemble.fit(X_train, y_train)

# %%
# Mean and spread
# ---------------
# The band is the mean +- 2 standard deviations of the members. Where the data are, the members
# agree; in the gap and beyond the data they disagree, and the band widens: the ensemble knows
# where it is extrapolating. A single network gives one curve and no such warning.
single = network.fit(X_train, y_train)
fig, axes = plt.subplots(1, 2, figsize=(12, 4), sharey=True)
for ax, (name, ensemble) in zip(axes, ensembles.items()):
    mean, std = ensemble.predict(X_plot, return_std=True)
    for member in ensemble.estimators_[:6]:
        ax.plot(x_plot, member.predict(X_plot), color="tab:blue", lw=0.6, alpha=0.5)
    ax.fill_between(x_plot, mean - 2 * std, mean + 2 * std, color="tab:orange", alpha=0.3,
                    label="mean +- 2 std")
    ax.plot(x_plot, mean, color="tab:orange", lw=2, label="ensemble mean")
    ax.plot(x_plot, single.predict(X_plot), "k--", lw=1, label="one network")
    ax.plot(x_plot, np.sin(x_plot) + x_plot / 4, color="grey", lw=1, label="truth")
    ax.scatter(x_train, y_train, s=8, color="k", alpha=0.5)
    ax.set_title(name)
    ax.set_xlabel("x")
    ax.set_ylim(-4, 4)
axes[0].set_ylabel("y")
axes[0].legend(loc="upper left", fontsize=8)
fig.tight_layout()

# %%
# What to take from it
# --------------------
# * The spread is small on the data and grows in the gap and outside the training range: use it
#   to flag predictions that should not be trusted.
# * Bagging adds the variation of the resampled rows to that of the seeds; the seed ensemble's
#   members all see every row, so its spread comes from the training's randomness alone.
# * Both are exactly scikit-learn's bagging (``estimators_samples_``, ``estimators_features_``
#   and predictions as :class:`~sklearn.ensemble.BaggingRegressor` gives them with the same
#   ``random_state``); only the training is fused.
