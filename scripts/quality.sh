#!/usr/bin/env bash
# Measures a model's samples the way docs/quality.md reports them (issue 13, part 6).
#
#   scripts/quality.sh sweep WEIGHTS DATASET OUT [N]     sampling settings tried, by 1-NNA
#   scripts/quality.sh final WEIGHTS DATASET OUT [N]     N samples with the model's defaults:
#                                                        metrics vs val, novelty vs train
#   scripts/quality.sh model WEIGHTS DATASET OUT [N] [-- SAMPLE_OPTIONS...]
#                                                        N samples (the model's defaults unless
#                                                        options say otherwise): metrics vs val
#   scripts/quality.sh ceiling DATASET OUT [N]           N training meshes scored as samples
#   scripts/quality.sh table NAME=EVAL.json...           docs/quality.md's tables from eval.json files
#
# Every comparison uses sets of equal size: N samples against N validation meshes (a seeded
# random N of the split when it has more; all of it when N is its size). N defaults to the size
# of the validation split for `final`, `model` and `ceiling`, 128 for `sweep`. Results go to OUT/
# (one folder per sample set, each with eval.json); the sweep's table goes to OUT/sweep.md.
# Environment: IFLAME (default build/iflame), SEED (default 1), SETTINGS (sweep: a file of
# lines "name | sample options", default the list below).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
IFLAME=${IFLAME:-$REPO/build/iflame}
SEED=${SEED:-1}
die() { printf 'quality: error: %s\n' "$*" >&2; exit 1; }
[ $# -ge 3 ] || [ "${1:-}" = table ] || { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
mode=$1
shift

# The validation split's size: u64 num_val at byte 48 of the dataset header (dataset/format.h).
val_size() { python3 -c 'import struct,sys; print(struct.unpack_from("<Q", open(sys.argv[1], "rb").read(56), 48)[0])' "$1" 2>/dev/null || true; }

# eval_set SAMPLES DATASET N OUT.json [more eval options]: N samples against N val meshes.
eval_set() {
  local samples=$1 data=$2 n=$3 json=$4
  shift 4
  "$IFLAME" eval --samples "$samples" --reference "$data" --split val --limit "$n" --subset random --seed "$SEED" \
    --json "$json" "$@"
}

metric() { python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print('%.4f' % j['metrics'][sys.argv[2]])" "$@"; }

case "$mode" in
  sweep)
    weights=$1 data=$2 out=$3 n=${4:-128}
    mkdir -p "$out"
    settings=${SETTINGS:-}
    if [ -z "$settings" ]; then
      settings=$out/settings.txt
      cat >"$settings" <<'EOF'
t1.0-p0.95-k50 | --temperature 1.0 --top-p 0.95 --top-k 50
t0.9-p0.95-k50 | --temperature 0.9 --top-p 0.95 --top-k 50
t0.8-p0.95-k50 | --temperature 0.8 --top-p 0.95 --top-k 50
t1.0-p0.9-k0 | --temperature 1.0 --top-p 0.9 --top-k 0
t1.0-p1.0-k0 | --temperature 1.0 --top-p 1.0 --top-k 0
t1.0-p0.9-k0-rows | --temperature 1.0 --top-p 0.9 --top-k 0 --full-row-starts
t1.0-p0.9-k0-escape | --temperature 1.0 --top-p 0.9 --top-k 0 --escape-loops
t1.0-p1.0-k0-m0.02 | --temperature 1.0 --top-p 1.0 --top-k 0 --min-p 0.02
t1.0-p1.0-k0-m0.05 | --temperature 1.0 --top-p 1.0 --top-k 0 --min-p 0.05
t0.9-p0.95-k50-order | --temperature 0.9 --top-p 0.95 --top-k 50 --order-constraints
EOF
    fi
    {
      echo "| setting | sample options | 1-NNA | COV | MMD x10^3 | ended by EOS |"
      echo "|---|---|---:|---:|---:|---:|"
    } >"$out/sweep.md"
    while IFS='|' read -r name opts; do
      name=$(echo "$name" | xargs)
      [ -n "$name" ] || continue
      # shellcheck disable=SC2086  # the options are words
      "$IFLAME" sample --weights "$weights" --n "$n" --batch 16 --seed "$SEED" --no-previews $opts --out "$out/$name" >"$out/$name.log" 2>&1 ||
        die "sampling $name failed (see $out/$name.log)"
      eval_set "$out/$name" "$data" "$n" "$out/$name/eval.json" >"$out/$name/eval.md"
      eos=$(python3 -c "import json,sys; s=json.load(open(sys.argv[1]))['samples']; print('%.1f%%' % (100*sum(x['finished']=='eos' for x in s)/len(s)))" "$out/$name/summary.json")
      echo "| $name | \`$(echo "$opts" | xargs)\` | $(metric "$out/$name/eval.json" nna) | $(metric "$out/$name/eval.json" cov) | $(python3 -c "import json,sys; print('%.3f' % (1e3*json.load(open(sys.argv[1]))['metrics']['mmd']))" "$out/$name/eval.json") | $eos |" >>"$out/sweep.md"
      echo "quality: $name done" >&2
    done <"$settings"
    cat "$out/sweep.md"
    ;;
  final)
    weights=$1 data=$2 out=$3 n=${4:-$(val_size "$2")}
    [ -n "$n" ] || die "cannot read the validation split of $data"
    mkdir -p "$out"
    "$IFLAME" sample --weights "$weights" --n "$n" --batch 16 --seed "$SEED" --out "$out/samples" >"$out/sample.log" 2>&1 ||
      die "sampling failed (see $out/sample.log)"
    eval_set "$out/samples" "$data" "$n" "$out/eval.json" --nearest "$data" --nearest-image "$out/nearest.png" | tee "$out/eval.md"
    ;;
  model)
    weights=$1 data=$2 out=$3
    shift 3
    n=$(val_size "$data")
    if [ $# -gt 0 ] && [ "$1" != "--" ]; then n=$1; shift; fi
    [ $# -eq 0 ] || { [ "$1" = "--" ] || die "expected -- before the sample options, got '$1'"; shift; }
    [ -n "$n" ] || die "cannot read the validation split of $data"
    mkdir -p "$out"
    "$IFLAME" sample --weights "$weights" --n "$n" --batch 16 --seed "$SEED" "$@" --out "$out/samples" >"$out/sample.log" 2>&1 ||
      die "sampling failed (see $out/sample.log)"
    eval_set "$out/samples" "$data" "$n" "$out/eval.json" | tee "$out/eval.md"
    ;;
  ceiling)
    data=$1 out=$2 n=${3:-$(val_size "$1")}
    [ -n "$n" ] || die "cannot read the validation split of $data"
    mkdir -p "$out"
    eval_set "$data" "$data" "$n" "$out/eval.json" --samples-split train | tee "$out/eval.md"
    ;;
  table)
    [ $# -ge 1 ] || die "table: give NAME=EVAL.json for each set"
    python3 - "$@" <<'PY'
import json, sys
sets = []
for arg in sys.argv[1:]:
    name, _, path = arg.partition("=")
    sets.append((name, json.load(open(path))))
pct = lambda x: "%.1f%%" % (100 * x)
print("| set | samples | 1-NNA | COV | MMD x10^3 | JSD x10^2 |")
print("|---|---:|---:|---:|---:|---:|")
for name, j in sets:
    m = j["metrics"]
    print("| %s | %d | %s | %s | %.3f | %.3f |" % (name, m["samples"], pct(m["nna"]), pct(m["cov"]), 1e3 * m["mmd"], 1e2 * m["jsd"]))
print()
def validity(name, st):
    fin = st.get("finished")
    eos = pct(fin.get("eos", 0) / sum(fin.values())) if fin else "-"
    n = st["usable"]
    def count(key, meshes):
        return "%d (%d meshes)" % (st[key], st[meshes]) if key in st else "-"  # "-": an older eval's JSON
    return "| %s | %d | %s | %.1f | %s | %s | %s | %s | %s |" % (
        name, n, eos, st["mean_faces"], count("degenerate_faces", "meshes_with_degenerate_faces"),
        count("duplicate_faces", "meshes_with_duplicate_faces"), count("repeated_faces", "meshes_with_repeated_faces"),
        count("non_manifold_edges", "meshes_with_non_manifold_edges"), pct(st["watertight_share"]))
print("| set | meshes | ended by EOS | mean faces | degenerate faces | duplicate faces | of which copies (same winding) "
      "| non-manifold edges | closed |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
print(validity("validation meshes", sets[0][1]["references"]))
for name, j in sets:
    print(validity(name, j["samples"]))
print()
rows = [("validation meshes", sets[0][1]["references"]["face_histogram"])] + [(n, j["samples"]["face_histogram"]) for n, j in sets]
width = max(len(h["counts"]) for _, h in rows)
print("| faces | " + " | ".join(n for n, _ in rows) + " |")
print("|---|" + "---:|" * len(rows))
for b in range(width):
    lo = b * rows[0][1]["bin"]
    cells = [str(h["counts"][b]) if b < len(h["counts"]) else "0" for _, h in rows]
    print("| %d-%d | %s |" % (lo, lo + rows[0][1]["bin"] - 1, " | ".join(cells)))
PY
    ;;
  *) die "unknown mode '$mode' (sweep, final, model, ceiling or table)" ;;
esac
