"""Write ``summary.md`` of a ``gpu_check.sh`` run: environment, stages, and each benchmark's table.

``python benchmarks/gpu_check_summary.py DIR``: reads ``DIR/stages.tsv`` (stage, exit code, seconds,
timeout), ``DIR/environment.txt`` and the benchmark JSON files there (whichever exist: a stage
that failed leaves none), and writes ``DIR/summary.md``. Uses the standard library and
``_common``'s table formatting only, so it works whatever else failed.
"""

import json
import sys
from pathlib import Path

from _common import format_markdown_table

STATUS = {0: "ok", 124: "timed out", 137: "killed (timeout)"}


def stage_rows(folder):
    rows = []
    path = folder / "stages.tsv"
    if path.exists():
        for line in path.read_text().splitlines():
            name, rc, seconds, limit = line.split("\t")
            rows.append({"stage": name, "status": STATUS.get(int(rc), f"failed (exit {rc})"),
                         "seconds": float(seconds), "limit": limit})
    return rows


def load(folder, name):
    path = folder / name
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def single_fit_section(data):
    out = []
    for name, w in data["workloads"].items():
        out.append(f"### Single fit, {name} ({w['n_train']} train rows, MLP {w['architecture']}, "
                   f"{w['steps_per_fit']} steps per fit, {w['threads']} threads)\n")
        out.append(format_markdown_table(w["results"], [
            ("name", "contender", ""), ("dtype", "dtype", ""), ("device", "device", ""),
            ("best_s", "best s", ".3f"), ("accuracy", "accuracy", ".4f"), ("ratio", "÷ ours", ".2f"),
            ("us_per_step", "µs/step", ".1f"), ("floor_us_per_step", "floor µs", ".1f"),
            ("x_floor", "÷ floor", ".2f"), ("target_x_floor", "target", ".1f"),
            ("load_before", "load0", ".2f"), ("load_after", "load1", ".2f"), ("flag", "flag", "")]))
        out.append("")
    return out


def search_section(data):
    w = data["workload"]
    out = [f"### Search, workload {w.get('workload', 'B')} ({w['n_samples']} x {w['n_features']}, "
           f"MLP {w['architecture']}, {w['n_candidates']} candidates x {w['n_folds']} folds, "
           f"{data['config']['epochs']} epochs)\n"]
    out.append(format_markdown_table(w["results"], [
        ("name", "contender", ""), ("n_jobs", "n_jobs", ""), ("how", "fits timed", ""),
        ("seconds", "seconds", ".2f"), ("ratio", "÷ fused", ".2f"), ("best_score", "best score", ".4f"),
        ("us_per_member_step", "µs/member-step", ".1f"), ("floor_us", "floor µs", ".1f"),
        ("floor_m", "floor M", ""), ("x_floor", "÷ floor", ".2f"), ("target_x_floor", "target", ".1f"),
        ("load_before", "load0", ".2f"), ("load_after", "load1", ".2f"), ("flag", "flag", "")]))
    check = w.get("fused_vs_sequential")
    if check:
        out.append(f"\nfused vs GridSearchCV(ours) on {check['n_candidates']} candidates: max |diff| "
                   f"of mean_test_score {check['max_abs_diff']:.3g}, same best: {check['same_best']}")
    out.append("")
    return out


def random_section(data):
    w = data["workload"]
    out = [f"### Random search over structure ({w['n_samples']} x {w['n_features']}, "
           f"{w['n_candidates']} candidates x {w['n_folds']} folds, {data['config']['epochs']} "
           "epochs; bench_search.py --workload random)\n"]
    out.append(format_markdown_table(w["results"], [
        ("name", "contender", ""), ("n_jobs", "n_jobs", ""), ("seconds", "seconds", ".2f"),
        ("ratio", "÷ fused", ".2f"), ("x_floor", "÷ floor", ".2f"), ("best_score", "best score", ".4f"),
        ("load_before", "load0", ".2f"), ("load_after", "load1", ".2f"), ("flag", "flag", "")]))
    stacks = w.get("stack_summary")
    if stacks:
        out.append(f"\n{stacks['n_stacks']} stacks of {min(stacks['sizes'])}-{max(stacks['sizes'])} "
                   f"members; GEMM floor {w['floor']['total_s']} s")
    for key, verdict in (w.get("targets") or {}).items():
        out.append(f"\n{key}: {verdict['value']:.2f} (target {verdict['target']}): "
                   f"{'PASS' if verdict['pass'] else 'FAIL'}")
    out.append("")
    return out


