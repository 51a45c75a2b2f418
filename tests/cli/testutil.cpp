// tests/cli/testutil.cpp: makes input files for the `qtensor` CLI tests and
// checks its round trips. Independent of the library on purpose: block sizes
// and error bounds come from docs/schemes.md, not from the scheme headers.
//
//   qtensor_cli_testutil floats OUT TOKEN...   float32 LE values; TOKEN = v or v*count
//   qtensor_cli_testutil bytes OUT TOKEN...    raw bytes; TOKEN = hex byte or hh*count
//   qtensor_cli_testutil gen OUT ROWS COLS     rows of pseudo-random values (see gen)
//   qtensor_cli_testutil check TYPE COLS ORIG.f32 BACK.f32
//                                              BACK within TYPE's bound of ORIG
//   qtensor_cli_testutil extract FILE.safetensors NAME OUT
//                                              the tensor's bytes, as stored
//   qtensor_cli_testutil names FILE.safetensors PREFIX
//                                              names of its tensors that start with PREFIX,
//                                              ';'-separated (a CMake list), in header order
//   qtensor_cli_testutil ids IN.i64            int64 LE values, comma-separated on stdout
//   qtensor_cli_testutil close GOT.f32 WANT.f32 REL
//                                              |got - want| <= REL * max |want|, element-wise
//   qtensor_cli_testutil perplexity LOSS.f32 GOT REL
//                                              |GOT - exp(loss)| <= REL * exp(loss)
//   qtensor_cli_testutil truncate IN OUT BYTES the first BYTES bytes of IN
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

static_assert(std::endian::native == std::endian::little);

namespace {

[[noreturn]] void die(const std::string& message) {
    std::fprintf(stderr, "testutil: %s\n", message.c_str());
    std::exit(1);
}

// "v*count" -> (v, count); "v" -> (v, 1).
std::pair<std::string, long> split_repeat(const std::string& token) {
    const auto star = token.rfind('*');
    if (star == std::string::npos) return {token, 1};
    return {token.substr(0, star), std::atol(token.c_str() + star + 1)};
}

void write_file(const char* path, const void* data, std::size_t bytes) {
    std::FILE* f = std::fopen(path, "wb");
    if (f == nullptr) die(std::string("cannot create ") + path);
    if (bytes != 0 && std::fwrite(data, 1, bytes, f) != bytes) die(std::string("cannot write ") + path);
    if (std::fclose(f) != 0) die(std::string("cannot write ") + path);
}

std::vector<float> read_floats(const char* path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) die(std::string("cannot open ") + path);
    const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (bytes.size() % 4 != 0) die(std::string(path) + ": size is not a multiple of 4");
    std::vector<float> out(bytes.size() / 4);
    if (!bytes.empty()) std::memcpy(out.data(), bytes.data(), bytes.size());
    return out;
}

int cmd_floats(int argc, char** argv) {
    std::vector<float> values;
    for (int i = 3; i < argc; ++i) {
        const auto [text, count] = split_repeat(argv[i]);
        char* end = nullptr;
        const float v = std::strtof(text.c_str(), &end);
        if (end == text.c_str() || *end != '\0') die("bad float " + text);
        values.insert(values.end(), static_cast<std::size_t>(count), v);
    }
    write_file(argv[2], values.data(), values.size() * sizeof(float));
    return 0;
}

int cmd_bytes(int argc, char** argv) {
    std::vector<unsigned char> bytes;
    for (int i = 3; i < argc; ++i) {
        const auto [text, count] = split_repeat(argv[i]);
        char* end = nullptr;
        const unsigned long v = std::strtoul(text.c_str(), &end, 16);
        if (end == text.c_str() || *end != '\0' || v > 255) die("bad byte " + text);
        bytes.insert(bytes.end(), static_cast<std::size_t>(count), static_cast<unsigned char>(v));
    }
    write_file(argv[2], bytes.data(), bytes.size());
    return 0;
}

