#!/usr/bin/python3
"""bench/train_vs_torch.py: one training step of qtensor (the `qtensor train` CLI) against
PyTorch eager on CPU (bench/gemma4_torch.py), same config, same step, same thread count,
in one run.

The step: B windows of S byte tokens, mean next-token cross-entropy, forward + backward,
clip to global norm 1, AdamW (0.9/0.95, eps 1e-8, decay 0.1 on matrices), warmup + cosine
learning rate, with QAT at Q4_0 (tables Q8_0, per-layer projections bf16).

Per thread count, the two run alternately (ROUNDS runs each, a fresh process every time),
each run taking STEPS + 1 steps, the first a warmup left out of the timing. Printed:
  - tokens/s (median of the runs) of each and the ratio qtensor / PyTorch;
  - each process's peak resident memory (the kernel's ru_maxrss of the child), and what
    the program alone takes (the same figure for `--help`, which loads no model);
  - the sum it is measured against: parameters + gradients + AdamW's two moments (16 bytes
    a parameter) + the saved activations. The activations are PyTorch's: every tensor
    autograd keeps for the backward of one step (each storage once, parameters left out;
    the fake-quantized weights and clip masks included), measured by gemma4_torch.py.
    A hand-written backward may keep less, so this is the larger, PyTorch-eager figure;
  - CPU use: the child's user + system time over wall time and threads (1: every thread
    busy all the time; a program's serial parts make it less, and so does another job
    holding a core: the load average printed before each thread count tells which).
Both sides run with the same malloc settings: freed blocks up to 32 MiB stay on the heap and
up to 1 GiB of it is kept (`qtensor train` sets them with mallopt, PyTorch gets them through
GLIBC_TUNABLES), so neither pays page faults for the memory each step allocates again.
PyTorch's GEMMs run on OpenBLAS's kernels for this CPU's instruction set, named through
OPENBLAS_CORETYPE (--openblas-core) and checked against the core OpenBLAS reports: left
to itself, OpenBLAS 0.3.21 gives a CPU model it does not know its SSE3 kernels. PyTorch
gets torch.set_num_threads(T), OMP_NUM_THREADS = OPENBLAS_NUM_THREADS = T and
OMP_WAIT_POLICY=PASSIVE (on 2 cores, OpenMP's spinning threads otherwise slow its
2-thread step below its 1-thread one).

  bench/train_vs_torch.py --qtensor build/default/tools/qtensor
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TORCH_SCRIPT = os.path.join(HERE, "gemma4_torch.py")
MB = 1e6


def run(cmd, workdir, env=None):
    """Runs cmd to its end; returns (stdout, stderr, wall seconds, peak RSS bytes, CPU seconds)."""
    with open(os.path.join(workdir, "stdout"), "w+") as out, open(os.path.join(workdir, "stderr"), "w+") as err:
        t0 = time.perf_counter()
        child = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(child.pid, 0)  # the rusage of this child alone
        wall = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"train_vs_torch: {' '.join(cmd)} failed:\n{stderr}")
    return stdout, stderr, wall, usage.ru_maxrss * 1024, usage.ru_utime + usage.ru_stime


def timed_rate(elapsed, tokens_per_step):
    """tokens/s over steps 2.. of a run, from the seconds since the start at each step's end."""
    return (len(elapsed) - 1) * tokens_per_step / (elapsed[-1] - elapsed[0])


def run_qtensor(args, threads, workdir):
    out = os.path.join(workdir, "run")
    cmd = [args.qtensor, "train", "--data", args.data, "--steps", str(args.steps + 1), "--seq", str(args.seq),
           "--batch", str(args.batch), "--policy", "q4_0", "--threads", str(threads), "--seed", "1",
           "--out", out, args.config]
    _, stderr, wall, rss, cpu = run(cmd, workdir)
    # loss.tsv's tokens_per_s is the rate since the run started: step k ended k * tokens / rate seconds in.
    tokens = args.batch * args.seq
    with open(os.path.join(out, "loss.tsv")) as f:
        rows = [line.split("\t") for line in f.read().split("\n")[1:] if line]
    shutil.rmtree(out)  # qtensor train refuses to start over a saved run
    elapsed = [int(r[0]) * tokens / float(r[4]) for r in rows]
    parameters = int(stderr.split(" parameters,")[0].split()[-1])  # "qtensor: train: N parameters, ..."
    return {"rate": timed_rate(elapsed, tokens), "rss": rss, "cpu": cpu / wall / threads,
            "loss": float(rows[0][1]), "parameters": parameters}


def openblas_core():
    """The OpenBLAS kernels for this CPU. OpenBLAS picks them by CPU model and gives a model it does not know
    (a newer Xeon, a virtual CPU) its SSE3 "Prescott" kernels, several times slower: PyTorch would then lose
    for want of its BLAS, not on its merits."""
    with open("/proc/cpuinfo") as f:
        flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    return "SkylakeX" if "avx512f" in flags else "Haswell" if "avx2" in flags else ""  # "": OpenBLAS chooses


