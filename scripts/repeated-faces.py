#!/usr/bin/env python3
"""Counts repeated faces in a prepared dataset (.ifds, src/dataset/format.h): runs of face rows
with the same three corners (a face and its back side, or copies) and exact repeated rows.
Usage: scripts/repeated-faces.py CORPUS.ifds [train|val]   (Python 3, standard library only)"""
import collections
import struct
import sys


def face_rows(data, split):
    """Yields each mesh's face rows (tuples of 9 tokens) of the split (0 train, 1 val)."""
    num_meshes, _, _, index_offset = struct.unpack_from("<QQQQ", data, 32)
    for i in range(num_meshes):
        record = index_offset + 80 * i
        tokens_offset = struct.unpack_from("<Q", data, record + 40)[0]
        num_faces = struct.unpack_from("<I", data, record + 68)[0]
        if data[record + 76] != split:
            continue
        flat = struct.unpack_from("<%dH" % (num_faces * 9), data, tokens_offset)
        yield [flat[9 * f:9 * f + 9] for f in range(num_faces)]


def main():
    if len(sys.argv) not in (2, 3) or (len(sys.argv) == 3 and sys.argv[2] not in ("train", "val")):
        sys.exit(__doc__)
    try:
        with open(sys.argv[1], "rb") as f:
            data = f.read()
    except OSError as e:
        sys.exit("%s: %s" % (sys.argv[1], e.strerror))
    if data[:8] != b"IFLMDSET":
        sys.exit(sys.argv[1] + ": not a prepared dataset (.ifds)")
    split = 1 if len(sys.argv) == 3 and sys.argv[2] == "val" else 0
    meshes = rows = exact = with_exact = 0
    runs = collections.Counter()  # run length of rows with the same corners -> count
    for mesh in face_rows(data, split):
        meshes += 1
        rows += len(mesh)
        repeats = len(mesh) - len(set(mesh))
        exact += repeats
        with_exact += repeats > 0
        corners = [tuple(sorted((r[0:3], r[3:6], r[6:9]))) for r in mesh]
        start = 0
        while start < len(corners):  # canonical order puts equal corner sets next to each other
            end = start
            while end < len(corners) and corners[end] == corners[start]:
                end += 1
            runs[end - start] += 1
            start = end
    print("| %s split: %d meshes | count |" % ("val" if split else "train", meshes))
    print("|---|---:|")
    print("| face rows | %d |" % rows)
    print("| runs of 2 rows with the same corners (a face and its back side, or a copy) | %d |" % runs[2])
    three = sum(n for length, n in runs.items() if length >= 3)
    four = sum(n for length, n in runs.items() if length >= 4)
    print("| runs of 3 or more (each holds an exact copy) | %d |" % three)
    print("| ... of which go on to a 4th row | %d (%.0f%%) |" % (four, 100.0 * four / max(three, 1)))
    print("| exact repeated rows (same corners, same winding) | %d in %d meshes |" % (exact, with_exact))


if __name__ == "__main__":
    main()
