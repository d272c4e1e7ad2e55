# The scaling study's table and curve data from its run folders.
#   python3 docs/runs/study/analyze.py RUNS_DIR NAME... > merged.jsonl   (the table goes to stderr)
#   build/iflame render --curve merged.jsonl --x hours --keys NAME_val_loss,... --out study.png
# Hours are tokens seen / the run's median tokens/s over its steps: the runs shared the 2 cores
# with each other and, at times, with compiles, which would otherwise count against whichever
# run they happened to slow (step times also vary with the batch's length mix, so a typical
# rate per run is the fairest clock here).
import json, sys

runs_dir, names = sys.argv[1], sys.argv[2:]
rows, out = [], []
for name in names:
    lines = [json.loads(l) for l in open(f"{runs_dir}/{name}/log.jsonl")]
    start = next(l for l in lines if l.get("event") == "start")
    config = dict(kv.split(" = ", 1) for kv in start["config"].strip().split("\n"))
    steps = {}
    for l in lines:  # a resumed run logs its redone steps again: keep the last of each
        if "ms" in l:
            steps[l["step"]] = l
    steps = [steps[k] for k in sorted(steps)]
    rates = sorted(l["tokens_per_s"] for l in steps)
    rate = rates[len(rates) // 2]
    seen, tokens_at = 0.0, {}
    for l in steps:
        seen += l["tokens_per_s"] * l["ms"] / 1000
        tokens_at[l["step"]] = seen
    vals = [l for l in lines if "val_loss" in l]
    for l in vals:
        out.append({"hours": tokens_at[l["step"]] / rate / 3600, "tokens_m": tokens_at[l["step"]] / 1e6,
                    f"{name}_val_loss": l["val_loss"]})
    last = vals[-1] if vals else {}
    rows.append((name, config["model.dim"], config["model.heads"], start["params"] / 1e6, config["optim.lr"],
                 config["data.augment"], len(steps), seen / rate / 3600, seen / 1e6, rate, last.get("val_loss", float("nan")),
                 100 * last.get("val_token_accuracy", float("nan")), min((l["val_loss"] for l in vals), default=float("nan"))))
for o in out:
    print(json.dumps(o))
print("| run | E | H | params (M) | lr | augment | steps | hours | tokens (M) | median tokens/s | val loss (last) | val token acc (%) | best val loss |",
      file=sys.stderr)
print("|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|", file=sys.stderr)
for r in rows:
    print("| %s | %s | %s | %.2f | %s | %s | %d | %.2f | %.2f | %.0f | %.4f | %.2f | %.4f |" % r, file=sys.stderr)
