// fake_quant<S>: the forward equals dequantize<S>(quantize<S>(x)) bit for bit on
// blocks built to hit each rule's corners; the backward is the straight-through
// estimator with the clip mask, checked against finite differences of the
// forward taken away from the rounding boundaries.
//
// Expected values come from the rules in docs/schemes.md (the lattice each block
// sits on), never from the code under test.
#include <doctest/doctest.h>

#include "test_util.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "qtensor/scheme/fake_quant.hpp"
#include "qtensor/scheme/q2_k.hpp"
#include "qtensor/scheme/q4_0.hpp"
#include "qtensor/scheme/q4_0_symmetric.hpp"
#include "qtensor/scheme/q4_k.hpp"
#include "qtensor/scheme/q5_k.hpp"
#include "qtensor/scheme/q8_0.hpp"
#include "qtensor/scheme/q8_k.hpp"

using namespace qtensor;
using qtensor_test::message_of;

// Every quantized scheme the library trains with (q4_0_symmetric: another
// rounding rule for Q4_0 blocks).
#define QTENSOR_FQ_SCHEMES q4_0, q4_0_symmetric, q8_0, q8_k, q2_k, q4_k, q5_k

namespace {

// What the tests know about each scheme, from docs/schemes.md (not from its code).
//
// Pivot schemes (Q4_0, Q8_0, Q8_K: one scale per block): the pivot is the first
// element of largest |x|; it sets the code scale d = pivot / divisor (signed
// pivot for Q4_0 and Q8_K, |pivot| for Q8_0). Element x sits at v = x / d in
// [-v_max, v_max]; its code is v rounded to an integer (the half-integers are
// the boundaries); v >= v_clamp is clamped. The output grid step is the stored
// |d|.
//
// K-quants (Q2_K, Q4_K): sub-block j has step D = fp32(d) * s_j and offset
// dm = fp32(dmin) * m_j (read back from the block); x sits at
// v = (x + dm) / D, its code is v rounded (half-integer boundaries), clamped
// into 0..nmax. The scales come out of a search over the whole sub-block, so a
// finite difference only holds the lattice still when the perturbed block's
// scale bytes are unchanged; the tests check that before using it.
enum class lattice { pivot, k_quant };

template <class S>
struct rules;

template <>
struct rules<q4_0> {
    static constexpr lattice kind = lattice::pivot;
    static constexpr float max_abs = 8.0f * 65504.0f; // |pivot| whose d = pivot / -8 fits fp16
    static constexpr bool clamps = true;
    static constexpr bool exact_outputs = true; // (code - 8) * fp16 d is exact in fp32
    static constexpr bool signed_pivot = true;
    static constexpr float divisor = -8.0f;
    static constexpr double v_max = 8.0;
    static constexpr double v_clamp = 7.5; // code floor(v + 8.5) = 16 -> 15
    static constexpr int tie_lo = -8, tie_hi = 7; // ties at v = k + 0.5
    static float step(const block_q4_0& q) { return std::fabs(fp16_to_fp32(q.d)); }
};

template <>
struct rules<q4_0_symmetric> {
    static constexpr lattice kind = lattice::pivot;
    static constexpr float max_abs = 7.0f * 65504.0f; // d = amax / 7 fits fp16
    static constexpr bool clamps = false;              // |v| <= 7 never needs a clamp
    static constexpr bool exact_outputs = true;        // (code - 8) * fp16 d: 3 + 11 bits
    static constexpr bool signed_pivot = false;
    static constexpr float divisor = 7.0f;
    static constexpr double v_max = 7.0;
    static constexpr double v_clamp = std::numeric_limits<double>::infinity();
    static constexpr int tie_lo = -7, tie_hi = 6; // ties at v = k + 0.5, rounded away from zero
    static float step(const block_q4_0& q) { return std::fabs(fp16_to_fp32(q.d)); }
};

template <>
struct rules<q8_0> {
    static constexpr lattice kind = lattice::pivot;
    static constexpr float max_abs = 127.0f * 65504.0f;
    static constexpr bool clamps = false; // |v| <= 127 never needs a clamp
    static constexpr bool exact_outputs = true; // code * fp16 d: 7 + 11 bits
    static constexpr bool signed_pivot = false;
    static constexpr float divisor = 127.0f;
    static constexpr double v_max = 127.0;
    static constexpr double v_clamp = std::numeric_limits<double>::infinity();
    static constexpr int tie_lo = -127, tie_hi = 126;
    static float step(const block_q8_0& q) { return std::fabs(fp16_to_fp32(q.d)); }
};

template <>
struct rules<q8_k> {
    static constexpr lattice kind = lattice::pivot;
    static constexpr float max_abs = 1.0e38f; // fp32 scale: no fp16 limit
    static constexpr bool clamps = false;
    static constexpr bool exact_outputs = false; // fp32 d * code rounds
    static constexpr bool signed_pivot = true;   // d = 1 / (-127 / max)
    static constexpr float divisor = -127.0f;
    static constexpr double v_max = 127.0;
    static constexpr double v_clamp = std::numeric_limits<double>::infinity();
    static constexpr int tie_lo = -127, tie_hi = 126;
    static float step(const block_q8_k& q) { return std::fabs(q.d); }
};

template <>
struct rules<q2_k> {
    static constexpr lattice kind = lattice::k_quant;
    // dmin = fp16(max_min / 15) must fit. The least-squares min reaches past the
    // block's minimum: up to 1.13 max |x| over 20000 trial blocks. 20% margin.
    static constexpr float max_abs = 0.8f * 15.0f * 65504.0f;
    static constexpr bool clamps = true;
    static constexpr int nmax = 3;
    static constexpr std::size_t sub_elems = 16;
    static bool same_scales(const block_q2_k& a, const block_q2_k& b) {
        return a.scales == b.scales && a.d == b.d && a.dmin == b.dmin;
    }
};

template <>
struct rules<q4_k> {
    static constexpr lattice kind = lattice::k_quant;
    static constexpr float max_abs = 0.9f * 63.0f * 65504.0f; // dmin as Q2_K's; up to 1.05 max |x|
    static constexpr bool clamps = true;
    static constexpr int nmax = 15;
    static constexpr std::size_t sub_elems = 32;
    static bool same_scales(const block_q4_k& a, const block_q4_k& b) {
        return a.scales == b.scales && a.d == b.d && a.dmin == b.dmin;
    }
};

template <>
struct rules<q5_k> {
    static constexpr lattice kind = lattice::k_quant;
    static constexpr float max_abs = 0.9f * 63.0f * 65504.0f; // dmin as Q4_K's
    static constexpr bool clamps = true;
    static constexpr int nmax = 31;
    static constexpr std::size_t sub_elems = 32;
    static bool same_scales(const block_q5_k& a, const block_q5_k& b) {
        return a.scales == b.scales && a.d == b.d && a.dmin == b.dmin;
    }
};

// K-quant sub-block j's step D and offset dm, as the dequantizer forms them.
template <class S>
float k_step(const block_of<S>& q, std::size_t j) {
    return fp16_to_fp32(q.d) * static_cast<float>(S::scale_of(q, j));
}
template <class S>
float k_offset(const block_of<S>& q, std::size_t j) {
    return detail::fmul(fp16_to_fp32(q.dmin), static_cast<float>(S::min_of(q, j)));
}

// Elements each test covers per scheme, so the 256-element schemes (whose
// quantizer is a search ~100 times slower per element than Q4_0's) are not
// 8x heavier. 3.2M elements = 10^5 blocks of 32 = 12500 super-blocks of 256
// (10^5 Q4_K sub-blocks, 2 * 10^5 Q2_K sub-blocks).
constexpr std::size_t identity_elements = 3200000;

template <class S>
constexpr std::size_t blocks_for(std::size_t elements) {
    return elements / S::block_elems;
}

std::uint32_t bits(float f) { return std::bit_cast<std::uint32_t>(f); }

std::size_t first_amax_index(std::span<const float> x) {
    std::size_t p = 0;
    float amax = 0.0f;
    for (std::size_t j = 0; j < x.size(); ++j)
        if (amax < std::fabs(x[j])) {
            amax = std::fabs(x[j]);
            p = j;
        }
    return p;
}

// Ties. Pivot schemes: a block whose scale is a power of two, d = +-2^e
// exactly, so every other element x = (k + 1/2) * d sits exactly half-way
// between two codes and the scheme's tie rule (Q4_0 half up, Q8_0 half away,
// Q8_K half even) decides each one. K-quants: the scales come from a search,
// so no block is guaranteed to tie; sub-blocks of values on a half-integer
// lattice make ties likely, and the identity test counts the ones it met.
template <class S>
void fill_ties(std::mt19937& rng, std::span<float> x) {
    using R = rules<S>;
    std::uniform_int_distribution<int> exponent(-20, 12);
    const float d = std::ldexp(rng() & 1 ? 1.0f : -1.0f, exponent(rng));
    if constexpr (R::kind == lattice::pivot) {
        std::uniform_int_distribution<int> k(R::tie_lo, R::tie_hi);
        std::uniform_int_distribution<std::size_t> pos(0, x.size() - 1);
        for (auto& v : x) v = (static_cast<float>(k(rng)) + 0.5f) * d;
        x[pos(rng)] = R::signed_pivot ? d * R::divisor : std::fabs(d) * R::divisor;
    } else {
        // Gaussian sub-blocks of different magnitudes (so most do not hold the
        // super-scales), then elements moved to exact half-way points of their
        // sub-block's lattice, v = (x + dm) / D = L + 1/2, four at a time; a
        // move that changes the block's scales is undone.
        std::normal_distribution<float> gauss(0.0f, 1.0f);
        std::uniform_int_distribution<std::size_t> pos(0, x.size() - 1);
        std::uniform_int_distribution<int> code(0, R::nmax - 1);
        for (std::size_t j = 0; j < x.size(); j += R::sub_elems) {
            const float sj = std::fabs(d) * static_cast<float>(1 + rng() % 10);
            for (std::size_t i = j; i < j + R::sub_elems; ++i) x[i] = sj * gauss(rng);
        }
        const auto q = quantize<S>(x);
        std::vector<float> moved(x.begin(), x.end());
        for (int round = 0; round < 4; ++round) {
            for (int t = 0; t < 4; ++t) {
                const std::size_t i = pos(rng);
                const float D = k_step<S>(q[0], i / R::sub_elems);
                const float dm = k_offset<S>(q[0], i / R::sub_elems);
                const float half = static_cast<float>(code(rng)) + 0.5f;
                const float xi = half * D - dm;
                if (D != 0.0f && (xi + dm) / D == half) moved[i] = xi;
            }
            if (R::same_scales(quantize<S>(moved)[0], q[0])) std::copy(moved.begin(), moved.end(), x.begin());
            else std::copy(x.begin(), x.end(), moved.begin());
        }
    }
}

// One block of a deterministic mix: gaussian rows with per-block scales from
// 1e-6 to 1e4, all-zero blocks, exact ties, tiny values (fp16-subnormal and
// underflowing scales, fp32 subnormals), huge values up to the scale limit,
// single spikes, and equal magnitudes of both signs at the maximum (the
// first-occurrence tie-break; for Q4_0 the second one clamps).
template <class S>
void fill_block(std::mt19937& rng, std::span<float> x) {
    std::normal_distribution<float> gauss(0.0f, 1.0f);
    std::uniform_real_distribution<float> unit(0.0f, 1.0f);
    std::uniform_int_distribution<std::size_t> pos(0, x.size() - 1);
    const auto gaussian = [&](float s) {
        for (auto& v : x) v = s * gauss(rng);
    };
    const float max_abs = rules<S>::max_abs;
    switch (rng() % 10) {
    case 0: case 1: case 2:
        gaussian(std::pow(10.0f, -6.0f + 10.0f * unit(rng)));
        break;
    case 3: { // all zero, either sign
        const float z = rng() & 1 ? 0.0f : -0.0f;
        for (auto& v : x) v = z;
        break;
    }
    case 4:
        fill_ties<S>(rng, x);
        break;
    case 5: { // tiny: 2^-140 (fp32 subnormal) to 2^-10 (fp16-subnormal scales)
        const int e = std::uniform_int_distribution<int>(-140, -10)(rng);
        for (auto& v : x) v = std::ldexp(gauss(rng), e);
        break;
    }
    case 6: { // huge: max |x| in [max_abs / 2, max_abs], sometimes exactly max_abs
        gaussian(1.0f);
        const std::size_t p = first_amax_index(x);
        const float target = rng() % 4 == 0 ? max_abs : max_abs * (0.5f + 0.5f * unit(rng));
        const float scale = target / std::fabs(x[p]);
        for (auto& v : x) v = std::fmin(std::fabs(v * scale), target) * (v < 0 ? -1.0f : 1.0f);
        x[p] = std::copysign(target, x[p]);
        break;
    }
    case 7: { // a single spike on zeros or on noise far below it
        const float spike = std::fmin(std::pow(10.0f, -6.0f + 11.0f * unit(rng)), max_abs);
        if (rng() & 1) gaussian(spike * 1e-4f);
        else for (auto& v : x) v = 0.0f;
        x[pos(rng)] = rng() & 1 ? spike : -spike;
        break;
    }
    default: { // +a and -a both at the maximum magnitude, in random order
        const float s = std::pow(10.0f, -3.0f + 6.0f * unit(rng));
        gaussian(s);
        const float a = 4.0f * s * (1.0f + unit(rng));
        const std::size_t i = pos(rng);
        const std::size_t j = (i + 1 + pos(rng) % (x.size() - 1)) % x.size();
        x[i] = a;
        x[j] = -a;
        break;
    }
    }
}

template <class S>
std::vector<float> make_blocks(std::mt19937& rng, std::size_t blocks) {
    std::vector<float> x(blocks * S::block_elems);
    for (std::size_t b = 0; b < blocks; ++b)
        fill_block<S>(rng, std::span(x).subspan(b * S::block_elems, S::block_elems));
    return x;
}

// Exact ties met by the code rounding of blocks q[] of x[]: elements whose
// scaled value (computed as docs/schemes.md does it) is exactly half-way.
template <class S>
std::size_t count_ties(std::span<const float> x, std::span<const block_of<S>> q) {
    using R = rules<S>;
    constexpr std::size_t E = S::block_elems;
    std::size_t ties = 0;
    for (std::size_t b = 0; b < q.size(); ++b) {
        const float* xb = x.data() + b * E;
        if constexpr (R::kind == lattice::pivot) {
            const float pivot = xb[first_amax_index(std::span(xb, E))];
            const float m = R::signed_pivot ? pivot : std::fabs(pivot);
            // Q8_K multiplies by -127 / max; Q4_0 and Q8_0 by 1 / (max / divisor).
            const float scale = std::is_same_v<S, q8_k> ? (m != 0.0f ? R::divisor / m : 0.0f)
                                                        : detail::code_reciprocal(m / R::divisor);
            for (std::size_t i = 0; i < E; ++i) {
                const float v = detail::fmul(xb[i], scale);
                ties += std::isfinite(v) && v - std::floor(v) == 0.5f;
            }
        } else {
            for (std::size_t i = 0; i < E; ++i) {
                const std::size_t j = i / R::sub_elems;
                const float D = k_step<S>(q[b], j);
                if (D == 0.0f) continue;
                const float v = (xb[i] + k_offset<S>(q[b], j)) / D;
                ties += v - std::floor(v) == 0.5f;
            }
        }
    }
    return ties;
}

// Index of the first element whose bits differ, or n.
std::size_t first_difference(std::span<const float> a, std::span<const float> b) {
    for (std::size_t i = 0; i < a.size(); ++i)
        if (bits(a[i]) != bits(b[i])) return i;
    return a.size();
}

// Distance of v from the nearest rounding boundary (a half-integer), in steps.
double boundary_distance(double v) { return std::fabs(v - std::floor(v) - 0.5); }

} // namespace