def throughput_section(data):
    w = data["workload"]
    out = [f"### Throughput, workload A ({w['n_samples']} x {w['n_features']}, MLP "
           f"{w['architecture']}, batch {data['config']['batch_size']})\n"]
    out.append(format_markdown_table(w["results"], [
        ("name", "contender", ""), ("status", "status", ""), ("dtype", "dtype", ""),
        ("epoch_s", "s/epoch (stack)", ".3f"), ("ms_per_model_epoch", "ms/model-epoch", ".3f"),
        ("speedup_vs_skorch", "x skorch", ".1f"), ("load_before", "load0", ".2f"),
        ("load_after", "load1", ".2f"), ("flag", "flag", "")]))
    out.append("")
    return out


def memory_section(data):
    out = ["### Memory: fused search against GridSearchCV(ours, n_jobs=1), 1 epoch (bench_scale.py)\n"]
    out.append(format_markdown_table(data["rows"], [
        ("contender", "contender", ""), ("device", "device", ""), ("rows", "rows", "d"),
        ("candidates", "cand.", "d"), ("wall_s", "wall s", ".2f"),
        ("added_peak_mib", "added RSS MiB", ".0f"), ("added_gpu_peak_mib", "added GPU MiB", ".0f"),
        ("load_before", "load0", ".2f")]))
    out += ["", ", ".join(f"{name}: {value:.2f}x" for name, value in data["summary"].items()), ""]
    return out


def sklearn_exact_section(data):
    """bench_sklearn_exact.py: the goals, the default fits and the search (its exactness table,
    21 rows, stays in benchmarks.log; the worst difference is among the goals)."""
    sections = data["sections"]
    out = ["### sknn_tune.neural_network against scikit-learn's MLP (bench_sklearn_exact.py)\n"]
    out += [f"- {'PASS' if g['pass'] else 'FAIL'} [{g['section']}] {g['goal']}"
            for g in data["goals"]]
    if "defaults" in sections:
        out += ["", format_markdown_table(sections["defaults"]["table"], [
            ("set", "data set", ""), ("task", "task", ""), ("rows", "rows", "d"),
            ("agreement_pct", "same predict %", ".2f"), ("n_iter_sklearn", "n_iter_ sklearn", "d"),
            ("n_iter_ours", "n_iter_ ours", "d"), ("max_rel_diff", "max rel diff W", ".1e"),
            ("sklearn_s", "sklearn s", ".3f"), ("ours_s", "ours s", ".3f")])]
    if "search" in sections:
        search = sections["search"]
        out += ["", f"Search: digits {search['n_samples']} rows, {search['n_candidates']} "
                    f"candidates x {search['cv']} folds\n",
                format_markdown_table(search["results"], [
                    ("name", "contender", ""), ("n_jobs", "n_jobs", ""), ("device", "device", ""),
                    ("seconds", "seconds", ".2f"), ("ratio", "÷ fused", ".2f"),
                    ("best_score", "best score", ".4f"), ("load_before", "load0", ".2f"),
                    ("load_after", "load1", ".2f"), ("flag", "flag", "")])]
    out.append("")
    return out


def main(folder):
    folder = Path(folder)
    lines = ["# gpu_check", ""]
    env = folder / "environment.txt"
    if env.exists():
        lines += ["```", env.read_text().rstrip(), "```", ""]
    stages = stage_rows(folder)
    lines += ["## Stages", "", format_markdown_table(stages, [
        ("stage", "stage", ""), ("status", "status", ""), ("seconds", "seconds", ".1f"),
        ("limit", "limit s", "")]), ""]
    lines += ["## Results", ""]
    for name, section in (("single_fit.json", single_fit_section), ("search.json", search_section),
                          ("throughput.json", throughput_section),
                          ("scale_memory.json", memory_section), ("random.json", random_section),
                          ("sklearn_exact.json", sklearn_exact_section)):
        data = load(folder, name)
        if data is None:
            lines += [f"({name}: none written)", ""]
            continue
        try:
            lines += section(data)
        except (KeyError, TypeError, ValueError) as exc:  # a summary must not hide the rest
            lines += [f"({name}: could not summarise: {exc!r})", ""]
    (folder / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1])
