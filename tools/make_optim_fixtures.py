#!/usr/bin/env python3
"""Writes tests/data/optim/muon_adamw.safetensors: three optimizer steps made with PyTorch, the
numbers tests/train/optim_test.cpp checks `Optimizer` (src/train/optim.cpp) against.

Kept for reference: the C++ tests read the committed file and never run Python. Needs torch
(Debian 12: `apt-get install python3-torch`, PyTorch 1.13). Deterministic (seeded).

What each parameter exercises (iflame's split: every 2-D parameter goes to Muon except the
output head, `output_proj.*`; everything else to AdamW):
  blocks.0.w_tall   6x4 matrix, Muon (Newton-Schulz on the transpose)
  blocks.0.w_wide   3x5 matrix, Muon
  blocks.0.bias     vector, AdamW
  output_proj.weight 4x3 matrix, AdamW (the head is never Muon)

AdamW is torch.optim.AdamW itself (decoupled weight decay, bias-corrected moments). Muon is not
in PyTorch 1.13, so it is written out below from Moonshot AI's published implementation
("Muon is Scalable for LLM Training", arXiv 2502.16982, github.com/MoonshotAI/Moonlight):
SGD momentum with Nesterov, 5 Newton-Schulz steps (3.4445, -4.7750, 2.0315), the update scaled
by 0.2 * sqrt(max(rows, cols)) to match AdamW's RMS, decoupled weight decay lr * wd. Its
Newton-Schulz runs in float32 here (Moonlight uses bf16), as iflame's does.

Tensors in the file: "<param>.init", "<param>.grad.<k>" (k = 0, 1, 2), "<param>.after.<k>" (the
parameter after step k), and the final optimizer state "<param>.momentum" (Muon) or
"<param>.exp_avg" / "<param>.exp_avg_sq" (AdamW). Metadata: lr of each step, weight decay,
betas, eps, momentum.
"""
import json
import struct
from pathlib import Path

import torch

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "optim" / "muon_adamw.safetensors"
LRS = [0.02, 0.01, 0.005]
WEIGHT_DECAY = 0.1
BETAS = (0.95, 0.95)
EPS = 1e-8
MOMENTUM = 0.95
SHAPES = {
    "blocks.0.w_tall": (6, 4),
    "blocks.0.w_wide": (3, 5),
    "blocks.0.bias": (5,),
    "output_proj.weight": (4, 3),
}


def uses_muon(name, shape):
    return len(shape) == 2 and not name.startswith("output_proj.")


def newton_schulz5(g, steps=5):
    a, b, c = 3.4445, -4.7750, 2.0315
    x = g.float()
    x = x / (x.norm() + 1e-7)
    tall = g.size(0) > g.size(1)
    if tall:
        x = x.T
    for _ in range(steps):
        A = x @ x.T
        B = b * A + c * A @ A
        x = a * x + B @ x
    return x.T if tall else x


class Muon:
    """Moonlight's Muon step for one matrix (momentum buffer `buf`)."""

    def __init__(self, p):
        self.p, self.buf = p, torch.zeros_like(p)

    @torch.no_grad()
    def step(self, grad, lr):
        self.buf.mul_(MOMENTUM).add_(grad)
        g = grad.add(self.buf, alpha=MOMENTUM)  # Nesterov
        u = newton_schulz5(g)
        adjusted_lr = lr * 0.2 * max(self.p.shape) ** 0.5
        self.p.mul_(1 - lr * WEIGHT_DECAY)
        self.p.add_(u, alpha=-adjusted_lr)


def write_safetensors(path, tensors, metadata):
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().float()
        data = struct.pack(f"<{t.numel()}f", *t.flatten().tolist())
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def main():
    torch.manual_seed(2503)
    out = {}
    params = {name: torch.randn(shape) for name, shape in SHAPES.items()}
    for name, p in params.items():
        out[f"{name}.init"] = p.clone()
    muons = {n: Muon(p) for n, p in params.items() if uses_muon(n, p.shape)}
    adam_params = [p for n, p in params.items() if not uses_muon(n, p.shape)]
    adamw = torch.optim.AdamW(adam_params, lr=LRS[0], betas=BETAS, eps=EPS, weight_decay=WEIGHT_DECAY)
    for k, lr in enumerate(LRS):
        for name, p in params.items():
            p.grad = torch.randn(p.shape) * (0.5 + k)
            out[f"{name}.grad.{k}"] = p.grad.clone()
        for name, m in muons.items():
            m.step(params[name].grad, lr)
        for group in adamw.param_groups:
            group["lr"] = lr
        adamw.step()
        for name, p in params.items():
            out[f"{name}.after.{k}"] = p.detach().clone()
    for name, m in muons.items():
        out[f"{name}.momentum"] = m.buf
    for name, p in params.items():
        if not uses_muon(name, p.shape):
            state = adamw.state[p]
            out[f"{name}.exp_avg"] = state["exp_avg"]
            out[f"{name}.exp_avg_sq"] = state["exp_avg_sq"]
    metadata = {"lrs": json.dumps(LRS), "weight_decay": str(WEIGHT_DECAY), "betas": json.dumps(BETAS),
                "eps": str(EPS), "momentum": str(MOMENTUM), "torch": torch.__version__}
    write_safetensors(OUT, out, metadata)
    print(f"wrote {OUT} ({len(out)} tensors)")


if __name__ == "__main__":
    main()
