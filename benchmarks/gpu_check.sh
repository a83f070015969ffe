#!/usr/bin/env bash
# The GPU proof in one offline command (issue 13): at most 10 minutes on an H100 / H200.
#
#   bash benchmarks/gpu_check.sh            # on the GPU machine, from the repository root or anywhere
#   bash benchmarks/gpu_check.sh --dry-run  # on the CPU, tiny sizes, same code path (CI runs this)
#
# Stages, each under its own `timeout` (on the card 600 s in all, the limits array below), each
# guarded so one failure does not stop the rest; the exit code is non-zero when any failed:
#   1. install: scikit-learn >= 1.9, skorch and their pure-Python needs from benchmarks/wheels/
#      (fetched beforehand by benchmarks/fetch_gpu_wheels.sh where pip works) with
#      `pip install --no-index --no-deps --target <tmp dir>`, that dir put on PYTHONPATH; the package
#      itself is imported from this checkout through PYTHONPATH (no build, no network). Skipped when
#      scikit-learn >= 1.9 and skorch already import (unless GPU_CHECK_FORCE_INSTALL is set).
#   2. environment: card name (nvidia-smi), torch / CUDA / scikit-learn / skorch versions.
#   3. tests on the device: `pytest tests -q -x --device cuda` where tests/conftest.py offers
#      --device, else the same with SKNN_TUNE_TEST_DEVICE=cuda; `-n 8` when pytest-xdist is there
#      (GPU_CHECK_TEST_WORKERS). --dry-run: cpu, collection of tests/test_engine.py only.
#   4. bench_single_fit.py, 5. bench_search.py (workload B, full size; the sequential contenders
#      extrapolated from 2 candidates), 6. bench_throughput.py (workload A, M = 1, 256, 1024, 4096
#      as time and memory allow, skorch beside it), 7. bench_step_compile.py (the optimizer
#      update's grouped vs column form at M = 16, 80; the step eager vs torch.compile and epochs
#      eager vs CUDA graph at M = 80; its numbers go to benchmarks.log only), 8. bench_scale.py
#      --memory-only, 9. bench_search.py --workload random (heterogeneous: 40 candidates x 5
#      folds, fused against RandomizedSearchCV(scikit-learn's MLP, n_jobs=-1) on the CPU cores),
#   10. bench_sklearn_exact.py (sknn_tune.neural_network against scikit-learn's MLP: exactness
#      and default fits on the CPU, one thread; a 24-candidate FusedGridSearchCV on the card
#      against GridSearchCV(scikit-learn's MLP, n_jobs=-1) on the CPU cores).
# Output, under $OUT (default benchmarks/results/gpu_check_<UTC timestamp>/), at most 8 plain
# files in one folder (what the device tool brings back): summary.md (with environment.txt,
# stages.tsv and sklearn_exact.json, which are removed once it is written), tests.log,
# benchmarks.log, single_fit.json, search.json, throughput.json, scale_memory.json, random.json.
set -uo pipefail

dry=0
case "${1:-}" in
    --dry-run) dry=1 ;;
    "") ;;
    *) echo "usage: bash benchmarks/gpu_check.sh [--dry-run]" >&2; exit 2 ;;
