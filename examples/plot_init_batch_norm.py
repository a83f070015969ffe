"""
Weight initialisation and batch normalisation
=============================================

A deep network trains only if the signal neither dies out nor explodes on its way through the
layers. The initial weights decide that at the start: small random numbers of a fixed scale
(the ``'normal'`` initialiser draws from N(0, 0.05²)) shrink the signal at every ReLU layer,
while Xavier/Glorot and He initialisation scale the weights by each layer's fan-in so that
the variance is preserved (He's factor of 2 makes up for ReLU zeroing half its inputs).
Batch normalisation re-standardises each hidden layer's outputs during training, which makes
the network much less sensitive to the initial scale. We reproduce the classic comparison on
a five-hidden-layer ReLU network.
"""

# %%
# Six fits
# --------
# Digits, standardised, float32. Five hidden layers of 100 ReLU units, plain SGD at
# ``lr=0.1``, 15 epochs; three initialisers, each with and without ``batch_norm``. The random
# seed is the same for all six.
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

inits = ["normal", "xavier_normal", "he_normal"]
models = {
    (init, batch_norm): MLPClassifier(
        (100,) * 5, init=init, batch_norm=batch_norm, optimizer="sgd", lr=0.1, max_epochs=15,
        batch_size=128, random_state=0).fit(X_train, y_train, X_val=X_val, y_val=y_val)
    for batch_norm in [False, True] for init in inits
}
table = pd.DataFrame(
    [{"init": init, "batch_norm": bn,
      "train loss, epoch 5": m.history_["train_loss"].iloc[4],
      "train loss, epoch 15": m.history_["train_loss"].iloc[-1],
      "val accuracy": m.history_["val_score"].iloc[-1]} for (init, bn), m in models.items()]
).set_index(["init", "batch_norm"])
print(table.round(3).to_string())

# %%
# Training curves
# ---------------
fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
for ax, batch_norm in zip(axes, [False, True]):
    plot_histories({init: models[init, batch_norm] for init in inits}, metric="train_loss",
                   ax=ax, mark_best=False)
    ax.set_yscale("log")
    ax.set_title("with batch normalisation" if batch_norm else "without batch normalisation")
fig.tight_layout()

# %%
# The batch-normalised network has two more parameters per hidden unit (the scale and shift),
# and keeps a running mean and variance of each unit for prediction; ``summary()`` counts them
# as non-trainable:
print(models["he_normal", True].summary())

# %%
# What to take from it
# --------------------
# * Without batch normalisation, ``'normal'`` initialisation does not learn at all: its loss
#   stays at ``log(10) ≈ 2.30``, a uniform guess over 10 classes. After five layers of weights
#   of scale 0.05 the signal, and with it the gradient, has all but vanished.
# * Xavier and He both train. He initialisation, made for ReLU, starts fastest; Xavier, made
#   for tanh and sigmoid, keeps a little less of the signal through ReLU layers and starts
#   more slowly.
# * With batch normalisation, all three initialisations train, the small ``'normal'`` one
#   included: each layer's output is re-standardised whatever the weights' scale. In this run
#   the order even reverses and ``'normal'`` ends with the lowest training loss; the
#   differences between initialisers shrink to the size of seed-to-seed variation.
#
# ``init='auto'`` (the default) picks He for the ReLU family and Xavier for tanh, sigmoid and
# identity, so you rarely need to set it. Batch normalisation costs some time per step, and
# makes a deep network far less sensitive to its initialisation and learning rate.
