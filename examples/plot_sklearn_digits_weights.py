"""
First-layer weights on digits
=============================

Each unit of a network's first hidden layer computes a weighted sum of the input pixels, so its
weights can be drawn as an image of the same size as the input: the pattern that excites the
unit most. In scikit-learn's :class:`~sklearn.neural_network.MLPClassifier` they are the columns
of ``coefs_[0]``, of shape ``(n_features, n_units)``.

Here a network with one hidden layer of 32 units learns the digits data set (8x8 images), and
each column ``coefs_[0][:, i]`` is reshaped to 8x8 and drawn, for a weakly and a strongly
regularised network.

The estimator is imported with ``from sknn_tune.neural_network import MLPClassifier``. Replace
that line by ``from sklearn.neural_network import MLPClassifier`` and the example runs on
scikit-learn's own MLP: on the CPU in float64 the same ``random_state`` trains the same
network, so the scores and the pictures come out the same.
"""

# %%
# Data and fits
# -------------
# The 1797 images of digits, with their pixel values 0..16 scaled to ``[0, 1]``, three quarters
# for training. SGD with Nesterov momentum (the defaults of ``solver='sgd'``) at
# ``learning_rate_init=0.1`` for 40 epochs: not quite converged, hence the filtered warning,
# but enough for the training set. The second network has ``alpha=3`` instead of the default
# ``1e-4``.
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from sknn_tune.neural_network import MLPClassifier

X, y = load_digits(return_X_y=True)
X = X / 16.0
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y,
                                                    random_state=0)

models = {}
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    for alpha in (1e-4, 3.0):
        models[alpha] = MLPClassifier(
            hidden_layer_sizes=(32,), solver="sgd", learning_rate_init=0.1, alpha=alpha,
            max_iter=40, random_state=0).fit(X_train, y_train)

for alpha, model in models.items():
    print(f"alpha={alpha:g}: training accuracy {model.score(X_train, y_train):.4f}, "
          f"test accuracy {model.score(X_test, y_test):.4f}, "
          f"final loss {model.loss_:.6f}, largest |weight| {np.abs(model.coefs_[0]).max():.4f}")


# %%
# The weights
# -----------
# One small image per hidden unit; red pixels raise the unit's input, blue ones lower it, white
# ones leave it alone. The colour scale is symmetric around zero and shared by the units of a
# network.
def plot_first_layer(model, title):
    weights = model.coefs_[0]
    limit = np.abs(weights).max()
    fig, axes = plt.subplots(4, 8, figsize=(9, 5))
    for unit, ax in enumerate(axes.ravel()):
        ax.imshow(weights[:, unit].reshape(8, 8), cmap="RdBu_r", vmin=-limit, vmax=limit)
        ax.set_xticks(())
        ax.set_yticks(())
    fig.suptitle(title)
    fig.tight_layout()


for alpha, model in models.items():
    plot_first_layer(model, f"first-layer weights, alpha={alpha:g} "
                            f"(test accuracy {model.score(X_test, y_test):.3f})")

# %%
# What to take from it
# --------------------
# * The units that matter respond to strokes and blobs spread over the image, not to single
#   pixels, and several look like parts of digits: a loop, a bar, the end of a stroke. Many
#   have a positive and a negative region side by side, so they tell two shapes apart rather
#   than detect one.
# * The first and last columns of pixels are blank in almost every image (the left one in
#   fewer than 1 % of them), so their gradients stay near zero and their weights stay near
#   where the random initialisation put them. With ``alpha=1e-4`` they look like faint noise,
#   and so do a few whole units: ReLU units that are never or hardly ever active get no
#   gradient either.
# * With ``alpha=3`` the penalty is the only force on those weights, and it pulls them to zero:
#   the edge columns fade, and about ten of the 32 units lose all their weights (blank
#   squares), while the units the data uses keep their patterns, only weaker. The price is a
#   point or two of accuracy, on both sets.
