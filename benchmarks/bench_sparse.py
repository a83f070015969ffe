"""Sparse text features: sknn_tune against scikit-learn's MLP on a TfidfVectorizer matrix.

A generated corpus (``--docs`` documents of 20-60 words from a Zipf-distributed vocabulary of
30 000 words, five classes whose topic words differ) goes through
``TfidfVectorizer(max_features=--features)``, so that X is sparse: about 0.15 % non-zero at the
default 50 000 x 20 000. Both contenders train an MLP features-128-5 (ReLU, Adam, lr 1e-3, batch
200, no early stopping, ``--epochs`` epochs exactly) on the same 80 % and score the other 20 %.

Each contender runs in its own child process (``--child``), so that its peak resident memory
(``ru_maxrss``) is its own; the dense matrix would take ``docs x features x 8`` bytes (8 GB at the
default sizes), so peak memory says whether anything densified it. The 1-minute load average is
recorded before and after every run and a run is flagged when it exceeded the threads in use.
``--quick`` is a smoke run (3000 docs x 2000 features, 1 epoch). Run from the repository root:
``python benchmarks/bench_sparse.py``. Results go to ``benchmarks/results/sparse[_quick].json``.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import warnings

import numpy as np
from _common import (
    describe_machine,
    format_markdown_table,
    format_table,
    load_average,
    load_flag,
    machine_info,
    write_json,
)

N_CLASSES = 5


def corpus(n_docs, seed=0):
    """``n_docs`` documents and their classes: Zipf background words plus class topic words."""
    rng = np.random.default_rng(seed)
    vocabulary = np.array([f"w{i}" for i in range(30000)])
    zipf = 1.0 / np.arange(1, len(vocabulary) + 1)
    zipf /= zipf.sum()
    topics = rng.choice(len(vocabulary), size=(N_CLASSES, 200), replace=False)
    labels = rng.integers(0, N_CLASSES, n_docs)
    docs = []
    for label in labels:
        n_words = rng.integers(20, 61)
        background = rng.choice(len(vocabulary), size=n_words, p=zipf)
        topic = rng.choice(topics[label], size=max(1, n_words // 6))
        docs.append(" ".join(vocabulary[np.concatenate([background, topic])]))
    return docs, labels


def child(args):
    """Train one contender; print its JSON result line."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.model_selection import train_test_split

    docs, labels = corpus(args.docs)
    X = TfidfVectorizer(max_features=args.features).fit_transform(docs)
    X_train, X_test, y_train, y_test = train_test_split(X, labels, test_size=0.2,
                                                        random_state=0, stratify=labels)
    if args.child == "sknn_tune":
        from sknn_tune import MLPClassifier
        model = MLPClassifier((128,), lr=1e-3, batch_size=200, max_epochs=args.epochs,
                              patience=None, random_state=0, device="cpu")
    else:
        from sklearn.neural_network import MLPClassifier
        model = MLPClassifier((128,), solver="adam", learning_rate_init=1e-3, batch_size=200,
                              alpha=0.0, max_iter=args.epochs, tol=0.0,
                              n_iter_no_change=args.epochs + 1, random_state=0)
    before = load_average()
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X_train, y_train)
    seconds = time.perf_counter() - start
    after = load_average()
    print(json.dumps({
        "contender": args.child, "seconds": seconds,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "accuracy": float(model.score(X_test, y_test)), "shape": list(X.shape),
        "density": X.nnz / (X.shape[0] * X.shape[1]), "load_before": before, "load_after": after,
        "threads": int(os.environ.get("OMP_NUM_THREADS", os.cpu_count()))}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=50000)
    parser.add_argument("--features", type=int, default=20000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", choices=["sknn_tune", "sklearn"], help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    if args.quick:
        args.docs, args.features, args.epochs = 3000, 2000, 1
    if args.child:
        return child(args)
    info = machine_info("cpu")
    print(f"sparse benchmark: {describe_machine(info)}")
    rows = []
    for name in ("sknn_tune", "sklearn"):
        command = [sys.executable, __file__, "--child", name, "--docs", str(args.docs),
                   "--features", str(args.features), "--epochs", str(args.epochs)]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        row = json.loads(output.strip().splitlines()[-1])
        row["flag"] = load_flag(row["load_before"], row["load_after"], row["threads"])
        rows.append(row)
        print(f"  {name:10s} {row['seconds']:8.2f} s  peak {row['peak_rss_mib']:8.0f} MiB  "
              f"accuracy {row['accuracy']:.4f}  load {row['load_before']:.2f} -> "
              f"{row['load_after']:.2f} {row['flag']}")
    ours = rows[0]
    for row in rows:
        row["time_vs_sknn_tune"] = row["seconds"] / ours["seconds"]
        row["memory_vs_sknn_tune"] = row["peak_rss_mib"] / ours["peak_rss_mib"]
    shape, density = ours["shape"], ours["density"]
    print(f"\nX: {shape[0]} x {shape[1]} TF-IDF, {100 * density:.3f} % non-zero "
          f"(dense float64 would be {shape[0] * shape[1] * 8 / 2**30:.1f} GiB); "
          f"{args.epochs} epochs, MLP {shape[1]}-128-{N_CLASSES}, batch 200")
    columns = [("contender", "contender", "s"), ("seconds", "seconds", ".2f"),
               ("time_vs_sknn_tune", "time ÷ sknn_tune", ".2f"),
               ("peak_rss_mib", "peak RSS MiB", ".0f"),
               ("memory_vs_sknn_tune", "memory ÷ sknn_tune", ".2f"), ("accuracy", "accuracy", ".4f"),
               ("load_before", "load0", ".2f"), ("load_after", "load1", ".2f"), ("flag", "flag", "s")]
    print(format_table(rows, columns))
    print("\nas a GitHub table:\n" + format_markdown_table(rows, columns))
    write_json("sparse_quick" if args.quick else "sparse",
               {"machine": info, "args": vars(args), "rows": rows}, args.out)


if __name__ == "__main__":
    main()
