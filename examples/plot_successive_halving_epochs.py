"""
Successive halving over epochs
==============================

Most candidates of a search are visibly worse after a few epochs, so training each of them to
the end wastes most of the budget. **Successive halving** trains every candidate for a few
epochs, keeps the best third, trains those longer, keeps the best third of them, and so on:
the number of epochs is the *resource* that grows from round to round while the number of
candidates shrinks.

scikit-learn's :class:`~sklearn.model_selection.HalvingGridSearchCV` does this by refitting each
survivor **from scratch** with the larger resource. With ``resource='max_epochs'`` (here
``'mlpclassifier__max_epochs'``, the parameter of the pipeline's last step),
:class:`~sknn_tune.FusedHalvingGridSearchCV` instead **continues** each survivor from the
weights and optimizer state it reached in the previous round, trains all candidates x folds of
a round at once, and counts what it trained in ``n_member_epochs_``.
"""

# %%
# The data, the pipeline and the grid
# -----------------------------------
# The handwritten digits (1797 images of 8x8 pixels), standardised inside each CV split by a
# :class:`~sklearn.preprocessing.StandardScaler`, and a network with two hidden layers. The grid
# crosses six learning rates with three dropout rates: 18 candidates.
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.datasets import load_digits
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sknn_tune import FusedHalvingGridSearchCV, MLPClassifier, plot_search_results

X, y = load_digits(return_X_y=True)
X = X.astype(np.float32)
pipe = make_pipeline(StandardScaler(),
                     MLPClassifier((64, 32), batch_size=64, random_state=0))
grid = {"mlpclassifier__lr": [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2],
        "mlpclassifier__dropout": [0.0, 0.2, 0.5]}

# %%
# The search
# ----------
# Rounds of 2, 6 and 18 epochs (``min_resources=2``, ``factor=3``, ``max_resources=18``), each
# candidate cross-validated on 3 folds. ``max_epochs`` is left out of the grid: the search sets
# it, round by round.
search = FusedHalvingGridSearchCV(
    pipe, grid, resource="mlpclassifier__max_epochs", min_resources=2, max_resources=18,
    factor=3, cv=3, random_state=0)
start = time.perf_counter()
search.fit(X, y)
print(f"search: {time.perf_counter() - start:.1f} s")
print(pd.DataFrame({"candidates": search.n_candidates_, "epochs": search.n_resources_},
                   index=pd.RangeIndex(search.n_iterations_, name="round")))
print("best:", search.best_params_)
print(f"cross-validated accuracy of the best: {search.best_score_:.3f}")

# %%
# ``cv_results_`` has one row per candidate and round, with the round in ``iter`` and its
# epochs in ``n_resources``. The candidates of the later rounds, with their scores:
results = pd.DataFrame(search.cv_results_)
later = results[results["iter"] > 0].rename(columns=lambda c: c.replace("param_mlpclassifier__", ""))
print(later[["iter", "n_resources", "lr", "dropout", "mean_test_score", "mean_train_score"]]
      .sort_values(["iter", "mean_test_score"], ascending=[True, False])
      .to_string(index=False, float_format=lambda v: f"{v:.3g}"))

# %%
# How many epochs were trained?
# -----------------------------
# Each candidate x fold is one *member*: a network trained on that fold. A member that survives
# into round ``i`` trains only the epochs it is missing, ``n_resources_[i] - n_resources_[i-1]``.
# Retraining from scratch, as scikit-learn's halving search does, costs
# ``n_candidates_[i] * n_splits_ * n_resources_[i]`` member-epochs in round ``i``; a plain grid
# search would train every candidate for the full 18 epochs.
n_splits = search.n_splits_
from_scratch = sum(c * n_splits * r for c, r in zip(search.n_candidates_, search.n_resources_))
full_grid = search.n_candidates_[0] * n_splits * search.n_resources_[-1]
print(f"member-epochs trained by the fused halving search: {search.n_member_epochs_}")
print(f"halving that retrains from scratch:               {from_scratch} "
      f"({from_scratch / search.n_member_epochs_:.2f}x)")
print(f"full grid, every candidate for 18 epochs:         {full_grid} "
      f"({full_grid / search.n_member_epochs_:.2f}x)")

# %%
# Continuing is not an approximation: a member trained for 2 epochs and then for 4 more follows
# the same trajectory as one trained for 6 epochs in one go (batch order and dropout masks are
# drawn per member and per epoch, and the optimizer state is kept), as long as nothing in the
# training depends on the total number of epochs (``lr_schedule='cosine'`` does: its survivors
# restart, see the user guide).

# %%
# Scores round by round
# ---------------------
# Each line is one candidate, its cross-validated accuracy after each round it took part in.
# Survivors continue to the right; the others stop where they were eliminated.
fig, ax = plt.subplots(figsize=(7, 4.5))
survivors = 0
for params, rows in results.groupby(results["params"].map(
        lambda p: (p["mlpclassifier__lr"], p["mlpclassifier__dropout"]))):
    lr, dropout = params
    if rows["iter"].max() == search.n_iterations_ - 1:  # in the last round
        ax.plot(rows["n_resources"], rows["mean_test_score"], marker="o", zorder=3,
                color=f"C{survivors}", label=f"lr={lr:g}, dropout={dropout:g}")
        survivors += 1
    else:
        ax.plot(rows["n_resources"], rows["mean_test_score"], marker="o", color="0.6",
                alpha=0.6, label="_nolegend_")
ax.set_xlabel("epochs (max_epochs of the round)")
ax.set_ylabel("mean test accuracy (CV)")
ax.set_xticks(search.n_resources_)
ax.legend(title="last round", fontsize="small", loc="lower right")
ax.grid(True, alpha=0.3)
fig.tight_layout()

# %%
# And the score against each hyperparameter, coloured by round, with the training scores as
# hollow markers. The first round, after two epochs, already separates the learning rates that
# are too small: below 1e-3 the network has barely moved. None of the ``dropout=0.5``
# candidates survives it: strong dropout slows the first epochs, and two epochs are too few to
# tell whether it would pay off later. That is the risk of halving discussed below.
axes = plot_search_results(search)

# %%
# What to take from it
# --------------------
# Successive halving spends the epochs on the candidates that deserve them. Its risk is the
# first round: a candidate that starts slowly but would end best (a small learning rate, a
# strong dropout) can be eliminated after two epochs. Keep the first round long enough for the
# learning curves to have separated, which :func:`~sknn_tune.plot_history` on a few single fits
# shows. Continuing the survivors instead of retraining them saves the epochs the previous
# rounds already trained; the saving grows with the number of rounds.
