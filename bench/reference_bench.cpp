// Speed of the scalar reference quantizers, dequantizers and dot products.
// These define the formats; the SIMD kernels are measured against them.
// Throughput is reported in bytes of f32 read (quantize) or written (dequantize).
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "bench_util.hpp"
#include "qtensor/qtensor.hpp"

namespace {

using qtensor_bench::random_floats;

constexpr std::size_t cols = 4096;

template <class S>
void quantize_reference(benchmark::State& state) {
    const auto x = random_floats(cols);
    std::vector<qtensor::block_of<S>> q(cols / S::block_elems);
    for (auto _ : state) {
        S::quantize_row(x.data(), q.data(), cols);
        benchmark::DoNotOptimize(q.data());
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * cols * sizeof(float)));
}

template <class S>
void dequantize_reference(benchmark::State& state) {
    const auto q = qtensor::quantize<S>(random_floats(cols));
    std::vector<float> y(cols);
    for (auto _ : state) {
        S::dequantize_row(q.data(), y.data(), cols);
        benchmark::DoNotOptimize(y.data());
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * cols * sizeof(float)));
}

template <class S>
void dot_reference(benchmark::State& state) {
    using P = typename S::dot_partner;
    const auto w = qtensor::quantize<S>(random_floats(cols));
    const auto a = qtensor::quantize<P>(random_floats(cols));
    for (auto _ : state) benchmark::DoNotOptimize(S::dot_row(w.data(), a.data(), cols));
    // Weight bytes streamed, the figure GEMV is judged by.
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * qtensor::row_bytes<S>(cols)));
}

} // namespace

BENCHMARK(quantize_reference<qtensor::q4_0>);
BENCHMARK(quantize_reference<qtensor::q8_0>);
BENCHMARK(dequantize_reference<qtensor::q4_0>);
BENCHMARK(dequantize_reference<qtensor::q8_0>);
BENCHMARK(dot_reference<qtensor::q4_0>);
BENCHMARK(dot_reference<qtensor::q8_0>);
