"""
Activation functions
====================

The activation is the nonlinearity applied after each hidden layer. The tutorials' advice: use
ReLU or one of its relatives (leaky ReLU, ELU, GELU) in the hidden layers, and avoid the
sigmoid in deep stacks, because it saturates and its gradient shrinks layer after layer (the
*vanishing gradient*). Here the same four-hidden-layer network trains with each activation of
:class:`~sknn_tune.MLPClassifier` on the digits data set.
"""

# %%
# Data and models
# ---------------
# Digits (8x8 images, 10 classes), three quarters for training, standardised. Every model has
# four hidden layers of 64 units, Adam with its default learning rate, and a fixed seed.
# ``init='auto'`` gives each activation its usual initialisation: He for the ReLU family,
# Xavier/Glorot for tanh, sigmoid and identity.
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from sknn_tune import MLPClassifier, plot_histories

X, y = load_digits(return_X_y=True)
X_train, X_val, y_train, y_val = train_test_split(
    X.astype(np.float32), y, test_size=0.25, stratify=y, random_state=0)
scaler = StandardScaler().fit(X_train)
X_train, X_val = scaler.transform(X_train), scaler.transform(X_val)

activations = ["relu", "leaky_relu", "elu", "gelu", "tanh", "sigmoid", "identity"]
models = {
    name: MLPClassifier((64, 64, 64, 64), activation=name, max_epochs=20, batch_size=128,
                        random_state=0).fit(X_train, y_train, X_val=X_val, y_val=y_val)
    for name in activations
}

# %%
# Curves
# ------
fig, (ax_loss, ax_score) = plt.subplots(1, 2, figsize=(11, 4))
plot_histories(models, metric="train_loss", ax=ax_loss, mark_best=False)
ax_loss.set_yscale("log")
ax_loss.set_title("training loss")
plot_histories(models, metric="score", ax=ax_score, mark_best=False)
ax_score.set_title("validation accuracy")
fig.tight_layout()

# %%
# The numbers after the first five epochs and at the end:
summary = pd.DataFrame({
    "train loss, epoch 5": [m.history_["train_loss"].iloc[4] for m in models.values()],
    "val accuracy, epoch 5": [m.history_["val_score"].iloc[4] for m in models.values()],
    "train loss, last": [m.history_["train_loss"].iloc[-1] for m in models.values()],
    "val accuracy, last": [m.history_["val_score"].iloc[-1] for m in models.values()],
}, index=activations)
print(summary.round(3).to_string())

# %%
# What to take from it
# --------------------
# * The ReLU family, tanh and GELU all learn quickly and end at similar accuracies: on a small
#   problem the choice among them matters little.
# * The sigmoid network barely moves during the first epochs: its training loss stays near
#   ``log(10)``, the loss of a uniform guess, and it ends far behind the others. Each sigmoid
#   layer scales the gradient by at most 1/4, so with four of them the first layers hardly learn.
# * ``identity`` makes the whole network a linear model (a product of matrices is a matrix).
#   Digits are close to linearly separable, so it scores well here and even learns fastest at
#   first; but by the last epoch the ReLU family has pushed its training loss lower: a linear
#   model cannot fit what a linear model cannot.
#
# ReLU is the default for a reason; try ELU or GELU when you have time for a search, and keep
# the sigmoid for output layers (which :class:`~sknn_tune.MLPClassifier` handles for you).