// Runtime, all six schemes: about 1.7 s in Release, 4.5 s under ASan+UBSan
// (RelWithDebInfo); the K-quants' search takes most of it.
TEST_CASE_TEMPLATE("fake_quant forward == dequantize(quantize(x)) bit for bit", S, QTENSOR_FQ_SCHEMES) {
    constexpr std::size_t total_blocks = blocks_for<S>(identity_elements);
    constexpr std::size_t batch_blocks = total_blocks / 50;
    std::mt19937 rng(20240611u + static_cast<std::uint32_t>(S::type_id));
    std::size_t checked = 0, saturated_seen = 0, ties_seen = 0;
    for (std::size_t batch = 0; batch < 50; ++batch) {
        const auto x = make_blocks<S>(rng, batch_blocks);
        const std::size_t n = x.size();

        // The reference, computed separately: pack, then unpack.
        std::vector<block_of<S>> q(batch_blocks);
        std::vector<std::uint8_t> reference_mask(n);
        S::quantize_row(x.data(), q.data(), n, reference_mask.data());
        const auto reference = dequantize<S>(std::span<const block_of<S>>(q));

        std::vector<float> y_masked(n);
        std::vector<std::uint8_t> mask(n, 7);
        fake_quant<S>::forward(x, y_masked, mask);

        std::size_t nans = 0;
        for (float v : reference) nans += std::isnan(v);
        REQUIRE(nans == 0);
        const std::size_t i = first_difference(y_masked, reference);
        INFO("batch " << batch << ", element " << i << " of " << n);
        REQUIRE(i == n);
        REQUIRE(mask == reference_mask);
        // The forward without a mask and in place, on every 5th batch (same code path).
        if (batch % 5 == 0) {
            std::vector<float> y(n), in_place(x);
            fake_quant<S>::forward(x, y);
            fake_quant<S>::forward(in_place, in_place);
            REQUIRE(first_difference(y, reference) == n);
            REQUIRE(first_difference(in_place, reference) == n);
        }
        checked += n / S::block_elems;
        for (auto m : mask) saturated_seen += m;
        ties_seen += count_ties<S>(x, q);
    }
    CHECK(checked * S::block_elems >= identity_elements);
    CHECK(ties_seen > 100);
    if constexpr (rules<S>::clamps) CHECK(saturated_seen > 1000);
    else CHECK(saturated_seen == 0);
}

