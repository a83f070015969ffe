"""Command line: ``python -m sknn_tune demo``, ``python -m sknn_tune --version``."""

import argparse

import sklearn
import torch

from ._demo import run_demo
from ._version import __version__

# argparse prints this as it is: plain text, not the docstring's reStructuredText
DESCRIPTION = ("sknn_tune: PyTorch multilayer perceptrons as scikit-learn estimators, with "
               "fused hyperparameter search.")


def _positive_int(text):
    """argparse type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _version_text():
    return f"sknn_tune {__version__} (torch {torch.__version__}, scikit-learn {sklearn.__version__})"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m sknn_tune", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=_version_text())
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo", help="train, cross-validate and tune an MLP on load_digits",
        description="Train, cross-validate and tune an MLP on scikit-learn's bundled digits, "
                    "and compare the fused grid search with GridSearchCV.")
    demo.add_argument("--epochs", type=_positive_int, default=30, metavar="N",
                      help="epochs per fit, at least 1 (default 30)")
    args = parser.parse_args(argv)
    if args.command == "demo":
        run_demo(max_epochs=args.epochs)


if __name__ == "__main__":
    main()
