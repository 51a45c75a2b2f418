#!/usr/bin/env bash
# QAT against PTQ on real text, end to end with the qtensor CLI (docs/qat.md).
#
# Corpus: the text of Debian's `fortunes` package, cut into fortunes (entries
# between "%" lines); every 10th fortune is validation, the rest training.
# Tokens are bytes (byte b is id b + 3). Model: experiments/qat/config.json, a
# small Gemma 4 with E2B's features (sliding and full layers, PLE, KV sharing).
# For each seed:
#   f32        a baseline trained from scratch in f32 (--base-steps)
#   ptq-q4_0   the baseline packed as Q4_0 (qtensor convert --policy q4_0)
#   ptq-q2_k   the baseline packed as Q2_K
#   ptq-mobile the baseline packed with the mobile policy (2-bit TQ2_0 decoder
#              matrices, Q4_0 tables and projections: docs/mobile.md), run with
#              static int8 activations calibrated on the training text
#   ft-f32     the baseline fine-tuned --ft-steps more in f32: the control
#   ft-ptq-*   the control packed as Q4_0 and Q2_K
#   qat-q4_0   the baseline fine-tuned --ft-steps rehearsing Q4_0, then packed
#   qat-q2_k   the same rehearsing Q2_K
#   qat-mobile the same rehearsing the mobile policy and the baseline's static
#              activation scales (train --scales), run with those scales
# Then, on the first seed, lattice alignment: the Q4_0 QAT arm once more with a
# symmetric amax / 7 grid (train --grid symmetric); both arms' weights exported
# bf16 (fake-quant) and packed by ggml's rule and with convert --lattice.
# Every arm is scored as it deploys: `qtensor ppl` on the packed GGUF file,
# over the first 250 chunks of 256 tokens of the validation text.
# Results: OUT/results.tsv (one row per seed and arm), OUT/lattice.tsv,
# OUT/summary.txt (the tables docs/qat.md shows), OUT/qat-experiment.png (loss curves, perplexities;
# needs gnuplot).
#
#   scripts/qat-experiment.sh [--seeds "1 2 3"] [--base-steps N] [--ft-steps N]
#                             [--threads N] [--jobs N] [--quick] [OUT]   (OUT: build/qat-experiment)
# --quick: 2 seeds, a few steps: checks the pipeline in a few minutes.
# Run again with the same OUT and settings, it continues where it stopped:
# finished runs and scored arms are kept, an interrupted run resumes. Seeds
# can run side by side, --jobs N processes of --threads N threads each: on 2
# cores, --jobs 3 --threads 1 goes about 1.3x faster than one seed at a time on
# 2 threads.
set -euo pipefail
shopt -s inherit_errexit # a failure inside $(...) stops the script too
here=$(pwd)
cd "$(dirname "$0")/.."

