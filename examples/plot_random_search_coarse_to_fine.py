"""
Coarse-to-fine random search on a log scale
===========================================

The tutorials tune the learning rate and the L2 weight decay by *random* search rather than a
grid, and sample them on a **log scale**: a learning rate of 0.001 and one of 0.01 differ as
much as 0.01 and 0.1 do, so each decade should get the same share of the candidates. They
search in two stages: a **coarse** search over very wide ranges with short training finds the
region where the good candidates lie, then a **fine** search samples only that region, with
longer training.

:class:`~sknn_tune.FusedRandomizedSearchCV` is scikit-learn's
:class:`~sklearn.model_selection.RandomizedSearchCV` with every candidate x fold of the search
trained at once, as members of one stacked network; :func:`~sknn_tune.plot_search_results`
draws the score against each hyperparameter. At the end we time the fused search against
scikit-learn's own on the same problem.
"""

# %%
# The data and the pipeline
# -------------------------
# ``load_digits`` ships with scikit-learn: 1797 handwritten digits of 8x8 pixels. The pipeline
# standardises the pixels (inside each CV split, as a pipeline should) and trains a network
# with one hidden layer of 64 units with Adam. Parameters of a pipeline step are named
# ``<step>__<parameter>``.
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy.stats import loguniform
from sklearn.datasets import load_digits
from sklearn.model_selection import RandomizedSearchCV, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sknn_tune import FusedRandomizedSearchCV, MLPClassifier, plot_search_results

X, y = load_digits(return_X_y=True)
X = X.astype(np.float32)
cv = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)
pipe = make_pipeline(StandardScaler(),
                     MLPClassifier((64,), batch_size=128, max_epochs=4, random_state=0))

# %%
# Stage 1: coarse
# ---------------
# Six decades of learning rate and six of weight decay, sampled with
# :data:`scipy.stats.loguniform`, 24 candidates trained for only 4 epochs each: enough to
# tell a hopeless learning rate from a promising one, not to train a good model.
coarse_space = {"mlpclassifier__lr": loguniform(1e-5, 1e0),
                "mlpclassifier__weight_decay": loguniform(1e-7, 1e-1)}
start = time.perf_counter()
coarse = FusedRandomizedSearchCV(pipe, coarse_space, n_iter=24, cv=cv, random_state=0)
coarse.fit(X, y)
print(f"coarse: {len(coarse.cv_results_['params'])} candidates x {coarse.n_splits_} folds in "
      f"{time.perf_counter() - start:.1f} s, best accuracy {coarse.best_score_:.3f}")

columns = ["param_mlpclassifier__lr", "param_mlpclassifier__weight_decay", "mean_test_score"]
coarse_table = pd.DataFrame(coarse.cv_results_)[[*columns, "rank_test_score"]]
print(coarse_table.sort_values("rank_test_score").head(8).to_string(
    index=False, float_format=lambda v: f"{v:.3g}"))

# %%
# Where are the good candidates? We take the five best and let the fine search cover the
# decades they span, widened by a factor of two on each side.
top = coarse_table.nsmallest(5, "rank_test_score")
lr_range = (top[columns[0]].min() / 2, top[columns[0]].max() * 2)
wd_range = (top[columns[1]].min() / 2, top[columns[1]].max() * 2)
print(f"fine search: lr in [{lr_range[0]:.2g}, {lr_range[1]:.2g}], "
      f"weight_decay in [{wd_range[0]:.2g}, {wd_range[1]:.2g}]")

# %%
# Stage 2: fine
# -------------
# The same pipeline, now trained for 10 epochs instead of 4, on the narrowed ranges (still on a log
# scale).
fine_space = {"mlpclassifier__lr": loguniform(*lr_range),
              "mlpclassifier__weight_decay": loguniform(*wd_range)}
start = time.perf_counter()
fine = FusedRandomizedSearchCV(pipe.set_params(mlpclassifier__max_epochs=10), fine_space,
                               n_iter=16, cv=cv, random_state=1)
fine.fit(X, y)
print(f"fine: {len(fine.cv_results_['params'])} candidates x {fine.n_splits_} folds in "
      f"{time.perf_counter() - start:.1f} s")
