"""
Layer structures: deep, wide and in between
===========================================

How many hidden layers, and how many units in each? The tutorials compare a two-layer network
``(256, 128)`` with a deeper ``(256, 128, 128, 128)`` and with single-layer networks, one of them
very wide. Here the four train on the handwritten digits (8x8 images, 10 classes) with the same
optimizer, learning rate and number of epochs, and we compare their validation curves, their size
and their training time.
"""

# %%
# The data
# --------
# ``load_digits`` ships with scikit-learn: 1797 images of 64 pixels. We keep a quarter aside as
# a validation set and standardise the pixels with a scaler fitted on the training part only.
# The arrays are cast to float32, which halves the arithmetic on the CPU (a GPU trains in float32
# anyway).
import itertools
import time

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

# %%
# Four structures
# ---------------
# ``hidden_layer_sizes`` lists the units of each hidden layer from input to output. Passing the
# validation set as ``X_val`` / ``y_val`` records its loss and accuracy after every epoch in
# ``history_`` without changing the training itself.
structures = {
    "(256,)": (256,),
    "(256, 128)": (256, 128),
    "(256, 128, 128, 128)": (256, 128, 128, 128),
    "(1568,) wide": (1568,),
}
models, rows = {}, []
for name, layers in structures.items():
    clf = MLPClassifier(layers, lr=3e-3, max_epochs=20, batch_size=128, random_state=0)
    start = time.perf_counter()
    clf.fit(X_train, y_train, X_val=X_val, y_val=y_val)
    seconds = time.perf_counter() - start
    models[name] = clf
    sizes = [X.shape[1], *layers, 10]
    rows.append({
        "structure": name,
        "parameters": sum((a + 1) * b for a, b in itertools.pairwise(sizes)),
        "best val accuracy": clf.history_["val_score"].max(),
        "final val accuracy": clf.score(X_val, y_val),
        "fit seconds": round(seconds, 2),
    })
table = pd.DataFrame(rows).set_index("structure")
print(table.round(3).to_string())

# %%
# ``summary()`` shows each network layer by layer, as Keras' ``model.summary()`` does:
print(models["(256, 128, 128, 128)"].summary())

# %%
# Learning curves
# ---------------
# Solid lines are the validation loss, dashed lines the training loss of the same run.
fig, (ax_loss, ax_score) = plt.subplots(1, 2, figsize=(11, 4))
plot_histories(models, ax=ax_loss, mark_best=False)
ax_loss.set_yscale("log")
ax_loss.set_title("loss")
plot_histories(models, metric="score", ax=ax_score, mark_best=False)
ax_score.set_ylim(0.85, 1.0)
ax_score.set_title("validation accuracy")
fig.tight_layout()

# %%
# What to take from it
# --------------------
# On a problem this small every structure ends close to the others: depth is not what limits
# accuracy here, the 1347 training images are. The differences show in *how* they get there:
#
# * the wider and deeper networks drive the training loss down faster, while their validation
#   loss stops improving early, the first sign of overfitting (see
#   :ref:`sphx_glr_auto_examples_plot_epochs_overfitting.py`);
# * the parameter count, and with it the time per epoch, grows with width much more than with
#   depth: the wide layer multiplies 64 inputs by 1568 units.
#
# Start with one or two hidden layers and widen or deepen only while the validation score
# improves; a search over ``hidden_layer_sizes`` with
# :class:`~sklearn.model_selection.GridSearchCV` does this systematically.
