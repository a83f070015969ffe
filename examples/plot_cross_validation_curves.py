"""
Cross-validation and validation curves, each in one fused call
==============================================================

Most evaluations are not searches: ``cross_val_score(model, X, y, cv=5)`` to know how good a
network is, ``validation_curve`` to see one hyperparameter's effect, ``learning_curve`` to see
whether more data would help. :mod:`sknn_tune.model_selection` has scikit-learn's five functions
with scikit-learn's signatures and results; for an sknn_tune network (or a pipeline ending in one)
every fold x value x train size is trained as a member of one stacked model, and scikit-learn's
own function then scores them. Here: 5-fold cross-validation, a learning-rate curve (6 values x 5
folds: 30 fits) and a learning curve (5 sizes x 5 folds: 25 fits), one call each.
"""

# %%
# Data and model
# --------------
# A 4-class synthetic problem, 600 samples; a pipeline that standardises, then a (64, 32) network.
import time

import matplotlib.pyplot as plt
import numpy as np
from sklearn import model_selection as sk
from sklearn.datasets import make_classification
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sknn_tune import MLPClassifier
from sknn_tune.model_selection import cross_validate, learning_curve, validation_curve

X, y = make_classification(n_samples=600, n_features=20, n_informative=8, n_classes=4,
                           random_state=0)
pipe = make_pipeline(StandardScaler(),
                     MLPClassifier((64, 32), max_epochs=20, batch_size=32, random_state=0))

# %%
# Cross-validation: the five folds trained together
# -------------------------------------------------
# The same call as scikit-learn's, and the same numbers: we check it against
# :func:`sklearn.model_selection.cross_validate` on the same pipeline.
start = time.perf_counter()
cv_results = cross_validate(pipe, X, y, cv=5, scoring=["accuracy", "neg_log_loss"],
                            return_train_score=True)
fused_time = time.perf_counter() - start
start = time.perf_counter()
reference = sk.cross_validate(pipe, X, y, cv=5, scoring=["accuracy", "neg_log_loss"],
                              return_train_score=True)
sklearn_time = time.perf_counter() - start
print(f"test accuracy {cv_results['test_accuracy'].mean():.3f} "
      f"+- {cv_results['test_accuracy'].std():.3f}")
print("same scores as scikit-learn's:",
      np.allclose(cv_results["test_accuracy"], reference["test_accuracy"]) and
      np.allclose(cv_results["test_neg_log_loss"], reference["test_neg_log_loss"]))
print(f"fused {fused_time:.2f} s, scikit-learn's one fold after another {sklearn_time:.2f} s")

# %%
# A validation curve over the learning rate
# -----------------------------------------
# Six learning rates x five folds, one call: all 30 fits share the network's structure, so they
# train as one stack.
rates = np.logspace(-4, -0.5, 6)
train_scores, test_scores = validation_curve(pipe, X, y, param_name="mlpclassifier__lr",
                                             param_range=rates, cv=5)

# %%
# A learning curve
# ----------------
# Five training-set sizes x five folds (scikit-learn's subsets of each fold's training rows,
# shuffled with ``random_state``), one call.
sizes, lc_train, lc_test = learning_curve(pipe, X, y, train_sizes=np.linspace(0.1, 1.0, 5),
                                          cv=5, shuffle=True, random_state=0)

fig, (ax_vc, ax_lc) = plt.subplots(1, 2, figsize=(11, 4))
for ax, x, train, test in [(ax_vc, rates, train_scores, test_scores),
                           (ax_lc, sizes, lc_train, lc_test)]:
    for scores, label in [(train, "training"), (test, "cross-validation")]:
        mean, std = scores.mean(axis=1), scores.std(axis=1)
        ax.plot(x, mean, "o-", label=label)
        ax.fill_between(x, mean - std, mean + std, alpha=0.2)
    ax.set_ylabel("accuracy")
    ax.legend()
ax_vc.set_xscale("log")
ax_vc.set_xlabel("learning rate (Adam)")
ax_vc.set_title("validation curve: 30 fits, one call")
ax_lc.set_xlabel("training samples")
ax_lc.set_title("learning curve: 25 fits, one call")
fig.tight_layout()

# %%
# What to take from it
# --------------------
# * Too small a learning rate underfits in 20 epochs (both curves low); too large a one
#   overshoots. The band between the curves is the generalisation gap, the shaded areas the
#   spread over folds.
# * The learning curve's test score still rises at the full training set: more data would help
#   this network more than tuning would.
# * Every number is scikit-learn's: the fused functions only decide *how* the fits are trained.
#   Anything they cannot fuse (another estimator, fit parameters other than ``sample_weight``)
#   goes to scikit-learn's function as it is.
