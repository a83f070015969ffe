"""
Batch size: 16, 32 and 64
=========================

Each training step averages the gradient over one mini-batch of ``batch_size`` samples. A
smaller batch gives more, noisier updates per epoch; a larger one gives fewer, smoother updates
and uses the hardware better, so an epoch takes less time. We train the same network with
batches of 16, 32 and 64 samples and look at the loss per epoch and per second.
"""

# %%
# Data and fits
# -------------
# Digits, three quarters for training (1347 images), standardised, in float32. With batches of
# 16 an epoch is 85 steps; with 64 it is 22.
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

models = {
    f"batch_size={size}": MLPClassifier((100,), batch_size=size, max_epochs=10, random_state=0)
    .fit(X_train, y_train, X_val=X_val, y_val=y_val)
    for size in [16, 32, 64]
}
print(pd.DataFrame({
    "steps per epoch": [int(np.ceil(len(X_train) / m.batch_size)) for m in models.values()],
    "val loss after 3 epochs": [m.history_["val_loss"].iloc[2] for m in models.values()],
    "final val loss": [m.history_["val_loss"].iloc[-1] for m in models.values()],
    "final val accuracy": [m.history_["val_score"].iloc[-1] for m in models.values()],
    "training seconds": [m.history_["seconds"].sum() for m in models.values()],
}, index=list(models)).round(3).to_string())

# %%
# Per epoch and per second
# ------------------------
# ``history_`` records the duration of each epoch in ``seconds``; its cumulative sum gives a
# time axis. Measured times depend on the machine and on what else it runs, so read the right
# panel for its trend, not its exact values.
fig, (ax_epoch, ax_time) = plt.subplots(1, 2, figsize=(11, 4))
plot_histories(models, metric="val_loss", ax=ax_epoch, mark_best=False)
ax_epoch.set_title("validation loss per epoch")
for name, model in models.items():
    history = model.history_
    ax_time.plot(history["seconds"].cumsum(), history["val_loss"], marker=".", label=name)
ax_time.set_xlabel("training time (s)")
ax_time.set_ylabel("validation loss")
ax_time.set_title("validation loss against time")
ax_time.legend()
fig.tight_layout()

# %%
# What to take from it
# --------------------
# * Per epoch, the smallest batch learns fastest: it makes four times as many updates as
#   batches of 64.
# * Per second the comparison is closer, because each epoch of small batches costs more: many
#   small matrix products use the CPU (and even more so a GPU) less efficiently than fewer
#   large ones.
# * Small batches add gradient noise, which some find regularises a little; large batches
#   usually want a larger learning rate to make up for their fewer steps.
#
# ``batch_size`` is a structural hyperparameter for the fused searches: candidates with
# different batch sizes train in different groups. The default ``'auto'`` uses
# ``min(200, n_samples)``.
