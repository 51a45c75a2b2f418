#!/usr/bin/python3
"""bench/decode_bench.py: prefill and decode tokens/s and peak memory of `qtensor generate` on one GGUF
file, at each thread count, optionally against a second qtensor build (an older commit) in the same run.

  bench/decode_bench.py --qtensor build/bench/tools/qtensor [--baseline OLD/tools/qtensor]
                        [--gguf F] [--threads 1,2] [--rounds 3] [--prompt 64] [--new 32]
                        [--qtensor-args ARGS] [--baseline-args ARGS] [--roof build/bench/bench/kernels_summary]
                        [--baseline-gguf F2] [--baseline-policy P2]

The model is F (default: build/e2b-q4_0.gguf, made on demand: bench/make_random_model.py on
docs/configs/gemma4-e2b.json, then `qtensor convert --policy q4_0`; needs python3-numpy and about 13 GB of
disk while it is made). Each round runs every build once per thread count, alternately, each a fresh
process: a prompt of --prompt token ids, then --new greedy tokens. Printed per build and thread count:
medians of prefill and decode tokens/s over the rounds, the child's peak RSS (the kernel's ru_maxrss), and
with a baseline the ratios. --qtensor-args and --baseline-args add options to one build's generate (the
same build twice with --baseline-args=--in-place compares the weight layouts; the same build with
--baseline-gguf and --baseline-policy compares two files, e.g. a mobile file against a Q4_0 one). Then one `generate --profile` run of --qtensor at each thread count: the
weight bytes a decode step reads and their rate; with --roof (kernels_summary's path) also the machine's
read bandwidth measured in the same run and the decode's fraction of it, the honest ceiling of decode.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def run(cmd):
    """Runs cmd; returns (stderr, peak RSS bytes). Exits with its stderr when it fails."""
    with subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) as child:
        stderr = child.stderr.read()
        _, status, usage = os.wait4(child.pid, 0)  # the rusage of this child alone
        child.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    if child.returncode != 0:
        sys.exit(f"decode_bench: {' '.join(cmd)} failed:\n{stderr}")
    return stderr, usage.ru_maxrss * 1024


def make_model(qtensor, gguf):
    source = gguf + ".bf16"
    print(f"decode_bench: making {gguf} (E2B-shaped, random weights, Q4_0)", flush=True)
    subprocess.run([sys.executable, os.path.join(HERE, "make_random_model.py"),
                    os.path.join(ROOT, "docs", "configs", "gemma4-e2b.json"), source], check=True)
    subprocess.run([qtensor, "convert", "--policy", "q4_0", source, gguf], check=True)
    for name in os.listdir(source):
        os.remove(os.path.join(source, name))
    os.rmdir(source)


def generate(qtensor, args, threads, extra, gguf, policy):
    ids = ",".join(str(1000 + 37 * i) for i in range(args.prompt))
    cmd = [qtensor, "generate", "--policy", policy, "--ids", ids, "--max-new", str(args.new),
           "--threads", str(threads), *extra, gguf]
    return run(cmd)


def rates(stderr):
    """(prefill tok/s, decode tok/s) from generate's 'prefill N tokens in X ms (R tok/s); decode ...' line."""
    found = re.findall(r"\(([0-9.]+) tok/s\)", stderr)
    if len(found) != 2:
        sys.exit(f"decode_bench: no rates in:\n{stderr}")
    return float(found[0]), float(found[1])


def read_roofs(kernels_summary):
    """Read bandwidth in GB/s by thread count, from kernels_summary (a filter that matches no kernel)."""
    out = subprocess.run([kernels_summary, "read_roof_only"], check=True, capture_output=True, text=True).stdout
    return {int(t): float(g) for t, g in re.findall(r"read_roof threads=(\d+) GBps=([0-9.]+)", out)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--qtensor", required=True, help="the qtensor CLI to measure")
    ap.add_argument("--baseline", help="another qtensor CLI (an older commit's), run alternately")
    ap.add_argument("--gguf", default=os.path.join(ROOT, "build", "e2b-q4_0.gguf"))
    ap.add_argument("--policy", default="q4_0")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--prompt", type=int, default=64)
    ap.add_argument("--new", type=int, default=32)
    ap.add_argument("--roof", help="kernels_summary's path: measure the read bandwidth too")
    ap.add_argument("--qtensor-args", default="", help="more options for --qtensor's generate")
    ap.add_argument("--baseline-args", default="", help="more options for --baseline's generate")
    ap.add_argument("--baseline-gguf", help="the file --baseline runs (default: --gguf)")
    ap.add_argument("--baseline-policy", help="the policy --baseline runs (default: --policy)")
    args = ap.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    if not os.path.exists(args.gguf):
        make_model(args.qtensor, args.gguf)
    builds = {"qtensor": (args.qtensor, args.qtensor_args.split(), args.gguf, args.policy)}
    if args.baseline:
        builds["baseline"] = (args.baseline, args.baseline_args.split(), args.baseline_gguf or args.gguf,
                              args.baseline_policy or args.policy)

    results = {(b, t): [] for b in builds for t in threads}
    for r in range(args.rounds):
        for t in threads:
            for b, (path, extra, gguf, policy) in builds.items():
                stderr, rss = generate(path, args, t, extra, gguf, policy)
                results[b, t].append((*rates(stderr), rss))
        print(f"decode_bench: round {r + 1} of {args.rounds} done", flush=True)

    for b, (path, extra, gguf, policy) in builds.items():
        print(f"\n{b}: {path} generate --policy {policy} {' '.join(extra)} {gguf}".replace("  ", " "), end="")
    print(f"\n{args.prompt}-token prompt, {args.new} new tokens, medians of {args.rounds} runs")
    print(f"{'build':10} {'threads':>7} {'prefill tok/s':>14} {'decode tok/s':>13} {'peak RSS MB':>12}")
    med = {}
    for t in threads:
        for b in builds:
            runs = results[b, t]
            med[b, t] = [statistics.median(x[i] for x in runs) for i in range(3)]
            p, d, rss = med[b, t]
            print(f"{b:10} {t:7} {p:14.1f} {d:13.2f} {rss / 1e6:12.0f}")
        if args.baseline:
            (p, d, rss), (bp, bd, brss) = med["qtensor", t], med["baseline", t]
            print(f"{'ratio':10} {t:7} {p / bp:14.2f} {d / bd:13.2f} {rss / brss:12.2f}")

    roofs = read_roofs(args.roof) if args.roof else {}
    for t in threads:
        stderr, _ = generate(args.qtensor, args, t, builds["qtensor"][1] + ["--profile"], args.gguf, args.policy)
        total = re.search(r"^\s+total\s+([0-9.]+)\s+[0-9.]+%\s+([0-9.]+)", stderr, re.M)
        if total is None:
            sys.exit(f"decode_bench: no profile (no decode step with --new {args.new}?) in:\n{stderr}")
        ms, mb = float(total.group(1)), float(total.group(2))
        line = f"decode, {t} thread(s): {mb:.1f} MB of weights per step, {mb / ms:.1f} GB/s in the profiled run"
        if t in roofs:
            decode = med["qtensor", t][1]
            line += (f"; read roof {roofs[t]:.1f} GB/s: the ceiling is {roofs[t] * 1e3 / mb:.1f} tok/s, "
                     f"the median decode {decode * mb / 1e3:.1f} GB/s = {decode * mb / 1e3 / roofs[t]:.2f} of it")
        print(line)


if __name__ == "__main__":
    main()