// splitmix64: a fixed, portable sequence (std distributions differ between
// standard libraries).
std::uint64_t mix(std::uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

// Row r holds uniform values in [-s, s) with s = 10^(r mod 5 - 1), so rows
// differ in scale by up to 10^4 and a row written in the wrong place, or
// dequantized with another row's scales, is far outside any bound; rows with
// r mod 7 == 2 are all zero (Q4_0 stores d = -0 there, Q8_K skips the block).
int cmd_gen(char** argv) {
    const std::size_t rows = std::strtoul(argv[3], nullptr, 10);
    const std::size_t cols = std::strtoul(argv[4], nullptr, 10);
    std::vector<float> x(rows * cols);
    for (std::size_t r = 0; r < rows; ++r) {
        const float scale = std::pow(10.0f, static_cast<float>(static_cast<int>(r % 5) - 1));
        for (std::size_t i = 0; i < cols; ++i) {
            const double u = static_cast<double>(mix(r * cols + i) >> 11) * 0x1p-53; // [0, 1)
            x[r * cols + i] = r % 7 == 2 ? 0.0f : scale * static_cast<float>(2.0 * u - 1.0);
        }
    }
    write_file(argv[2], x.data(), x.size() * sizeof(float));
    return 0;
}

// |fp16(d) - d| for d >= 0: half a unit in the last place, 2^-11 * d in the
// normal range, 2^-25 among subnormals (docs/schemes.md section 3: round to nearest).
double fp16_error(double d) { return std::max(std::ldexp(d, -11), std::ldexp(1.0, -25)); }

// Per-element bounds (docs/schemes.md sections 6, 5, 10), with A = max |x| over the
// block and `signed_max` the first element of that magnitude. The slack
// 2^-15 * d covers x * (1/d) being rounded in fp32 before the rounding to a
// code (code units up to 127, relative error about 2^-23).
//   q8_0: d = A/127, c = round(x/d), y = c * fp16(d):
//         |x - y| <= d/2 + 127 |fp16(d) - d|
//   q4_0: d = signed_max / -8, c - 8 = floor(x/d + 1/2) clamped to 7:
//         |x - y| <= d/2 + 8 |fp16(d) - d|, and (t - 7) d for t = x/d >= 7.5,
//         the elements pushed from code 16 down to 15
//   q8_k: d = 1/(-127/signed_max) in fp32 (no fp16 rounding), c = nearest(x/d),
//         |x - y| <= d/2
// q2_k / q4_k have no per-element bound: the scale and min come from a fit.
// Their first candidate (min = the block minimum, step (max - min)/nmax <=
// 2A/nmax) is within half a step, A/nmax, of every element, and the fit only
// replaces it by one with a smaller weighted error; the check is the RMS error
// of each super-block against A/nmax. Loose, but a misplaced row or block is
// off by orders of magnitude.
// f32 is exact; f16 / bf16 round each element to nearest (2^-11 / 2^-8 relative).
struct type_rule {
    std::string_view name;
    std::size_t block;
    int nmax; // q2_k / q4_k code range, else 0
};
constexpr type_rule rules[] = {
    {"q4_0", 32, 0}, {"q8_0", 32, 0}, {"q8_k", 256, 0}, {"q2_k", 256, 3}, {"q4_k", 256, 15},
    {"f32", 1, 0},   {"f16", 1, 0},   {"bf16", 1, 0},
};

int cmd_check(char** argv) {
    const std::string_view type = argv[2];
    const std::size_t cols = std::strtoul(argv[3], nullptr, 10);
    const auto x = read_floats(argv[4]);
    const auto y = read_floats(argv[5]);
    const type_rule* rule = nullptr;
    for (const auto& r : rules)
        if (r.name == type) rule = &r;
    if (rule == nullptr) die("unknown type " + std::string(type));
    if (y.size() != x.size())
        die("round trip has " + std::to_string(y.size()) + " values, input " + std::to_string(x.size()));
    if (cols == 0 || x.size() % cols != 0 || cols % rule->block != 0) die("bad --cols for the input");

    const double slack = std::ldexp(1.0, -15);
    double worst = 0.0; // largest error / bound
    for (std::size_t b0 = 0; b0 < x.size(); b0 += rule->block) {
        double amax = 0.0, signed_max = 0.0;
        for (std::size_t i = b0; i < b0 + rule->block; ++i)
            if (amax < std::fabs(x[i])) {
                amax = std::fabs(x[i]);
                signed_max = x[i];
            }
        if (rule->nmax != 0) {
            double sq = 0.0;
            for (std::size_t i = b0; i < b0 + rule->block; ++i)
                sq += (static_cast<double>(x[i]) - y[i]) * (static_cast<double>(x[i]) - y[i]);
            const double rms = std::sqrt(sq / static_cast<double>(rule->block));
            const double bound = amax / rule->nmax;
            if (!(rms <= bound))
                die("block at element " + std::to_string(b0) + ": rms error " + std::to_string(rms) +
                    " > bound " + std::to_string(bound));
            if (bound > 0) worst = std::max(worst, rms / bound);
            continue;
        }
        for (std::size_t i = b0; i < b0 + rule->block; ++i) {
            const double xi = x[i], yi = y[i], err = std::fabs(xi - yi);
            double bound = 0.0;
            if (type == "q8_0") {
                const double d = amax / 127;
                bound = (0.5 + slack) * d + 127 * fp16_error(d);
            } else if (type == "q4_0") {
                const double d = amax / 8;
                const double t = signed_max != 0 ? xi / (signed_max / -8) : 0.0;
                bound = (t >= 7.5 - slack ? t - 7 : 0.5) * d + slack * d + 8 * fp16_error(d);
            } else if (type == "q8_k") {
                bound = (0.5 + slack) * amax / 127;
            } else if (type == "f16") {
                bound = std::max(std::ldexp(std::fabs(xi), -11), std::ldexp(1.0, -25));
            } else if (type == "bf16") {
                bound = std::ldexp(std::fabs(xi), -8);
            }
            // NaN-safe: a NaN error fails. f32 must be bitwise identical.
            const bool ok = type == "f32" ? std::bit_cast<std::uint32_t>(x[i]) == std::bit_cast<std::uint32_t>(y[i])
                                          : err <= bound;
            if (!ok)
                die("element " + std::to_string(i) + " (row " + std::to_string(i / cols) + "): x=" +
                    std::to_string(xi) + " y=" + std::to_string(yi) + " error " + std::to_string(err) +
                    " > bound " + std::to_string(bound));
            if (bound > 0) worst = std::max(worst, err / bound);
        }
    }
    std::printf("testutil: %s: %zu values within bounds (largest error/bound %.3f)\n",
                std::string(type).c_str(), x.size(), worst);
    return 0;
}

std::vector<char> read_bytes(const char* path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) die(std::string("cannot open ") + path);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A safetensors file is u64 LE header size, a JSON header, the data. Enough
// of the header is read to find one tensor: "NAME":{..."data_offsets":[a,b]}
// (an entry holds no nested object, so its '}' ends it).
std::string_view header_of(const std::vector<char>& file, const char* path) {
    std::uint64_t header = 0;
    if (file.size() < 8) die(std::string(path) + ": too short");
    std::memcpy(&header, file.data(), 8);
    if (header > file.size() - 8) die(std::string(path) + ": header size past the end");
    return {file.data() + 8, header};
}

int cmd_extract(char** argv) {
    const std::vector<char> file = read_bytes(argv[2]);
    const std::string_view json = header_of(file, argv[2]);
    const std::size_t header = json.size();
    const std::string key = "\"" + std::string(argv[3]) + "\"";
    const auto at = json.find(key);
    if (at == std::string_view::npos) die("no tensor " + key);
    const std::string_view entry = json.substr(at, json.find('}', at) - at);
    const auto offsets = entry.find("\"data_offsets\"");
    if (offsets == std::string_view::npos) die(key + " has no data_offsets");
    const char* p = entry.data() + entry.find('[', offsets) + 1;
    char* end = nullptr;
    const std::uint64_t first = std::strtoull(p, &end, 10);
    const std::uint64_t last = std::strtoull(end + 1, nullptr, 10);
    if (last < first || last > file.size() - 8 - header) die(key + ": bad data_offsets");
    write_file(argv[4], file.data() + 8 + header + first, last - first);
    return 0;
}

// Every key of the header whose value is a tensor entry ({"dtype":...).
int cmd_names(char** argv) {
    const std::vector<char> file = read_bytes(argv[2]);
    const std::string_view json = header_of(file, argv[2]), prefix(argv[3]);
    const std::string_view entry = "\":{\"dtype\"";
    bool first = true;
    for (std::size_t at = json.find(entry); at != std::string_view::npos; at = json.find(entry, at + 1)) {
        const std::size_t open = json.rfind('"', at - 1);
        const std::string_view name = json.substr(open + 1, at - open - 1);
        if (!name.starts_with(prefix)) continue;
        std::printf("%s%.*s", first ? "" : ";", static_cast<int>(name.size()), name.data());
        first = false;
    }
    return 0;
}

int cmd_ids(char** argv) {
    const std::vector<char> bytes = read_bytes(argv[2]);
    if (bytes.size() % 8 != 0 || bytes.empty()) die(std::string(argv[2]) + ": not int64 values");
    for (std::size_t i = 0; i < bytes.size(); i += 8) {
        std::int64_t v = 0;
        std::memcpy(&v, bytes.data() + i, 8);
        std::printf("%s%lld", i ? "," : "", static_cast<long long>(v));
    }
    return 0;
}

int cmd_close(char** argv) {
    const auto got = read_floats(argv[2]);
    const auto want = read_floats(argv[3]);
    const double rel = std::strtod(argv[4], nullptr);
    if (got.size() != want.size())
        die(std::to_string(got.size()) + " values, expected " + std::to_string(want.size()));
    double amax = 0.0, worst = 0.0;
    for (float w : want) amax = std::max(amax, std::fabs(static_cast<double>(w)));
    if (!(amax > 0.0)) die("the expected values are all zero");
    for (std::size_t i = 0; i < got.size(); ++i) {
        const double err = std::fabs(static_cast<double>(got[i]) - want[i]);
        if (!(err <= rel * amax))
            die("element " + std::to_string(i) + ": " + std::to_string(got[i]) + " vs " + std::to_string(want[i]) +
                ", error " + std::to_string(err) + " > " + std::to_string(rel * amax));
        worst = std::max(worst, err);
    }
    std::printf("testutil: %zu values within %g of max |want| %g (largest error %g)\n", got.size(), rel, amax, worst);
    return 0;
}

int cmd_perplexity(char** argv) {
    const auto loss = read_floats(argv[2]);
    if (loss.size() != 1) die("the loss file holds " + std::to_string(loss.size()) + " values, not 1");
    const double want = std::exp(static_cast<double>(loss[0])), rel = std::strtod(argv[4], nullptr);
    char* end = nullptr;
    const double got = std::strtod(argv[3], &end);
    if (end == argv[3] || *end != '\0') die(std::string("not a number: '") + argv[3] + "'");
    if (!(std::fabs(got - want) <= rel * want))
        die("perplexity " + std::to_string(got) + ", expected exp(" + std::to_string(loss[0]) + ") = " +
            std::to_string(want));
    std::printf("testutil: perplexity %.6f within %g of %.6f\n", got, rel, want);
    return 0;
}

int cmd_truncate(char** argv) {
    const std::vector<char> bytes = read_bytes(argv[2]);
    const std::size_t n = std::strtoul(argv[4], nullptr, 10);
    if (n > bytes.size()) die("cannot truncate to more bytes than the file has");
    write_file(argv[3], bytes.data(), n);
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    const std::string_view cmd = argc > 1 ? argv[1] : "";
    if (cmd == "floats" && argc >= 3) return cmd_floats(argc, argv);
    if (cmd == "bytes" && argc >= 3) return cmd_bytes(argc, argv);
    if (cmd == "gen" && argc == 5) return cmd_gen(argv);
    if (cmd == "check" && argc == 6) return cmd_check(argv);
    if (cmd == "extract" && argc == 5) return cmd_extract(argv);
    if (cmd == "ids" && argc == 3) return cmd_ids(argv);
    if (cmd == "names" && argc == 4) return cmd_names(argv);
    if (cmd == "close" && argc == 5) return cmd_close(argv);
    if (cmd == "perplexity" && argc == 5) return cmd_perplexity(argv);
    if (cmd == "truncate" && argc == 5) return cmd_truncate(argv);
    die("usage: floats OUT TOKEN... | bytes OUT TOKEN... | gen OUT ROWS COLS | check TYPE COLS ORIG BACK | "
        "extract FILE NAME OUT | names FILE PREFIX | ids IN | close GOT WANT REL | perplexity LOSS GOT REL | "
        "truncate IN OUT BYTES");
}
