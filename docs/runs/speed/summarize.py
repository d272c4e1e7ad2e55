import json, sys, glob, os
for d in sorted(glob.glob('' + sys.argv[1] + '/*/')):
    L = [json.loads(l) for l in open(d + 'log.jsonl') if '"ms"' in l]
    start = [json.loads(l) for l in open(d + 'log.jsonl') if '"event"' in l][0]
    L = L[3:] if len(L) > 6 else L  # the heap settles over the first steps
    ms = sum(l['ms'] for l in L); tok = sum(l['tokens_per_s'] * l['ms'] / 1000 for l in L)
    fl = sum(l['gflops'] * l['ms'] for l in L) / ms
    print('%-16s steps %3d  %6.0f tok/s  %5.1f GFLOP/s  MFU %4.1f%% (peak %.0f)' % (os.path.basename(d[:-1]), len(L), tok / ms * 1000, fl, 100 * fl / start['peak_gflops'], start['peak_gflops']))