esac

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
cd "$root"
py=${PYTHON:-$(command -v python3 || command -v python)}
out=${OUT:-$root/benchmarks/results/gpu_check_$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out"
outer_pythonpath=${PYTHONPATH:-}
export PYTHONPATH="$root${outer_pythonpath:+:$outer_pythonpath}"
export PYTHONUNBUFFERED=1
export py here root out dry
: >"$out/stages.tsv"
: >"$out/benchmarks.log"
failed=0

if [ $dry = 1 ]; then
    device=cpu
    # seconds per stage: install, environment, tests, single fit, search, throughput, step compile,
    # memory, random search, sklearn exact
    limits=(60 30 60 90 60 60 60 60 60 60)
    threads=(--threads 1)
else
    device=cuda
    limits=(30 20 100 50 85 60 45 70 90 50)  # 600 s in all (tests gave 20 s to sklearn exact)
    threads=()
fi

# stage NAME LIMIT LOG COMMAND...: run under `timeout`, append its output to LOG and to the
# console, record "name<TAB>exit code<TAB>seconds<TAB>limit" in stages.tsv. COMMAND may be a
# function of this script (exported with `export -f`).
stage() {
    local name=$1 limit=$2 log=$3
    shift 3
    echo "== $name (limit ${limit}s): $*" | tee -a "$log"
    local start=$SECONDS rc
    timeout --kill-after=10 "$limit" bash -c '"$@"' stage "$@" 2>&1 | tee -a "$log"
    rc=${PIPESTATUS[0]}
    printf '%s\t%s\t%s\t%s\n' "$name" "$rc" "$((SECONDS - start))" "$limit" >>"$out/stages.tsv"
    echo "== $name: exit $rc after $((SECONDS - start))s" | tee -a "$log"
    [ "$rc" = 0 ] || failed=1
}

# 1. wheels --------------------------------------------------------------------------------
have_packages() {
    # from the packages' metadata, without importing them (seconds each on a small machine)
    "$py" - <<'EOF'
import importlib.metadata as md
import importlib.util
try:
    major, minor = (int(p) for p in md.version("scikit-learn").split(".")[:2])
    md.version("skorch")
except (md.PackageNotFoundError, ValueError):
    raise SystemExit(1)
found = all(importlib.util.find_spec(m) for m in ("sklearn", "skorch"))
raise SystemExit(0 if found and (major, minor) >= (1, 9) else 1)
EOF
}
install_wheels() {
    local site
    site=$(mktemp -d "${TMPDIR:-/tmp}/sknn_tune_site.XXXXXX")
    shopt -s nullglob
    local wheels=("$here"/wheels/*.whl)
    shopt -u nullglob
    if [ ${#wheels[@]} = 0 ]; then
        echo "no wheels in benchmarks/wheels/: run benchmarks/fetch_gpu_wheels.sh where pip works" \
             "and carry benchmarks/wheels" >&2
        return 1
    fi
    "$py" -m pip install --quiet --no-index --no-deps --no-compile --no-cache-dir \
        --find-links "$here/wheels" --target "$site" "${wheels[@]}" || return 1
    echo "$site" >"$out/.site"
    echo "installed into $site:" "${wheels[@]##*/}"
}
export -f install_wheels
if [ -z "${GPU_CHECK_FORCE_INSTALL:-}" ] && have_packages 2>/dev/null; then
    echo "== install: scikit-learn >= 1.9 and skorch already import; no wheels installed"
    printf 'install\t0\t0\t%s\n' "${limits[0]}" >>"$out/stages.tsv"
else
    stage install "${limits[0]}" "$out/benchmarks.log" install_wheels
    if [ -f "$out/.site" ]; then
        # the checkout first, then the wheels, then whatever was there (before the image's own)
        export PYTHONPATH="$root:$(cat "$out/.site")${outer_pythonpath:+:$outer_pythonpath}"
        rm -f "$out/.site"
    fi
fi

# 2. environment -----------------------------------------------------------------------------
environment() {
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
         "$(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo '(dirty)')"
    echo "mode: $([ "$dry" = 1 ] && echo 'dry run (cpu, tiny sizes)' || echo 'full')"
    if command -v nvidia-smi >/dev/null; then
        echo "gpu: $(nvidia-smi --query-gpu=name --format=csv,noheader | paste -sd ';')"
    else
        echo "gpu: none (no nvidia-smi)"
    fi
    echo "load average: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null), cpus $(nproc 2>/dev/null)"
    "$py" - <<'EOF'
import importlib.metadata
import importlib.util
import sys

import torch

print("python:", sys.version.split()[0], sys.executable)
print("torch:", torch.__version__, "| cuda:", torch.version.cuda, "| cuda available:",
      torch.cuda.is_available(), "|", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "-")
# versions and locations without importing (an interpreter start is most of a dry run's time)
for module, dist in (("numpy", "numpy"), ("scipy", "scipy"), ("sklearn", "scikit-learn"),
                     ("skorch", "skorch"), ("sknn_tune", None)):
    spec = importlib.util.find_spec(module)
    if spec is None:
        print(f"{module}: not importable")
        continue
    try:
        version = importlib.metadata.version(dist) if dist else "(this checkout)"
    except importlib.metadata.PackageNotFoundError:
        version = "?"
    print(f"{module}: {version} ({spec.origin})")
EOF
}
export -f environment
stage environment "${limits[1]}" "$out/environment.txt" environment
[ "$device" = cpu ] || "$py" -c "import torch; raise SystemExit(not torch.cuda.is_available())" \
    || { echo "warning: torch sees no CUDA device; the cuda stages will fail" >&2; }

# 3. tests on the device ---------------------------------------------------------------------
test_args=(tests -q -x)
if [ $dry = 1 ]; then
    test_args=(tests/test_engine.py -q -x --collect-only)  # the command, not the suite (CI runs it)
elif "$py" -c "import xdist" 2>/dev/null; then
    test_args+=(-n "${GPU_CHECK_TEST_WORKERS:-8}")
fi
# (pytest --help costs an interpreter start: asked only when the conftest names the option)
if grep -rqs -- "--device" tests/conftest.py \
        && "$py" -m pytest tests --help 2>/dev/null | grep -q -- "--device"; then
    stage tests "${limits[2]}" "$out/tests.log" "$py" -m pytest "${test_args[@]}" --device "$device"
else
    echo "(tests/conftest.py has no --device option: SKNN_TUNE_TEST_DEVICE=$device)" | tee -a "$out/tests.log"
    stage tests "${limits[2]}" "$out/tests.log" env SKNN_TUNE_TEST_DEVICE="$device" \
        "$py" -m pytest "${test_args[@]}"
fi

# 4-6. benchmarks ----------------------------------------------------------------------------
if [ $dry = 1 ]; then
    # (skorch's first fit in a process costs seconds: its path runs in the search and throughput)
    single=(--workloads digits --n-samples 300 --epochs 1 --repeats 1 --warmup 0 --floor-repeats 1
            --only sknn_tune sklearn)
    # (no GridSearchCV(sklearn): its n_jobs=-1 starts a process per core, most of a dry run's time)
    search=(--workload small --n-samples 300 --epochs 1 --candidates 2 --folds 2
            --extrapolate-from 1 --skorch-fits 1 --floor-repeats 1 --skip sklearn)
    throughput=(--n-samples 512 --n-features 64 --members 1 4 --epochs 2 --budget-s 20)
    step_compile=(--dry-run)
    memory=(--rows 20000)
    random=(--candidates 2 --folds 2 --epochs 1 --floor-repeats 1 --max-settle 0 --skip sklearn)
    # (--quick: 60 rows per data set, a 4 x 2 search with GridSearchCV(n_jobs=1), no settling)
    exact=(--quick)
else
    single=(--repeats 2 --warmup 1)
    # (no GridSearchCV(ours, n_jobs=-1): a loky worker per core, each starting its own CUDA context)
    search=(--workload B --extrapolate-from 2 --skorch-fits 3 --skip ours-1)
    throughput=(--members 1 256 1024 4096 --epochs 2 --budget-s 60)
    step_compile=(--members 16 80 --compile-members 80 --repeats 3)
    memory=(--rows 1000000)
    # (no RandomizedSearchCV(ours, n_jobs=-1): a loky worker per core, each its own CUDA context)
    random=(--floor-repeats 3 --max-settle 10 --skip ours)
    exact=(--max-settle 5)
fi
stage single_fit "${limits[3]}" "$out/benchmarks.log" "$py" "$here/bench_single_fit.py" \
    --device "$device" "${threads[@]}" "${single[@]}" --out "$out/single_fit.json"
stage search "${limits[4]}" "$out/benchmarks.log" "$py" "$here/bench_search.py" \
    --device "$device" "${threads[@]}" "${search[@]}" --out "$out/search.json"
stage throughput "${limits[5]}" "$out/benchmarks.log" "$py" "$here/bench_throughput.py" \
    --device "$device" "${threads[@]}" "${throughput[@]}" --out "$out/throughput.json"
stage step_compile "${limits[6]}" "$out/benchmarks.log" "$py" "$here/bench_step_compile.py" \
    --device "$device" "${threads[@]}" "${step_compile[@]}" --out none
# The fused search's added peak memory against one fit at a time (GPU memory on a card).
stage memory "${limits[7]}" "$out/benchmarks.log" "$py" "$here/bench_scale.py" \
    --device "$device" --memory-only "${memory[@]}" --out "$out/scale_memory.json"

stage random "${limits[8]}" "$out/benchmarks.log" "$py" "$here/bench_search.py" \
    --workload random --device "$device" "${random[@]}" --out "$out/random.json"
# sknn_tune.neural_network against scikit-learn's MLP (its JSON goes into summary.md).
stage sklearn_exact "${limits[9]}" "$out/benchmarks.log" "$py" "$here/bench_sklearn_exact.py" \
    --device "$device" "${threads[@]}" "${exact[@]}" --out "$out/sklearn_exact.json"

# summary ------------------------------------------------------------------------------------
# (environment.txt, stages.tsv and sklearn_exact.json are in summary.md: removed, so that 8
# files come back)
(cd "$here" && "$py" gpu_check_summary.py "$out") \
    && rm -f "$out/environment.txt" "$out/stages.tsv" "$out/sklearn_exact.json" || failed=1
echo "gpu_check: $([ $failed = 0 ] && echo 'all stages passed' || echo 'SOME STAGES FAILED'); files in $out"
exit $failed