seeds="1 2 3"
jobs=1
base_steps=2500
ft_steps=250
threads=$(nproc)
out=build/qat-experiment
while [ $# -gt 0 ]; do
    case "$1" in
        --seeds) seeds=$2; shift 2 ;;
        --base-steps) base_steps=$2; shift 2 ;;
        --ft-steps) ft_steps=$2; shift 2 ;;
        --threads) threads=$2; shift 2 ;;
        --jobs) jobs=$2; shift 2 ;;
        --quick) seeds="1 2"; base_steps=20; ft_steps=4; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) echo "qat-experiment: unknown option $1" >&2; exit 2 ;;
        *) out=$1; [[ "$out" = /* ]] || out="$here/$out"; shift ;;
    esac
done
seq_len=256 batch=4 # 1024 tokens a step
eval_chunks=250     # the first 64000 validation tokens (of about 257000), the same for every arm

./scripts/install-deps.sh # what the build needs (nothing when it is all there)
# What the experiment needs beyond the build: the corpus, and gnuplot for the picture.
missing=()
for p in fortunes gnuplot-nox; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    echo "qat-experiment: installing ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
[ -f build/default/CMakeCache.txt ] || cmake --preset default >/dev/null
cmake --build --preset default --target qtensor_cli >/dev/null
qtensor=build/default/tools/qtensor
config=experiments/qat/config.json

mkdir -p "$out"
log="$out/experiment.log"
# A directory continues only the experiment it holds: the same settings.
settings="base_steps=$base_steps ft_steps=$ft_steps seq=$seq_len batch=$batch eval_chunks=$eval_chunks config=$(cksum < "$config")"
if [ -f "$out/settings" ] && [ "$(cat "$out/settings")" != "$settings" ]; then
    echo "qat-experiment: $out holds an experiment with other settings ($(cat "$out/settings")); use another OUT" >&2
    exit 1
fi
echo "$settings" > "$out/settings"
echo "qat-experiment: seeds $seeds, $base_steps base steps, $ft_steps fine-tuning steps, $threads threads -> $out" | tee -a "$log"

# The corpus: every fortune file, in name order; fortune i goes to validation when i % 10 == 0.
corpus=/usr/share/games/fortunes
mapfile -t files < <(find "$corpus" -maxdepth 1 -type f ! -name '*.dat' ! -name '*.u8' | sort)
# Written aside and renamed: runs of other seeds into the same OUT may be reading them.
awk -v train="$out/train.txt.$$" -v valid="$out/valid.txt.$$" \
    'BEGIN { RS = "\n%\n" } { if (NR % 10 == 0) printf "%s\n%%\n", $0 > valid; else printf "%s\n%%\n", $0 > train }' \
    "${files[@]}"
mv -f "$out/train.txt.$$" "$out/train.txt"
mv -f "$out/valid.txt.$$" "$out/valid.txt"
echo "qat-experiment: train.txt $(wc -c < "$out/train.txt") bytes, valid.txt $(wc -c < "$out/valid.txt") bytes" | tee -a "$log"

# packed_ppl POLICY MODEL FILE SCALES [CONVERT_ARGS...]: pack MODEL into FILE
# with POLICY, print the file's perplexity (with static activations when
# SCALES names a scales file), remove it. Fails when either step does.
packed_ppl() {
    local policy=$1 model=$2 file=$3 ppl static=()
    [ -n "$4" ] && static=(--scales "$4")
    shift 4
    "$qtensor" convert --policy "$policy" "$@" "$model" "$file" >&2 || return
    ppl=$("$qtensor" ppl --policy "$policy" --threads "$threads" --ctx "$seq_len" --chunks "$eval_chunks" \
          --data "$out/valid.txt" "${static[@]}" "$file" 2>>"$log" | sed -n 's/^perplexity: //p') || return
    rm -f "$file"
    [ -n "$ppl" ] || { echo "qat-experiment: no perplexity for $model" >&2; return 1; }
    echo "$ppl"
}

# score ARM SEED POLICY MODEL [SCALES]: pack MODEL with POLICY, score the file
# (with SCALES, static activations), add a row; an arm already in results.tsv
# is not scored again.
score() {
    local arm=$1 seed=$2 policy=$3 model=$4 ppl
    grep -q "^$seed	$arm	" "$out/results.tsv" && return 0
    ppl=$(packed_ppl "$policy" "$model" "$out/seed$seed/$arm.gguf" "${5:-}")
    printf '%s\t%s\t%s\t%s\n' "$seed" "$arm" "$policy" "$ppl" >> "$out/results.tsv"
    echo "qat-experiment: seed $seed $arm: perplexity $ppl" | tee -a "$log"
}

# train DIR FROM SEED STEPS POLICY LR MIN_LR WARMUP [TRAIN_ARGS...]: a run saved
# in DIR continues from its last save (every 100 steps); one already complete is kept.
train() {
    local resume=() status=0
    if [ -f "$1/optimizer.safetensors" ]; then resume=(--resume); else rm -rf "$1"; fi
    "$qtensor" train "$2" --data "$out/train.txt" --out "$1" --seed "$3" --steps "$4" --policy "$5" \
        --lr "$6" --min-lr "$7" --warmup "$8" --seq "$seq_len" --batch "$batch" --threads "$threads" \
        --save-every 100 "${resume[@]}" "${@:9}" 2>>"$log" || status=$?
    [ "$status" -eq 0 ] && return 0
    tail -n 1 "$log" | grep -q "is already at step $4\$" && return 0 # complete
    tail -n 1 "$log" >&2
    return "$status"
}

# calibrate MODEL SCALES: the static activation scales of MODEL packed with the
# mobile policy, from the first 16 windows of the training text (kept once written).
calibrate() {
    [ -f "$2" ] && return 0
    "$qtensor" convert --policy mobile "$1" "$2.gguf" >&2
    "$qtensor" calibrate --policy mobile --threads "$threads" --ctx "$seq_len" --chunks 16 --data "$out/train.txt" \
        --out "$2.tmp" "$2.gguf" 2>>"$log"
    rm -f "$2.gguf"
    mv -f "$2.tmp" "$2"
}

[ -f "$out/results.tsv" ] || printf 'seed\tarm\tpolicy\tperplexity\n' > "$out/results.tsv"
start=$(date +%s)
# run_seed SEED: the baseline and the arms of one seed.
run_seed() {
    local seed=$1 dir="$out/seed$1" policy arm
    mkdir -p "$dir"
    echo "qat-experiment: seed $seed: baseline, $base_steps steps" | tee -a "$log"
    train "$dir/base" "$config" "$seed" "$base_steps" f32 3e-3 3e-4 $((base_steps / 20))
    score f32 "$seed" f32 "$dir/base"
    score ptq-q4_0 "$seed" q4_0 "$dir/base"
    score ptq-q2_k "$seed" q2_k "$dir/base"
    calibrate "$dir/base" "$dir/base-scales.json"
    score ptq-mobile "$seed" mobile "$dir/base" "$dir/base-scales.json"
    for policy in f32 q4_0 q2_k mobile; do
        arm=qat-$policy
        [ "$policy" = f32 ] && arm=ft-f32
        echo "qat-experiment: seed $seed: $arm, $ft_steps steps" | tee -a "$log"
        # seed + 1000: other windows than the baseline's first steps, the same for the three arms
        if [ "$policy" = mobile ]; then # rehearsing the scales it will run with
            train "$dir/$arm" "$dir/base" $((seed + 1000)) "$ft_steps" "$policy" 3e-4 3e-5 $((ft_steps / 10)) \
                --scales "$dir/base-scales.json"
            score "$arm" "$seed" "$policy" "$dir/$arm" "$dir/base-scales.json"
            continue
        fi
        train "$dir/$arm" "$dir/base" $((seed + 1000)) "$ft_steps" "$policy" 3e-4 3e-5 $((ft_steps / 10))
        score "$arm" "$seed" "$policy" "$dir/$arm"
        if [ "$policy" = f32 ]; then # the control packed too: PTQ after as much training as QAT had
            score ft-ptq-q4_0 "$seed" q4_0 "$dir/$arm"
            score ft-ptq-q2_k "$seed" q2_k "$dir/$arm"
            calibrate "$dir/$arm" "$dir/$arm-scales.json"
            score ft-ptq-mobile "$seed" mobile "$dir/$arm" "$dir/$arm-scales.json"
        fi
    done
    echo "qat-experiment: seed $seed done, $(( ($(date +%s) - start) / 60 )) min so far" | tee -a "$log"
}

# --jobs N: up to N seeds side by side, each its own process; a failed one stops the script.
for seed in $seeds; do
    if [ "$jobs" -le 1 ]; then run_seed "$seed"; continue; fi
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
    run_seed "$seed" &
done
while [ "$(jobs -rp | wc -l)" -gt 0 ]; do wait -n; done

# Lattice alignment (docs/qat.md), on the first seed: its baseline fine-tuned
# the same steps rehearsing Q4_0 on a symmetric amax / 7 grid too. Each Q4_0 QAT
# arm's weights as its forward saw them, stored bf16 (as a release publishes a
# QAT model unquantized), are packed by ggml's rule and on their grids
# (convert --lattice); the f32 export packed on its grids is the trained model.
first=${seeds%% *}
dir="$out/seed$first"
echo "qat-experiment: seed $first: qat-q4_0-symmetric, $ft_steps steps" | tee -a "$log"
train "$dir/qat-q4_0-symmetric" "$dir/base" $((first + 1000)) "$ft_steps" q4_0 3e-4 3e-5 $((ft_steps / 10)) \
    --grid symmetric
lattice="$out/lattice.tsv"
[ -f "$lattice" ] || printf 'arm\tppl_trained\tppl_ggml\tppl_lattice\tlattice_total\n' > "$lattice"
for arm in qat-q4_0 qat-q4_0-symmetric; do
    grep -q "^$arm	" "$lattice" && continue
    grid=ggml
    [ "$arm" = qat-q4_0-symmetric ] && grid=symmetric
    rm -rf "$dir/$arm-f32" "$dir/$arm-bf16"
    "$qtensor" fake-quant --policy q4_0 --grid "$grid" --dtype f32 --out "$dir/$arm-f32" "$dir/$arm" 2>>"$log"
    "$qtensor" fake-quant --policy q4_0 --grid "$grid" --out "$dir/$arm-bf16" "$dir/$arm" 2>>"$log"
    total=$("$qtensor" lattice "$dir/$arm-bf16" | sed -n 's/^total  *//p' | tr -s ' ')
    trained=$(packed_ppl q4_0 "$dir/$arm-f32" "$dir/$arm-trained.gguf" "" --lattice)
    ggml=$(packed_ppl q4_0 "$dir/$arm-bf16" "$dir/$arm-ggml.gguf" "")
    aligned=$(packed_ppl q4_0 "$dir/$arm-bf16" "$dir/$arm-lattice.gguf" "" --lattice)
    printf '%s\t%s\t%s\t%s\t%s\n' "$arm" "$trained" "$ggml" "$aligned" "$total" >> "$lattice"
    rm -rf "$dir/$arm-f32" "$dir/$arm-bf16"
    echo "qat-experiment: seed $first $arm, bf16: $total; perplexity trained $trained, ggml's rule $ggml, --lattice $aligned" |
        tee -a "$log"
done

experiments/qat/summary.sh "$out/results.tsv" "$base_steps" "$ft_steps" "$out/means.tsv" "$lattice" > "$out/summary.txt"
cat "$out/summary.txt"
gnuplot -c experiments/qat/plot.gp "$dir" "$out/means.tsv" "$base_steps" "$out/qat-experiment.png"
echo "qat-experiment: $out/summary.txt, $out/qat-experiment.png; $(( ($(date +%s) - start) / 60 )) min in all"
