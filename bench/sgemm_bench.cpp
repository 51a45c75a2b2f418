// kernels::sgemm against OpenBLAS's cblas_sgemm on the products of training a
// linear layer y[T, rows] = x[T, cols] W^T (W [rows, cols]), in one run:
//
//   NT  forward  y[T, rows]     = x[T, cols] W^T      M = T,    N = rows, K = cols
//   NN  dX       dx[T, cols]    = dy[T, rows] W       M = T,    N = cols, K = rows
//   TN  dW       dW[rows, cols] += dy^T x             M = rows, N = cols, K = T
//
// Each line: GFLOP/s (2 M N K per call) per thread of each library and the
// ratio qtensor / OpenBLAS, on 1 and 2 threads (OpenBLAS through
// openblas_set_num_threads, qtensor through a kernels::thread_pool). The two
// run alternately, `rounds` times, each round the best of several calls; the
// figures are the medians of the rounds, so a burst of load on this shared
// machine falls on both. Without OpenBLAS (bench/CMakeLists.txt finds it or
// not) only qtensor's figures are printed.
//
// The layers are those of the training step bench/train_vs_torch.py times
// (bench/configs/gemma4-10m.json), each with how many a step holds; after
// them, per thread count, the step's products as a whole: the seconds of all
// of them, each layer's three products times its count, and the ratio
// OpenBLAS seconds / qtensor seconds.
//
// Usage: sgemm_bench [rounds (default 5)] [T (default 1024, the step's 8 x 128 tokens)]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include <unistd.h>

#include "bench_util.hpp"
#include "qtensor/kernels/kernels.hpp"

#if defined(QTENSOR_BENCH_OPENBLAS)
#include <cblas.h>
#endif

