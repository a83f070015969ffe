"""
Early stopping
==============

Rather than guess the number of epochs, hold out part of the training data, watch the model's
performance on it after every epoch, stop when it has not improved for ``patience`` epochs, and
keep the weights of the best epoch. That is ``early_stopping=True`` (with
``restore_best_weights=True``, the default). Here we compare it with training for a fixed
number of epochs, and look at what the choice of the monitored quantity does.
"""

# %%
# Data
# ----
# The noisy 3-class problem of :ref:`sphx_glr_auto_examples_plot_epochs_overfitting.py`: 1000
# training samples, 500 for the final test. The estimators sit in a pipeline behind a
# :class:`~sklearn.preprocessing.StandardScaler`; the validation split happens inside the MLP's
# ``fit``, so the scaler is fitted on all 1000 training samples and the held-out ones are scaled
# like the rest.
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.datasets import make_classification
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sknn_tune import MLPClassifier, plot_history

X, y = make_classification(n_samples=1500, n_features=30, n_informative=10, n_redundant=5,
                           n_classes=3, flip_y=0.05, random_state=0)
X_train, X_test, y_train, y_test = train_test_split(
    X.astype(np.float32), y, test_size=500, stratify=y, random_state=0)

# %%
# Four ways to pick the number of epochs
# --------------------------------------
# * a fixed budget of 60 epochs;
# * early stopping on the validation loss (the default), ``patience=10``: 10 % of the training
#   data is held out, stratified by class;
# * early stopping on the validation accuracy, ``scoring='accuracy'`` (any scikit-learn scorer
#   name works);
# * early stopping on the loss but keeping the *last* weights, ``restore_best_weights=False``.
settings = {
    "60 epochs": {},
    "early stopping (loss)": {"early_stopping": True},
    "early stopping (accuracy)": {"early_stopping": True, "scoring": "accuracy"},
    "early stopping, last weights": {"early_stopping": True, "restore_best_weights": False},
}
pipes, rows = {}, []
for name, params in settings.items():
    pipe = make_pipeline(StandardScaler(), MLPClassifier(
        (128, 128), lr=2e-3, batch_size=100, max_epochs=60, patience=10, random_state=0,
        **params))
    pipe.fit(X_train, y_train)
    pipes[name] = pipe
    mlp = pipe[-1]
    rows.append({"setting": name, "epochs trained": mlp.n_iter_,
                 "weights of epoch": mlp.best_epoch_,
                 "test accuracy": pipe.score(X_test, y_test),
                 "test log loss": log_loss(y_test, pipe.predict_proba(X_test))})
print(pd.DataFrame(rows).set_index("setting").round(3).to_string())

# %%
# ``n_iter_`` is the number of epochs trained and ``best_epoch_`` the epoch whose weights the
# model predicts with. :func:`~sknn_tune.plot_history` marks it with a dotted line.
fig, axes = plt.subplots(1, 3, figsize=(15, 4))
plot_history(pipes["60 epochs"], ax=axes[0])
axes[0].set_title("60 epochs, no validation set")
plot_history(pipes["early stopping (loss)"], ax=axes[1])
axes[1].set_title("early stopping on the validation loss")
plot_history(pipes["early stopping (accuracy)"], metric="score", ax=axes[2])
axes[2].set_title("early stopping on the validation accuracy")
fig.tight_layout()

# %%
# What to take from it
# --------------------
# * Early stopping trains a fraction of the 60 epochs: it stops ``patience`` epochs after the
#   best one.
# * Monitoring the validation loss stops at the loss minimum, which on this noisy problem
#   comes early, before the accuracy has finished improving (see
#   :ref:`sphx_glr_auto_examples_plot_epochs_overfitting.py`). That model has the lowest test
#   log loss; monitoring the accuracy trains a few epochs longer and favours the accuracy.
#   Monitor what you will be judged on.
# * With ``restore_best_weights=False`` the model keeps the weights of its last epoch,
#   ``patience`` epochs past the best one.
# * The held-out 10 % is data the network never trains on, and with 100 samples the
#   validation curves are noisy; ``validation_fraction`` and ``patience`` trade that noise
#   against data and time. A test set of 500 samples also has its noise: differences of one or
#   two points of accuracy between these settings are within it.
#
# When the validation set is a separate one you already have, pass it as ``X_val`` /
# ``y_val`` to :meth:`~sknn_tune.MLPClassifier.fit` instead; early stopping then uses it and
# keeps all of ``X`` for training (outside a pipeline, since the pipeline's scaler would not
# transform it).
