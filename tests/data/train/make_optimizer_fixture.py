#!/usr/bin/python3
"""Writes optimizer.json: what PyTorch's own AdamW and clip_grad_norm_ do to a
few tensors over several steps, the oracle of tests/train_optimizer_test.cpp.

Run with Debian's python3-torch: /usr/bin/python3 make_optimizer_fixture.py
Gradients come from a fixed generator; every step clips them to a global norm
of 1 (clip_grad_norm_), then AdamW steps with a learning rate that changes
every step. Values are stored as float64 repr of the float32 numbers, exact.
"""
import json
import pathlib

import torch

torch.manual_seed(0)
shapes = {"w": (4, 8), "b": (8,), "big": (3, 5)}
params = {n: torch.randn(s, dtype=torch.float32) for n, s in shapes.items()}
initial = {n: p.clone() for n, p in params.items()}
decay = {"w": 0.1, "big": 0.1, "b": 0.0}  # vectors are not decayed
options = dict(betas=(0.9, 0.95), eps=1e-8)
groups = [{"params": [params[n]], "weight_decay": decay[n]} for n in shapes]
for p in params.values():
    p.requires_grad_(True)
opt = torch.optim.AdamW(groups, lr=1.0, foreach=False, **options)

lrs = [1e-2, 5e-3, 2e-2, 1e-3, 3e-3, 1e-2]
steps = []
for step, lr in enumerate(lrs):
    grads = {n: (torch.randn(s) * (3.0 if step % 2 else 0.2)).float() for n, s in shapes.items()}
    for n, p in params.items():
        p.grad = grads[n].clone()
    norm = torch.nn.utils.clip_grad_norm_(list(params.values()), max_norm=1.0)
    for g in opt.param_groups:
        g["lr"] = lr
    opt.step()
    steps.append({
        "lr": lr,
        "grads": {n: grads[n].flatten().tolist() for n in shapes},
        "norm": float(norm),
        "params": {n: params[n].detach().flatten().tolist() for n in shapes},
    })

out = {
    "note": "PyTorch " + torch.__version__ + " AdamW(foreach=False) after clip_grad_norm_(max_norm=1)",
    "beta1": options["betas"][0], "beta2": options["betas"][1], "eps": options["eps"],
    "weight_decay": decay, "max_norm": 1.0,
    "shapes": {n: list(s) for n, s in shapes.items()},
    "initial": {n: initial[n].flatten().tolist() for n in shapes},
    "steps": steps,
}
pathlib.Path(__file__).with_name("optimizer.json").write_text(json.dumps(out) + "\n")
