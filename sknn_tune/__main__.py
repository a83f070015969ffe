"""Command line: ``python -m sknn_tune demo``."""

import argparse

from ._demo import run_demo


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m sknn_tune", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="train, cross-validate and tune an MLP on load_digits")
    demo.add_argument("--epochs", type=int, default=30, help="epochs per fit (default 30)")
    args = parser.parse_args(argv)
    if args.command == "demo":
        run_demo(max_epochs=args.epochs)


if __name__ == "__main__":
    main()
