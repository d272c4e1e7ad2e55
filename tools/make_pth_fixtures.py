#!/usr/bin/env python3
"""Writes the PyTorch checkpoint fixtures of tests/io/pth_test.cpp into tests/data/pth/.

Kept for reference: the C++ tests read the committed files and never run Python. Needs torch
(Debian 12: `apt-get install python3-torch`, PyTorch 1.13). Deterministic: rerunning it writes
the same tensors (zip timestamps aside).

Every NAME.pth comes with NAME.expected.safetensors: the tensors `iflame convert --dtype keep`
must produce (names after flattening and renaming, contiguous little-endian data, original
dtype), written by the tiny pure-Python safetensors writer below so the C++ side compares
bytes exactly. half_bf16 also has half_bf16.f32.expected.safetensors: torch's own `.float()`
of every tensor, the reference for the default `--dtype f32`.

Fixtures
  plain_dict        a plain dict of fp32 / int64 / int32 / bool / empty / 0-dim tensors
  ordered_dict      a real nn.Module state_dict() (an OrderedDict with _metadata, BatchNorm
                    buffers including the int64 num_batches_tracked)
  half_bf16         fp16 (special values: +-0, subnormals, 65504, +-inf, NaN), bf16, fp64
  views             tensors sharing one storage: a transpose, views at storage offsets, a
                    strided slice, a column, a 0-dim element; plus a broadcast (stride 0) tensor
  wrapped           {"model": state dict with "_orig_mod." keys, "epoch": 3, "optimizer": Adam
                    state, "config": {...}}
  archive_default   torch.save(..., _use_new_zipfile_serialization=True) into a file object, so
                    the records live under "archive/"
  torch2x           hand-made in the PyTorch 2.x spellings: _rebuild_tensor_v3 over a
                    torch.storage.UntypedStorage persistent id (numel counts bytes) with a dtype
                    global (torch.float32, torch.bfloat16), a view sharing that storage, a
                    _rebuild_tensor_v2 with the 7th (metadata) argument, _rebuild_parameter,
                    _rebuild_parameter_with_state, _rebuild_from_type_v2, the neg bit, and the
                    byteorder / .data/version / .data/serialization_id records
  bigendian         hand-made with a "big" byteorder record and byte-swapped storages
  legacy            the pre-1.6 format (_use_new_zipfile_serialization=False): must be refused
  torchscript       torch.jit.save of a tiny module: must be refused
"""
import collections
import io
import json
import pickle
import struct
import sys
import types
import zipfile
from pathlib import Path

import torch

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "pth"

ST_DTYPES = {
    torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
    torch.uint8: "U8", torch.bool: "BOOL",
}


def tensor_bytes(t: torch.Tensor) -> bytes:
    """Contiguous little-endian bytes of T (any dtype, 0-dim and empty included)."""
    flat = t.detach().contiguous().reshape(-1)
    if flat.numel() == 0:
        return b""
    return bytes(flat.view(torch.uint8).tolist())


