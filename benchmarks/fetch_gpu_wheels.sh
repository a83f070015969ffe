#!/usr/bin/env bash
# Download, where pip reaches PyPI, the wheels benchmarks/gpu_check.sh installs offline on the GPU
# machine (Linux x86-64, CPython 3.12; its image has torch, numpy, scipy, pandas, tqdm, pytest but
# no skorch and maybe an older scikit-learn) into benchmarks/wheels/ (git-ignored).
#
#   bash benchmarks/fetch_gpu_wheels.sh
#
# Binary wheels only, no dependency resolution (--no-deps): the packages are named one by one, with
# the pure-Python needs of scikit-learn >= 1.9 (joblib, threadpoolctl, narwhals) and of skorch
# (tabulate) that the image may hold in versions too old; numpy, scipy and tqdm are left to the
# image. Any wheels already in the folder are removed first (two versions of one package stop
# pip's install). The folder travels with the device tool's `carry`, 64 MiB at most: checked.
set -euo pipefail
cd "$(dirname "$0")"
dest=wheels
mkdir -p "$dest"
rm -f "$dest"/*.whl
python3 -m pip download --quiet --no-deps --only-binary=:all: \
    --python-version 3.12 --implementation cp --abi cp312 \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$dest" \
    'scikit-learn>=1.9' 'skorch>=1.0' 'joblib>=1.4' 'threadpoolctl>=3.5' 'narwhals>=2.0.1' \
    'tabulate>=0.7.7'
ls -l "$dest"
size=$(du -sk "$dest" | cut -f1)
echo "benchmarks/$dest: $((size / 1024)) MiB in $(ls "$dest"/*.whl | wc -l) wheels"
if [ "$size" -ge $((48 * 1024)) ]; then
    echo "warning: over 48 MiB; the device tool carries 64 MiB in all (working tree included)" >&2
fi