TEST_CASE("fake_quant<q4_0>: the worked example of docs/qat.md, by hand") {
    // max = -2.6 (largest |x|, signed) -> d = 0.325 -> fp16(d) = 1331 * 2^-12 = 0.324951171875.
    // codes floor(x / d + 8.5) clamped to 15, outputs (code - 8) * fp16(d):
    //   0.7:  2.1538 + 8.5 -> 10 ->  2 * 0.324951171875 =  0.64990234375
    //  -2.6:  -8    + 8.5 ->  0 -> -8 * 0.324951171875 = -2.599609375
    //   2.6:   8    + 8.5 -> 16 -> 15 (clamped) -> 7 * ... = 2.274658203125
    //   1.0:  3.0769 + 8.5 -> 11 ->  3 * ...             =  0.974853515625
    //   0:     8.5 -> 8 -> 0
    std::vector<float> x(32, 0.0f);
    x[0] = 0.7f;
    x[1] = -2.6f;
    x[2] = 2.6f;
    x[3] = 1.0f;
    std::vector<float> y(32);
    std::vector<std::uint8_t> mask(32);
    fake_quant<q4_0>::forward(x, y, mask);
    CHECK(y[0] == 0.64990234375f);
    CHECK(y[1] == -2.599609375f);
    CHECK(y[2] == 2.274658203125f);
    CHECK(y[3] == 0.974853515625f);
    for (std::size_t j = 4; j < 32; ++j) CHECK(y[j] == 0.0f);
    CHECK(mask[2] == 1);
    CHECK(mask[0] + mask[1] + mask[3] == 0);

    std::vector<float> dy(32, 1.0f), dx(32);
    fake_quant<q4_0>::backward(mask, dy, dx);
    CHECK(dx[2] == 0.0f);
    CHECK(dx[1] == 1.0f);
}

