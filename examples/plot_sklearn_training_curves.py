"""
Training curves per solver and learning-rate schedule
=====================================================

scikit-learn's :class:`~sklearn.neural_network.MLPClassifier` has two stochastic solvers.
``solver='sgd'`` takes a ``learning_rate`` schedule and a ``momentum``:

* ``'constant'`` keeps ``learning_rate_init`` for the whole fit;
* ``'invscaling'`` divides it by ``(t + 1) ** power_t``, ``t`` being the number of samples
  seen, so the steps shrink from the first epoch on;
* ``'adaptive'`` keeps it while the training loss keeps falling and divides it by 5 whenever
  ``n_iter_no_change`` epochs pass without an improvement of ``tol``;
* ``momentum`` (0.9 by default) carries part of each update into the next, and
  ``nesterovs_momentum=True`` (the default) evaluates the gradient where the momentum is about
  to take the weights.

``solver='adam'`` (the default) scales each weight's step by running averages of its gradient
and squared gradient. After a fit, ``loss_curve_`` holds the training loss of every epoch.

This example draws those curves for eight settings on three data sets bundled with
scikit-learn. The estimator is imported with ``from sknn_tune.neural_network import
MLPClassifier``; replace that line by ``from sklearn.neural_network import MLPClassifier`` and
the example runs on scikit-learn's own MLP, with the same curves and the same numbers (on the
CPU in float64 the same ``random_state`` trains the same network).
"""

# %%
# Settings and data
# -----------------
# The SGD settings start at ``learning_rate_init=0.2``, Adam at ``0.01``. Every data set is
# scaled to ``[0, 1]`` feature by feature and gets the default network (one hidden layer of 100
# ReLU units); the small ones train for more epochs than digits, which has 1797 samples.
import warnings

import matplotlib.pyplot as plt
import pandas as pd
from sklearn.datasets import load_breast_cancer, load_digits, load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import MinMaxScaler

from sknn_tune.neural_network import MLPClassifier

settings = {
    "constant, no momentum": {"solver": "sgd", "learning_rate": "constant", "momentum": 0},
    "constant, momentum": {"solver": "sgd", "learning_rate": "constant", "momentum": 0.9,
                           "nesterovs_momentum": False},
    "constant, Nesterov": {"solver": "sgd", "learning_rate": "constant", "momentum": 0.9,
                           "nesterovs_momentum": True},
    "invscaling, no momentum": {"solver": "sgd", "learning_rate": "invscaling", "momentum": 0},
    "invscaling, Nesterov": {"solver": "sgd", "learning_rate": "invscaling", "momentum": 0.9,
                             "nesterovs_momentum": True},
    "adaptive, no momentum": {"solver": "sgd", "learning_rate": "adaptive", "momentum": 0},
    "adaptive, Nesterov": {"solver": "sgd", "learning_rate": "adaptive", "momentum": 0.9,
                           "nesterovs_momentum": True},
    "adam": {"solver": "adam", "learning_rate_init": 0.01},
}
data_sets = {
    "iris": (load_iris(return_X_y=True), 200),
    "breast cancer": (load_breast_cancer(return_X_y=True), 100),
    "digits": (load_digits(return_X_y=True), 30),
}

# %%
# Fits
# ----
# Most fits run to ``max_iter`` (hence the filtered warning); a few stop earlier, when the
# training loss has not improved by ``tol`` for ``n_iter_no_change`` epochs.
models = {}
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    for data_name, ((X, y), max_iter) in data_sets.items():
        X = MinMaxScaler().fit_transform(X)
        for name, params in settings.items():
            params = {"learning_rate_init": 0.2, **params}
            models[data_name, name] = MLPClassifier(
                max_iter=max_iter, random_state=0, **params).fit(X, y)

summary = pd.DataFrame({
    data_name: [f"{models[data_name, name].loss_:.6f} ({models[data_name, name].n_iter_})"
                for name in settings]
    for data_name in data_sets
}, index=list(settings))
print("last training loss (epochs run)")
print(summary.to_string())

# %%
# Curves
# ------
# Colours are schedules, line styles momentum; the ``'adaptive'`` curves are drawn thinner,
# because they lie on top of the ``'constant'`` ones until the loss stalls.
fig, axes = plt.subplots(1, len(data_sets), figsize=(15, 4.8))
styles = ["-", "--", ":", "-", "--", "-", "--", "-"]
colors = ["C0", "C0", "C0", "C1", "C1", "C2", "C2", "C3"]
for ax, data_name in zip(axes, data_sets):
    for (name, style, color) in zip(settings, styles, colors):
        ax.plot(models[data_name, name].loss_curve_, style, color=color, label=name,
                linewidth=1.2 if name.startswith("adaptive") else 2.4)
    ax.set_yscale("log")
    ax.set_title(data_name)
    ax.set_xlabel("epoch")
axes[0].set_ylabel("training loss (loss_curve_)")
fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncols=4)
fig.tight_layout(rect=(0, 0.13, 1, 1))

# %%
# What to take from it
# --------------------
# * ``'invscaling'`` divides the rate by the square root of the number of samples seen (the
#   default ``power_t=0.5``): after one epoch of digits the step is already more than 40 times
#   smaller, and its curves flatten far above the others. Momentum helps it, but not enough:
#   it needs a much larger ``learning_rate_init`` or a smaller ``power_t``.
# * At a constant rate momentum speeds SGD up a lot; classic and Nesterov momentum give nearly
#   the same curves.
# * ``'adaptive'`` is ``'constant'`` for as long as the loss keeps falling, which is the whole
#   of most of these short fits. On iris, where the loss stalls, the constant rate stops the
#   fit (``n_iter_no_change``) while the adaptive one divides the rate by 5 and goes on to a
#   slightly lower loss.
# * Adam, at a 20 times smaller initial rate and without any schedule, ends with the lowest
#   loss on all three data sets, though on iris it starts slower than SGD with momentum.
#
# The ranking depends on ``learning_rate_init`` as much as on the solver:
# :ref:`sphx_glr_auto_examples_plot_optimizers.py` and
# :ref:`sphx_glr_auto_examples_plot_lr_schedules.py` make the same comparisons with sknn_tune's
# own optimizers and schedules.
