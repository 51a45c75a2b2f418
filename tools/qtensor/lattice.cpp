// tools/qtensor/lattice.cpp: `qtensor lattice MODEL`: for every tensor a Q4_0
// policy packs as Q4_0, how many of its blocks lie on a Q4_0 grid, which
// grids, and the error ggml's rule and the aligned packing (`convert
// --lattice`) leave (gemma4/lattice.hpp, docs/qat.md).
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cli.hpp"
#include "commands.hpp"
#include "model_args.hpp"
#include "qtensor/core/text.hpp"
#include "qtensor/gemma4/checkpoint.hpp"
#include "qtensor/gemma4/lattice.hpp"
#include "qtensor/scheme/registry.hpp"

namespace qtensor::cli {
namespace {

constexpr option_spec lattice_options[] = {
    {"type", 0, true},
};
enum : std::size_t { lat_type };

double percent(std::size_t part, std::size_t whole) {
    return whole == 0 ? 0.0 : 100.0 * static_cast<double>(part) / static_cast<double>(whole);
}

// The RMS of an error against the RMS of the values.
double relative(double error_sq, double value_sq) { return value_sq > 0 ? std::sqrt(error_sq / value_sq) : 0.0; }

// "8: 97.1%, 7: 2.9%": the on-grid blocks by their largest code, largest first.
std::string grids(const lattice::report& r) {
    std::string s;
    for (std::size_t k = r.by_code_max.size(); k-- > 0;) {
        if (r.by_code_max[k] == 0) continue;
        char buf[32];
        std::snprintf(buf, sizeof buf, "%s%zu: %.1f%%", s.empty() ? "" : ", ", k, percent(r.by_code_max[k], r.blocks));
        s += buf;
    }
    return s.empty() ? "-" : s;
}

void print_row(std::string_view name, std::string_view stored, const lattice::report& r) {
    std::printf("%-48s %-5s %9zu %7.1f%%  %-24s %7.1f%% %10.3g %10.3g\n", printable(name).c_str(),
                std::string(stored).c_str(), r.blocks, percent(r.on_grid, r.blocks), grids(r).c_str(),
                percent(r.moved, r.blocks), relative(r.ggml_sq, r.sum_sq), relative(r.aligned_sq, r.sum_sq));
}

} // namespace

void print_lattice_help() {
    std::printf(
        "usage: qtensor lattice [--type q4_0] MODEL\n"
        "\n"
        "For every tensor the q4_0 policy packs as Q4_0 (attention, MLP, experts):\n"
        "how many of its blocks of 32 lie exactly on a Q4_0 grid (a step s and\n"
        "whole codes k in -8..7 or -7..8 give every value, up to the rounding of\n"
        "the format the file stores: bf16, f16 or f32), which grid (the largest\n"
        "code: 8 is ggml's rule, max/-8; 7 a symmetric amax/7 grid, ...), how many\n"
        "blocks ggml's Q4_0 rule moves when it packs them, and the error of that\n"
        "packing and of the aligned one ('qtensor convert --lattice'), as the RMS\n"
        "of the error over the RMS of the weights.\n"
        "\n"
        "MODEL is a Hugging Face Gemma 4 model directory or a GGUF file.\n"
        "\n"
        "Options:\n"
        "      --type q4_0   the grid family (only q4_0 for now)\n"
        "  -h, --help        show this help\n"
        "\n"
        "Exit status: 0 done, 1 failed (files, model), 2 bad command line.\n");
}

int run_lattice(std::span<const std::string_view> args) {
    const parsed_args parsed = parse_args("lattice", args, lattice_options);
    if (parsed.help) {
        print_lattice_help();
        return 0;
    }
    if (parsed.has(lat_type) && *parsed.values[lat_type] != "q4_0")
        usage_error("lattice: --type " + in_quotes(*parsed.values[lat_type]) + " is not supported (only q4_0)");
    if (parsed.positionals.size() != 1)
        usage_error("lattice: expected one MODEL, got " + std::to_string(parsed.positionals.size()) +
                    " (see 'qtensor lattice --help')");
    const gemma4::checkpoint ck(model_path("lattice", parsed.positionals[0]));
    const std::vector<gemma4::tensor_lattice> reports = gemma4::lattice_reports(ck.config(), ck, ck.names());

    std::printf("%-48s %-5s %9s %8s  %-24s %8s %10s %10s\n", "tensor", "file", "blocks", "on grid",
                "grids (largest code)", "moved", "ggml err", "aligned");
    lattice::report total;
    for (const gemma4::tensor_lattice& t : reports) {
        print_row(t.name, type_name(t.stored), t.report);
        total.merge(t.report);
    }
    print_row("total", "", total);
    return 0;
}

} // namespace qtensor::cli