TEST_CASE("fake_quant<q4_0_symmetric>: amax / 7, half away from zero, by hand") {
    // amax = 7 -> d = 1 exactly; codes round(x / d) half away from zero, in -7..7.
    std::vector<float> x(32, 0.0f);
    const float in[] = {7.0f, 3.5f, -3.5f, 2.5f, -0.5f, 0.49f, -7.0f, 6.6f};
    const float out[] = {7.0f, 4.0f, -4.0f, 3.0f, -1.0f, 0.0f, -7.0f, 7.0f};
    std::copy(std::begin(in), std::end(in), x.begin());
    std::vector<float> y(32);
    std::vector<std::uint8_t> mask(32, 1);
    fake_quant<q4_0_symmetric>::forward(x, y, mask);
    for (std::size_t j = 0; j < 8; ++j) CHECK(y[j] == out[j]);
    for (std::size_t j = 8; j < 32; ++j) CHECK(y[j] == 0.0f);
    for (std::uint8_t m : mask) CHECK(m == 0); // nothing clamps: both ends of the range are reachable

    // The blocks are Q4_0's: d = +1 stored as fp16 0x3c00, code 8 + k.
    block_q4_0 q{};
    q4_0_symmetric::quantize_row(x.data(), &q, 32);
    CHECK(q.d.bits == 0x3c00);
    CHECK((q.qs[0] & 0x0f) == 15); // 7
    CHECK((q.qs[6] & 0x0f) == 1);  // -7: ggml's rule never writes code 1 with code 15 in one block
    // amax = 2.6 -> d = 2.6 / 7 -> fp16 0x35f1 = 1521 * 2^-12; 0.7 / d = 1.88 -> 2.
    std::vector<float> x2(32, 0.0f), y2(32);
    x2[0] = 0.7f;
    x2[1] = -2.6f;
    fake_quant<q4_0_symmetric>::forward(x2, y2);
    CHECK(y2[0] == 2.0f * 1521.0f / 4096.0f);
    CHECK(y2[1] == -7.0f * 1521.0f / 4096.0f);
}

