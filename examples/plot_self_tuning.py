"""
Let the network tune itself
===========================

The tuning tutorials end with a recipe: a coarse random search over wide ranges (learning rate
and L2 on a log scale, layer sizes, dropout, batch size, the optimizer), short training for
most candidates and more for the promising ones, then a finer search around the best.
:class:`~sknn_tune.MLPClassifierCV` is that recipe as one estimator: its ``fit`` runs both
stages as fused searches and refits the best network on all the data, as
:class:`~sklearn.linear_model.LogisticRegressionCV` chooses its own regularisation.

Here it meets the two alternatives on one data set: the defaults, and a search written by
hand. Each chooses on the training rows only (the searches by cross-validation within them) and
is scored on held-out test rows; ``cross_val_score`` of the whole procedure (nested
cross-validation) scores it more thoroughly, at five times the cost.
"""

# %%
# The data and the three contenders
# ---------------------------------
# ``load_breast_cancer``: 569 tumours, 30 features, two classes. Every contender standardises
# the features inside the folds.
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
from scipy.stats import loguniform
from sklearn.datasets import load_breast_cancer
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sknn_tune import (
    FusedRandomizedSearchCV,
    MLPClassifier,
    MLPClassifierCV,
    plot_history,
    plot_search_results,
)

warnings.filterwarnings("ignore", category=ConvergenceWarning)
X, y = load_breast_cancer(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y,
                                                    random_state=0)

defaults = make_pipeline(StandardScaler(), MLPClassifier(random_state=0))
by_hand = make_pipeline(StandardScaler(), FusedRandomizedSearchCV(
    MLPClassifier((64,), max_epochs=40, random_state=0),
    {"lr": loguniform(1e-4, 1e-1), "weight_decay": loguniform(1e-7, 1e-2)},
    n_iter=12, cv=3, random_state=0))
# A smaller budget than the defaults (27 + 9 candidates, up to 81 epochs), to keep the page fast.
self_tuning = make_pipeline(StandardScaler(), MLPClassifierCV(
    n_iter=9, max_epochs=27, cv=3, random_state=0))

# %%
# Test scores
# -----------
scores, seconds = {}, {}
for name, model in [("defaults", defaults), ("search by hand", by_hand),
                    ("MLPClassifierCV", self_tuning)]:
    start = time.perf_counter()
    model.fit(X_train, y_train)
    seconds[name] = time.perf_counter() - start
    scores[name] = model.score(X_test, y_test)
    print(f"{name:16s} test accuracy {scores[name]:.4f} (fit {seconds[name]:.1f} s)")

fig, ax = plt.subplots(figsize=(6, 2.6), layout="constrained")
ax.barh(list(scores), list(scores.values()), color=["C7", "C0", "C2"])
ax.set_xlim(min(scores.values()) - 0.03, 1.0)
ax.set_xlabel("test accuracy")
ax.set_title("breast cancer: three ways to choose the hyperparameters")
plt.show()

# %%
# What it chose
# -------------
# The fitted estimator keeps both stages in ``cv_results_`` (a ``stage`` column; the fine
# stage's rounds follow the coarse ones), the chosen parameters and the refit network.
tuned = self_tuning[-1]
print(tuned.summary())

# %%
# The search: every candidate's cross-validated score against each hyperparameter, coloured by
# the round (the epochs it had). The coarse rounds spread over the whole space; the fine stage
# clusters around the best.
plot_search_results(tuned)
plt.show()

# %%
# The refit network's learning curve, from its ``history_``.
plot_history(tuned.best_estimator_)
plt.show()

# %%
# Which is best depends on the data: on a problem this easy the defaults are already close to
# the ceiling, a test set of 171 rows tells apart little more than one row in a hundred, and
# the search's gain is small; ``benchmarks/bench_selftuning.py`` measures it over eleven data
# sets with nested cross-validation. What the estimator buys is that the search is part of
# ``fit``: it can be cross-validated, put in a pipeline or a stacking ensemble, and refit on new
# data without anyone choosing a learning rate. The spread of the candidates' scores says how
# much choosing matters here:
print("candidates' cross-validated accuracy, 5th / 50th / 95th percentile:",
      np.round(np.nanpercentile(tuned.cv_results_["mean_test_score"], [5, 50, 95]), 4))
