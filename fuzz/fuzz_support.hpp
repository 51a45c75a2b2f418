// fuzz/fuzz_support.hpp: what the fuzz targets and make_seeds share: the
// fuzzer's bytes as a file path for qtensor's readers (which mmap a path), a
// per-process scratch directory, and the few bytes of a safetensors file.
#pragma once

#include <cerrno>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <system_error>

#include <sys/mman.h>
#include <unistd.h>

#include "qtensor/core/error.hpp"

namespace qtensor_fuzz {

[[noreturn]] inline void die(const char* what) {
    std::perror(what);
    std::abort();
}

// One anonymous in-memory file per process, rewritten for every input: no
// file system traffic, and nothing is left behind when the process dies.
// path() is /proc/self/fd/N, which open() and stat() follow to the memfd.
class memfd_file {
public:
    explicit memfd_file(const char* name) : fd_(::memfd_create(name, MFD_CLOEXEC)) {
        if (fd_ < 0) die("memfd_create");
        path_ = "/proc/self/fd/" + std::to_string(fd_);
    }
    memfd_file(const memfd_file&) = delete;
    memfd_file& operator=(const memfd_file&) = delete;
    ~memfd_file() { ::close(fd_); }

    // Replaces the contents with data[size]; the readers of the previous
    // input must be gone (their mappings would see the new bytes).
    const std::string& write(const std::uint8_t* data, std::size_t size) {
        if (::ftruncate(fd_, 0) != 0) die("ftruncate");
        for (std::size_t done = 0; done < size;) {
            const ::ssize_t n = ::pwrite(fd_, data + done, size - done, static_cast<::off_t>(done));
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) die("pwrite");
            done += static_cast<std::size_t>(n);
        }
        return path_;
    }
    const std::string& path() const noexcept { return path_; }

private:
    int fd_;
    std::string path_;
};

// A directory of this process under /dev/shm (or the temp directory),
// removed at exit; call once per process. A crashed run cannot remove its own, so the next one
// removes those whose process is gone.
inline std::filesystem::path scratch_dir(std::string_view tag) {
    namespace fs = std::filesystem;
    std::error_code ec;
    const fs::path base = fs::is_directory("/dev/shm", ec) ? fs::path("/dev/shm") : fs::temp_directory_path();
    const std::string prefix = "qtensor_fuzz_" + std::string(tag) + "_";
    for (const fs::directory_entry& e : fs::directory_iterator(base, ec)) {
        const std::string name = e.path().filename().string();
        if (!name.starts_with(prefix)) continue;
        const long pid = std::strtol(name.c_str() + prefix.size(), nullptr, 10);
        if (pid > 0 && ::kill(static_cast<::pid_t>(pid), 0) != 0 && errno == ESRCH) fs::remove_all(e.path(), ec);
    }
    static fs::path dir = base / (prefix + std::to_string(::getpid()));
    fs::create_directories(dir);
    std::atexit([] {
        std::error_code ignored;
        fs::remove_all(dir, ignored);
    });
    return dir;
}

inline void write_file(const std::filesystem::path& path, std::string_view bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) die(path.c_str());
}

// A safetensors file: u64 little-endian header length | header | buffer.
inline std::string safetensors_bytes(std::string_view header, std::string_view buffer) {
    std::string out;
    for (std::size_t b = 0; b < 8; ++b) out += static_cast<char>((header.size() >> (8 * b)) & 0xff);
    out += header;
    out += buffer;
    return out;
}

// The fixed shards beside the fuzzed model.safetensors.index.json of the
// safetensors_index target (make_seeds writes indexes that match them):
// a multimodal text tensor (found as model.* too), a tensor of each view
// dtype and one without a view.
inline constexpr std::string_view shard_1 = "model-00001-of-00002.safetensors";
inline constexpr std::string_view shard_2 = "model-00002-of-00002.safetensors";

inline void write_shards(const std::filesystem::path& dir) {
    write_file(dir / shard_1,
               safetensors_bytes(R"({"model.language_model.embed_tokens.weight":{"dtype":"F32","shape":[2,2],)"
                                 R"("data_offsets":[0,16]},"model.norm.weight":{"dtype":"F16","shape":[2],)"
                                 R"("data_offsets":[16,20]}})",
                                 std::string(20, '\x3c')));
    write_file(dir / shard_2,
               safetensors_bytes(R"({"__metadata__":{"format":"pt"},"lm_head.weight":{"dtype":"BF16",)"
                                 R"("shape":[2,2],"data_offsets":[0,8]},"model.vision_tower.x":)"
                                 R"({"dtype":"I64","shape":[1],"data_offsets":[8,16]}})",
                                 std::string(16, '\x01')));
}

// Runs f(), which may refuse its input by design: with qtensor::error only;
// anything else escapes to the fuzzer as a finding.
template <class F>
void expect_error_or_value(F&& f) {
    try {
        f();
    } catch (const qtensor::error&) {
    }
}

} // namespace qtensor_fuzz
