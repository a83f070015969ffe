"""``python -m sknn_tune``: the command line and the demo it runs."""

import importlib
import sys

import numpy as np
import pytest
import sklearn
import torch
from sklearn.datasets import load_digits

import sknn_tune
from sknn_tune import _demo


@pytest.fixture
def main():
    """``sknn_tune.__main__.main``, unimported again afterwards: ``load`` is tested never to
    import that module, which is only true of a process that has not run the command line."""
    yield importlib.import_module("sknn_tune.__main__").main
    sys.modules.pop("sknn_tune.__main__", None)
    vars(sknn_tune).pop("__main__", None)


def test_help_is_plain_text(main, capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "scikit-learn estimators" in out and "demo" in out
    assert "``" not in out and ":class:" not in out  # no reStructuredText markup


def test_version(main, capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == (
        f"sknn_tune {sknn_tune.__version__} (torch {torch.__version__}, "
        f"scikit-learn {sklearn.__version__})")


def test_version_has_one_source():
    from sknn_tune._version import __version__

    assert sknn_tune.__version__ is __version__


@pytest.mark.parametrize("epochs", ["0", "-3", "ten", "1.5"])
def test_demo_rejects_epochs_below_one(main, capsys, epochs):
    with pytest.raises(SystemExit) as info:
        main(["demo", "--epochs", epochs])
    assert info.value.code == 2  # an argparse usage error, not a traceback
    assert "argument --epochs" in capsys.readouterr().err


def test_a_command_is_required(main, capsys):
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
    assert "required" in capsys.readouterr().err


@pytest.mark.slow
def test_demo_runs_and_compares_the_searches(main, capsys, monkeypatch):
    X, y = load_digits(return_X_y=True)
    monkeypatch.setattr(_demo, "load_digits", lambda return_X_y: (X[:300], y[:300]))
    main(["demo", "--epochs", "1"])
    out = capsys.readouterr().out
    assert "held-out test accuracy" in out
    lines = out.strip().splitlines()
    assert lines[-2].startswith("largest difference between the two cv_results_: ")
    assert lines[-1] == "same cv_results_ (to 1e-09; timings aside)"
    assert "DIFFER" not in out


def _results(**changes):
    results = {
        "mean_fit_time": np.array([0.1, 0.2]),
        "params": [{"lr": 0.1}, {"lr": 0.01}],
        "param_lr": np.ma.masked_array([0.1, 0.01], mask=[False, False], dtype=object),
        "split0_test_score": np.array([0.5, 0.75]),
        "mean_test_score": np.array([0.5, 0.75]),
        "rank_test_score": np.array([2, 1], dtype=np.int32),
    }
    return {**results, **changes}


def test_compare_cv_results():
    # timings differ between any two runs and are left out
    assert _demo.compare_cv_results(_results(), _results(mean_fit_time=np.array([9.0, 9.0]))
                                    ) == (0.0, "mean_test_score", [])
    largest, column, mismatched = _demo.compare_cv_results(
        _results(), _results(split0_test_score=np.array([0.5, 0.7])))
    assert (column, mismatched) == ("split0_test_score", [])
    assert largest == pytest.approx(0.05)
    _, _, mismatched = _demo.compare_cv_results(_results(), _results(
        params=[{"lr": 0.1}, {"lr": 0.02}], rank_test_score=np.array([1, 2]),
        mean_test_score=np.array([0.5, np.nan])))
    assert mismatched == ["mean_test_score", "params"]  # a NaN where the other has a score
    _, _, mismatched = _demo.compare_cv_results(_results(), {
        key: value for key, value in _results().items() if key != "param_lr"})
    assert mismatched == ["param_lr"]


def test_comparison_report_says_when_results_differ():
    class Search:
        def __init__(self, results):
            self.cv_results_ = results

    report = _demo._comparison_report(Search(_results()), Search(_results(
        mean_test_score=np.array([0.5, 0.75 + 1e-6]))))
    assert "largest difference between the two cv_results_: 1e-06 (in mean_test_score)" in report
    assert "cv_results_ DIFFER: mean_test_score by 1e-06, more than 1e-09" in report
    assert "same cv_results_" not in report
