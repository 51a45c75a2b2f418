#!/usr/bin/python3
"""Squared error of one scale per row against one per 32 values, for the choices of docs/mobile.md.

Each rule quantizes blocks of values with one fp16 scale a block; the block is either 32 values (the GGUF
types) or the whole row (a "per-row" or, for a KV head, "per-head" scale). The rules:
  q4_0         ggml's Q4_0: d = signed max / -8, codes 0..15 around 8
  q8_0         ggml's Q8_0: d = amax / 127, codes -127..127
  q4 searched  Q4_0's codes, d = f * signed max / -8 with f in [0.3, 1] picked for least squared error
  q8 searched  Q8_0's codes, d = f * amax / 127, f picked the same way
The searched rules stand for a scale chosen (or trained) per block rather than set by its largest value.
Rows are seeded Gaussian and Student's t with 4 degrees of freedom (heavier tails, a stand-in for trained
weights and activations). Prints each error over the rows' mean square. Needs python3-numpy.
"""
import numpy as np


def fp16(d):
    return d.astype(np.float16).astype(np.float32)


def q4_0(b):
    signed_max = b[np.arange(len(b)), np.argmax(np.abs(b), axis=1)]
    d = signed_max / -8
    inv = np.divide(1, d, out=np.zeros_like(d), where=d != 0)
    codes = np.minimum(15, np.trunc(b * inv[:, None] + 8.5)) - 8
    return codes * fp16(d)[:, None]


def q8_0(b):
    # np.round rounds ties to even where ggml's reference rounds them away from zero: a tie is as far from
    # either code, so the squared error is the same.
    d = np.abs(b).max(axis=1) / 127
    inv = np.divide(1, d, out=np.zeros_like(d), where=d != 0)
    return np.round(b * inv[:, None]) * fp16(d)[:, None]


def searched(lo, hi):
    def rule(b):
        signed_max = b[np.arange(len(b)), np.argmax(np.abs(b), axis=1)]
        best, best_error = None, None
        for f in np.linspace(0.3, 1.0, 36):
            d = fp16(f * signed_max / lo)
            inv = np.divide(1, d, out=np.zeros_like(d), where=d != 0)
            y = np.clip(np.round(b * inv[:, None]), lo, hi) * d[:, None]
            error = ((y - b) ** 2).sum(axis=1)
            if best is None:
                best, best_error = y, error
            else:
                better = error < best_error
                best[better], best_error[better] = y[better], error[better]
        return best
    return rule


def relative_error(x, rule, block):
    y = rule(x.reshape(-1, block)).reshape(x.shape)
    return float(np.mean((y - x) ** 2) / np.mean(x ** 2))


rules = {"q4_0": q4_0, "q4 searched": searched(-8, 7), "q8_0": q8_0, "q8 searched": searched(-127, 127)}
# 1536: E2B's embedding rows; 256 and 512: its KV heads (sliding and full layers).
cases = {1536: rules, 256: ("q8_0", "q8 searched"), 512: ("q8_0", "q8 searched")}
print(f"{'rows':<11} {'width':>5}  {'rule':<12} {'per 32':>9}  {'per row':>9}  row / 32")
for name in ("gaussian", "student-t4"):
    rng = np.random.default_rng(1)
    for width, names in cases.items():
        shape = (2048, width) # the same rows for every rule
        x = (rng.standard_normal(shape) if name == "gaussian" else rng.standard_t(4, shape)).astype(np.float32)
        for rule in names:
            e32, erow = relative_error(x, rules[rule], 32), relative_error(x, rules[rule], width)
            print(f"{name:<11} {width:>5}  {rule:<12} {e32:9.3e}  {erow:9.3e}  {erow / e32:.2f}")
