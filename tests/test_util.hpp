// Helpers shared by the doctest files.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <span>
#include <stdexcept>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "qtensor/core/error.hpp"
#include "qtensor/kernels/executor.hpp"

namespace qtensor_test {

// The message of the qtensor::error that f() throws, so tests can check that
// it names the shape, index or size at fault.
template <class F>
std::string message_of(F&& f) {
    try {
        f();
    } catch (const qtensor::error& e) {
        return e.what();
    }
    return "(no qtensor::error thrown)";
}

// A fresh directory under the system's temporary directory, removed with
// everything in it at scope exit.
struct scratch_dir {
    std::filesystem::path path;
    scratch_dir() {
        std::string pattern = (std::filesystem::temp_directory_path() / "qtensor-test-XXXXXX").string();
        if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
        path = pattern;
    }
    ~scratch_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    scratch_dir(const scratch_dir&) = delete;
    scratch_dir& operator=(const scratch_dir&) = delete;
    std::string operator/(const std::string& name) const { return (path / name).string(); }
};

// A Unix socket bound at `path`: a file system entry that is neither a file
// nor a directory nor a device. Closed at scope exit (the entry stays).
struct bound_socket {
    int fd = -1;
    explicit bound_socket(const std::string& path) {
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        if (path.size() >= sizeof addr.sun_path) throw std::runtime_error("socket path too long: " + path);
        path.copy(addr.sun_path, path.size());
        fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
        if (fd < 0 || ::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0)
            throw std::runtime_error("cannot bind a socket at " + path);
    }
    ~bound_socket() { ::close(fd); }
    bound_socket(const bound_socket&) = delete;
    bound_socket& operator=(const bound_socket&) = delete;
};

// An executor that runs a call's tasks out of order (last first) on the
// calling thread and claims `n` at once: what the result must not depend on.
inline qtensor::kernels::executor reversed_executor(std::size_t n) {
    return qtensor::kernels::executor(n, [](std::size_t count, const qtensor::kernels::executor::task_fn& task) {
        for (std::size_t i = count; i-- > 0;) task(i);
    });
}

// The bytes of the file at `path`.
inline std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A FIFO at `path` and a thread reading it to the end: what a writer under
// test puts through it is take()n once the writer has closed it.
class fifo_reader {
public:
    explicit fifo_reader(std::string path) : path_(std::move(path)) {
        if (::mkfifo(path_.c_str(), 0600) != 0) throw std::runtime_error("mkfifo failed: " + path_);
        reader_ = std::thread([this] { received_ = read_file(path_); });
    }
    ~fifo_reader() {
        if (reader_.joinable()) reader_.join();
    }
    fifo_reader(const fifo_reader&) = delete;
    fifo_reader& operator=(const fifo_reader&) = delete;
    std::string take() {
        reader_.join();
        return std::move(received_);
    }

private:
    std::string path_;
    std::string received_;
    std::thread reader_;
};

// max_i |x[i]|.
inline float max_abs(std::span<const float> x) {
    float m = 0.0f;
    for (float v : x) m = std::max(m, std::fabs(v));
    return m;
}

// max_i |a[i] - b[i]|; a and b must have the same size.
inline float max_diff(std::span<const float> a, std::span<const float> b) {
    if (a.size() != b.size())
        throw std::invalid_argument("max_diff: sizes " + std::to_string(a.size()) + " and " + std::to_string(b.size()));
    float m = 0.0f;
    for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
    return m;
}

// n Gaussian values in blocks of `block`, each block scaled by 10^e with e
// uniform in [min_exp, max_exp], so float sums over blocks really round. Odd
// blocks are shifted by `odd_shift` (times their scale): large mins for the
// K-quants.
inline std::vector<float> spread_blocks(std::size_t n, std::size_t block, std::mt19937& rng,
                                        float min_exp = -3.0f, float max_exp = 3.0f,
                                        float odd_shift = 0.0f) {
    std::normal_distribution<float> gauss(0.0f, 1.0f);
    std::uniform_real_distribution<float> log_scale(min_exp, max_exp);
    std::vector<float> x(n);
    for (std::size_t b = 0; b < n / block; ++b) {
        const float s = std::pow(10.0f, log_scale(rng));
        const float shift = b % 2 ? odd_shift : 0.0f;
        for (std::size_t j = 0; j < block; ++j) x[b * block + j] = s * (gauss(rng) + shift);
    }
    return x;
}

// The exact sum of w[i] * a[i] over dequantized rows, and sum |w[i] * a[i]|.
// Dequantized Q4_0/Q8_0 values have at most 8 + 11 significant bits, so each
// product is exact in double and the sums are good to about 2^-53 relative.
struct exact_dot {
    double sum = 0.0;
    double magnitude = 0.0;
};

inline exact_dot exact_dot_of(const std::vector<float>& w, const std::vector<float>& a) {
    exact_dot r;
    for (std::size_t i = 0; i < w.size(); ++i) {
        r.sum += static_cast<double>(w[i]) * a[i];
        r.magnitude += std::fabs(static_cast<double>(w[i]) * a[i]);
    }
    return r;
}

} // namespace qtensor_test