TEST_CASE("fake_quant<q4_0_symmetric>: every output is round(x * (1/d)) * fp16(d), d = amax / 7") {
    // The rule of q4_0_symmetric.hpp written out again, over the corner-case
    // blocks of fill_block (ties included: round half away from zero).
    std::mt19937 rng(99);
    const auto x = make_blocks<q4_0_symmetric>(rng, 20000);
    std::vector<float> y(x.size());
    fake_quant<q4_0_symmetric>::forward(x, y);
    std::size_t ties = 0;
    for (std::size_t b = 0; b < x.size() / 32; ++b) {
        const float* xb = x.data() + 32 * b;
        float amax = 0.0f;
        for (std::size_t i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(xb[i]));
        const float d = amax / 7.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        if (!std::isfinite(id)) id = 0.0f;
        const float d16 = fp16_to_fp32(fp32_to_fp16(d));
        for (std::size_t i = 0; i < 32; ++i) {
            const float v = xb[i] * id;
            ties += std::fabs(v - std::trunc(v)) == 0.5f;
            const float k = std::round(v); // half away from zero
            REQUIRE(std::fabs(k) <= 7.0f);
            INFO("block " << b << ", element " << i << ": x = " << xb[i] << ", x / d = " << v);
            REQUIRE(bits(y[32 * b + i]) == bits(static_cast<float>(static_cast<int>(k)) * d16)); // code 0: +0
        }
    }
    CHECK(ties > 100);
}

TEST_CASE_TEMPLATE("fake_quant backward: dx = dy except where the code saturated", S, QTENSOR_FQ_SCHEMES) {
    std::mt19937 rng(7u + static_cast<std::uint32_t>(S::type_id));
    const auto x = make_blocks<S>(rng, blocks_for<S>(128000));
    const std::size_t n = x.size();
    std::vector<block_of<S>> q(n / S::block_elems);
    std::vector<std::uint8_t> saturated(n);
    S::quantize_row(x.data(), q.data(), n, saturated.data());

    // NaN gradients: passed through where the mask passes, dropped (a select,
    // not a product with 0) where the code saturated.
    std::normal_distribution<float> gauss(0.0f, 1.0f);
    std::vector<float> dy(n);
    for (auto& v : dy) v = gauss(rng);
    constexpr float nan = std::numeric_limits<float>::quiet_NaN();
    const auto first_pass = std::find(saturated.begin(), saturated.end(), std::uint8_t{0});
    const auto first_clip = std::find(saturated.begin(), saturated.end(), std::uint8_t{1});
    REQUIRE(first_pass != saturated.end());
    dy[static_cast<std::size_t>(first_pass - saturated.begin())] = nan;
    if (first_clip != saturated.end()) dy[static_cast<std::size_t>(first_clip - saturated.begin())] = nan;
    CHECK((first_clip != saturated.end()) == rules<S>::clamps);

    std::vector<float> y(n), dx_from_x(n), dx_from_mask(n), dx_in_place(dy);
    std::vector<std::uint8_t> mask(n);
    fake_quant<S>::forward(x, y, mask);
    fake_quant<S>::backward(x, dy, dx_from_x);
    fake_quant<S>::backward(mask, dy, dx_from_mask);
    fake_quant<S>::backward(mask, dx_in_place, dx_in_place);

    std::size_t wrong = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const float want = saturated[i] ? 0.0f : dy[i];
        wrong += bits(dx_from_x[i]) != bits(want);
        wrong += bits(dx_from_mask[i]) != bits(want);
        wrong += bits(dx_in_place[i]) != bits(want);
    }
    CHECK(wrong == 0);
}

