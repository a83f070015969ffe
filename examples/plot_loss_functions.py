"""
Classification loss: cross-entropy or mean squared error
========================================================

The tutorials treat the loss as a hyperparameter too: train a softmax classifier on
categorical cross-entropy (``loss='log_loss'``, the default), or on the mean squared error
between its softmax output and the one-hot target (``loss='squared_error'``)? Both are minimised
by the right answer, but they give very different gradients. Cross-entropy's gradient with
respect to the output scores is simply ``p - y`` (prediction minus target). The squared
error's passes through the softmax's derivative, which is tiny when the softmax is confident,
so a confidently wrong network learns slowly.
"""

# %%
# Four fits
# ---------
# Digits, standardised, one hidden layer of 100 units; each loss with plain SGD and with Adam.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from sknn_tune import MLPClassifier, plot_histories

X, y = load_digits(return_X_y=True)
X_train, X_val, y_train, y_val = train_test_split(
    X.astype(np.float32), y, test_size=0.25, stratify=y, random_state=0)
scaler = StandardScaler().fit(X_train)
X_train, X_val = scaler.transform(X_train), scaler.transform(X_val)

optimizers = {"sgd": 0.1, "adam": 0.001}
models = {
    (optimizer, loss): MLPClassifier((100,), loss=loss, optimizer=optimizer, lr=lr,
                                     max_epochs=20, batch_size=64, random_state=0)
    .fit(X_train, y_train, X_val=X_val, y_val=y_val)
    for optimizer, lr in optimizers.items() for loss in ["log_loss", "squared_error"]
}
for (optimizer, loss), model in models.items():
    scores = model.history_["val_score"]
    print(f"{optimizer:>4} (lr={optimizers[optimizer]}), {loss:>13}: validation accuracy "
          f"{scores.iloc[4]:.3f} after 5 epochs, {scores.iloc[-1]:.3f} after 20")

# %%
# Validation accuracy per epoch
# -----------------------------
# (The ``history_`` losses of the two are on different scales, so we compare accuracies.)
fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
for ax, optimizer in zip(axes, optimizers):
    plot_histories({loss: models[optimizer, loss] for loss in ["log_loss", "squared_error"]},
                   metric="score", ax=ax, mark_best=False)
    ax.set_title(f"{optimizer}, lr={optimizers[optimizer]}")
fig.tight_layout()

# %%
# What to take from it
# --------------------
# * With plain SGD, cross-entropy learns within a few epochs while the squared error crawls:
#   its gradients pass through the softmax's derivative, and with ten classes sharing
#   the probability the derivative is small from the very first step.
# * With Adam the difference almost disappears (in this run the squared error even ends a
#   little ahead). Adam divides each step by a running estimate of the gradient's size, so
#   small gradients still give steps of a useful size.
#
# Keep ``log_loss`` for classification: it does not depend on an adaptive optimizer to train
# well, and the probabilities it fits are what ``predict_proba`` should estimate.
# ``'squared_error'`` is there to reproduce the comparison; being bounded, it also lets no
# single mislabelled sample dominate the loss.
