// One short table of the kernels' speed on this machine, in about a minute:
//
//   <kernel> threads=<n> shape=<rows>x<cols> GBps=<x> roof=<fraction>
//   <kernel> threads=<n> shape=<rows>x<cols> batch=<T> GFLOPs=<x per thread>
//
// GEMV lines count GB/s of weight bytes out of cache: every matrix is at
// least 32 MiB, and the calls rotate over copies of it (gemv_line). `roof` is
// that rate over the read bandwidth of the same copies on the same threads,
// by the fastest read loops we have (bench_util.hpp), timed in turns with the
// GEMV, so the fraction holds on a noisy shared machine and cannot honestly
// exceed 1. gemv_in_cache lines time the same kernels on a matrix that stays
// in L2, against the read roof measured once at the start (read_roof_gbps):
// how far above the memory's speed the kernel itself runs. GEMM lines count
// 2 * rows * cols * batch flops per second, divided by the thread count.
// Quantize/dequantize lines count GB/s of f32 read or written on a
// cache-resident row of 4096 (roof is then only a scale, as the data never
// leaves the cache). Each figure is the best of several timed runs (at least
// 5, and at least 0.3 s in all), on the best target of this CPU.
//
// Usage: kernels_summary [--cpu] [name]   (--cpu: see cpu_time below; name:
// only the lines whose kernel name contains it).
#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "bench_util.hpp"
#include "qtensor/kernels/kernels.hpp"

