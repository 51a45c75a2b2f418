// Helpers shared by the benchmarks.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <random>
#include <thread>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace qtensor_bench {

// n standard-normal floats, the same every run.
inline std::vector<float> random_floats(std::size_t n) {
    std::mt19937 rng(42);
    std::normal_distribution<float> gauss(0.0f, 1.0f);
    std::vector<float> x(n);
    for (auto& v : x) v = gauss(rng);
    return x;
}

// ---- the memory roof -----------------------------------------------------------

namespace roof_detail {

// The sum of the 64-bit words p[0, n), n a multiple of 64, by the fastest
// read loops we could write, so that a kernel's fraction of the roof is
// honest (a kernel at 1.0 reads as fast as anything can): full-width loads
// into 8 independent integer accumulators, so no add latency chain and no
// float rounding, nothing but loads.
#if defined(__x86_64__) && defined(__GNUC__)
[[gnu::target("avx512f")]] inline std::uint64_t sum_avx512(const std::uint64_t* p, std::size_t n) {
    __m512i a[8];
    for (auto& v : a) v = _mm512_setzero_si512();
    for (std::size_t i = 0; i < n; i += 64)
        for (int k = 0; k < 8; ++k) a[k] = _mm512_add_epi64(a[k], _mm512_load_si512(p + i + 8 * k));
    for (int k = 1; k < 8; ++k) a[0] = _mm512_add_epi64(a[0], a[k]);
    return static_cast<std::uint64_t>(_mm512_reduce_add_epi64(a[0]));
}
[[gnu::target("avx2")]] inline std::uint64_t sum_avx2(const std::uint64_t* p, std::size_t n) {
    __m256i a[8];
    for (auto& v : a) v = _mm256_setzero_si256();
    for (std::size_t i = 0; i < n; i += 32)
        for (int k = 0; k < 8; ++k)
            a[k] = _mm256_add_epi64(a[k], _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 4 * k)));
    alignas(32) std::uint64_t out[4];
    for (int k = 1; k < 8; ++k) a[0] = _mm256_add_epi64(a[0], a[k]);
    _mm256_store_si256(reinterpret_cast<__m256i*>(out), a[0]);
    return out[0] + out[1] + out[2] + out[3];
}
#endif
inline std::uint64_t sum_plain(const std::uint64_t* p, std::size_t n) {
    std::uint64_t a[8] = {};
    for (std::size_t i = 0; i < n; i += 8)
        for (int k = 0; k < 8; ++k) a[k] += p[i + k];
    return a[0] + a[1] + a[2] + a[3] + a[4] + a[5] + a[6] + a[7];
}
// The loops this CPU runs. None is the fastest everywhere (on Zen 5 the
// AVX2 one reads faster than the AVX-512 one), so the roof takes the best.
using sum_fn = std::uint64_t (*)(const std::uint64_t*, std::size_t);
inline std::vector<sum_fn> sum_loops() {
    std::vector<sum_fn> loops{sum_plain};
#if defined(__x86_64__) && defined(__GNUC__)
    if (__builtin_cpu_supports("avx2")) loops.push_back(sum_avx2);
    if (__builtin_cpu_supports("avx512f")) loops.push_back(sum_avx512);
#endif
    return loops;
}

} // namespace roof_detail

// The machine's read bandwidth in GB/s on `threads` threads: a 1 GiB buffer
// (far beyond any cache), split in equal slices, each thread summing its own;
// the best over the loops above and 10 passes of each (after one to warm up):
// this shared machine's bandwidth wanders by a quarter from second to second.
inline double read_roof_gbps(std::size_t threads) {
    constexpr std::size_t words = std::size_t{1} << 27; // 1 GiB
    const std::size_t slice = words / threads / 64 * 64;
    // 64-byte aligned, written once so every page is resident before timing.
    std::vector<std::uint64_t> storage(words + 8, 1);
    auto* base = storage.data();
    while (reinterpret_cast<std::uintptr_t>(base) % 64 != 0) ++base;
    std::vector<std::uint64_t> sums(threads * 8);
    double best = 0.0;
    for (const roof_detail::sum_fn sum : roof_detail::sum_loops())
        for (int pass = 0; pass < 11; ++pass) {
            const auto t0 = std::chrono::steady_clock::now();
            std::vector<std::thread> pool;
            for (std::size_t i = 1; i < threads; ++i)
                pool.emplace_back([&, i] { sums[8 * i] = sum(base + i * slice, slice); });
            sums[0] = sum(base, slice);
            for (auto& t : pool) t.join();
            const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            if (sums[0] != slice) return 0.0; // every word is 1: a wrong sum means a wrong loop
            if (pass > 0) best = std::max(best, static_cast<double>(threads * slice * sizeof(std::uint64_t)) / s / 1e9);
        }
    return best;
}

} // namespace qtensor_bench
