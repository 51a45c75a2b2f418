// scheme/lattice.hpp on blocks whose grids the test builds itself: ggml's
// Q4_0 grid (what fake_quant<q4_0> trains on), a symmetric amax / 7 grid (a
// symmetric int4 recipe), the same stored as bf16, random blocks on no grid.
#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "qtensor/core/half.hpp"
#include "qtensor/scheme/lattice.hpp"
#include "qtensor/scheme/q4_0.hpp"
#include "qtensor/scheme/q4_0_symmetric.hpp"

using namespace qtensor;

namespace {

using block = std::array<float, 32>;

block random_block(std::mt19937& rng, float scale = 0.05f) {
    std::normal_distribution<float> normal(0.0f, scale);
    block x{};
    for (float& v : x) v = normal(rng);
    return x;
}

// ggml's grid: the block packed as Q4_0 and unpacked.
block on_ggml_grid(const block& x) {
    block_q4_0 q{};
    q4_0::quantize_row(x.data(), &q, 32);
    block y{};
    q4_0::dequantize_row(&q, y.data(), 32);
    return y;
}

// A symmetric grid: s = amax / 7, codes round(x / s) in -7..7.
block on_symmetric_grid(const block& x, float* step) {
    float amax = 0;
    for (float v : x) amax = std::fmax(amax, std::fabs(v));
    *step = amax / 7;
    block y{};
    for (std::size_t i = 0; i < 32; ++i) y[i] = *step * std::nearbyint(x[i] / *step);
    return y;
}

block as_bf16(const block& x) {
    block y{};
    for (std::size_t i = 0; i < 32; ++i) y[i] = bf16_to_fp32(fp32_to_bf16(x[i]));
    return y;
}

block unpacked(const block_q4_0& q) {
    block y{};
    q4_0::dequantize_row(&q, y.data(), 32);
    return y;
}

} // namespace

TEST_CASE("lattice: a block on ggml's grid is found on it, and both packings give it back exactly") {
    std::mt19937 rng(1);
    for (int t = 0; t < 200; ++t) {
        const block y = on_ggml_grid(random_block(rng));
        const lattice::grid_fit f = lattice::fit_q4_0(y.data(), lattice::unit_roundoff_f32);
        block_q4_0 ggml{};
        q4_0::quantize_row(y.data(), &ggml, 32);
        INFO("block " << t);
        CHECK(f.on_grid);
        CHECK(f.code_max == 8); // 32 random codes are not all even
        CHECK(f.step == std::fabs(fp16_to_fp32(ggml.d)));
        CHECK(f.residual == 0.0f);
        CHECK(unpacked(lattice::pack_on_grid(y.data(), f)) == y);
        CHECK(unpacked(ggml) == y); // ggml's rule re-packs its own grid exactly
    }
}

TEST_CASE("lattice: a symmetric amax/7 grid is recovered; ggml's rule moves it, the aligned packing does not") {
    std::mt19937 rng(2);
    for (const bool bf16 : {false, true}) {
        const float u = bf16 ? lattice::unit_roundoff_bf16 : lattice::unit_roundoff_f32;
        for (int t = 0; t < 200; ++t) {
            float step = 0;
            block y = on_symmetric_grid(random_block(rng), &step);
            if (bf16) y = as_bf16(y);
            const lattice::grid_fit f = lattice::fit_q4_0(y.data(), u);
            INFO((bf16 ? "bf16" : "f32") << " block " << t);
            REQUIRE(f.on_grid);
            CHECK(f.code_max == 7);
            CHECK(std::fabs(f.step - step) <= 2 * u * step);
            // Aligned: back to within the fp16 rounding of the step (2^-11
            // relative) plus the bf16 rounding of the values.
            const block a = unpacked(lattice::pack_on_grid(y.data(), f));
            const block g = on_ggml_grid(y);
            float worst_aligned = 0, worst_ggml = 0;
            for (std::size_t i = 0; i < 32; ++i) {
                worst_aligned = std::fmax(worst_aligned, std::fabs(a[i] - y[i]));
                worst_ggml = std::fmax(worst_ggml, std::fabs(g[i] - y[i]));
            }
            CHECK(worst_aligned <= 7 * step * (0x1p-11f + 2 * u));
            CHECK(worst_ggml > 0.05f * step); // re-rounded onto amax / 8 steps
        }
    }
}

TEST_CASE("lattice: q4_0_symmetric's blocks lie on amax/7 grids that the aligned packing keeps exactly") {
    // What a model trained with fake_quant<q4_0_symmetric> holds (f32, exact).
    std::mt19937 rng(3);
    for (int t = 0; t < 200; ++t) {
        const block x = random_block(rng);
        block_q4_0 q{};
        q4_0_symmetric::quantize_row(x.data(), &q, 32);
        const block y = unpacked(q);
        const lattice::grid_fit f = lattice::fit_q4_0(y.data(), lattice::unit_roundoff_f32);
        INFO("block " << t);
        REQUIRE(f.on_grid);
        CHECK(f.code_max == 7);
        CHECK(f.step == fp16_to_fp32(q.d));
        CHECK(unpacked(lattice::pack_on_grid(y.data(), f)) == y);
        CHECK(unpacked(lattice::pack_on_grid(y.data(), f)) != on_ggml_grid(y));
    }
}