def run_torch(args, threads, workdir):
    cmd = [sys.executable, TORCH_SCRIPT, "--train", args.config, "--data", args.data, "--steps", str(args.steps + 1),
           "--seq", str(args.seq), "--batch", str(args.batch), "--policy", "q4_0", "--threads", str(threads),
           "--seed", "1"]
    # torch.set_num_threads sets the OpenMP pool; Debian's OpenBLAS keeps its own. GLIBC_TUNABLES gives
    # PyTorch the malloc settings `qtensor train` makes for itself (keep freed memory for the next step).
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               GLIBC_TUNABLES="glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824",
               OPENBLAS_VERBOSE="2",
               OMP_WAIT_POLICY="PASSIVE")  # OpenMP's idle threads would spin against OpenBLAS's own
    if args.openblas_core:
        env["OPENBLAS_CORETYPE"] = args.openblas_core
    stdout, stderr, wall, rss, cpu = run(cmd, workdir, env)
    core = re.search(r"^Core: (\S+)", stderr, re.MULTILINE)
    if core is None:
        print("  (OpenBLAS reported no kernels: PyTorch may run on another BLAS)", file=sys.stderr)
    elif args.openblas_core and core.group(1).lower() != args.openblas_core.lower():
        sys.exit(f"train_vs_torch: OpenBLAS ran its {core.group(1)} kernels, not {args.openblas_core}")
    r = json.loads(stdout.strip().split("\n")[-1])
    elapsed = [sum(r["step_seconds"][:k + 1]) for k in range(len(r["step_seconds"]))]
    return {"rate": timed_rate(elapsed, r["tokens_per_step"]), "rss": rss, "cpu": cpu / wall / threads,
            "loss": r["losses"][0], "parameters": r["trained"], "all_parameters": r["parameters"]}


def saved_activations(args, workdir):
    """The bytes PyTorch's autograd saves for one step's backward (gemma4_torch.py --saved)."""
    cmd = [sys.executable, TORCH_SCRIPT, "--saved", args.config, "--seq", str(args.seq), "--batch", str(args.batch),
           "--policy", "q4_0"]
    return int(run(cmd, workdir)[0])


def default_text(workdir):
    """The project's LICENSE, 8 times (about 90 kB)."""
    with open(os.path.join(HERE, "..", "LICENSE"), "rb") as f:
        text = f.read()
    path = os.path.join(workdir, "text.txt")
    with open(path, "wb") as f:
        f.write(text * 8)
    return path


def report(threads, runs, sizes, load):
    """sizes: the peak RSS of each program alone and PyTorch's saved activations, bytes."""
    q, t = runs["qtensor"], runs["PyTorch"]
    if q[0]["parameters"] != t[0]["parameters"]:
        sys.exit(f"train_vs_torch: qtensor trains {q[0]['parameters']} parameters, PyTorch {t[0]['parameters']}")
    rate = {name: statistics.median(r["rate"] for r in rs) for name, rs in runs.items()}
    cpu = {name: statistics.median(r["cpu"] for r in rs) for name, rs in runs.items()}
    rss = {name: max(r["rss"] for r in rs) for name, rs in runs.items()}
    state = 4 * t[0]["all_parameters"] + 12 * t[0]["parameters"]  # weights, gradients, AdamW m and v
    total = state + sizes["saved"]
    print(f"\n{threads} thread{'s' if threads > 1 else ''}, {t[0]['parameters']} parameters, "
          f"load average before: {load:.2f}")
    for name, rs in runs.items():
        each = " ".join(f"{r['rate']:.1f}" for r in rs)
        print(f"  {name:8} {rate[name]:9.1f} tok/s (runs: {each})  first loss {rs[0]['loss']:.3f}  "
              f"CPU use {cpu[name]:.2f}")
    print(f"  qtensor / PyTorch: {rate['qtensor'] / rate['PyTorch']:.3f} (the goal: 1.5 or more)")
    print(f"  peak RSS: qtensor {rss['qtensor'] / MB:.0f} MB (the program alone {sizes['qtensor'] / MB:.0f} MB), "
          f"PyTorch {rss['PyTorch'] / MB:.0f} MB (python3 + torch alone {sizes['PyTorch'] / MB:.0f} MB)")
    print(f"  parameters + gradients + AdamW {state / MB:.0f} MB + saved activations {sizes['saved'] / MB:.0f} MB "
          f"= {total / MB:.0f} MB")
    print(f"  peak / that (the goal: 1.25 or less): qtensor {rss['qtensor'] / total:.2f}, "
          f"PyTorch {rss['PyTorch'] / total:.2f}; "
          f"less the program alone: qtensor {(rss['qtensor'] - sizes['qtensor']) / total:.2f}, "
          f"PyTorch {(rss['PyTorch'] - sizes['PyTorch']) / total:.2f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--qtensor", default=os.path.join(HERE, "..", "build", "default", "tools", "qtensor"),
                    help="the qtensor binary (default: build/default/tools/qtensor)")
    ap.add_argument("--config", default=os.path.join(HERE, "configs", "gemma4-10m.json"))
    ap.add_argument("--data", help="the training text (default: LICENSE 8 times)")
    ap.add_argument("--steps", type=int, default=2, help="timed steps per run, after one warmup step (default 2)")
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=3, help="runs of each per thread count (default 3)")
    ap.add_argument("--openblas-core", default=openblas_core(),
                    help="OPENBLAS_CORETYPE for PyTorch's GEMMs (default: from this CPU's flags, "
                         "%(default)s; empty: OpenBLAS's own choice)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="train_vs_torch.") as workdir:
        args.data = args.data or default_text(workdir)
        sizes = {"qtensor": run([args.qtensor, "--help"], workdir)[3],
                 "PyTorch": run([sys.executable, TORCH_SCRIPT, "--help"], workdir)[3],
                 "saved": saved_activations(args, workdir)}
        print(f"config {os.path.relpath(args.config)}, {args.batch} x {args.seq} tokens a step, Q4_0 QAT, "
              f"{args.rounds} runs of 1 + {args.steps} steps each; load average before: "
              f"{os.getloadavg()[0]:.2f}")
        for threads in args.threads:
            runs = {"qtensor": [], "PyTorch": []}
            load = os.getloadavg()[0]
            for _ in range(args.rounds):
                runs["qtensor"].append(run_qtensor(args, threads, workdir))
                runs["PyTorch"].append(run_torch(args, threads, workdir))
            report(threads, runs, sizes, load)


if __name__ == "__main__":
    main()