namespace {

struct fd_counts {
    std::size_t pass = 0, saturated = 0;
};

// The central difference (yp - ym) / 2h of a pass-through element, whose code
// moved k steps each way on a grid of step h / k. Where outputs are exact
// (code times an fp16 scale) it is exactly 1. Otherwise each output is one
// rounding (Q8_K: d * code) or one subtraction (K-quants: D * code - dm, both
// products exact) away from the exact lattice value, so
//   |(yp - ym) - 2h| <= 2^-24 (|yp| + |ym|) + 2^-24 * 2h
// (the last term for Q8_K, whose h = k |d| rounds once).
void check_unit_slope(float yp, float ym, float h, bool exact) {
    if (exact) {
        CHECK((yp - ym) / (2.0f * h) == 1.0f);
    } else {
        const double diff = static_cast<double>(yp) - ym - 2.0 * h;
        const double bound = std::ldexp(std::fabs(yp) + std::fabs(ym) + 2.0 * h, -24);
        CHECK(std::fabs(diff) <= bound);
    }
}

// Outputs yp, ym of fake_quant at x with element i moved by +h and -h, against
// y at x. A saturated element: nothing moves (difference quotient 0) and no
// gradient passes.
void check_saturated(std::size_t i, std::span<const float> yp, std::span<const float> ym,
                     std::span<const float> y, std::uint8_t mask_i, float dx_i) {
    CHECK(bits(yp[i]) == bits(ym[i]));
    CHECK(first_difference(yp, y) == y.size());
    CHECK(first_difference(ym, y) == y.size());
    CHECK(mask_i == 1);
    CHECK(bits(dx_i) == bits(0.0f));
}

// A pass-through element: slope 1 at i, every other output stays, and the
// gradient passes unchanged.
void check_pass(std::size_t i, float h, bool exact, std::vector<float> yp, std::vector<float> ym,
                std::span<const float> y, std::uint8_t mask_i, float dx_i, float dy_i) {
    check_unit_slope(yp[i], ym[i], h, exact);
    yp[i] = y[i];
    ym[i] = y[i];
    CHECK(first_difference(yp, y) == y.size());
    CHECK(first_difference(ym, y) == y.size());
    CHECK(mask_i == 0);
    CHECK(bits(dx_i) == bits(dy_i));
}

// Pivot schemes, per block of E elements:
//  - pass-through element i (not the pivot, so d does not move): perturb by
//    h = k steps, k in 1..3, where x+-h still rounds k codes away from x's
//    code, at least 0.1 step from a boundary, inside (-v_max, v_clamp);
//    the difference has slope 1, every other output stays, dx_i = dy_i.
//  - saturated element (v in [v_clamp, v_max]): perturb by less than its
//    distance to v_clamp (inward only at v = v_max, where moving outward would
//    make it the pivot): the output does not move, dx_i = 0.
template <class S>
void fd_pivot_block(std::mt19937& rng, std::size_t b, fd_counts& count) {
    using R = rules<S>;
    constexpr std::size_t E = S::block_elems;
    std::normal_distribution<float> gauss(0.0f, 1.0f);
    std::uniform_real_distribution<float> unit(0.0f, 1.0f);
    std::uniform_int_distribution<std::size_t> pos(0, E - 1);
    std::uniform_int_distribution<int> steps(1, 3);
    std::vector<float> x(E), y(E), yp(E), ym(E), xp(E), xm(E), dy(E), dx(E);
    std::vector<std::uint8_t> mask(E);

    const float s = std::pow(10.0f, -6.0f + 10.0f * unit(rng));
    for (auto& v : x) v = s * gauss(rng);
    if (R::v_clamp < R::v_max) { // put elements into the clamped band v in [7.5, 8]
        const std::size_t p = first_amax_index(x);
        const std::size_t i = pos(rng), j = pos(rng);
        if (i != p) x[i] = -x[p] * (0.94f + 0.055f * unit(rng));
        if (j != p && b % 2 == 0) x[j] = -x[p];
    }
    const std::size_t p = first_amax_index(x);
    const float pivot = R::signed_pivot ? x[p] : std::fabs(x[p]);
    const double d = static_cast<double>(pivot / R::divisor);
    const auto q = quantize<S>(x);
    const float step = R::step(q[0]);
    if (d == 0.0 || step == 0.0f) return;

    for (auto& v : dy) v = gauss(rng);
    fake_quant<S>::forward(x, y, mask);
    fake_quant<S>::backward(x, dy, dx);

    // Every element for 32-element blocks; 32 random ones for Q8_K's 256.
    for (std::size_t t = 0; t < std::min<std::size_t>(E, 32); ++t) {
        const std::size_t i = E == 32 ? t : pos(rng);
        if (i == p) continue;
        const double v = x[i] / d;
        const float toward_larger_v = d > 0 ? 1.0f : -1.0f; // the sign of dv/dx
        xp = x;
        xm = x;
        INFO("block " << b << " element " << i << " x=" << x[i] << " v=" << v << " d=" << d);
        if (v >= R::v_clamp) {
            const double inside = v - R::v_clamp, outside = R::v_max - v;
            if (inside < 0.05) continue; // too close to the clamp boundary
            const double hv = outside > 0.05 ? 0.5 * std::fmin(inside, outside) : 0.5 * inside;
            const float h = static_cast<float>(hv * std::fabs(d));
            if (outside > 0.05) xp[i] = x[i] + toward_larger_v * h;
            xm[i] = x[i] - toward_larger_v * h;
            fake_quant<S>::forward(xp, yp);
            fake_quant<S>::forward(xm, ym);
            check_saturated(i, yp, ym, y, mask[i], dx[i]);
            ++count.saturated;
            continue;
        }
        const int k = steps(rng);
        const float h = static_cast<float>(k) * step;
        xp[i] = x[i] + h;
        xm[i] = x[i] - h;
        const double vp = xp[i] / d, vm = xm[i] / d;
        const bool away = boundary_distance(v) >= 0.1 && boundary_distance(vp) >= 0.1 &&
                          boundary_distance(vm) >= 0.1;
        const bool inside = std::fmin(vp, vm) > -R::v_max + 0.1 &&
                            std::fmax(vp, vm) < std::fmin(R::v_clamp, R::v_max) - 0.1;
        const bool k_codes = std::abs(std::lround(vp) - std::lround(v)) == k &&
                             std::abs(std::lround(v) - std::lround(vm)) == k;
        if (!(away && inside && k_codes)) continue;
        fake_quant<S>::forward(xp, yp);
        fake_quant<S>::forward(xm, ym);
        check_pass(i, h, R::exact_outputs, yp, ym, y, mask[i], dx[i], dy[i]);
        ++count.pass;
    }
}

// K-quants, per super-block: 24 random elements and 8 clamped ones, each perturbed as above on its
// sub-block's lattice (pass-through: k steps of D with the same margins, inside
// the code range 0..nmax; clamped: v beyond -1/2 or nmax + 1/2, moved by a
// fifth of its distance to that edge). A case counts only if the perturbed
// blocks keep every scale byte of the original (the search did not move).
template <class S>
void fd_k_quant_block(std::mt19937& rng, std::size_t b, fd_counts& count) {
    using R = rules<S>;
    constexpr std::size_t E = S::block_elems;
    std::normal_distribution<float> gauss(0.0f, 1.0f);
    std::uniform_real_distribution<float> unit(0.0f, 1.0f);
    std::uniform_int_distribution<std::size_t> pos(0, E - 1);
    std::uniform_int_distribution<int> steps(1, std::min(3, R::nmax));
    std::vector<float> x(E), y(E), yp(E), ym(E), xp(E), xm(E), dy(E), dx(E);
    std::vector<std::uint8_t> mask(E);

    // Sub-blocks of different magnitudes: their 4/6-bit scales s_j then vary, so
    // some codes clamp, and most sub-blocks do not hold the super-scale d.
    const float s = std::pow(10.0f, -4.0f + 8.0f * unit(rng));
    for (std::size_t j = 0; j < E; j += R::sub_elems) {
        const float sj = s * (0.1f + unit(rng));
        for (std::size_t i = j; i < j + R::sub_elems; ++i) x[i] = sj * gauss(rng);
    }
    const auto q = quantize<S>(x);
    for (auto& v : dy) v = gauss(rng);
    fake_quant<S>::forward(x, y, mask);
    fake_quant<S>::backward(x, dy, dx);

    const auto scales_kept = [&](const std::vector<float>& xs) {
        return R::same_scales(quantize<S>(xs)[0], q[0]);
    };
    // 24 random elements and up to 8 clamped ones.
    std::vector<std::size_t> picks;
    for (std::size_t t = 0; t < 24; ++t) picks.push_back(pos(rng));
    for (std::size_t i = 0; i < E && picks.size() < 32; ++i)
        if (mask[i] && k_step<S>(q[0], i / R::sub_elems) != 0.0f) picks.push_back(i);
    for (const std::size_t i : picks) {
        const std::size_t j = i / R::sub_elems;
        const float D = k_step<S>(q[0], j);
        const float dm = k_offset<S>(q[0], j);
        if (D == 0.0f) continue;
        const double v = (static_cast<double>(x[i]) + dm) / D;
        xp = x;
        xm = x;
        INFO("block " << b << " element " << i << " x=" << x[i] << " v=" << v << " D=" << D);
        const double edge_lo = -0.5, edge_hi = R::nmax + 0.5;
        if (v < edge_lo || v > edge_hi) {
            const double beyond = v < edge_lo ? edge_lo - v : v - edge_hi;
            if (beyond < 0.1) continue;
            const float h = static_cast<float>(0.2 * beyond * D);
            xp[i] = x[i] + h;
            xm[i] = x[i] - h;
            if (!scales_kept(xp) || !scales_kept(xm)) continue;
            fake_quant<S>::forward(xp, yp);
            fake_quant<S>::forward(xm, ym);
            check_saturated(i, yp, ym, y, mask[i], dx[i]);
            ++count.saturated;
            continue;
        }
        const int k = steps(rng);
        const float h = static_cast<float>(k) * D;
        xp[i] = x[i] + h;
        xm[i] = x[i] - h;
        const double vp = (static_cast<double>(xp[i]) + dm) / D, vm = (static_cast<double>(xm[i]) + dm) / D;
        const bool away = boundary_distance(v) >= 0.1 && boundary_distance(vp) >= 0.1 &&
                          boundary_distance(vm) >= 0.1;
        const bool inside = std::fmin(vp, vm) > edge_lo && std::fmax(vp, vm) < edge_hi;
        if (!(away && inside) || !scales_kept(xp) || !scales_kept(xm)) continue;
        fake_quant<S>::forward(xp, yp);
        fake_quant<S>::forward(xm, ym);
        check_pass(i, h, false, yp, ym, y, mask[i], dx[i], dy[i]);
        ++count.pass;
    }
}

} // namespace

