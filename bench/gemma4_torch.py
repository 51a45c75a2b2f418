#!/usr/bin/python3
"""bench/gemma4_torch.py: a minimal Gemma 4 text decoder in PyTorch eager, the twin of
qtensor's training step for bench/train_vs_torch.py.

Written from docs/gemma4.md (section numbers below are its §2-§7): embedding * sqrt(D),
per-layer inputs (PLE), sliding and full attention with GQA, q/k/v norms, default and
proportional RoPE, KV-shared layers, the (double-wide) GeGLU MLP, sandwich norms,
layer_scalar, final norm, tied head, final softcap. MoE, attention_k_eq_v and an untied
head are left out (such configs are refused).

Shapes: B windows, T tokens each, D hidden, H query heads, K KV heads, d head size,
L layers, P per-layer-input width, V vocabulary.

  --check FIXTURE_DIR   loss and every gradient against tests/data/gemma4/<fixture>
                        (Hugging Face transformers' float64 values), in float64
  --train CONFIG.json   qtensor train's step (byte tokens, mean CE, clip 1, AdamW,
                        warmup + cosine, QAT) and one JSON line of timings on stdout
  --saved CONFIG.json   the bytes autograd saves for the backward of one step (in a
                        process of its own: torch 1.13 does not give that memory back)
"""
import argparse
import json
import math
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F


# ---------------------------------------------------------------- files

