"""
Regression with MLPRegressor
============================

:class:`~sknn_tune.MLPRegressor` is the regression twin of the classifier: a linear output
layer, ``score`` is R², and ``loss`` may be the squared error, the absolute error or the Huber
loss. This example fits it to a nonlinear problem against a linear baseline, shows why
standardising the *target* as well as the features is a good habit, compares the three losses
when the training targets contain outliers, and ends with a data set where the linear model is
the better choice.
"""

# %%
# A nonlinear problem
# -------------------
# Friedman's benchmark #1: ``y = 10 sin(pi x0 x1) + 20 (x2 - 0.5)² + 10 x3 + 5 x4 + noise``,
# with five more features that play no part. 1000 samples to train, 500 to test.
#
# Networks train best when both inputs and targets are of order one.
# :class:`~sklearn.compose.TransformedTargetRegressor` standardises ``y`` before ``fit`` and
# transforms predictions back, so the loss, the learning rate and the early-stopping tolerance
# mean the same whatever the unit of ``y``.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.compose import TransformedTargetRegressor
from sklearn.datasets import load_diabetes, make_friedman1
from sklearn.linear_model import RidgeCV
from sklearn.metrics import mean_absolute_error
from sklearn.model_selection import cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sknn_tune import MLPRegressor, plot_history

X, y = make_friedman1(n_samples=1500, noise=1.0, random_state=0)
X_train, X_test, y_train, y_test = train_test_split(
    X.astype(np.float32), y, test_size=500, random_state=0)


def make_mlp(loss="squared_error"):
    mlp = MLPRegressor((64, 64), loss=loss, lr=3e-3, max_epochs=100, batch_size=50,
                       early_stopping=True, patience=10, random_state=0)
    return TransformedTargetRegressor(make_pipeline(StandardScaler(), mlp),
                                      transformer=StandardScaler())


mlp = make_mlp().fit(X_train, y_train)
ridge = make_pipeline(StandardScaler(), RidgeCV()).fit(X_train, y_train)
for name, model in [("MLPRegressor", mlp), ("RidgeCV", ridge)]:
    print(f"{name:>12}: test R² {model.score(X_test, y_test):.3f}, "
          f"MAE {mean_absolute_error(y_test, model.predict(X_test)):.2f}")

# %%
# The fitted MLP sits inside the wrapper as ``mlp.regressor_[-1]``;
# :func:`~sknn_tune.plot_history` finds it by itself. Early stopping held out 10 % of the
# training data and kept the weights of the best epoch.
fig, (ax_hist, ax_pred) = plt.subplots(1, 2, figsize=(11, 4))
plot_history(mlp, ax=ax_hist)
ax_hist.set_yscale("log")
ax_hist.set_title("MLPRegressor learning curves (standardised y)")
ax_pred.scatter(y_test, ridge.predict(X_test), s=8, alpha=0.5, label="RidgeCV")
ax_pred.scatter(y_test, mlp.predict(X_test), s=8, alpha=0.5, label="MLPRegressor")
ax_pred.axline((10, 10), slope=1, color="0.3", linestyle=":")
ax_pred.set_xlabel("true y")
ax_pred.set_ylabel("predicted y")
ax_pred.set_title("test set")
ax_pred.legend()
fig.tight_layout()

# %%
# The linear model cannot represent ``sin(pi x0 x1)`` or the square; the network can, and
# its predictions hug the diagonal much more closely.
#
# Outliers in the training targets: choosing the loss
# ---------------------------------------------------
# Corrupt 5 % of the training targets by adding ±20 to 40 (the targets themselves span about
# 0 to 30) and train with each loss; the test set stays clean. The squared error grows with
# the square of a residual, so a few wild targets dominate it; the absolute error grows
# linearly, and the Huber loss is quadratic for small residuals and linear for large ones.
rng = np.random.default_rng(0)
y_corrupt = y_train.copy()
bad = rng.choice(len(y_train), size=len(y_train) // 20, replace=False)
y_corrupt[bad] += rng.choice([-1, 1], size=len(bad)) * rng.uniform(20, 40, size=len(bad))

for loss in ["squared_error", "huber", "absolute_error"]:
    model = make_mlp(loss).fit(X_train, y_corrupt)
    print(f"{loss:>14}: test R² {model.score(X_test, y_test):.3f}, "
          f"MAE {mean_absolute_error(y_test, model.predict(X_test)):.2f}")

# %%
# The absolute error shrugs the outliers off and stays close to the clean fit above; the
# squared error loses much of its accuracy; Huber lands in between. Huber's switch from
# quadratic to linear happens at a residual of 1 in the units the network sees, here one
# standard deviation of the (corrupted, hence inflated) target, which is why it is not as
# robust as the absolute error on this data.
#
# When a linear model is enough
# -----------------------------
# The diabetes data (442 patients, 10 features) is the classic small regression set. Its
# signal is mostly linear and noisy; cross-validated, a small network does not beat ridge
# regression.
X_d, y_d = load_diabetes(return_X_y=True)
small_mlp = TransformedTargetRegressor(
    make_pipeline(StandardScaler(), MLPRegressor((32,), lr=1e-2, max_epochs=100,
                                                 early_stopping=True, random_state=0)),
    transformer=StandardScaler())
for name, model in [("MLPRegressor", small_mlp),
                    ("RidgeCV", make_pipeline(StandardScaler(), RidgeCV()))]:
    scores = cross_val_score(model, X_d.astype(np.float32), y_d, cv=5)
    print(f"{name:>12}: 5-fold R² {scores.mean():.3f} ± {scores.std():.3f}")

# %%
# Always fit a linear baseline first: a network earns its cost only where the relationship is
# nonlinear and the data plentiful enough to learn it.
