"""How a fused search groups its members into stacks: folds whose sizes differ by a row share a
stack under ``batch_size='auto'`` (one full batch an epoch), with GridSearchCV's results."""

from sklearn.datasets import make_classification
from sklearn.model_selection import GridSearchCV
from test_search import assert_same_search

from sknn_tune import FusedGridSearchCV, MLPClassifier

# 3 folds of 178 rows: the networks train on 118, 119 and 119 rows.
X, Y = make_classification(178, 5, random_state=0)


def test_auto_batch_folds_of_118_and_119_rows_share_one_stack(trained):
    network = MLPClassifier((8,), max_epochs=2, patience=None, random_state=0)
    grid = {"lr": [1e-3, 1e-2]}
    # Log loss reads the probabilities: equal to the last bit, the members trained the same bits
    # stacked as alone.
    fused = FusedGridSearchCV(network, grid, cv=3, scoring="neg_log_loss").fit(X, Y)
    ref = GridSearchCV(network, grid, cv=3, scoring="neg_log_loss").fit(X, Y)
    assert_same_search(fused, ref, X, atol=0)
    assert [t.members for t in trained if t.fused] == [6]
