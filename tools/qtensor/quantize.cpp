// tools/qtensor/quantize.cpp: `qtensor quantize` and `qtensor dequantize`,
// raw float32 rows <-> rows of blocks, streamed one row at a time.
//
// Layout (docs/schemes.md section 1): a row of N elements is N / block_elems blocks
// back to back, row_bytes = N / block_elems * block_bytes, and row r starts at
// byte r * row_bytes; no header, no padding. That is how a GGUF tensor's data
// lies, so the files compare byte for byte with other GGUF tools' output.
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "commands.hpp"
#include "io.hpp"
#include "qtensor/core/text.hpp"
#include "schemes.hpp"

// Blocks and floats are written as they lie in memory, which is the file's
// little-endian layout only on a little-endian host.
static_assert(std::endian::native == std::endian::little,
              "qtensor: the CLI writes blocks as they lie in memory; big-endian hosts need byte swapping");

namespace qtensor::cli {
namespace {

enum class direction { quantize, dequantize };

constexpr option_spec quantize_options[] = {
    {"type", 't', true},
    {"cols", 'c', true},
    {"verbose", 'v', false},
};
enum : std::size_t { opt_type, opt_cols, opt_verbose };

struct convert_job {
    direction dir;
    std::string_view command;
    std::string in_path;
    std::string out_path;
    std::size_t cols;
    bool verbose;
};

template <qtensor::scheme S>
void convert(const convert_job& job) {
    const std::size_t cols = job.cols;
    if (cols % S::block_elems != 0)
        usage_error("--cols " + std::to_string(cols) + " is not a multiple of the " +
                    std::string(S::name) + " block size " + std::to_string(S::block_elems));
    const std::size_t blocks = cols / S::block_elems;
    if (blocks > std::numeric_limits<std::size_t>::max() / S::block_bytes)
        usage_error("--cols " + std::to_string(cols) + " is too large");
    const std::size_t packed_row = blocks * S::block_bytes;
    const std::size_t float_row = cols * sizeof(float); // parse_count capped cols

    const bool quantizing = job.dir == direction::quantize;
    const std::size_t in_row = quantizing ? float_row : packed_row;
    const std::size_t out_row = quantizing ? packed_row : float_row;

    input_file in(job.in_path);
    if (in.size() && *in.size() % in_row != 0)
        run_error(in.path() + ": " + std::to_string(*in.size()) +
                  " bytes is not a whole number of rows of " + std::to_string(in_row) + " bytes (" +
                  std::to_string(cols) + " " + (quantizing ? "f32" : std::string(S::name)) +
                  " columns per row)");
    output out(job.out_path);

    // One row of each side. Allocated only when there is a row to read, so a
    // huge --cols with an empty input costs nothing.
    const bool may_have_rows = !in.size() || *in.size() != 0;
    std::vector<float> values(may_have_rows ? cols : 0);
    std::vector<block_of<S>> packed(may_have_rows ? blocks : 0);
    void* const in_buf = quantizing ? static_cast<void*>(values.data()) : packed.data();
    const void* const out_buf = quantizing ? static_cast<const void*>(packed.data()) : values.data();

    progress report(job.command, job.verbose, in.size());
    std::uintmax_t row = 0;
    for (; may_have_rows && in.read_row(in_buf, in_row, row); ++row) {
        if (quantizing) {
            try {
                S::quantize_row(values.data(), packed.data(), cols);
            } catch (const qtensor::error& e) {
                run_error("row " + std::to_string(row) + ": " + library_message(e));
            }
        } else {
            S::dequantize_row(packed.data(), values.data(), cols);
        }
        out.write(out_buf, out_row);
        report.advance(in_row);
    }
    out.commit();
    report.finish();

    if (job.verbose)
        std::fprintf(stderr, "qtensor: %s: %ju rows of %zu columns, %s (%ju bytes) -> %s (%ju bytes) in '%s'\n",
                     std::string(job.command).c_str(), row, cols,
                     quantizing ? "f32" : std::string(S::name).c_str(), row * in_row,
                     quantizing ? std::string(S::name).c_str() : "f32", row * out_row,
                     printable(job.out_path).c_str());
}

void print_convert_help(direction dir) {
    const bool q = dir == direction::quantize;
    std::printf(
        "usage: qtensor %s --type T --cols N [--verbose] %s\n"
        "\n"
        "%s"
        "Rows are N elements; a row of type T is N / block_elems blocks back to back,\n"
        "row_bytes = N / block_elems * block_bytes, and row r starts at byte r * row_bytes\n"
        "(the data of a GGUF tensor with ne[0] = N). Files are raw and little-endian,\n"
        "with no header.\n"
        "\n"
        "Options:\n"
        "  -t, --type T     the block type, one of:\n"
        "%s"
        "  -c, --cols N     elements per row, a multiple of T's block size\n"
        "  -v, --verbose    progress and a summary on stderr (progress is also shown\n"
        "                   when stderr is a terminal)\n"
        "  -h, --help       show this help\n"
        "\n"
        "OUT is written to a temporary file beside it and renamed when complete: a\n"
        "failed run leaves no partial OUT (and an existing OUT unchanged).\n"
        "Exit status: 0 done, 1 failed (files, sizes, values), 2 bad command line.\n",
        q ? "quantize" : "dequantize", q ? "IN.f32 OUT.bin" : "IN.bin OUT.f32",
        q ? "Reads IN as float32 rows of N columns and writes each row as blocks of type T.\n"
            "Quantized types reject NaN and Inf (the error names the row, counted from 0).\n\n"
          : "Reads IN as rows of type T blocks and writes each row as N float32 values.\n\n",
        schemes::table("                     ").c_str());
}

int run_convert(direction dir, std::string_view name, std::span<const std::string_view> args) {
    const parsed_args parsed = parse_args(name, args, quantize_options);
    if (parsed.help) {
        print_convert_help(dir);
        return 0;
    }
    const std::string where = std::string(name) + ": ";
    if (!parsed.has(opt_type)) usage_error(where + "missing --type (one of " + schemes::names() + ")");
    if (!parsed.has(opt_cols)) usage_error(where + "missing --cols");
    if (parsed.positionals.size() != 2)
        usage_error(where + "expected 2 files (IN OUT), got " +
                    std::to_string(parsed.positionals.size()));

    // A row of N columns takes 4 * N bytes as float32: cap N so that fits.
    const std::size_t cols = parse_count("--cols", *parsed.values[opt_cols],
                                         std::numeric_limits<std::size_t>::max() / sizeof(float));
    const convert_job job{dir,
                          name,
                          std::string(parsed.positionals[0]),
                          std::string(parsed.positionals[1]),
                          cols,
                          parsed.has(opt_verbose)};
    with_scheme(*parsed.values[opt_type], [&]<class S>() { convert<S>(job); });
    return 0;
}

} // namespace

void print_quantize_help() { print_convert_help(direction::quantize); }
void print_dequantize_help() { print_convert_help(direction::dequantize); }

int run_quantize(std::span<const std::string_view> args) {
    return run_convert(direction::quantize, "quantize", args);
}
int run_dequantize(std::span<const std::string_view> args) {
    return run_convert(direction::dequantize, "dequantize", args);
}

} // namespace qtensor::cli
