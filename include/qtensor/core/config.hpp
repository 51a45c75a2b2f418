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

// The scalar reference quantizers promise ggml's bytes. -ffast-math allows the
// compiler to replace x / y by x * (1 / y), reassociate sums and drop NaN
// checks, each of which changes bytes. Refuse rather than produce silent
// differences; a user who accepts that can opt out.
#if defined(__FAST_MATH__) && !defined(QTENSOR_ALLOW_FAST_MATH)
#error "qtensor: -ffast-math breaks the byte-exact reference quantizers; compile this TU without it (or define QTENSOR_ALLOW_FAST_MATH to accept different bytes)"
#endif