namespace {

using namespace qtensor;

struct product {
    const char* name;
    bool ta, tb;
    std::size_t M, N, K;
};

// op(A), op(B), C of one product, filled once.
struct operands {
    std::vector<float> a, b, c;
    explicit operands(const product& p)
        : a(qtensor_bench::random_floats(p.M * p.K)), b(qtensor_bench::random_floats(p.K * p.N)), c(p.M * p.N) {}
};

void run_qtensor(const product& p, operands& o, const kernels::executor& ex) {
    // Stored shapes: op(A) [M, K] is A [K, M] when transposed.
    const kernels::matrix_ref<const float> a{o.a, p.ta ? p.K : p.M, p.ta ? p.M : p.K, 0, p.ta};
    const kernels::matrix_ref<const float> b{o.b, p.tb ? p.N : p.K, p.tb ? p.K : p.N, 0, p.tb};
    kernels::sgemm(1.0f, a, b, p.ta ? 1.0f : 0.0f, {o.c, p.M, p.N}, ex);
}

#if defined(QTENSOR_BENCH_OPENBLAS)
void run_openblas(const product& p, operands& o) {
    const int M = static_cast<int>(p.M), N = static_cast<int>(p.N), K = static_cast<int>(p.K);
    cblas_sgemm(CblasRowMajor, p.ta ? CblasTrans : CblasNoTrans, p.tb ? CblasTrans : CblasNoTrans, M, N, K, 1.0f,
                o.a.data(), p.ta ? M : K, o.b.data(), p.tb ? K : N, p.ta ? 1.0f : 0.0f, o.c.data(), N);
}
#endif

// Best seconds per call of f() over at least 3 calls and 0.05 s.
template <class F>
double best_seconds(F&& f) {
    using clock = std::chrono::steady_clock;
    f();
    double best = 1e30, total = 0.0;
    for (int i = 0; i < 3 || total < 0.05; ++i) {
        const auto t0 = clock::now();
        f();
        const double s = std::chrono::duration<double>(clock::now() - t0).count();
        best = std::min(best, s);
        total += s;
    }
    return best;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

} // namespace

int main(int argc, char** argv) {
#if defined(QTENSOR_BENCH_OPENBLAS)
    // After a call, OpenBLAS's worker threads spin (2^28 cycles by default)
    // before they sleep, and a spinning worker on a 2-core machine leaves
    // qtensor's next 2-thread call one core. OpenBLAS reads the variable as it
    // loads, before main: so set it and start again.
    if (std::getenv("OPENBLAS_THREAD_TIMEOUT") == nullptr) {
        setenv("OPENBLAS_THREAD_TIMEOUT", "4", 1); // the least: 2^4 cycles
        execv("/proc/self/exe", argv);
        std::perror("sgemm_bench: execv /proc/self/exe"); // then go on, spinning workers and all
    }
#endif
    const int rounds = argc > 1 ? std::atoi(argv[1]) : 5;
    const std::size_t T = argc > 2 ? static_cast<std::size_t>(std::atoll(argv[2])) : 1024;
    // [rows, cols] and count of gemma4-10m's linear layers: 8 layers (6 sliding, 2 full; the last 2
    // KV-shared), hidden 256, 4 query and 2 KV heads of 64 (128 in full layers), MLP 1024 (2048 in the
    // KV-shared layers), PLE 64 a layer, vocab 512 (tied lm_head).
    struct layer {
        std::size_t rows, cols, count;
    };
    const layer layers[] = {
        {256, 256, 14},  // q_proj, o_proj of the sliding layers; k_proj, v_proj of the full layer owning its KV
        {512, 256, 4},   // q_proj of the full layers, lm_head, per_layer_model_projection
        {256, 512, 2},   // o_proj of the full layers
        {128, 256, 10},  // k_proj, v_proj of the sliding layers owning their KV
        {1024, 256, 12}, // gate_proj, up_proj
        {2048, 256, 4},  // gate_proj, up_proj of the KV-shared layers
        {256, 1024, 6},  // down_proj
        {256, 2048, 2},  // down_proj of the KV-shared layers
        {64, 256, 8},    // per_layer_input_gate
        {256, 64, 8},    // per_layer_projection
    };
    kernels::thread_pool pool(2);
    std::printf("# T=%zu rounds=%d target=%s\n", T, rounds, kernels::compiled_targets().front().name().c_str());
#if defined(QTENSOR_BENCH_OPENBLAS)
    // OpenBLAS picks its kernels by CPU model: one it does not know (a newer
    // Xeon, a virtual CPU) gets the SSE3 "Prescott" kernels, several times
    // slower. OPENBLAS_CORETYPE=SkylakeX (Haswell without AVX-512) forces the right ones.
    std::printf("# OpenBLAS kernels: %s\n", openblas_get_corename());
#endif
    for (const std::size_t threads : {std::size_t{1}, std::size_t{2}}) {
        const kernels::executor ex = threads == 1 ? kernels::executor{} : pool.get_executor();
#if defined(QTENSOR_BENCH_OPENBLAS)
        openblas_set_num_threads(static_cast<int>(threads));
#endif
        double step_ours = 0.0, step_theirs = 0.0;
        for (const auto& [rows, cols, count] : layers) {
            const product products[] = {{"NT", false, true, T, rows, cols},
                                        {"NN", false, false, T, cols, rows},
                                        {"TN", true, false, rows, cols, T}};
            for (const product& p : products) {
                operands o(p);
                const double flop = 2.0 * double(p.M) * double(p.N) * double(p.K) / double(threads);
                std::vector<double> ours, theirs, ratio;
                for (int r = 0; r < rounds; ++r) {
                    ours.push_back(flop / best_seconds([&] { run_qtensor(p, o, ex); }) / 1e9);
#if defined(QTENSOR_BENCH_OPENBLAS)
                    theirs.push_back(flop / best_seconds([&] { run_openblas(p, o); }) / 1e9);
                    ratio.push_back(ours.back() / theirs.back());
#endif
                }
                std::printf("%s threads=%zu layer=%zux%zu M=%zu N=%zu K=%zu qtensor=%.1f", p.name, threads, rows, cols,
                            p.M, p.N, p.K, median(ours));
                if (!theirs.empty())
                    std::printf(" openblas=%.1f ratio=%.2f", median(theirs), median(ratio));
                std::printf(" GFLOP/s per thread\n");
                std::fflush(stdout);
                step_ours += double(count) * flop / median(ours) / 1e9;
                if (!theirs.empty()) step_theirs += double(count) * flop / median(theirs) / 1e9;
            }
        }
        std::printf("step threads=%zu qtensor=%.4f s", threads, step_ours);
        if (step_theirs > 0.0) std::printf(" openblas=%.4f s ratio=%.2f", step_theirs, step_theirs / step_ours);
        std::printf(" (every product of the layers above, times its count)\n");
    }
}
