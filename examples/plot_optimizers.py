"""
Optimizers: SGD, Momentum, AdaGrad, RMSprop and Adam
====================================================

The optimizer turns gradients into weight updates. Plain stochastic gradient descent (SGD)
steps along the negative gradient; *momentum* (and its Nesterov variant) accumulates a velocity
that smooths the zig-zags; *AdaGrad* and *RMSprop* scale each weight's step by the history of
its squared gradients; *Adam* combines both ideas. Each is written for
:mod:`sknn_tune`'s stacked engine and follows :mod:`torch.optim` step for step. Here they train
the same network from the same initial weights.
"""

# %%
# Data and fits
# -------------
# Digits, standardised, float32; a network of four hidden layers of 100 units. Each optimizer
# gets the learning rate it is usually run with (the values of the "deep learning from
# scratch" comparison: 0.01 for the SGD family and AdaGrad, 0.001 for RMSprop and Adam).
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

learning_rates = {"sgd": 0.01, "momentum": 0.01, "nesterov": 0.01, "adagrad": 0.01,
                  "rmsprop": 0.001, "adam": 0.001}
models = {
    f"{name} (lr={lr})": MLPClassifier(
        (100, 100, 100, 100), optimizer=name, lr=lr, max_epochs=15, batch_size=128,
        random_state=0).fit(X_train, y_train, X_val=X_val, y_val=y_val)
    for name, lr in learning_rates.items()
}
print(pd.DataFrame({
    "train loss, epoch 3": [m.history_["train_loss"].iloc[2] for m in models.values()],
    "train loss, epoch 15": [m.history_["train_loss"].iloc[-1] for m in models.values()],
    "val accuracy, epoch 15": [m.history_["val_score"].iloc[-1] for m in models.values()],
}, index=list(models)).round(3).to_string())

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
# What to take from it
# --------------------
# * Plain SGD is by far the slowest at this learning rate: after 15 epochs its training loss
#   is still where the others were after a few.
# * Momentum and Nesterov momentum speed SGD up a lot at the same learning rate.
# * The adaptive methods reach a low training loss quickly. On this problem AdaGrad and
#   RMSprop are the fastest from the first epoch; Adam at its default rate starts like
#   momentum and then pulls ahead of it. All three adapt each weight's step size, which makes
#   them forgiving of the learning rate and is why Adam is the default here, as in Keras.
# * Validation accuracy evens out much more than training loss: every optimizer but plain SGD
#   ends within about a point of the others.
#
# The ranking depends on the learning rate each optimizer gets: SGD at a larger rate closes
# much of the gap (see :ref:`sphx_glr_auto_examples_plot_learning_rate.py`). Compare
# optimizers at their own best rates: a grid over ``optimizer`` and ``lr`` together, on a
# logarithmic scale.
