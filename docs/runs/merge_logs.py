# Merges the iflame and full training logs into one JSONL for `iflame render --curve`:
# x = hours of training (summed step times), keys <arch>_loss / <arch>_val_loss, and the
# unigram baseline as a flat line.
import json, sys
unigram = float(sys.argv[1])  # usage: merge_logs.py UNIGRAM_NATS RUNS_DIR > merged.jsonl
out = []
end = 0.0
for arch in ("iflame", "full"):
    hours = 0.0
    for line in open(f"{sys.argv[2]}/{arch}/log.jsonl"):
        j = json.loads(line)
        if "ms" in j:
            hours += j["ms"] / 3.6e6
            out.append({"hours": hours, f"{arch}_loss": j["loss"]})
        if "val_loss" in j:
            out.append({"hours": hours, f"{arch}_val_loss": j["val_loss"]})
    end = max(end, hours)
out += [{"hours": 0.0, "unigram": unigram}, {"hours": end, "unigram": unigram}]
for o in out:
    print(json.dumps(o))