namespace {

using namespace qtensor;
using clock_type = std::chrono::steady_clock;

// With --cpu, 1-thread figures use the calling thread's CPU time instead of
// wall time: on a machine shared with other jobs that is the figure an idle
// machine would give (memory bandwidth shared with other jobs aside).
bool cpu_time = false;
std::size_t timed_threads = 1;

double now_seconds() {
    if (cpu_time && timed_threads == 1) {
        timespec ts{};
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
    }
    return std::chrono::duration<double>(clock_type::now().time_since_epoch()).count();
}

// Best seconds per call of each f over at least 5 rounds and 0.3 s per f, on
// `threads` threads; the fs take turns, so each sees the same moments of a
// shared machine (whose bandwidth wanders by a quarter from second to second).
template <class... F>
std::array<double, sizeof...(F)> best_seconds_each(std::size_t threads, F&&... f) {
    timed_threads = threads;
    (f(), ...); // warm up: page faults, first-touch, thread start
    std::array<double, sizeof...(F)> best;
    best.fill(1e30);
    double total = 0.0;
    for (int i = 0; i < 5 || total < 0.3 * sizeof...(F); ++i) {
        std::size_t k = 0;
        const auto time = [&](auto& g) {
            const double t0 = now_seconds();
            g();
            const double s = now_seconds() - t0;
            best[k] = std::min(best[k], s);
            total += s;
            ++k;
        };
        (time(f), ...);
    }
    return best;
}

template <class F>
double best_seconds(std::size_t threads, F&& f) {
    return best_seconds_each(threads, f)[0];
}

// Random bytes for a weight matrix whose block scales are then made finite:
// GEMV speed does not depend on the values, and quantizing 64M floats (Q2_K's
// search above all) would take longer than the whole table.
std::uint64_t next_random(std::uint64_t& state) {
    state += 0x9e3779b97f4a7c15ull;
    std::uint64_t z = state;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

template <class S>
aligned_buffer random_weights(std::size_t rows, std::size_t cols, std::uint64_t seed) {
    aligned_buffer buf(rows * row_bytes<S>(cols));
    std::uint64_t state = seed;
    for (std::size_t i = 0; i + 8 <= buf.size(); i += 8) {
        const std::uint64_t v = next_random(state);
        std::memcpy(buf.data() + i, &v, 8);
    }
    auto* blocks = reinterpret_cast<block_of<S>*>(buf.data());
    const std::size_t count = buf.size() / sizeof(block_of<S>);
    for (std::size_t b = 0; b < count; ++b) {
        if constexpr (requires { blocks[b].dmin; }) {
            blocks[b].d = fp32_to_fp16(0.01f);
            blocks[b].dmin = fp32_to_fp16(0.002f);
        } else if constexpr (std::is_same_v<S, f32>) {
            blocks[b] = static_cast<float>(b % 13) * 0.01f;
        } else if constexpr (std::is_same_v<S, bf16>) {
            blocks[b] = fp32_to_bf16(static_cast<float>(b % 13) * 0.01f);
        } else {
            blocks[b].d = fp32_to_fp16(0.01f);
        }
    }
    return buf;
}

template <class S>
tensor_view<const S, 2> view_of(const aligned_buffer& buf, std::size_t rows, std::size_t cols) {
    return {std::span<const std::byte>(buf.data(), buf.size()), extents<2>{rows, cols}};
}

// read_roof_gbps on 1 and 2 threads, measured once at the start: the scale
// of the lines on cache-resident data.
struct roofs {
    double one = 0.0, two = 0.0;
};

void print_gbps(const char* kernel, std::size_t threads, std::size_t rows, std::size_t cols, double bytes,
                double seconds, double roof) {
    const double gbps = bytes / seconds / 1e9;
    std::printf("%s threads=%zu shape=%zux%zu GBps=%.1f roof=%.2f\n", kernel, threads, rows, cols, gbps,
                gbps / roof);
    std::fflush(stdout);
}

// Enough copies of a matrix (each of other random bytes, so that no layer of
// a virtual machine can share their pages) that consecutive calls never find
// their weights in the last-level cache: 512 MiB, or 8 times that cache where
// it is larger. GEMV then reads from memory like the read roof does.
std::size_t rotation_bytes() {
    const long llc = sysconf(_SC_LEVEL3_CACHE_SIZE);
    return std::max(std::size_t{512} << 20, 8 * static_cast<std::size_t>(std::max(llc, 0L)));
}

// The interleaved copies of a matrix, for the schemes that have a layout.
template <class S, bool = kernels::interleavable_scheme<S>>
struct interleaved_copies {
    std::vector<kernels::interleaved<S>> of;
};
template <class S>
struct interleaved_copies<S, false> {};

// GEMV of a [rows, cols] matrix of S, plain or interleaved. Its roof is the
// fastest read loop over the same copies on the same threads, timed in turns
// with the GEMV (best_seconds_each): on a shared machine a roof measured
// once beforehand is another moment's bandwidth.
template <class S>
void gemv_line(const char* kernel, std::size_t rows, std::size_t cols, bool interleave,
               const std::vector<kernels::thread_pool*>& pools) {
    const std::size_t bytes = rows * row_bytes<S>(cols);
    const std::size_t copies = (rotation_bytes() + bytes - 1) / bytes;
    std::vector<aligned_buffer> w;
    for (std::size_t i = 0; i < copies; ++i) w.push_back(random_weights<S>(rows, cols, 42 + i));
    const auto x = qtensor_bench::random_floats(cols);
    std::vector<float> y(rows);
    [[maybe_unused]] interleaved_copies<S> iw;
    if constexpr (kernels::interleavable_scheme<S>)
        if (interleave)
            for (const auto& copy : w) iw.of.emplace_back(view_of<S>(copy, rows, cols), pools.back()->get_executor());
    const auto loops = qtensor_bench::roof_detail::sum_loops();
    std::vector<std::uint64_t> sink(8 * pools.back()->size());
    for (auto* pool : pools) {
        const auto ex = pool->get_executor();
        const std::size_t slice = bytes / 8 / pool->size() / 64 * 64; // words per thread
        std::size_t next = 0, next_read = copies / 2; // never the copy the GEMV just left in cache
        const auto gemv = [&] {
            if constexpr (kernels::interleavable_scheme<S>)
                if (interleave) return kernels::gemv(iw.of[next++ % copies], x, y, ex);
            kernels::gemv(view_of<S>(w[next++ % copies], rows, cols), x, y, ex);
        };
        const auto read = [&] { // each loop in turn: the best of them is the roof
            const auto sum = loops[next_read % loops.size()];
            const auto* words = reinterpret_cast<const std::uint64_t*>(w[next_read++ % copies].data());
            pool->run(pool->size(), [&](std::size_t i) { sink[8 * i] = sum(words + i * slice, slice); });
        };
        const auto [gemv_s, read_s] = best_seconds_each(pool->size(), gemv, read);
        const double roof = static_cast<double>(8 * slice * pool->size()) / read_s / 1e9;
        print_gbps(kernel, pool->size(), rows, cols, static_cast<double>(bytes), gemv_s, roof);
    }
}

// GEMV of S on a matrix of about 512 KiB, which stays in this core's L2 from
// call to call: the kernel's own speed with memory out of the way. Over the
// read roof, this is the headroom: well above 1, a kernel out of cache waits
// on memory; near 1, on its own instructions.
template <class S>
void gemv_in_cache_line(const char* kernel, std::size_t cols, const roofs& roof, kernels::thread_pool& one) {
    const std::size_t rows = (std::size_t{512} << 10) / row_bytes<S>(cols);
    const auto w = random_weights<S>(rows, cols, 42);
    const auto x = qtensor_bench::random_floats(cols);
    std::vector<float> y(rows);
    const auto ex = one.get_executor();
    const double s = best_seconds(1, [&] {
        for (int i = 0; i < 100; ++i) kernels::gemv(view_of<S>(w, rows, cols), x, y, ex);
    });
    print_gbps(kernel, 1, rows, cols, 100.0 * static_cast<double>(w.size()), s, roof.one);
}

template <class S>
void gemm_line(const char* kernel, std::size_t rows, std::size_t cols, std::size_t batch, bool interleave,
               kernels::thread_pool& pool) {
    const auto w = random_weights<S>(rows, cols, 42);
    const auto view = view_of<S>(w, rows, cols);
    const auto x = qtensor_bench::random_floats(cols * batch);
    std::vector<float> y(rows * batch);
    const auto ex = pool.get_executor();
    double s = 0.0;
    if (interleave) {
        const kernels::interleaved<S> iw(view);
        s = best_seconds(pool.size(), [&] { kernels::gemm(iw, x, y, ex); });
    } else {
        s = best_seconds(pool.size(), [&] { kernels::gemm(view, x, y, ex); });
    }
    const double flops = 2.0 * static_cast<double>(rows * cols * batch);
    std::printf("%s threads=%zu shape=%zux%zu batch=%zu GFLOPs=%.0f\n", kernel, pool.size(), rows, cols, batch,
                flops / s / 1e9 / static_cast<double>(pool.size()));
    std::fflush(stdout);
}

constexpr std::size_t quant_cols = 4096;

template <class S>
void quantize_line(const roofs& roof) {
    const auto x = qtensor_bench::random_floats(quant_cols);
    std::vector<block_of<S>> q(blocks_per_row<S>(quant_cols));
    const double s = best_seconds(1, [&] {
        for (int i = 0; i < 100; ++i) kernels::quantize_row<S>(x, q);
    });
    const std::string name = "quantize_" + std::string(S::name);
    print_gbps(name.c_str(), 1, 1, quant_cols, 100.0 * quant_cols * sizeof(float), s, roof.one);
}

template <class S>
void dequantize_line(const roofs& roof) {
    const auto q = quantize<S>(qtensor_bench::random_floats(quant_cols));
    std::vector<float> y(quant_cols);
    const double s = best_seconds(1, [&] {
        for (int i = 0; i < 100; ++i) kernels::dequantize_row<S>(q, y);
    });
    const std::string name = "dequantize_" + std::string(S::name);
    print_gbps(name.c_str(), 1, 1, quant_cols, 100.0 * quant_cols * sizeof(float), s, roof.one);
}

} // namespace

int main(int argc, char** argv) {
    // [--cpu] [name]: see cpu_time; keep only the lines whose kernel name contains `name`.
    std::string only;
    for (int i = 1; i < argc; ++i) {
        if (std::string(argv[i]) == "--cpu") cpu_time = true;
        else only = argv[i];
    }
    const auto want = [&](const char* kernel) { return std::string(kernel).find(only) != std::string::npos; };
    kernels::thread_pool one(1), two(2);
    const roofs roof{qtensor_bench::read_roof_gbps(1), qtensor_bench::read_roof_gbps(2)};
    std::printf("read_roof threads=1 GBps=%.1f\nread_roof threads=2 GBps=%.1f\n", roof.one, roof.two);
    std::printf("target=%s hardware_threads=%u\n", kernels::compiled_targets().front().name().c_str(),
                std::thread::hardware_concurrency());
    const std::vector<kernels::thread_pool*> both{&one, &two};
    if (want("gemv_q4_0")) gemv_line<q4_0>("gemv_q4_0", 8192, 8192, false, both);
    if (want("gemv_q4_0_interleaved")) gemv_line<q4_0>("gemv_q4_0_interleaved", 8192, 8192, true, both);
    if (want("gemv_q8_0")) gemv_line<q8_0>("gemv_q8_0", 8192, 4096, false, both);
    if (want("gemv_q8_0_interleaved")) gemv_line<q8_0>("gemv_q8_0_interleaved", 8192, 4096, true, both);
    if (want("gemv_q2_k")) gemv_line<q2_k>("gemv_q2_k", 16384, 8192, false, both);
    if (want("gemv_q3_k")) gemv_line<q3_k>("gemv_q3_k", 16384, 8192, false, both);
    if (want("gemv_q4_k")) gemv_line<q4_k>("gemv_q4_k", 8192, 8192, false, both);
    if (want("gemv_q5_k")) gemv_line<q5_k>("gemv_q5_k", 8192, 8192, false, both);
    if (want("gemv_q6_k")) gemv_line<q6_k>("gemv_q6_k", 8192, 4096, false, both);
    if (want("gemv_bf16")) gemv_line<bf16>("gemv_bf16", 8192, 4096, false, both);
    if (want("gemv_f32")) gemv_line<f32>("gemv_f32", 4096, 4096, false, both);
    if (want("gemv_in_cache_q4_0")) gemv_in_cache_line<q4_0>("gemv_in_cache_q4_0", 1024, roof, one);
    if (want("gemv_in_cache_q8_0")) gemv_in_cache_line<q8_0>("gemv_in_cache_q8_0", 1024, roof, one);
    if (want("gemv_in_cache_q2_k")) gemv_in_cache_line<q2_k>("gemv_in_cache_q2_k", 1024, roof, one);
    if (want("gemv_in_cache_q3_k")) gemv_in_cache_line<q3_k>("gemv_in_cache_q3_k", 1024, roof, one);
    if (want("gemv_in_cache_q4_k")) gemv_in_cache_line<q4_k>("gemv_in_cache_q4_k", 1024, roof, one);
    if (want("gemv_in_cache_q5_k")) gemv_in_cache_line<q5_k>("gemv_in_cache_q5_k", 1024, roof, one);
    if (want("gemv_in_cache_q6_k")) gemv_in_cache_line<q6_k>("gemv_in_cache_q6_k", 1024, roof, one);
    if (want("gemm_q4_0_interleaved")) gemm_line<q4_0>("gemm_q4_0_interleaved", 4096, 4096, 64, true, one);
    if (want("gemm_q4_0_interleaved")) gemm_line<q4_0>("gemm_q4_0_interleaved", 4096, 4096, 64, true, two);
    if (want("gemm_q4_0")) gemm_line<q4_0>("gemm_q4_0", 4096, 4096, 64, false, one);
    if (want("quantize_q4_0")) quantize_line<q4_0>(roof);
    if (want("quantize_q8_0")) quantize_line<q8_0>(roof);
    if (want("quantize_q8_k")) quantize_line<q8_k>(roof);
    if (want("dequantize_q4_0")) dequantize_line<q4_0>(roof);
    if (want("dequantize_q8_0")) dequantize_line<q8_0>(roof);
    if (want("dequantize_q2_k")) dequantize_line<q2_k>(roof);
    if (want("dequantize_bf16")) dequantize_line<bf16>(roof);
}
