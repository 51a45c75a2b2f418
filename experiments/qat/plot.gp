# The QAT experiment's picture (scripts/qat-experiment.sh): training loss of
# the baseline and of the fine-tuning arms of one seed (left; fine-tuning
# starts where the baseline ends), and each arm's validation perplexity
# against the f32 baseline's, mean over the seeds with min..max (right).
#
#   gnuplot -c plot.gp SEED_DIR MEANS.tsv BASE_STEPS OUT.png
dir = ARG1
means = ARG2
base_steps = ARG3 + 0
png = ARG4
set terminal pngcairo size 1400,560 font "sans,11" noenhanced
set output png
set datafile separator "\t"
set key top right
set grid ytics
set multiplot layout 1,2

set title "Training loss (bytes, nats), one seed"
set xlabel "step"
set ylabel "loss"
plot dir."/base/loss.tsv" using 1:2 every ::1 smooth bezier lw 2 title "f32 baseline", \
     dir."/ft-f32/loss.tsv" using ($1 + base_steps):2 every ::1 smooth bezier lw 2 title "fine-tune f32 (control)", \
     dir."/qat-q4_0/loss.tsv" using ($1 + base_steps):2 every ::1 smooth bezier lw 2 title "QAT Q4_0", \
     dir."/qat-q2_k/loss.tsv" using ($1 + base_steps):2 every ::1 smooth bezier lw 2 title "QAT Q2_K"

set title "Validation perplexity of the packed file against the seed's f32 baseline"
set xlabel ""
set ylabel "perplexity change, %"
set style fill solid 0.6 border -1
set boxwidth 0.7
set xtics rotate by -30
unset key
set xzeroaxis lt -1
plot means using 0:2:xtic(1) with boxes lc rgb "#4477aa", \
     means using 0:2:3:4 with yerrorbars lc rgb "black" pt 0
unset multiplot