def write_safetensors(path: Path, tensors, metadata=None):
    """A minimal safetensors writer: JSON header padded to 8 bytes, data in name order."""
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name in sorted(tensors):
        t = tensors[name]
        data = tensor_bytes(t)
        header[name] = {"dtype": ST_DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and tensor_bytes(a) == tensor_bytes(b)


def save(name, obj, expected, **kwargs):
    path = OUT / f"{name}.pth"
    torch.save(obj, path, **kwargs)
    write_safetensors(OUT / f"{name}.expected.safetensors", expected, {"format": "pt"})
    return path


def check_torch_load(path, expected, pick=lambda x: x, rename=lambda k: k):
    loaded = pick(torch.load(path))
    got = {rename(k): v for k, v in loaded.items() if isinstance(v, torch.Tensor)}
    assert set(got) == set(expected), (path, sorted(got), sorted(expected))
    for k in got:
        assert same(got[k], expected[k]), (path, k)


# --- Hand-made checkpoints -----------------------------------------------------------------------
# Functions and classes the pickle must name but PyTorch 1.13 lacks (_rebuild_tensor_v3,
# _rebuild_parameter_with_state) are pickled from stand-in modules, and the GLOBAL lines are then
# rewritten to the real module names (protocol 2 globals are text lines, so this is exact).

fxu = types.ModuleType("fxu")  # -> torch._utils
fxt = types.ModuleType("fxt")  # -> torch._tensor
for module, names in ((fxu, ["_rebuild_tensor_v2", "_rebuild_tensor_v3", "_rebuild_parameter",
                             "_rebuild_parameter_with_state"]),
                      (fxt, ["_rebuild_from_type_v2"])):
    for n in names:
        def stub(*args):
            raise RuntimeError("stand-in only")
        stub.__module__, stub.__name__, stub.__qualname__ = module.__name__, n, n
        setattr(module, n, stub)
    sys.modules[module.__name__] = module
GLOBAL_RENAMES = [(b"cfxu\n", b"ctorch._utils\n"), (b"cfxt\n", b"ctorch._tensor\n")]


class RawStorage:
    def __init__(self, key, storage_class, data: bytes, numel):
        self.key, self.storage_class, self.data, self.numel = key, storage_class, data, numel


class Call:
    """Pickles as FUNC(*ARGS) (a REDUCE)."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return (self.func, self.args)


class RawPickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, RawStorage):
            return ("storage", obj.storage_class, obj.key, "cpu", obj.numel)
        return None


def write_raw_checkpoint(path: Path, obj, storages, records):
    buf = io.BytesIO()
    RawPickler(buf, protocol=2).dump(obj)
    pkl = buf.getvalue()
    for old, new in GLOBAL_RENAMES:
        pkl = pkl.replace(old, new)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pkl)
        for name, data in records:
            z.writestr(f"archive/{name}", data)
        for s in storages:
            z.writestr(f"archive/data/{s.key}", s.data)


class CheckUnpickler(pickle.Unpickler):
    """An independent reading of a hand-made checkpoint with torch itself (as_strided over the
    raw records), to prove each fixture says what its expected file says."""

    def __init__(self, f, zf, big_endian):
        super().__init__(f)
        self.zf, self.big_endian = zf, big_endian

    def persistent_load(self, pid):
        _, cls, key, _, numel = pid
        raw = bytearray(self.zf.read(f"archive/data/{key}"))
        return (cls, raw, numel)

    def find_class(self, module, name):
        dtype_of = {"FloatStorage": torch.float32, "HalfStorage": torch.float16,
                    "LongStorage": torch.int64, "UntypedStorage": torch.uint8}

        def rebuild(storage, offset, size, stride, dtype=None, meta=None):
            cls, raw, _ = storage
            dtype = dtype or dtype_of[cls.__name__]
            esize = torch.empty((), dtype=dtype).element_size()
            if self.big_endian and esize > 1:
                raw = b"".join(raw[i:i + esize][::-1] for i in range(0, len(raw), esize))
            flat = torch.frombuffer(bytearray(raw), dtype=torch.uint8).view(dtype)
            t = torch.as_strided(flat, size, stride, offset).clone()
            return -t if isinstance(meta, dict) and meta.get("neg") else t

        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return lambda s, o, sz, st, rg, hooks, meta=None: rebuild(s, o, sz, st, meta=meta)
        if module == "torch._utils" and name == "_rebuild_tensor_v3":
            return lambda s, o, sz, st, rg, hooks, dt, meta=None: rebuild(s, o, sz, st, dtype=dt, meta=meta)
        if module == "torch._utils" and name in ("_rebuild_parameter", "_rebuild_parameter_with_state"):
            return lambda data, *rest: data
        if module == "torch._tensor" and name == "_rebuild_from_type_v2":
            return lambda func, new_type, args, state: func(*args)
        return super().find_class(module, name)


def check_raw(path: Path, expected, big_endian=False):
    with zipfile.ZipFile(path) as zf:
        obj = CheckUnpickler(io.BytesIO(zf.read("archive/data.pkl")), zf, big_endian).load()
    assert set(obj) == set(expected), (sorted(obj), sorted(expected))
    for k, v in obj.items():
        assert same(v, expected[k]), (path, k, v, expected[k])


# --- The fixtures ----------------------------------------------------------------------------------

def main():
    OUT.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(1234)

    # plain_dict: a plain dict, not an OrderedDict.
    plain = {
        "weight": torch.randn(3, 4),
        "bias": torch.randn(4),
        "step": torch.tensor(7),
        "mask": torch.tensor([True, False, True]),
        "ids": torch.arange(5, dtype=torch.int32) - 2,
        "empty": torch.zeros(0, 3),
    }
    p = save("plain_dict", plain, plain)
    check_torch_load(p, plain)

    # ordered_dict: what module.state_dict() returns.
    module = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.LayerNorm(3), torch.nn.BatchNorm1d(3))
    module(torch.randn(5, 4))  # BatchNorm running stats and num_batches_tracked = 1
    sd = module.state_dict()
    assert isinstance(sd, collections.OrderedDict) and hasattr(sd, "_metadata")
    p = save("ordered_dict", sd, dict(sd))
    check_torch_load(p, dict(sd))

    # half_bf16: every class of fp16 value, bf16 specials, fp64.
    h = torch.tensor([0.0, -0.0, 1.0, -2.5, 65504.0, -65504.0, 6.103515625e-05, 5.960464477539063e-08,
                      -3.0e-06, 1.0e-07, float("inf"), float("-inf"), float("nan")], dtype=torch.float16)
    b = torch.cat([torch.randn(6), torch.tensor([0.0, -0.0, 1e-40, 3.0e38, float("inf"), float("nan")])]).bfloat16()
    half = {"h": h, "hm": torch.randn(2, 3).half(), "b": b.reshape(3, 2, 2), "d": torch.randn(3, dtype=torch.float64)}
    p = save("half_bf16", half, half)
    check_torch_load(p, half)
    write_safetensors(OUT / "half_bf16.f32.expected.safetensors", {k: v.float() for k, v in half.items()}, {"format": "pt"})

    # views: one 40-element storage seen six ways, and a broadcast tensor.
    s = torch.arange(40, dtype=torch.float32) * 0.5 - 3
    base = s[:24].view(4, 6)
    views = {
        "base": base,
        "t": base.t(),
        "window": s[26:32].view(2, 3),
        "strided": s[1:21:4],
        "col": base[:, 2],
        "scalar": s[39],
        "expanded": torch.arange(3, dtype=torch.float32).expand(2, 3),
    }
    assert not views["t"].is_contiguous() and views["window"].storage_offset() == 26
    assert views["expanded"].stride() == (0, 1)
    expected = {k: v.contiguous() for k, v in views.items()}
    p = save("views", views, expected)
    check_torch_load(p, expected)

    # wrapped: {"model": ..., "epoch": ..., "optimizer": ...} with torch.compile key names.
    net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(2, 1))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    net(torch.randn(4, 3)).sum().backward()
    opt.step()
    model_sd = collections.OrderedDict(("_orig_mod." + k, v) for k, v in net.state_dict().items())
    wrapped = {"model": model_sd, "epoch": 3, "optimizer": opt.state_dict(),
               "config": {"lr": 1e-3, "name": "tiny", "betas": (0.9, 0.999)}}
    expected = {k: v for k, v in net.state_dict().items()}
    p = save("wrapped", wrapped, expected)
    check_torch_load(p, expected, pick=lambda x: x["model"], rename=lambda k: k.replace("_orig_mod.", ""))

    # archive_default: saved into a file object -> records under "archive/".
    arch = {"a": torch.randn(2, 2), "b": torch.randint(0, 10, (3,)), "c": torch.randn(2, dtype=torch.float64)}
    buf = io.BytesIO()
    torch.save(arch, buf, _use_new_zipfile_serialization=True)
    (OUT / "archive_default.pth").write_bytes(buf.getvalue())
    write_safetensors(OUT / "archive_default.expected.safetensors", arch, {"format": "pt"})
    assert zipfile.ZipFile(OUT / "archive_default.pth").namelist()[0].startswith("archive/")
    check_torch_load(OUT / "archive_default.pth", arch)

    # torch2x: the PyTorch 2.x spellings, hand-made.
    u = torch.randn(2, 3)
    ub = torch.randn(4).bfloat16()
    th = torch.randn(3).half()
    pv = torch.randn(2, 2)
    ng = torch.randn(3)
    sub = torch.randn(2)
    st = [
        RawStorage("0", torch.UntypedStorage, tensor_bytes(u), 24),  # numel = bytes
        RawStorage("1", torch.UntypedStorage, tensor_bytes(ub), 8),
        RawStorage("2", torch.HalfStorage, tensor_bytes(th), 3),
        RawStorage("3", torch.FloatStorage, tensor_bytes(pv), 4),
        RawStorage("4", torch.FloatStorage, tensor_bytes(ng), 3),
        RawStorage("5", torch.FloatStorage, tensor_bytes(sub), 2),
    ]
    hooks = collections.OrderedDict()
    obj = collections.OrderedDict([
        ("u3", Call(fxu._rebuild_tensor_v3, st[0], 0, (2, 3), (3, 1), False, hooks, torch.float32)),
        ("u3_view", Call(fxu._rebuild_tensor_v3, st[0], 1, (2,), (3,), False, hooks, torch.float32)),
        ("u3_bf16", Call(fxu._rebuild_tensor_v3, st[1], 0, (2, 2), (1, 2), False, hooks, torch.bfloat16)),
        ("typed_meta", Call(fxu._rebuild_tensor_v2, st[2], 0, (3,), (1,), False, hooks, {})),
        ("param", Call(fxu._rebuild_parameter, Call(fxu._rebuild_tensor_v2, st[3], 0, (2, 2), (2, 1), True, hooks), True, hooks)),
        ("param_state", Call(fxu._rebuild_parameter_with_state,
                             Call(fxu._rebuild_tensor_v2, st[3], 2, (2,), (1,), True, hooks), True, hooks, {"tag": 1})),
        ("neg", Call(fxu._rebuild_tensor_v2, st[4], 0, (3,), (1,), False, hooks, {"neg": True})),
        ("subclass", Call(fxt._rebuild_from_type_v2, fxu._rebuild_tensor_v2, torch.Tensor,
                          (st[5], 0, (2,), (1,), False, hooks), {})),
    ])
    expected = {
        "u3": u, "u3_view": u.reshape(-1)[1:5:3].clone(), "u3_bf16": ub.reshape(2, 2).t().contiguous(),
        "typed_meta": th, "param": pv, "param_state": pv.reshape(-1)[2:4].clone(), "neg": -ng, "subclass": sub,
    }
    records = [("byteorder", b"little"), ("version", b"3\n"), (".data/version", b"3\n"),
               (".data/serialization_id", b"0123456789012345678901234567890123456789")]
    write_raw_checkpoint(OUT / "torch2x.pth", obj, st, records)
    write_safetensors(OUT / "torch2x.expected.safetensors", expected, {"format": "pt"})
    check_raw(OUT / "torch2x.pth", expected)

    # bigendian: the byteorder record says "big"; storages are byte-swapped.
    f = torch.randn(2, 3)
    l = torch.tensor([1, -2, 1 << 40])
    hh = torch.tensor([1.5, -0.25], dtype=torch.float16)

    def swapped(t):
        raw, n = tensor_bytes(t), t.element_size()
        return b"".join(raw[i:i + n][::-1] for i in range(0, len(raw), n))

    st = [RawStorage("0", torch.FloatStorage, swapped(f), 6), RawStorage("1", torch.LongStorage, swapped(l), 3),
          RawStorage("2", torch.HalfStorage, swapped(hh), 2)]
    obj = collections.OrderedDict([
        ("f", Call(torch._utils._rebuild_tensor_v2, st[0], 0, (3, 2), (1, 3), False, hooks)),
        ("l", Call(torch._utils._rebuild_tensor_v2, st[1], 0, (3,), (1,), False, hooks)),
        ("h", Call(torch._utils._rebuild_tensor_v2, st[2], 0, (2,), (1,), False, hooks)),
    ])
    expected = {"f": f.t().contiguous(), "l": l, "h": hh}
    write_raw_checkpoint(OUT / "bigendian.pth", obj, st, [("byteorder", b"big"), ("version", b"3\n")])
    write_safetensors(OUT / "bigendian.expected.safetensors", expected, {"format": "pt"})
    check_raw(OUT / "bigendian.pth", expected, big_endian=True)

    # legacy and torchscript: formats the converter must refuse with a clear message.
    torch.save({"a": torch.tensor([1.0, 2.0])}, OUT / "legacy.pth", _use_new_zipfile_serialization=False)
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 1)), str(OUT / "torchscript.pt"))

    for p in sorted(OUT.iterdir()):
        print(f"{p.stat().st_size:7d}  {p.name}")
        assert p.stat().st_size < 20_000, p


if __name__ == "__main__":
    main()
