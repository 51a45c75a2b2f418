// The kernels on every compiled target, against the scalar reference and the
// machine's own memory bandwidth.
//
// main() first measures the read roof (bench_util.hpp: the fastest read loop
// over 1 GiB, far larger than any cache); each GEMV line then reports GB/s of
// weight bytes and `roof` = that rate / the roof, so the figure holds on a
// noisy shared machine.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "bench_util.hpp"
#include "qtensor/kernels/kernels.hpp"

namespace {

using qtensor_bench::random_floats;

using namespace qtensor;

constexpr std::size_t cols = 4096;
constexpr std::size_t gemv_rows = 8192; // 8192 x 4096 Q4_0 = 36 MiB of weights: out of cache

double roof_gbps = 0.0;

struct gemv_data {
    std::vector<block_q4_0> w = quantize<q4_0>(random_floats(gemv_rows * cols));
    std::vector<block_q8_0> a = quantize<q8_0>(random_floats(cols));
    std::vector<float> y = std::vector<float>(gemv_rows);
};

gemv_data& data() {
    static gemv_data d;
    return d;
}

// y[rows] = W[rows, cols] . a[cols], one dot per row; `dot` is a kernel or the reference.
template <class Dot>
void gemv(benchmark::State& state, Dot dot) {
    auto& d = data();
    const std::size_t blocks = cols / 32;
    for (auto _ : state) {
        for (std::size_t r = 0; r < gemv_rows; ++r) d.y[r] = dot(d.w.data() + r * blocks, d.a.data());
        benchmark::DoNotOptimize(d.y.data());
    }
    const double bytes = static_cast<double>(gemv_rows * row_bytes<q4_0>(cols));
    state.counters["GBps"] = benchmark::Counter(bytes * static_cast<double>(state.iterations()) / 1e9,
                                                benchmark::Counter::kIsRate);
    state.counters["roof"] = benchmark::Counter(bytes * static_cast<double>(state.iterations()) / 1e9 / roof_gbps,
                                                benchmark::Counter::kIsRate);
}

template <class Dequant>
void dequantize(benchmark::State& state, Dequant dequant) {
    const auto q = quantize<q4_0>(random_floats(cols));
    std::vector<float> y(cols);
    for (auto _ : state) {
        dequant(q.data(), y.data());
        benchmark::DoNotOptimize(y.data());
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * cols * sizeof(float)));
}

// One cache-resident row of `cols` floats quantized per iteration: GB/s of f32 read.
template <scheme S, class Quant>
void quantize_row(benchmark::State& state, Quant quant) {
    const auto x = random_floats(cols);
    std::vector<block_of<S>> q(blocks_per_row<S>(cols));
    for (auto _ : state) {
        quant(x.data(), q.data());
        benchmark::DoNotOptimize(q.data());
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * cols * sizeof(float)));
}

// One cache-resident row of `cols` elements dequantized per iteration: GB/s of f32 written.
template <scheme S, class Dequant>
void dequantize_row(benchmark::State& state, Dequant dequant) {
    const auto q = quantize<S>(random_floats(cols));
    std::vector<float> y(cols);
    for (auto _ : state) {
        dequant(q.data(), y.data());
        benchmark::DoNotOptimize(y.data());
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * cols * sizeof(float)));
}

// quantize_<S>/reference and quantize_<S>/<target> for every compiled target.
template <scheme S>
void register_quantize() {
    const std::string name = "quantize_" + std::string(S::name) + "/";
    benchmark::RegisterBenchmark((name + "reference").c_str(), [](benchmark::State& s) {
        quantize_row<S>(s, [](const float* x, block_of<S>* y) { S::quantize_row(x, y, cols); });
    });
    for (const auto t : kernels::compiled_targets())
        benchmark::RegisterBenchmark((name + t.name()).c_str(), [t](benchmark::State& s) {
            quantize_row<S>(s, [t](const float* x, block_of<S>* y) { kernels::unchecked::quantize_row<S>(x, y, cols, t); });
        });
}

template <scheme S>
void register_dequantize() {
    const std::string name = "dequantize_" + std::string(S::name) + "/";
    benchmark::RegisterBenchmark((name + "reference").c_str(), [](benchmark::State& s) {
        dequantize_row<S>(s, [](const block_of<S>* q, float* y) { S::dequantize_row(q, y, cols); });
    });
    for (const auto t : kernels::compiled_targets())
        benchmark::RegisterBenchmark((name + t.name()).c_str(), [t](benchmark::State& s) {
            dequantize_row<S>(s, [t](const block_of<S>* q, float* y) { kernels::unchecked::dequantize_row<S>(q, y, cols, t); });
        });
}

} // namespace

int main(int argc, char** argv) {
    roof_gbps = qtensor_bench::read_roof_gbps(1);
    std::printf("read roof: %.1f GB/s (1 thread)\n", roof_gbps);

    benchmark::RegisterBenchmark("gemv_q4_0_q8_0/reference", [](benchmark::State& s) {
        gemv(s, [](const block_q4_0* w, const block_q8_0* a) { return q4_0::dot_row(w, a, cols); });
    });
    benchmark::RegisterBenchmark("dequantize_q4_0/reference", [](benchmark::State& s) {
        dequantize(s, [](const block_q4_0* q, float* y) { q4_0::dequantize_row(q, y, cols); });
    });
    for (const auto t : kernels::compiled_targets()) {
        benchmark::RegisterBenchmark(("gemv_q4_0_q8_0/" + t.name()).c_str(), [t](benchmark::State& s) {
            gemv(s, [t](const block_q4_0* w, const block_q8_0* a) { return kernels::unchecked::dot_q4_0_q8_0(w, a, cols, t); });
        });
        benchmark::RegisterBenchmark(("dequantize_q4_0/" + t.name()).c_str(), [t](benchmark::State& s) {
            dequantize(s, [t](const block_q4_0* q, float* y) { kernels::unchecked::dequantize_q4_0(q, y, cols, t); });
        });
    }
    register_quantize<q4_0>();
    register_quantize<q8_0>();
    register_quantize<q8_k>();
    register_dequantize<q8_0>();
    register_dequantize<q2_k>();
    register_dequantize<f16>();
    register_dequantize<bf16>();
    benchmark::Initialize(&argc, argv);
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
}
