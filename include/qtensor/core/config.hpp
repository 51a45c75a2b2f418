// qtensor/core/config.hpp: version, the versioned namespace, and the build
// conditions the reference code relies on.
#pragma once

#define QTENSOR_VERSION_MAJOR 0
#define QTENSOR_VERSION_MINOR 1
#define QTENSOR_VERSION_PATCH 0

// Separate compilation (docs/kernels.md#separate-compilation). Header-only is
// the default. With QTENSOR_SEPARATE defined in every TU of a program, the
// headers only declare the heavy parts (the kernels, the file readers, the
// Gemma 4 config reader, checkpoint and model<P> for the named policies), and
// the one TU that also defines QTENSOR_DEFINE compiles them. The kernels'
// names QTENSOR_KERNELS_SEPARATE and QTENSOR_KERNELS_DEFINE mean the same.
#if defined(QTENSOR_KERNELS_SEPARATE) && !defined(QTENSOR_SEPARATE)
#define QTENSOR_SEPARATE 1
#endif
#if defined(QTENSOR_KERNELS_DEFINE) && !defined(QTENSOR_DEFINE)
#define QTENSOR_DEFINE 1
#endif
#if defined(QTENSOR_DEFINE) && !defined(QTENSOR_SEPARATE)
#error "QTENSOR_DEFINE needs QTENSOR_SEPARATE (in every TU of the program)"
#endif
#if defined(QTENSOR_SEPARATE) && !defined(QTENSOR_DEFINE)
#define QTENSOR_DECLARE_ONLY 1
#endif
// What separate compilation compiles once is `inline` in header-only TUs and
// an ordinary function in the QTENSOR_DEFINE TU.
#if defined(QTENSOR_DEFINE)
#define QTENSOR_INLINE
#else
#define QTENSOR_INLINE inline
#endif

// Everything lives in qtensor::v0. The inline namespace lets two major versions
// meet in one binary without ODR clashes; users just write qtensor::.
// Separately compiled programs get qtensor::v0_separate: what QTENSOR_INLINE
// marks is not inline there, so it must not be the same functions as a
// header-only TU's (a TU that missed QTENSOR_SEPARATE then fails to link
// instead of mixing the two modes' definitions silently).
#if defined(QTENSOR_SEPARATE)
#define QTENSOR_BEGIN_NAMESPACE namespace qtensor { inline namespace v0_separate {
#else
#define QTENSOR_BEGIN_NAMESPACE namespace qtensor { inline namespace v0 {
#endif
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
