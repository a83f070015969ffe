"""
Dropout: a sweep from 0.0 to 0.8
================================

Dropout zeroes each hidden unit with probability ``dropout`` at every training step, so the
network cannot rely on any single unit and overfits less; at predict time nothing is dropped.
The tutorials sweep the rate and compare training and validation curves. We do the same on a
small, noisy problem where an unregularised network overfits quickly.
"""

# %%
# A problem that invites overfitting
# ----------------------------------
# 400 training samples of a 3-class synthetic problem with 30 features (10 informative) and 5 %
# flipped labels; 1100 more samples make a large validation set. A ``(128, 128)`` network has
# about 21 000 weights, plenty to memorise 400 samples.
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.datasets import make_classification
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from sknn_tune import MLPClassifier, plot_histories

X, y = make_classification(n_samples=1500, n_features=30, n_informative=10, n_redundant=5,
                           n_classes=3, flip_y=0.05, random_state=0)
X_train, X_val, y_train, y_val = train_test_split(
    X.astype(np.float32), y, train_size=400, stratify=y, random_state=0)
scaler = StandardScaler().fit(X_train)
X_train, X_val = scaler.transform(X_train), scaler.transform(X_val)

# %%
# The sweep
# ---------
# One fit per rate, everything else fixed, the validation set passed as ``X_val`` / ``y_val`` so
# that ``history_`` records its loss and accuracy after every epoch.
rates = [0.0, 0.2, 0.4, 0.6, 0.8]
models = {
    f"dropout={p}": MLPClassifier((128, 128), dropout=p, max_epochs=50, batch_size=100,
                                  random_state=0).fit(X_train, y_train, X_val=X_val, y_val=y_val)
    for p in rates
}
results = pd.DataFrame({
    "dropout": rates,
    "train accuracy": [m.score(X_train, y_train) for m in models.values()],
    "val accuracy": [m.score(X_val, y_val) for m in models.values()],
    "best val loss": [m.history_["val_loss"].min() for m in models.values()],
    "epoch of best val loss": [int(m.history_["val_loss"].idxmin()) + 1 for m in models.values()],
    "last val loss": [m.history_["val_loss"].iloc[-1] for m in models.values()],
}).set_index("dropout")
print(results.round(3).to_string())

# %%
# Training and validation curves
# ------------------------------
# Left: the validation loss of every rate. Middle: training (dashed) against validation (solid)
# loss without dropout and at 0.4. The training loss is measured on the dropped-out network
# during training, as Keras reports it, which is why it sits higher for larger rates (at 0.8 it
# is off the chart). Right: accuracy after the last epoch against the rate, measured on the full
# network with :meth:`~sknn_tune.MLPClassifier.score`.
fig, (ax_val, ax_pair, ax_sweep) = plt.subplots(1, 3, figsize=(15, 4))
plot_histories(models, metric="val_loss", ax=ax_val, mark_best=False)
ax_val.set_title("validation loss")
plot_histories({name: models[name] for name in ["dropout=0.0", "dropout=0.4"]}, ax=ax_pair,
               mark_best=False)
ax_pair.set_ylim(0, 1.5)
ax_pair.set_title("training vs validation loss")
ax_sweep.plot(rates, results["train accuracy"], "o-", label="training")
ax_sweep.plot(rates, results["val accuracy"], "o-", label="validation")
ax_sweep.set_xlabel("dropout rate")
ax_sweep.set_ylabel("accuracy after 50 epochs")
ax_sweep.set_title("train / validation gap")
ax_sweep.legend()
fig.tight_layout()

# %%
# What to take from it
# --------------------
# * Without dropout the training loss falls towards zero while the validation loss reaches
#   its minimum early and then climbs: the network memorises the training set, flipped labels
#   included, and grows over-confident on new samples.
# * Moderate rates keep the validation loss low for longer and narrow the gap between training
#   and validation accuracy. On this problem the validation *accuracy* does not improve with
#   dropout (it stays about level up to 0.4, then falls); what improves is the validation
#   *loss*: dropout mainly stops the network from being confidently wrong. Which of the two you
#   care about (accuracy, or calibrated probabilities) decides the rate.
# * At 0.8 the network underfits: too few units survive each step to learn the problem in 50
#   epochs, and both accuracies drop.
#
# 0.2 to 0.5 is the usual range. Dropout and the number of epochs interact (a regularised
# network needs more epochs), so tune them together, or let early stopping
# (:ref:`sphx_glr_auto_examples_plot_early_stopping.py`) choose the epochs.
