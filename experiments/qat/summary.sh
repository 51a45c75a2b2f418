#!/usr/bin/env bash
# The table of the QAT experiment from its results.tsv (seed, arm, policy,
# perplexity): per arm the mean perplexity over the seeds, the spread (min and
# max), and the change against the f32 baseline; then the two goals, per seed
# and averaged:
#   Q4_0:  qat-q4_0 within 1% of the f32 baseline;
#   2-bit: QAT recovers >= 60% of the gap PTQ opens, (ptq - qat) / (ptq - f32),
#          against the baseline (ptq-q2_k, f32) and, stricter, against the
#          control trained as long as QAT (ft-ptq-q2_k, ft-f32).
#
#   experiments/qat/summary.sh results.tsv BASE_STEPS FT_STEPS [MEANS.tsv]
# MEANS.tsv (arm; mean, min and max over the seeds of its perplexity in %
# against the same seed's f32 baseline) is what the plot draws.
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
function line(what, goal, key_ptq, key_qat, key_f32, fmt,    i, s, v, total, vmin, vmax, text) {
    total = 0; text = ""
    for (i = 1; i <= nseeds; i++) {
        s = seeds[i]
        if (fmt == "gap") v = 100 * (ppl[s, key_ptq] - ppl[s, key_qat]) / (ppl[s, key_ptq] - ppl[s, key_f32])
        else v = 100 * (ppl[s, key_qat] / ppl[s, key_f32] - 1)
        total += v
        if (i == 1 || v < vmin) vmin = v
        if (i == 1 || v > vmax) vmax = v
        text = text sprintf("%s%+.2f%%", i > 1 ? ", " : "", v)
    }
    printf "- %s: %.1f%% on average (seeds: %s; from %.1f%% to %.1f%%). Goal: %s.\n", what, total / nseeds, text, vmin, vmax, goal
}
END {
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
    line("Q4_0 QAT against the f32 baseline", "within 1%", "", "qat-q4_0", "f32", "ratio")
    line("Q4_0 QAT against the f32 control", "within 1%", "", "qat-q4_0", "ft-f32", "ratio")
    line("2-bit: share of the PTQ gap QAT recovers, against the baseline", ">= 60%", "ptq-q2_k", "qat-q2_k", "f32", "gap")
    line("2-bit: the same against the control", ">= 60%", "ft-ptq-q2_k", "qat-q2_k", "ft-f32", "gap")
}' "$1"
