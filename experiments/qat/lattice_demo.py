#!/usr/bin/python3
# A synthetic QAT checkpoint for `qtensor lattice` and `convert --lattice`
# (docs/qat.md): a Gemma 4 model's weights as bf16, with the attention
# projections on ggml's Q4_0 grid (d = max / -8 per block of 32, codes
# min(15, trunc(x / d + 8.5)), the fp16 d: as llama.cpp packs) and the MLP on
# symmetric amax / 7 grids (as a symmetric int4 recipe trains). Written here
# with numpy, apart from qtensor's own code.
#
#   /usr/bin/python3 experiments/qat/lattice_demo.py MODEL_DIR OUT_DIR
# MODEL_DIR: a float32 Hugging Face Gemma 4 model (e.g. tests/data/gemma4/tiny-e2b).
import json, struct, sys, shutil, numpy as np
src, out = sys.argv[1], sys.argv[2]
b = open(src + "/model.safetensors", "rb").read()
n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8+n]); data = b[8+n:]
def bf16(x):  # float32 -> bf16 bits, round to nearest even
    u = x.astype(np.float32).view(np.uint32).astype(np.uint64)
    u = ((u + 0x7fff + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    return u
def ggml(w):
    x = w.reshape(-1, 32).astype(np.float32)
    i = np.argmax(np.abs(x), axis=1); mx = x[np.arange(len(x)), i]
    d = mx / np.float32(-8); idd = np.where(d != 0, np.float32(1) / np.where(d != 0, d, 1), 0).astype(np.float32)
    code = np.minimum(15, np.trunc(x * idd[:, None] + np.float32(8.5))).astype(np.int32)
    return (d.astype(np.float16).astype(np.float32)[:, None] * (code - 8)).reshape(w.shape)
def sym(w):
    x = w.reshape(-1, 32).astype(np.float32); s = np.abs(x).max(axis=1) / np.float32(7)
    return (s[:, None] * np.rint(x / s[:, None])).reshape(w.shape)
tensors, hdr, off = [], {}, 0
for name, e in h.items():
    if name == "__metadata__": continue
    a, z = e["data_offsets"]; w = np.frombuffer(data[a:z], dtype=np.float32).reshape(e["shape"])
    if "self_attn" in name and name.endswith("proj.weight"): w = ggml(w)
    elif ".mlp." in name: w = sym(w)
    raw = bf16(w).tobytes(); hdr[name] = {"dtype": "BF16", "shape": e["shape"], "data_offsets": [off, off + len(raw)]}
    tensors.append(raw); off += len(raw)
j = json.dumps(hdr).encode(); j += b" " * (-len(j) % 8)
import os; os.makedirs(out, exist_ok=True)
open(out + "/model.safetensors", "wb").write(struct.pack("<Q", len(j)) + j + b"".join(tensors))
shutil.copy(src + "/config.json", out + "/config.json")
