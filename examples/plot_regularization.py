"""
L1, L2 and noise regularisation
===============================

Besides dropout (:ref:`sphx_glr_auto_examples_plot_dropout.py`), three classic ways to keep a
network from memorising its training set:

* **L2** (``weight_decay``) adds ``weight_decay * w`` to each weight's gradient, pulling all
  weights towards zero in proportion to their size ("weight decay");
* **L1** (``l1``) adds ``l1 * sign(w)``, a constant pull that drives small weights to exactly or
  nearly zero, so the network uses fewer of its connections;
* **input noise** (``noise_std``) adds fresh Gaussian noise to the inputs at every training step,
  so the network never sees the same sample twice and must learn what is robust to small
  changes.

Each penalises only the weight matrices (not the biases), and noise is added only in training.
We compare them on the small noisy problem where an unregularised network overfits.
"""

# %%
# Data and fits
# -------------
# 400 training samples of a 3-class problem with 5 % flipped labels, 1100 validation samples,
# a ``(128, 128)`` network trained for 60 epochs. The strengths are typical starting points;
# the last run shows a penalty that is too strong.
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

settings = {
    "none": {},
    "L2, weight_decay=0.01": {"weight_decay": 0.01},
    "L1, l1=0.001": {"l1": 0.001},
    "noise, noise_std=0.6": {"noise_std": 0.6},
    "L2, weight_decay=0.1": {"weight_decay": 0.1},
}
models = {
    name: MLPClassifier((128, 128), max_epochs=60, batch_size=100, random_state=0, **params)
    .fit(X_train, y_train, X_val=X_val, y_val=y_val)
    for name, params in settings.items()
}
results = pd.DataFrame({
    "train accuracy": [m.score(X_train, y_train) for m in models.values()],
    "val accuracy": [m.score(X_val, y_val) for m in models.values()],
    "best val loss": [m.history_["val_loss"].min() for m in models.values()],
    "last val loss": [m.history_["val_loss"].iloc[-1] for m in models.values()],
}, index=list(models))
print(results.round(3).to_string())

# %%
# Curves
# ------
fig, (ax_val, ax_gap) = plt.subplots(1, 2, figsize=(12, 4))
plot_histories(models, metric="val_loss", ax=ax_val, mark_best=False)
ax_val.set_title("validation loss")
positions = np.arange(len(models))
ax_gap.bar(positions - 0.2, results["train accuracy"], width=0.4, label="training")
ax_gap.bar(positions + 0.2, results["val accuracy"], width=0.4, label="validation")
ax_gap.set_xticks(positions, ["none", "L2 0.01", "L1 0.001", "noise 0.6", "L2 0.1"])
ax_gap.set_ylim(0.5, 1.12)
ax_gap.set_ylabel("accuracy after 60 epochs")
ax_gap.set_title("train / validation gap")
ax_gap.legend(loc="upper center", ncols=2)
fig.tight_layout()

# %%
# What to take from it
# --------------------
# * Unregularised, the network reaches 100 % training accuracy and its validation loss climbs
#   after its early minimum.
# * Each of the three regularisers, at a moderate strength, keeps the validation loss well
#   below the unregularised one at the end of training; input noise, the strongest of the
#   three here, keeps it falling to the last epoch. The validation accuracy gains only a point
#   or two, on a problem where the flipped labels cap what any model can reach.
# * Too strong a penalty (``weight_decay=0.1``) underfits: the training accuracy drops
#   well below 100 % and the validation accuracy falls with it.
#
# The right strength depends on the data, the network and the number of epochs; search it on
# a logarithmic scale (``weight_decay`` in 1e-5 ... 1e-1, say) together with the learning
# rate. ``optimizer='adamw'`` applies ``weight_decay`` as decoupled weight decay, which
# behaves better with Adam's per-weight step sizes.
