#!/usr/bin/python3
"""bench/make_random_model.py CONFIG OUTDIR: a Gemma 4 text checkpoint of CONFIG's shapes with random
weights, as Hugging Face writes one (OUTDIR/config.json and one model.safetensors in bf16), for speed and
memory measurements of full-size models: docs/configs/gemma4-e2b.json gives an E2B-shaped model (8.6 GiB).

Dense configs in Google's published form (those of docs/configs; no MoE). Matrices are N(0, 0.02) values,
tiled from random offsets of a 16M-value pool (so 5 billion of them take seconds); norm weights and layer
scalars are 1. Needs numpy (Debian: python3-numpy)."""
import json
import os
import struct
import sys

import numpy as np


def tensors(c):
    """(Hugging Face name, shape, 'random' or 'ones') of every weight of text config c."""
    D, H, K, L = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"], c["num_hidden_layers"]
    P = c.get("hidden_size_per_layer_input") or 0
    types = c["layer_types"]
    first_shared = L - (c.get("num_kv_shared_layers") or 0)
    yield "model.embed_tokens.weight", [c["vocab_size"], D], "random"
    if not c.get("tie_word_embeddings", True):
        yield "lm_head.weight", [c["vocab_size"], D], "random"
    if P:
        yield "model.embed_tokens_per_layer.weight", [c["vocab_size_per_layer_input"], L * P], "random"
        yield "model.per_layer_model_projection.weight", [L * P, D], "random"
        yield "model.per_layer_projection_norm.weight", [P], "ones"
    yield "model.norm.weight", [D], "ones"
    for i in range(L):
        full = types[i] == "full_attention"
        d = c["global_head_dim"] if full else c["head_dim"]
        kv_heads = (c.get("num_global_key_value_heads") or K) if full and c.get("attention_k_eq_v") else K
        stores_kv = i < first_shared
        F = c["intermediate_size"] * (2 if c.get("use_double_wide_mlp") and not stores_kv else 1)
        p = f"model.layers.{i}."
        norms = ["input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm",
                 "post_feedforward_layernorm"] + (["post_per_layer_input_norm"] if P else [])
        for n in norms:
            yield p + n + ".weight", [D], "ones"
        yield p + "layer_scalar", [1], "ones"
        yield p + "self_attn.q_proj.weight", [H * d, D], "random"
        yield p + "self_attn.q_norm.weight", [d], "ones"
        if stores_kv:
            yield p + "self_attn.k_proj.weight", [kv_heads * d, D], "random"
            if not (full and c.get("attention_k_eq_v")):
                yield p + "self_attn.v_proj.weight", [kv_heads * d, D], "random"
            yield p + "self_attn.k_norm.weight", [d], "ones"
        yield p + "self_attn.o_proj.weight", [D, H * d], "random"
        yield p + "mlp.gate_proj.weight", [F, D], "random"
        yield p + "mlp.up_proj.weight", [F, D], "random"
        yield p + "mlp.down_proj.weight", [D, F], "random"
        if P:
            yield p + "per_layer_input_gate.weight", [P, D], "random"
            yield p + "per_layer_projection.weight", [D, P], "random"


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    config_path, out = sys.argv[1:]
    with open(config_path) as f:
        c = json.load(f)
    c = c.get("text_config", c)
    if c.get("enable_moe_block"):
        sys.exit("make_random_model: MoE configs are not supported")
    needed = ["hidden_size", "num_attention_heads", "num_key_value_heads", "num_hidden_layers", "layer_types",
              "head_dim", "global_head_dim", "intermediate_size", "vocab_size"]
    missing = [k for k in needed if k not in c]
    if missing:  # Google's published form (docs/configs/*.json); qtensor also reads others, this script does not
        sys.exit(f"make_random_model: {config_path} lacks {', '.join(missing)}")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(dict(c, dtype="bfloat16"), f, indent=2)

    entries = list(tensors(c))
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name, shape, _ in entries:
        size = 2 * int(np.prod(shape))
        header[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    header_bytes = json.dumps(header, separators=(",", ":")).encode()
    header_bytes += b" " * (-len(header_bytes) % 8)  # data 8-byte aligned

    rng = np.random.default_rng(1)
    pool_size = 1 << 24
    pool = (rng.standard_normal(pool_size, dtype=np.float32) * 0.02).view(np.uint32) >> 16  # bf16 by truncation
    pool = np.tile(pool.astype(np.uint16), 2)  # any pool_size values from any offset, without wrapping
    one = np.uint16(0x3F80)  # 1.0 in bf16
    with open(os.path.join(out, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(header_bytes)) + header_bytes)
        for name, shape, kind in entries:
            n = int(np.prod(shape))
            if kind == "ones":
                f.write(np.full(n, one, dtype=np.uint16).tobytes())
                continue
            while n > 0:
                k, at = min(n, pool_size), int(rng.integers(0, pool_size))
                f.write(pool[at:at + k].tobytes())
                n -= k
    print(f"make_random_model: wrote {out}: {len(entries)} tensors, {offset / 2**30:.2f} GiB of bf16")


if __name__ == "__main__":
    main()
