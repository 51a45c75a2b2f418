// qtensor/core/config.hpp: version, the versioned namespace, and the build
// conditions the reference code relies on.
#pragma once

#define QTENSOR_VERSION_MAJOR 0
#define QTENSOR_VERSION_MINOR 1
#define QTENSOR_VERSION_PATCH 0

// Everything lives in qtensor::v0. The inline namespace lets two major versions
// meet in one binary without ODR clashes; users just write qtensor::.
#define QTENSOR_BEGIN_NAMESPACE namespace qtensor { inline namespace v0 {
#define QTENSOR_END_NAMESPACE } }

// The scalar reference quantizers promise ggml's bytes, and that needs IEEE
// float semantics. Each of these flags breaks them, so refuse rather than
// produce silently different bytes (a user who accepts that can opt out):
//   -ffast-math            all of the below
//   -ffinite-math-only     folds away the NaN/Inf checks on input
//   -freciprocal-math      x / y becomes x * (1 / y): other codes (Q8_0, K-quants)
//   -fassociative-math     reorders the float sums of the K-quant search
//   -fno-signed-zeros      loses the -0.0 scale of an all-zero Q4_0 block
// GCC defines a macro for each. Clang (14) defines only __FAST_MATH__ and
// __FINITE_MATH_ONLY__: there the other three alone go unnoticed.
#if !defined(QTENSOR_ALLOW_FAST_MATH) &&                                          \
    (defined(__FAST_MATH__) || (defined(__FINITE_MATH_ONLY__) && __FINITE_MATH_ONLY__) || \
     defined(__RECIPROCAL_MATH__) || defined(__ASSOCIATIVE_MATH__) || defined(__NO_SIGNED_ZEROS__))
#error "qtensor: -ffast-math (or -ffinite-math-only, -freciprocal-math, -fassociative-math, -fno-signed-zeros) breaks the byte-exact reference quantizers; compile this TU without it, or define QTENSOR_ALLOW_FAST_MATH to accept different bytes"
#endif