TEST_CASE_TEMPLATE("fake_quant backward matches finite differences of the forward", S, QTENSOR_FQ_SCHEMES) {
    std::mt19937 rng(99u + static_cast<std::uint32_t>(S::type_id));
    fd_counts count;
    if constexpr (rules<S>::kind == lattice::pivot) {
        for (std::size_t b = 0; b < blocks_for<S>(48000); ++b) fd_pivot_block<S>(rng, b, count);
        CHECK(count.pass > blocks_for<S>(48000) * 10);
    } else {
        for (std::size_t b = 0; b < 100; ++b) fd_k_quant_block<S>(rng, b, count);
        CHECK(count.pass > 200);
    }
    if constexpr (rules<S>::clamps) CHECK(count.saturated > 20);
}

// A weight already on the lattice stays there: packing fq(x) gives fq(x) back,
// so exporting the fake-quantized weights instead of the latent ones changes
// nothing. (Values compared, not bits: when fp16(d) underflows to 0 the zeros'
// signs may differ.) The K-quants' search makes no such promise.
TEST_CASE_TEMPLATE("fake_quant is a projection: forward(forward(x)) == forward(x)", S, q4_0, q4_0_symmetric, q8_0) {
    std::mt19937 rng(5u + static_cast<std::uint32_t>(S::type_id));
    const auto x = make_blocks<S>(rng, 20000);
    std::vector<float> y(x.size()), yy(x.size());
    fake_quant<S>::forward(x, y);
    fake_quant<S>::forward(y, yy);
    std::size_t moved = 0;
    for (std::size_t i = 0; i < x.size(); ++i) moved += y[i] != yy[i];
    CHECK(moved == 0);
}