def read_safetensors(path):
    """{name: tensor} of a .safetensors file: an 8-byte little-endian header size,
    a JSON header {name: {dtype, shape, data_offsets}}, then the raw data."""
    with open(path, "rb") as f:
        blob = f.read()
    (header_size,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + header_size])
    data = memoryview(blob)[8 + header_size:]
    numpy_types = {"F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32}
    out = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        raw = data[begin:end]
        if entry["dtype"] == "BF16":  # the top half of a float32
            bits = np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16
            array = bits.view(np.float32)
        else:
            array = np.frombuffer(raw, dtype=numpy_types[entry["dtype"]])
        out[name] = torch.from_numpy(array.copy()).reshape(entry["shape"])
    return out


# ---------------------------------------------------------------- config (§1)

class Layer:
    """The geometry of one decoder layer (what qtensor's layer_info holds)."""

    def __init__(self, sliding, head_dim, kv_heads, has_kv, kv_source, mlp_width, rope_freq):
        self.sliding = sliding
        self.head_dim = head_dim
        self.kv_heads = kv_heads
        self.has_kv = has_kv          # False: a KV-shared layer
        self.kv_source = kv_source    # the layer whose K/V it reads (itself when has_kv)
        self.mlp_width = mlp_width
        self.rope_freq = rope_freq    # [d/2] float64, 0 = that pair does not rotate


def rope_frequencies(rope, d):
    """§4: f_i = theta^(-2i/d) for the pairs that rotate (all for "default",
    floor(p d / 2) for "proportional"; the exponent uses the whole d), 0 for the rest."""
    if rope.get("rope_type", "default") == "proportional":
        rotated = math.floor(rope.get("partial_rotary_factor", 1.0) * d / 2)
    else:
        rotated = d // 2
    i = torch.arange(d // 2, dtype=torch.float64)
    f = rope["rope_theta"] ** (-2 * i / d) / rope.get("factor", 1.0)
    return torch.where(i < rotated, f, torch.zeros_like(f))


class Config:
    """The fields of a Hugging Face config.json this model uses, with the defaults
    qtensor's reader (gemma4/config_impl.hpp) gives absent ones."""

    def __init__(self, path):
        with open(path) as f:
            j = json.load(f)
        j = j.get("text_config", j)
        for flag in ("enable_moe_block", "attention_k_eq_v"):
            if j.get(flag):
                sys.exit(f"gemma4_torch: {flag} is not supported by this model")
        if not j.get("tie_word_embeddings", True):
            sys.exit("gemma4_torch: only tied output heads are supported")
        self.V = j["vocab_size"]
        self.D = j["hidden_size"]
        self.L = j["num_hidden_layers"]
        self.H = j["num_attention_heads"]
        self.P = j.get("hidden_size_per_layer_input", 256) or 0
        self.V_ple = j.get("vocab_size_per_layer_input", 262144)
        self.eps = j.get("rms_norm_eps", 1e-6)
        self.softcap = j.get("final_logit_softcapping") or 0.0
        self.window = j.get("sliding_window", 512)

        head_dim = j.get("head_dim", 256)
        per_layer = j.get("per_layer_config") or {}
        global_head_dim = j.get("global_head_dim", head_dim if per_layer else 512)
        ropes = j.get("rope_parameters", {})
        rope = {"sliding_attention": ropes.get("sliding_attention", {"rope_theta": 10000.0}),
                "full_attention": ropes.get("full_attention", {"rope_type": "proportional",
                                                               "rope_theta": 1e6,
                                                               "partial_rotary_factor": 0.25})}
        first_shared = self.L - j.get("num_kv_shared_layers", 0)
        types = j["layer_types"]
        self.layers = []
        for l, kind in enumerate(types):
            sliding = kind == "sliding_attention"
            d = per_layer.get(str(l), {}).get("head_dim", head_dim if sliding else global_head_dim)
            K = per_layer.get(str(l), {}).get("num_key_value_heads", j["num_key_value_heads"])
            has_kv = l < first_shared
            # §3: a shared layer reads the last non-shared layer of its type.
            source = l if has_kv else max(s for s in range(first_shared) if types[s] == kind)
            wide = 2 if j.get("use_double_wide_mlp") and not has_kv else 1
            self.layers.append(Layer(sliding, d, K, has_kv, source, wide * j["intermediate_size"],
                                     rope_frequencies(rope[kind], d)))

    def parameter_shapes(self):
        """[(name, shape)] of every tensor the model reads, Hugging Face names."""
        D, P, L = self.D, self.P, self.L
        out = [("model.embed_tokens.weight", (self.V, D)), ("model.norm.weight", (D,))]
        if P:
            out += [("model.embed_tokens_per_layer.weight", (self.V_ple, L * P)),
                    ("model.per_layer_model_projection.weight", (L * P, D)),
                    ("model.per_layer_projection_norm.weight", (P,))]
        for l, li in enumerate(self.layers):
            p, d, K = f"model.layers.{l}.", li.head_dim, li.kv_heads
            for norm in ("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm",
                         "post_feedforward_layernorm"):
                out.append((p + norm + ".weight", (D,)))
            out += [(p + "layer_scalar", (1,)),
                    (p + "self_attn.q_proj.weight", (self.H * d, D)),
                    (p + "self_attn.o_proj.weight", (D, self.H * d)),
                    (p + "self_attn.q_norm.weight", (d,))]
            if li.has_kv:
                out += [(p + "self_attn.k_proj.weight", (K * d, D)),
                        (p + "self_attn.v_proj.weight", (K * d, D)),
                        (p + "self_attn.k_norm.weight", (d,))]
            F_l = li.mlp_width
            out += [(p + "mlp.gate_proj.weight", (F_l, D)), (p + "mlp.up_proj.weight", (F_l, D)),
                    (p + "mlp.down_proj.weight", (D, F_l))]
            if P:
                out += [(p + "per_layer_input_gate.weight", (P, D)),
                        (p + "per_layer_projection.weight", (D, P)),
                        (p + "post_per_layer_input_norm.weight", (D,))]
        return out


def init_parameters(cfg, seed):
    """A fresh model as Hugging Face initialises one: matrices N(0, 0.02^2), vectors 1.
    layer_scalar is a buffer (no gradient); everything else is trained."""
    g = torch.Generator().manual_seed(seed)
    params = {}
    for name, shape in cfg.parameter_shapes():
        if len(shape) == 1:
            params[name] = torch.ones(shape)
        else:
            params[name] = torch.randn(shape, generator=g) * 0.02
        params[name].requires_grad_(not name.endswith("layer_scalar"))
    return params


# ---------------------------------------------------------------- QAT

class FakeQuant(torch.autograd.Function):
    """Forward: the weight as the scheme stores it. Backward: the straight-through
    estimator with the clip mask (no gradient where the quantizer clamped the code)."""

    @staticmethod
    def forward(ctx, w, rounding):
        seen, clipped = rounding(w)
        ctx.save_for_backward(clipped)
        return seen

    @staticmethod
    def backward(ctx, dy):
        (clipped,) = ctx.saved_tensors
        return dy.masked_fill(clipped, 0.0), None


def q4_0(w):
    """ggml's Q4_0 per block of 32 along rows: max = the element of largest |x| with
    its sign (the first on ties), d = max / -8, code = min(15, floor(x / d + 8.5)),
    value = (code - 8) * fp16(d). Returns (values, clipped)."""
    x = w.reshape(-1, 32)
    first = x.abs().argmax(dim=1, keepdim=True)
    d = x.gather(1, first) / -8
    inv = torch.where(d != 0, 1 / d, torch.zeros_like(d))
    raw = torch.floor(x * inv + 8.5)
    codes = raw.clamp(max=15)
    values = (codes - 8) * d.half().float()
    return values.reshape(w.shape), (raw > 15).reshape(w.shape)


def q8_0(w):
    """ggml's Q8_0 per block of 32: d = amax / 127, code = round(x / d) with ties away
    from zero (C's roundf), value = code * fp16(d). It never clamps."""
    x = w.reshape(-1, 32)
    d = x.abs().amax(dim=1, keepdim=True) / 127
    inv = torch.where(d != 0, 1 / d, torch.zeros_like(d))
    v = x * inv
    tie = (v - v.trunc()).abs() == 0.5
    codes = torch.where(tie, v + 0.5 * v.sign(), v.round())
    values = codes * d.half().float()
    return values.reshape(w.shape), torch.zeros_like(w, dtype=torch.bool)


def bf16(w):
    return w.to(torch.bfloat16).to(w.dtype), torch.zeros_like(w, dtype=torch.bool)


def scheme_of(name):
    """q4_0_policy (docs/gemma4.md, "Schemes per tensor role"): the token tables Q8_0,
    the per-layer projections bf16, every other matrix Q4_0; vectors stay float32."""
    if name in ("model.embed_tokens.weight", "model.embed_tokens_per_layer.weight"):
        return q8_0
    if "per_layer_model_projection" in name or "per_layer_input_gate" in name or \
            "per_layer_projection.weight" in name:
        return bf16
    return q4_0


def seen_weights(params, policy):
    """What the forward multiplies with: the weights themselves (f32), or each matrix
    fake-quantized by its role (q4_0)."""
    if policy == "f32":
        return params
    return {name: FakeQuant.apply(w, scheme_of(name)) if w.dim() >= 2 else w for name, w in params.items()}


# ---------------------------------------------------------------- the model

def rmsnorm(x, weight, eps):
    """§2 over the last axis; weight None is the weightless form (v_norm)."""
    y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    return y if weight is None else y * weight


def gelu_tanh(x):
    return F.gelu(x, approximate="tanh")


def rope(x, cos, sin):
    """§4, rotate-half pairing. x [B, T, n, d]; cos, sin [T, 1, d/2]."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)


def attention_mask(T, window, dtype):
    """[T, T] additive: 0 where query t sees key u (u <= t, and t - W < u when
    sliding), -inf elsewhere."""
    t = torch.arange(T)[:, None]
    u = torch.arange(T)[None, :]
    visible = (u <= t) & ((t - u < window) if window else True)
    return torch.zeros(T, T, dtype=dtype).masked_fill(~visible, float("-inf"))


def attention(cfg, w, l, x, rotations, masks, kv):
    """§3. x [B, T, D] -> [B, T, D]. kv maps a layer to its (k, v) [B, K, T, d] for
    the KV-shared layers that read it."""
    li, p = cfg.layers[l], f"model.layers.{l}.self_attn."
    B, T, _ = x.shape
    H, K, d = cfg.H, li.kv_heads, li.head_dim
    cos, sin = rotations[l]
    q = F.linear(x, w[p + "q_proj.weight"]).view(B, T, H, d)
    q = rope(rmsnorm(q, w[p + "q_norm.weight"], cfg.eps), cos, sin).transpose(1, 2)  # [B, H, T, d]
    if li.has_kv:
        k = F.linear(x, w[p + "k_proj.weight"]).view(B, T, K, d)
        v = F.linear(x, w[p + "v_proj.weight"]).view(B, T, K, d)
        k = rope(rmsnorm(k, w[p + "k_norm.weight"], cfg.eps), cos, sin).transpose(1, 2)  # [B, K, T, d]
        v = rmsnorm(v, None, cfg.eps).transpose(1, 2)
        kv[l] = (k, v)
    k, v = kv[li.kv_source]
    # Query head h reads KV head h // G: each KV head serves G = H / K consecutive heads.
    k = k.repeat_interleave(H // K, dim=1)
    v = v.repeat_interleave(H // K, dim=1)
    s = q @ k.transpose(-1, -2) + masks[li.sliding]  # [B, H, T, T], scale 1
    o = torch.softmax(s, dim=-1) @ v                 # [B, H, T, d]
    return F.linear(o.transpose(1, 2).reshape(B, T, H * d), w[p + "o_proj.weight"])


def mlp(w, p, x):
    """§5 GeGLU: down(gelu_tanh(gate x) * up x)."""
    return F.linear(gelu_tanh(F.linear(x, w[p + "gate_proj.weight"])) * F.linear(x, w[p + "up_proj.weight"]),
                    w[p + "down_proj.weight"])


def per_layer_inputs(cfg, w, ids, e):
    """§6. ids [B, T], e [B, T, D] (already * sqrt(D)) -> [B, T, L, P]."""
    B, T = ids.shape
    L, P = cfg.L, cfg.P
    r = F.embedding(ids, w["model.embed_tokens_per_layer.weight"]) * math.sqrt(P)
    m = F.linear(e, w["model.per_layer_model_projection.weight"]) * cfg.D ** -0.5
    m = rmsnorm(m.view(B, T, L, P), w["model.per_layer_projection_norm.weight"], cfg.eps)
    return (m + r.view(B, T, L, P)) * 2 ** -0.5


def forward(cfg, w, ids):
    """§7. ids [B, T] -> logits [B, T, V]."""
    T = ids.shape[1]
    dtype = w["model.norm.weight"].dtype
    pos = torch.arange(T, dtype=torch.float64)[:, None]
    rotations = []
    for li in cfg.layers:
        angle = (pos * li.rope_freq).to(dtype)[:, None, :]  # [T, 1, d/2]
        rotations.append((angle.cos(), angle.sin()))
    masks = {True: attention_mask(T, cfg.window, dtype), False: attention_mask(T, 0, dtype)}

    e = F.embedding(ids, w["model.embed_tokens.weight"]) * math.sqrt(cfg.D)
    ple = per_layer_inputs(cfg, w, ids, e) if cfg.P else None
    h, kv = e, {}
    for l in range(cfg.L):
        p = f"model.layers.{l}."
        a = attention(cfg, w, l, rmsnorm(h, w[p + "input_layernorm.weight"], cfg.eps), rotations, masks, kv)
        h1 = h + rmsnorm(a, w[p + "post_attention_layernorm.weight"], cfg.eps)
        f = mlp(w, p + "mlp.", rmsnorm(h1, w[p + "pre_feedforward_layernorm.weight"], cfg.eps))
        h2 = h1 + rmsnorm(f, w[p + "post_feedforward_layernorm.weight"], cfg.eps)
        if ple is not None:
            g = gelu_tanh(F.linear(h2, w[p + "per_layer_input_gate.weight"])) * ple[:, :, l]
            h2 = h2 + rmsnorm(F.linear(g, w[p + "per_layer_projection.weight"]),
                              w[p + "post_per_layer_input_norm.weight"], cfg.eps)
        h = h2 * w[p + "layer_scalar"]
    x = rmsnorm(h, w["model.norm.weight"], cfg.eps)
    logits = F.linear(x, w["model.embed_tokens.weight"])  # tied head, the unscaled table
    if cfg.softcap:
        logits = cfg.softcap * torch.tanh(logits / cfg.softcap)
    return logits


def loss_of(cfg, w, ids):
    """Mean next-token cross-entropy of every window: logits[t] against ids[t + 1]."""
    logits = forward(cfg, w, ids)
    return F.cross_entropy(logits[:, :-1].reshape(-1, cfg.V), ids[:, 1:].reshape(-1))


# ---------------------------------------------------------------- --check

def check(fixture):
    """Loss and gradients against transformers' float64 backward, in float64."""
    cfg = Config(os.path.join(fixture, "config.json"))
    stored = read_safetensors(os.path.join(fixture, "model.safetensors"))
    ref = read_safetensors(os.path.join(fixture, "reference.safetensors"))
    params = {}
    for name, _ in cfg.parameter_shapes():
        params[name] = stored[name].double().requires_grad_(not name.endswith("layer_scalar"))
    ids = ref["input_ids"][None, :]
    logits = forward(cfg, params, ids)[0]
    loss = F.cross_entropy(logits[:-1], ids[0, 1:])
    loss.backward()

    print(f"loss {loss.item():.8f}  reference {ref['loss'].item():.8f}  "
          f"|difference| {abs(loss.item() - ref['loss'].item()):.2e}")
    logit_error = (logits - ref["logits"].double()).abs().max() / ref["logits"].abs().max()
    print(f"logits: max |difference| / max |reference| = {logit_error:.2e}")
    worst, worst_name, checked = 0.0, "", 0
    for key, expected in ref.items():
        if not key.startswith("grad."):
            continue
        name = key[len("grad."):]
        if name not in params:
            sys.exit(f"check: the reference has a gradient for {name}, which this model does not have")
        error = ((params[name].grad - expected.double()).abs().max() / expected.abs().max()).item()
        checked += 1
        if error > worst:
            worst, worst_name = error, name
    trained = sum(1 for p in params.values() if p.requires_grad)
    if checked != trained:
        sys.exit(f"check: the reference has {checked} gradients, this model trains {trained} tensors")
    print(f"gradients: {checked} tensors, worst max |difference| / max |reference| = {worst:.2e} ({worst_name})")
    ok = abs(loss.item() - ref["loss"].item()) <= 1e-5 and worst <= 1e-4
    print("check: " + ("passed (loss within 1e-5, gradients within 1e-4)" if ok else "FAILED"))
    return 0 if ok else 1


# ---------------------------------------------------------------- --train

def learning_rate(step, peak, floor, warmup, total):
    """qtensor's train::warmup_cosine: linear warmup from 0, then cosine to the floor."""
    if step < warmup:
        return peak * (step + 1) / warmup
    if total == warmup:
        return floor
    q = min(1.0, (step - warmup) / (total - warmup))
    return floor + (peak - floor) * 0.5 * (1 + math.cos(math.pi * q))


def saved_activation_bytes(cfg, params, policy, batch):
    """Bytes autograd keeps for the backward of one step: every tensor the forward
    saves, each storage counted once, the parameters themselves left out. With torch
    1.13 the memory of a forward under these hooks is not given back (the RSS grows
    by it on every call, gc.collect() or not), so --train does not call this."""
    parameter_storages = {p.storage().data_ptr() for p in params.values()}
    kept = {}  # storage address -> a tensor on it, alive to the end so no address is reused

    def pack(t):
        if t.storage().data_ptr() not in parameter_storages:
            kept[t.storage().data_ptr()] = t
        return None  # the graph keeps nothing: this forward is never differentiated

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda _: None):
        loss_of(cfg, seen_weights(params, policy), batch)
    return sum(t.storage().nbytes() for t in kept.values())


def train(args):
    torch.set_num_threads(args.threads)
    cfg = Config(args.config)
    with open(args.data, "rb") as f:
        tokens = torch.frombuffer(bytearray(f.read()), dtype=torch.uint8).long() + 3  # byte b is id b + 3
    params = init_parameters(cfg, args.seed)
    trained = [p for p in params.values() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        [{"params": [p for p in trained if p.dim() >= 2], "weight_decay": args.weight_decay},
         {"params": [p for p in trained if p.dim() < 2], "weight_decay": 0.0}],
        lr=args.lr, betas=(0.9, 0.95), eps=1e-8)
    min_lr = args.lr / 10 if args.min_lr is None else args.min_lr
    warmup = args.steps // 10 if args.warmup is None else args.warmup
    g = torch.Generator().manual_seed(args.seed)

    def windows():
        starts = torch.randint(0, len(tokens) - args.seq + 1, (args.batch,), generator=g)
        return torch.stack([tokens[s:s + args.seq] for s in starts.tolist()])  # [B, S]

    step_seconds, losses = [], []
    for step in range(args.steps):
        t0 = time.perf_counter()
        loss = loss_of(cfg, seen_weights(params, args.policy), windows())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trained, 1.0)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, args.lr, min_lr, warmup, args.steps)
        optimizer.step()
        step_seconds.append(time.perf_counter() - t0)
        losses.append(loss.item())
        print(f"gemma4_torch: step {step + 1}/{args.steps}  loss {losses[-1]:.4f}  "
              f"{args.batch * args.seq / step_seconds[-1]:.0f} tok/s", file=sys.stderr)
    print(json.dumps({"parameters": sum(p.numel() for p in params.values()),
                      "trained": sum(p.numel() for p in trained),
                      "tokens_per_step": args.batch * args.seq,
                      "step_seconds": step_seconds, "losses": losses}))
    return 0


def saved(args):
    cfg = Config(args.config)
    ids = torch.randint(3, 259, (args.batch, args.seq), generator=torch.Generator().manual_seed(args.seed))
    print(saved_activation_bytes(cfg, init_parameters(cfg, args.seed), args.policy, ids))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", metavar="FIXTURE_DIR")
    mode.add_argument("--train", metavar="CONFIG")
    mode.add_argument("--saved", metavar="CONFIG")
    ap.add_argument("--data", help="the training text (--train)")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--policy", choices=("f32", "q4_0"), default="q4_0")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--min-lr", type=float)
    ap.add_argument("--warmup", type=int)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    if args.check:
        return check(args.check)
    if args.saved:
        args.config = args.saved
        return saved(args)
    if not args.data:
        ap.error("--train needs --data")
    args.config = args.train
    return train(args)


if __name__ == "__main__":
    sys.exit(main())
