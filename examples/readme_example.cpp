// Quantize a weight matrix to Q4_0, read elements back, multiply a row with an activation.
#include <cmath>
#include <cstdio>
#include <vector>

#include "qtensor/qtensor.hpp"

int main() {
    using namespace qtensor;
    std::vector<float> w(4 * 64), x(64);
    for (std::size_t i = 0; i < w.size(); ++i) w[i] = std::sin(0.1f * static_cast<float>(i));
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = std::cos(0.3f * static_cast<float>(i));

    // [4, 64] weights: each row is 2 blocks of 18 bytes, exactly as in a GGUF file.
    const auto t = tensor<q4_0, 2>::quantize(w, {4, 64});
    std::printf("w(1, 3) = %.4f, stored as %.4f\n", w[64 + 3], t(1, 3));

    // Row 2 times x, with x quantized to Q8_0 (the activation partner of Q4_0).
    const auto xq = quantize<q8_0>(x);
    const float y = dot<q4_0>(t.blocks(2), xq);
    std::printf("row 2 . x = %.4f (%zu bytes of weights)\n", y, t.size_bytes());
}
