"""
Fused search against scikit-learn's GridSearchCV
================================================

:class:`~sknn_tune.FusedGridSearchCV` is a drop-in replacement for
:class:`~sklearn.model_selection.GridSearchCV`: same parameters, same ``cv_results_``. The
difference is how the fits are trained. scikit-learn fits one candidate x fold after another;
the fused search trains all of them at once, as members of one stacked network, then lets
scikit-learn score each fit with its own code. Here both run the same grid on the same
pipeline, and we compare their results and their time.
"""

# %%
# The same search, twice
# ----------------------
# A :class:`~sklearn.preprocessing.StandardScaler` + :class:`~sknn_tune.MLPClassifier` pipeline
# on the handwritten digits, four learning rates x two dropout rates, 3-fold cross-validation:
# 24 fits of 10 epochs each.
import time

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sknn_tune import FusedGridSearchCV, MLPClassifier

X, y = load_digits(return_X_y=True)
X = X.astype(np.float32)
pipe = make_pipeline(StandardScaler(),
                     MLPClassifier((64,), batch_size=64, max_epochs=10, random_state=0))
grid = {"mlpclassifier__lr": [1e-3, 3e-3, 1e-2, 3e-2], "mlpclassifier__dropout": [0.0, 0.2]}

searches, seconds = {}, {}
for search_class in (GridSearchCV, FusedGridSearchCV):
    search = search_class(pipe, grid, cv=3)
    start = time.perf_counter()
    search.fit(X, y)
    seconds[search_class.__name__] = time.perf_counter() - start
    searches[search_class.__name__] = search

sequential, fused = searches["GridSearchCV"], searches["FusedGridSearchCV"]
for name, value in seconds.items():
    print(f"{name:>17}: {value:5.2f} s")
print(f"speed ratio on this run: {seconds['GridSearchCV'] / seconds['FusedGridSearchCV']:.1f}x")
print(f"member-epochs the fused search trained: {fused.n_member_epochs_} "
      f"(= {len(fused.cv_results_['params'])} candidates x {fused.n_splits_} folds x 10 epochs)")

# %%
# Same results
# ------------
# The two ``cv_results_`` have the same keys, and the scores agree: the largest difference
# between the two ``mean_test_score`` columns is printed below, as is the best candidate each
# search picked.
same_keys = sorted(fused.cv_results_) == sorted(sequential.cv_results_)
difference = np.abs(fused.cv_results_["mean_test_score"]
                    - sequential.cv_results_["mean_test_score"]).max()
print(f"same keys: {same_keys}; max |difference| of mean_test_score: {difference:.3g}")
print("best (sequential):", sequential.best_params_)
print("best (fused):     ", fused.best_params_)

# %%
# Side by side: the fused score of every candidate against the sequential one (on the
# diagonal when they agree), and the two times.
fig, (ax_scores, ax_time) = plt.subplots(1, 2, figsize=(9, 3.8))
ax_scores.plot(sequential.cv_results_["mean_test_score"], fused.cv_results_["mean_test_score"],
               "o")
low = min(fused.cv_results_["mean_test_score"].min(),
          sequential.cv_results_["mean_test_score"].min()) - 0.01
ax_scores.plot([low, 1], [low, 1], color="0.5", linestyle=":")
ax_scores.set_xlabel("GridSearchCV mean test accuracy")
ax_scores.set_ylabel("FusedGridSearchCV mean test accuracy")
ax_time.barh(list(seconds), list(seconds.values()), color=["0.6", "C0"])
ax_time.set_xlabel("seconds (this run)")
fig.tight_layout()

# %%
# The time the fused search saves is the per-step overhead of training (Python, PyTorch's
# dispatch, many small operations), paid once per step of the whole stack instead of once per
# step of each fit; the arithmetic itself is the same. The ratio printed above is one run on
# this machine; it grows with the number of candidates x folds trained together, and is far
# larger on a GPU. To switch, change the class name: everything else, including
# ``best_estimator_``, ``refit`` and ``scoring``, stays as it was.