namespace {
bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }
} // namespace

TEST_CASE_TEMPLATE("fake_quant rejects bad sizes, partial overlaps and bad values", S, QTENSOR_FQ_SCHEMES) {
    constexpr std::size_t E = S::block_elems;
    using fq = fake_quant<S>;
    const std::string block = std::to_string(E);
    std::vector<float> x(2 * E, 1.0f), y(2 * E), dy(2 * E, 1.0f), dx(2 * E), shorter(2 * E - 1);
    std::vector<std::uint8_t> mask(2 * E), short_mask(E);

    std::string m = message_of([&] { fq::forward(std::span(x).first(E + 1), std::span(y).first(E + 1)); });
    CHECK(contains(m, "fake_quant<" + std::string(S::name) + ">"));
    CHECK(contains(m, std::to_string(E + 1)));
    CHECK(contains(m, "block size " + block));

    m = message_of([&] { fq::forward(x, shorter); });
    CHECK(contains(m, "y holds " + std::to_string(2 * E - 1)));
    CHECK(contains(m, "x holds " + std::to_string(2 * E)));
    CHECK(contains(m, "block size " + block));

    m = message_of([&] { fq::forward(x, y, short_mask); });
    CHECK(contains(m, "saturated holds " + block));
    m = message_of([&] { fq::backward(x, shorter, dx); });
    CHECK(contains(m, "dy holds"));
    m = message_of([&] { fq::backward(x, dy, shorter); });
    CHECK(contains(m, "dx holds"));
    m = message_of([&] { fq::backward(short_mask, dy, dx); });
    CHECK(contains(m, "dy holds " + std::to_string(2 * E)));
    m = message_of([&] { fq::backward(std::span(mask).first(E + 1), std::span(dy).first(E + 1),
                                      std::span(dx).first(E + 1)); });
    CHECK(contains(m, "block size " + block));

    // Output shifted against its input: block 1 would read what block 0 wrote.
    std::vector<float> buf(3 * E, 0.5f);
    m = message_of([&] { fq::forward(std::span(buf).first(2 * E), std::span(buf).last(2 * E)); });
    CHECK(contains(m, "overlaps"));
    m = message_of([&] { fq::backward(mask, std::span(buf).first(2 * E), std::span(buf).last(2 * E)); });
    CHECK(contains(m, "overlaps"));
    CHECK_NOTHROW(fq::forward(buf, buf));
    CHECK_NOTHROW(fq::backward(std::span(buf).first(2 * E), dy, std::span(buf).first(2 * E)));

    // NaN is found before anything is written: in place, the latent weights
    // survive the failed call untouched. The message names the element.
    x[E + 3] = std::numeric_limits<float>::quiet_NaN();
    std::vector<float> latent = x;
    m = message_of([&] { fq::forward(latent, latent); });
    CHECK(contains(m, "element " + std::to_string(E + 3) + " is NaN"));
    CHECK(std::memcmp(latent.data(), x.data(), x.size() * sizeof(float)) == 0);
    m = message_of([&] { fq::backward(x, dy, dx); });
    CHECK(contains(m, "NaN"));
    if constexpr (!std::is_same_v<S, q8_k>) { // a scale past fp16 (Q8_K's is fp32)
        x[E + 3] = 4.0f * rules<S>::max_abs;
        x[E + 4] = -4.0f * rules<S>::max_abs;
        CHECK(contains(message_of([&] { fq::forward(x, y); }), "block 1 (elements " + block + ".."));
    }

    // Empty input is zero blocks.
    CHECK_NOTHROW(fq::forward(std::span<const float>(), std::span<float>()));
}