print(f"best: lr={fine.best_params_['mlpclassifier__lr']:.3g}, "
      f"weight_decay={fine.best_params_['mlpclassifier__weight_decay']:.3g}, "
      f"cross-validated accuracy {fine.best_score_:.3f}")

# %%
# The picture
# -----------
# :func:`~sknn_tune.plot_search_results` draws one panel per hyperparameter: each dot is a
# candidate's mean accuracy over the folds (the bar is their standard deviation), the star is
# the best candidate. The coarse ranges span more than two decades, so their axes are
# logarithmic. The shaded band on the coarse panels is the range the fine search sampled.
fig, axes = plt.subplots(2, 2, figsize=(10, 7), sharey="row")
plot_search_results(coarse, ax=axes[0])
plot_search_results(fine, ax=axes[1], log_scale=True)
for ax, (low, high) in zip(axes[0], [lr_range, wd_range]):
    ax.axvspan(low, high, color="C1", alpha=0.15)
axes[0, 0].set_title("coarse: 4 epochs, wide ranges", loc="left")
axes[1, 0].set_title("fine: 10 epochs, the best region", loc="left")
fig.tight_layout()

# %%
# Reading it: in the coarse panels the learning rate decides almost everything. Below about
# 1e-3, four epochs of Adam barely move the weights and the accuracy sinks towards chance
# (0.1 for ten classes); from a few times 1e-3 up to about 0.1 every candidate does well, and
# towards 1 the accuracy starts to fall again as the updates overshoot. Weight decay shows no
# such pattern: its low points are the candidates whose learning rate was too small, and the
# five best candidates are spread over almost its whole range, so the fine search keeps it
# wide. Within these ranges, for a small network trained for a few epochs, it hardly matters.
#
# The fine learning-rate range spans little more than a decade, so ``log_scale='auto'`` would
# draw it on a linear axis; ``log_scale=True`` keeps the log axis the search sampled on. The
# differences there are a point or two of accuracy, of the size of the fold-to-fold spread:
# past this point, more tuning of these two would mostly fit the noise of the
# cross-validation.

# %%
# Fused against sequential
# ------------------------
# scikit-learn's :class:`~sklearn.model_selection.RandomizedSearchCV` accepts the same pipeline
# (an sknn_tune estimator is a plain scikit-learn estimator) and, with the same distributions,
# ``random_state`` and splitter, samples the same candidates and fits them one at a time. To
# keep this example short we compare them on six candidates of the fine stage.
timings, results = {}, {}
for search_class in (FusedRandomizedSearchCV, RandomizedSearchCV):
    search = search_class(pipe, fine_space, n_iter=6, cv=cv, random_state=1)
    start = time.perf_counter()
    search.fit(X, y)
    timings[search_class.__name__] = time.perf_counter() - start
    results[search_class.__name__] = search.cv_results_

fused, sequential = results["FusedRandomizedSearchCV"], results["RandomizedSearchCV"]
same_params = fused["params"] == sequential["params"]
difference = np.abs(fused["mean_test_score"] - sequential["mean_test_score"]).max()
print(f"same candidates: {same_params}; "
      f"largest difference in mean_test_score: {difference:.2g}")
print(pd.DataFrame({"fused": fused["mean_test_score"],
                    "sequential": sequential["mean_test_score"]}).round(4).to_string())
for name, seconds in timings.items():
    print(f"{name:>24}: {seconds:5.2f} s")
print(f"the fused search was {timings['RandomizedSearchCV'] / timings['FusedRandomizedSearchCV']:.1f}x "
      "faster on this run")

# %%
# The scores are scikit-learn's own: the fused search only trains the members, then
# scikit-learn scores every fit with its usual code, so ``cv_results_`` has the same keys and,
# for the same trained weights, the same numbers (the largest difference is printed above).
# The arithmetic of training is the same too; what the fused search saves is the overhead
# around it, paid once per step of the whole stack of 18 networks instead of once per step of
# each. How much that is worth depends on the machine, the network and how many members train
# together: the ratio above is one run on a CPU; on a GPU, where one small network leaves the
# device almost idle, the gap is far larger.