TEST_CASE("lattice: a grid with code +8 packs with a negative scale") {
    block y{};
    for (std::size_t i = 0; i < 32; ++i) y[i] = 0.25f * static_cast<float>(static_cast<int>(i % 16) - 7); // -7..8
    const lattice::grid_fit f = lattice::fit_q4_0(y.data(), lattice::unit_roundoff_f32);
    REQUIRE(f.on_grid);
    CHECK(f.code_max == 8);
    CHECK(f.step == 0.25f);
    const block_q4_0 q = lattice::pack_on_grid(y.data(), f);
    CHECK(fp16_to_fp32(q.d) == -0.25f);
    CHECK(unpacked(q) == y);
}

TEST_CASE("lattice: codes -8 and +8 together, random values, zeros and NaN") {
    block both{};
    both[0] = -8.0f;
    both[1] = 8.0f;
    both[2] = 1.0f;
    CHECK_FALSE(lattice::fit_q4_0(both.data(), lattice::unit_roundoff_f32).on_grid);

    std::mt19937 rng(3);
    std::size_t on = 0;
    for (int t = 0; t < 200; ++t) {
        const block x = random_block(rng);
        const lattice::grid_fit f = lattice::fit_q4_0(x.data(), lattice::unit_roundoff_bf16);
        on += f.on_grid;
        CHECK(f.code_max == 8);
        CHECK(f.residual > 0.0f);
        CHECK(f.residual <= 0.5f + 1e-4f);
    }
    CHECK(on == 0);

    const block zero{};
    const lattice::grid_fit z = lattice::fit_q4_0(zero.data(), lattice::unit_roundoff_f32);
    CHECK(z.on_grid);
    CHECK(z.code_max == 0);
    block_q4_0 ggml{};
    q4_0::quantize_row(zero.data(), &ggml, 32);
    const block_q4_0 aligned = lattice::pack_on_grid(zero.data(), z);
    CHECK(aligned.d.bits == ggml.d.bits);
    CHECK(aligned.qs == ggml.qs);

    block nan = on_ggml_grid(random_block(rng));
    nan[9] = std::numeric_limits<float>::quiet_NaN();
    CHECK_FALSE(lattice::fit_q4_0(nan.data(), lattice::unit_roundoff_f32).on_grid);
    std::array<block_q4_0, 1> out{};
    CHECK_THROWS_AS(lattice::quantize_row_aligned(nan.data(), out.data(), 32, lattice::unit_roundoff_f32),
                    qtensor::error);
}

TEST_CASE("lattice: a report counts the grids, the blocks ggml's rule moves and both errors") {
    std::mt19937 rng(4);
    std::vector<float> row; // 10 blocks on ggml's grid, 6 on amax / 7 grids, 4 on none, in bf16
    for (int t = 0; t < 10; ++t) {
        const block y = as_bf16(on_ggml_grid(random_block(rng)));
        row.insert(row.end(), y.begin(), y.end());
    }
    for (int t = 0; t < 6; ++t) {
        float step = 0;
        const block y = as_bf16(on_symmetric_grid(random_block(rng), &step));
        row.insert(row.end(), y.begin(), y.end());
    }
    for (int t = 0; t < 4; ++t) {
        const block y = as_bf16(random_block(rng));
        row.insert(row.end(), y.begin(), y.end());
    }
    lattice::report grid, off;
    for (std::size_t b = 0; b < row.size() / 32; ++b) (b < 16 ? grid : off).add(row.data() + 32 * b, lattice::unit_roundoff_bf16);
    CHECK(grid.aligned_sq < grid.ggml_sq);
    CHECK(grid.aligned_max < grid.ggml_max);
    CHECK(off.aligned_sq == off.ggml_sq); // off every grid: ggml's rule for both
    lattice::report r = grid;
    r.merge(off);
    CHECK(r.blocks == 20);
    CHECK(r.on_grid == 16);
    CHECK(r.by_code_max[8] == 10);
    CHECK(r.by_code_max[7] == 6);
    CHECK(r.moved == 10); // the amax / 7 blocks and the random ones
    CHECK(r.ggml_sq == grid.ggml_sq + off.ggml_sq);

    // quantize_row_aligned packs each block as the report's aligned packing does.
    std::vector<block_q4_0> q(row.size() / 32);
    lattice::quantize_row_aligned(row.data(), q.data(), row.size(), lattice::unit_roundoff_bf16);
    std::vector<float> back(row.size());
    q4_0::dequantize_row(q.data(), back.data(), back.size());
    double sq = 0;
    for (std::size_t i = 0; i < row.size(); ++i) sq += (static_cast<double>(back[i]) - row[i]) * (back[i] - row[i]);
    CHECK(sq == doctest::Approx(r.aligned_sq).epsilon(1e-12));
}
