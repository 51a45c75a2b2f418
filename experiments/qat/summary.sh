#!/usr/bin/env bash
# The table of the QAT experiment from its results.tsv (seed, arm, policy,
# perplexity): per arm the mean perplexity over the seeds, the spread (min and
# max), and the change against the f32 baseline; then the two goals, per seed
# and averaged:
#   Q4_0:  qat-q4_0's perplexity at most 1% above the f32 baseline's;
#   2-bit: QAT recovers >= 60% of the gap PTQ opens, (ptq - qat) / (ptq - f32),
#          against the baseline (ptq-q2_k, f32) and, stricter, against the
#          control trained as long as QAT (ft-ptq-q2_k, ft-f32);
#   mobile: the same for the mobile policy's arms (ptq-mobile, qat-mobile,
#          ft-ptq-mobile), when every seed has them (results from before the
#          mobile policy lack them).
#
# Fails, naming them, when a seed lacks one of the arms it needs.
#
#   experiments/qat/summary.sh results.tsv BASE_STEPS FT_STEPS [MEANS.tsv [LATTICE.tsv]]
# MEANS.tsv (arm; mean, min and max over the seeds of its perplexity in %
# against the same seed's f32 baseline) is what the plot draws. LATTICE.tsv
# (arm, perplexity as trained, packed by ggml's rule, packed with --lattice,
# the total line of `qtensor lattice` on the bf16 export) adds a second table.
set -euo pipefail
awk -F'\t' -v base_steps="$2" -v ft_steps="$3" -v means="${4:-/dev/null}" '
NR == 1 { next }
{
    seed = $1; arm = $2
    if (!(arm in seen)) { order[++arms] = arm; seen[arm] = 1; policy[arm] = $3 }
    if (!(seed in seen_seed)) { seeds[++nseeds] = seed; seen_seed[seed] = 1 }
    ppl[seed, arm] = $4; sum[arm] += $4; n[arm]++
    if (!(arm in lo) || $4 < lo[arm]) lo[arm] = $4
    if (!(arm in hi) || $4 > hi[arm]) hi[arm] = $4
}
function mean(a) { return sum[a] / n[a] }
# One goal per seed and on average; a gap PTQ does not open (ptq <= f32) has no share to recover: n/a.
function line(what, goal, key_ptq, key_qat, key_f32, fmt,    i, s, v, total, counted, vmin, vmax, text) {
    total = 0; counted = 0; text = ""
    for (i = 1; i <= nseeds; i++) {
        s = seeds[i]
        text = text (i > 1 ? ", " : "")
        if (fmt == "gap" && ppl[s, key_ptq] <= ppl[s, key_f32]) { text = text "n/a"; continue }
        if (fmt == "gap") v = 100 * (ppl[s, key_ptq] - ppl[s, key_qat]) / (ppl[s, key_ptq] - ppl[s, key_f32])
        else v = 100 * (ppl[s, key_qat] / ppl[s, key_f32] - 1)
        total += v
        if (counted == 0 || v < vmin) vmin = v
        if (counted == 0 || v > vmax) vmax = v
        counted++
        text = text sprintf("%+.2f%%", v)
    }
    if (counted == 0) printf "- %s: n/a (seeds: %s). Goal: %s.\n", what, text, goal
    else printf "- %s: %+.2f%% on average (seeds: %s; from %+.2f%% to %+.2f%%). Goal: %s.\n", what, total / counted, text, vmin, vmax, goal
}
END {
    # Every seed needs every arm: a missing one would read as 0.
    split("f32 ptq-q4_0 ptq-q2_k ft-f32 ft-ptq-q4_0 ft-ptq-q2_k qat-q4_0 qat-q2_k", needed, " ")
    for (i = 1; i <= nseeds; i++)
        for (j = 1; j in needed; j++)
            if (!((seeds[i], needed[j]) in ppl)) missing = missing " seed " seeds[i] " " needed[j] ","
    # The mobile arms: all of them for every seed, or none.
    split("ptq-mobile ft-ptq-mobile qat-mobile", optional, " ")
    mobile = 0; absent = ""
    for (i = 1; i <= nseeds; i++)
        for (j = 1; j in optional; j++)
            if ((seeds[i], optional[j]) in ppl) mobile = 1
            else absent = absent " seed " seeds[i] " " optional[j] ","
    if (mobile) missing = missing absent
    if (nseeds == 0 || missing != "") {
        printf "summary: %s\n", nseeds == 0 ? "no results" : "results missing:" missing > "/dev/stderr"
        exit 1
    }
    printf "Validation perplexity (bytes), %d seeds; baseline %d steps, fine-tuning %d steps:\n\n", nseeds, base_steps, ft_steps
    printf "| arm | weights | perplexity (mean) | min | max | vs f32 baseline (mean of seeds) |\n| --- | --- | --- | --- | --- | --- |\n"
    for (i = 1; i <= arms; i++) {
        a = order[i]
        paired = 0
        for (j = 1; j <= nseeds; j++) paired += 100 * (ppl[seeds[j], a] / ppl[seeds[j], "f32"] - 1)
        printf "| %s | %s | %.4f | %.4f | %.4f | %+.2f%% |\n", a, policy[a], mean(a), lo[a], hi[a], paired / nseeds
        # against the f32 baseline of the same seed (paired): the spread of the baselines cancels
        total = 0
        for (j = 1; j <= nseeds; j++) {
            v = 100 * (ppl[seeds[j], a] / ppl[seeds[j], "f32"] - 1)
            total += v
            if (j == 1 || v < vmin) vmin = v
            if (j == 1 || v > vmax) vmax = v
        }
        printf "%s\t%.4f\t%.4f\t%.4f\n", a, total / nseeds, vmin, vmax > means
    }
    printf "\n"
    line("Q4_0 QAT against the f32 baseline", "at most +1%", "", "qat-q4_0", "f32", "ratio")
    line("Q4_0 QAT against the f32 control", "at most +1%", "", "qat-q4_0", "ft-f32", "ratio")
    line("2-bit: share of the PTQ gap QAT recovers, against the baseline", ">= 60%", "ptq-q2_k", "qat-q2_k", "f32", "gap")
    line("2-bit: the same against the control", ">= 60%", "ft-ptq-q2_k", "qat-q2_k", "ft-f32", "gap")
    if (mobile) {
        line("mobile: share of the PTQ gap QAT recovers, against the baseline", ">= 60%", "ptq-mobile", "qat-mobile", "f32", "gap")
        line("mobile: the same against the control", ">= 60%", "ft-ptq-mobile", "qat-mobile", "ft-f32", "gap")
    }
}' "$1"
[ -n "${5:-}" ] || exit 0
echo
awk -F'\t' '
NR == 1 { next }
{
    split($5, f, " ") # blocks, on grid, grids (several words), moved, ggml err, aligned err
    n = length(f); grids = f[3]
    for (i = 4; i <= n - 3; i++) grids = grids " " f[i]
    rows = rows sprintf("| %s | %s of %s | %s | %s | %s | %s | %s | %s | %s |\n", \
        $1 == "qat-q4_0" ? "ggml (max / -8)" : "symmetric (amax / 7)", f[2], f[1], grids, f[n - 2], f[n - 1], f[n], $2, $3, $4)
}
END {
    printf "Lattice alignment: the Q4_0 QAT arm trained on each grid, its weights exported bf16 and packed again:\n\n"
    printf "| QAT grid | blocks on a grid | grids (largest code) | moved by ggml'"'"'s rule | weight error, ggml'"'"'s rule | weight error, aligned | perplexity as trained | packed by ggml'"'"'s rule | packed with --lattice |\n"
    printf "| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n%s", rows
}' "$5"
