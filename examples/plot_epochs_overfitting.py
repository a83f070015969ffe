"""
Epochs and overfitting
======================

How many epochs? Train too few and the network underfits; train too many and it starts to
memorise the training set: training accuracy keeps rising while validation accuracy stalls and
the validation loss turns upwards. The tutorials show this with training and validation curves
side by side. We draw them epoch by epoch with :meth:`~sknn_tune.MLPClassifier.partial_fit`,
which trains one epoch per call, measuring both sets on the full network after each epoch.
"""

# %%
# A small, noisy problem
# ----------------------
# 400 training samples of a synthetic 3-class problem with 5 % flipped labels, and 1100
# validation samples; a ``(128, 128)`` network can memorise the training set, noise included.
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.datasets import make_classification
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from sknn_tune import MLPClassifier

X, y = make_classification(n_samples=1500, n_features=30, n_informative=10, n_redundant=5,
                           n_classes=3, flip_y=0.05, random_state=0)
X_train, X_val, y_train, y_val = train_test_split(
    X.astype(np.float32), y, train_size=400, stratify=y, random_state=0)
scaler = StandardScaler().fit(X_train)
X_train, X_val = scaler.transform(X_train), scaler.transform(X_val)

# %%
# One epoch at a time
# -------------------
# ``partial_fit`` continues from the current weights and optimizer state; each call is one
# epoch, and ``history_`` keeps growing. After each epoch we score both sets.
clf = MLPClassifier((128, 128), lr=2e-3, batch_size=50, random_state=0)
rows = []
for epoch in range(1, 61):
    clf.partial_fit(X_train, y_train, classes=np.unique(y))
    rows.append({
        "epoch": epoch,
        "train loss": log_loss(y_train, clf.predict_proba(X_train), labels=clf.classes_),
        "validation loss": log_loss(y_val, clf.predict_proba(X_val), labels=clf.classes_),
        "train accuracy": clf.score(X_train, y_train),
        "validation accuracy": clf.score(X_val, y_val),
    })
curves = pd.DataFrame(rows).set_index("epoch")
best = curves["validation loss"].idxmin()
print(f"{clf.n_iter_} epochs trained; lowest validation loss at epoch {best}")
print(curves.loc[sorted({1, 5, best, 30, 60})].round(3).to_string())

# %%
# The curves
# ----------
fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
curves[["train loss", "validation loss"]].plot(ax=ax_loss, logy=True)
curves[["train accuracy", "validation accuracy"]].plot(ax=ax_acc)
for ax in (ax_loss, ax_acc):
    ax.axvline(best, color="0.4", linestyle=":", label=f"lowest validation loss ({best})")
    ax.legend()
ax_loss.set_ylabel("log loss")
ax_acc.set_ylabel("accuracy")
fig.tight_layout()

# %%
# What to take from it
# --------------------
# * For the first epochs both losses fall together: the network is still learning what
#   generalises.
# * Then they part. The training loss keeps falling towards zero and the training accuracy
#   reaches 100 %, flipped labels included, while the validation loss reaches its minimum
#   after a few epochs and climbs again: the network spends its epochs memorising the noise of
#   the training set, and its predictions grow over-confident.
# * The validation accuracy tells a subtler story: it creeps up a little after the validation
#   loss has turned, then flattens. The loss punishes confident mistakes and the accuracy does
#   not count confidence at all, so the network can sharpen its right answers while growing
#   over-confident in its wrong ones. Which epoch is "best" depends on what you monitor: early
#   stopping watches the validation loss by default, and ``scoring='accuracy'`` makes it
#   watch the accuracy instead.
# * The gap between the two accuracies is the overfitting. Once the validation accuracy has
#   flattened, more epochs buy nothing but a worse validation loss.
#
# Remedies: stop at the right epoch (early stopping,
# :ref:`sphx_glr_auto_examples_plot_early_stopping.py`), or regularise so that the network
# memorises less (:ref:`sphx_glr_auto_examples_plot_dropout.py`,
# :ref:`sphx_glr_auto_examples_plot_regularization.py`), or collect more data.
