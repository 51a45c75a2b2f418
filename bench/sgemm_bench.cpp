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
// Usage: sgemm_bench [rounds (default 5)] [T (default 256)]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

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
    const int rounds = argc > 1 ? std::atoi(argv[1]) : 5;
    const std::size_t T = argc > 2 ? static_cast<std::size_t>(std::atoll(argv[2])) : 256;
    // [rows, cols] of Gemma-4-sized layers and heads.
    const std::size_t layers[][2] = {{256, 1024}, {1024, 256}, {512, 2048}, {4096, 256}, {32768, 256}};
    kernels::thread_pool pool(2);
    std::printf("# T=%zu rounds=%d target=%s\n", T, rounds, kernels::target::best().name().c_str());
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
        for (const auto& [rows, cols] : layers) {
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
            }
        }
    }
}
