"""
Varying regularization (alpha) with scikit-learn's names
========================================================

:class:`sknn_tune.neural_network.MLPClassifier` takes the constructor of scikit-learn's
:class:`~sklearn.neural_network.MLPClassifier`: the same parameter names, the same defaults.
Its L2 penalty is ``alpha``: the loss gains ``alpha / (2 * n_samples)`` times the sum of the
squared weights (the biases are not penalised). A small ``alpha`` lets the network bend its
decision boundary around every training point; a large one keeps the weights small, and with
them the boundary smooth and, in the end, nearly straight.

This example fits a network of two hidden layers of 50 units with five values of ``alpha``, from
``1e-5`` to ``10``, on three small two-dimensional problems, and draws each decision boundary.

The estimator is imported with ``from sknn_tune.neural_network import MLPClassifier``. Replace
that line by ``from sklearn.neural_network import MLPClassifier`` and the example runs on
scikit-learn's own MLP: on the CPU in float64 the same ``random_state`` trains the same
network, so the scores printed below come out the same.
"""

# %%
# Data
# ----
# Three problems of 200 points each: two interleaved half-moons, a ring around a disc, and two
# Gaussian blobs that overlap. Each is standardised and split into 60 % for training
# and 40 % for testing.
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import ListedColormap
from sklearn.datasets import make_circles, make_classification, make_moons
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from sknn_tune.neural_network import MLPClassifier

problems = {
    "moons": make_moons(n_samples=200, noise=0.3, random_state=0),
    "circles": make_circles(n_samples=200, noise=0.2, factor=0.5, random_state=1),
    "blobs": make_classification(n_samples=200, n_features=2, n_redundant=0, n_informative=2,
                                 n_clusters_per_class=1, class_sep=1.0, random_state=9),
}
splits = {}
for name, (X, y) in problems.items():
    X = StandardScaler().fit_transform(X)
    splits[name] = train_test_split(X, y, test_size=0.4, stratify=y, random_state=42)

# %%
# Fits
# ----
# Adam with a learning rate of 0.01, on the whole training set at each step (``batch_size='auto'``
# is ``min(200, n_samples)``), for at most 300 epochs: a few fits stop there, hence the
# filtered warning. Every fit starts from the same ``random_state``.
alphas = np.logspace(-5, 1, 5)
models = {}
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    for name, (X_train, _, y_train, _) in splits.items():
        for alpha in alphas:
            models[name, alpha] = MLPClassifier(
                hidden_layer_sizes=(50, 50), alpha=alpha, learning_rate_init=0.01, max_iter=300,
                random_state=1).fit(X_train, y_train)

results = pd.DataFrame([
    {"data": name, "alpha": alpha,
     "train accuracy": model.score(splits[name][0], splits[name][2]),
     "test accuracy": model.score(splits[name][1], splits[name][3]),
     "sum of squared weights": sum(float((w ** 2).sum()) for w in model.coefs_)}
    for (name, alpha), model in models.items()
])
print(results.to_string(index=False, float_format="{:.4g}".format))

# %%
# Decision boundaries
# -------------------
# Each panel shades the predicted probability of the second class over the plane; training
# points are drawn solid, test points translucent, and the test accuracy is in the corner.
grid = np.linspace(-3, 3, 121)
xx, yy = np.meshgrid(grid, grid)
plane = np.c_[xx.ravel(), yy.ravel()]
classes = ListedColormap(["#e34a33", "#3182bd"])  # the two ends of "RdBu"

fig, axes = plt.subplots(len(splits), len(alphas) + 1, figsize=(15, 7.5), sharex=True,
                         sharey=True)
for row, (name, (X_train, X_test, y_train, y_test)) in enumerate(splits.items()):
    for col in range(len(alphas) + 1):
        ax = axes[row, col]
        if col > 0:
            alpha = alphas[col - 1]
            proba = models[name, alpha].predict_proba(plane)[:, 1].reshape(xx.shape)
            ax.contourf(xx, yy, proba, levels=np.linspace(0, 1, 11), cmap="RdBu", alpha=0.8)
            accuracy = models[name, alpha].score(X_test, y_test)
            ax.text(2.8, -2.8, f"{accuracy:.2f}", ha="right", va="bottom", fontsize=11,
                    bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none"})
            if row == 0:
                ax.set_title(f"alpha = {alpha:.1e}")
        elif row == 0:
            ax.set_title("data")
        ax.scatter(X_train[:, 0], X_train[:, 1], c=y_train, cmap=classes, edgecolors="k", s=18)
        ax.scatter(X_test[:, 0], X_test[:, 1], c=y_test, cmap=classes, edgecolors="k", s=18,
                   alpha=0.4)
        ax.set_xlim(-3, 3)
        ax.set_ylim(-3, 3)
        ax.set_xticks(())
        ax.set_yticks(())
    axes[row, 0].set_ylabel(name)
fig.tight_layout()

# %%
# Accuracy against alpha
# ----------------------
fig, axes = plt.subplots(1, len(splits), figsize=(12, 3.5), sharey=True)
for ax, (name, table) in zip(axes, results.groupby("data", sort=False)):
    ax.semilogx(table["alpha"], table["train accuracy"], "o-", label="training")
    ax.semilogx(table["alpha"], table["test accuracy"], "s-", label="test")
    ax.set_title(name)
    ax.set_xlabel("alpha")
axes[0].set_ylabel("accuracy")
axes[0].legend()
fig.tight_layout()

# %%
# What to take from it
# --------------------
# * With the smallest ``alpha`` the boundary follows single training points (see the islands
#   in the moons and the blobs): training accuracy is at or near its highest, and on those two
#   problems the test accuracy is not.
# * As ``alpha`` grows the sum of squared weights falls, from several hundred to about 4 (to
#   nearly zero on the circles), and the boundary smooths out. At ``alpha=10`` the network is
#   nearly linear: that suits the overlapping blobs, whose best boundary is a line, costs the
#   moons about ten points of test accuracy, and leaves the circles, which no line separates,
#   with no weights to speak of and a constant prediction (0.5 accuracy).
# * The best ``alpha`` depends on the data: the smallest one for the circles, ``0.32`` for the
#   moons, ``10`` for the blobs. It is a hyperparameter to search on a logarithmic scale, like
#   ``weight_decay`` in :ref:`sphx_glr_auto_examples_plot_regularization.py`.
