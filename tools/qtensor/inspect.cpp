// tools/qtensor/inspect.cpp: `qtensor inspect FILE`: the metadata and tensors
// of a GGUF file or a safetensors checkpoint (a file, a sharded index, or a
// Hugging Face directory), one tensor a line, and the total. Keys, names and
// values come from the file: they are printed through printable(), so a file
// cannot send control sequences to the terminal.
#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cli.hpp"
#include "commands.hpp"
#include "qtensor/core/text.hpp"
#include "qtensor/io/gguf.hpp"
#include "qtensor/io/safetensors.hpp"

namespace qtensor::cli {
namespace {

constexpr option_spec inspect_options[] = {
    {"all", 'a', false},
};
enum : std::size_t { opt_all };

void print_tensor(std::string_view name, std::string_view type, const std::vector<std::size_t>& shape,
                  std::size_t bytes) {
    std::printf("  %-48s %-6s %-22s %zu\n", printable(name).c_str(), printable(type).c_str(),
                shape_text(shape).c_str(), bytes);
}

void print_total(std::size_t tensors, std::size_t bytes) {
    std::printf("total: %zu tensors, %zu bytes (%s)\n", tensors, bytes, mib(bytes).c_str());
}

bool is_gguf(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    char magic[4] = {};
    return f.read(magic, 4) && std::string_view(magic, 4) == "GGUF";
}

void inspect_gguf(const std::string& path, bool all) {
    const io::gguf_file file(path);
    std::printf("%s: GGUF v%u, alignment %zu, data at byte %zu\n", printable(path).c_str(), file.version(),
                file.alignment(), file.data_offset());
    std::printf("metadata (%zu keys):\n", file.metadata().size());
    for (const io::gguf_kv& kv : file.metadata())
        std::printf("  %s (%s) = %s\n", printable(kv.key).c_str(), kv.value.type_string().c_str(),
                    printable(kv.value.to_string(all ? static_cast<std::size_t>(-1) : 8)).c_str());
    std::printf("tensors:\n");
    std::size_t total = 0;
    for (const io::tensor_entry& e : file.entries()) {
        print_tensor(e.name, type_name(e.type), e.shape, e.data.size());
        total += e.data.size();
    }
    print_total(file.entries().size(), total);
}

void inspect_safetensors(const std::string& path) {
    const io::safetensors_checkpoint ckpt(path);
    std::printf("%s: safetensors, %zu file(s)\n", printable(path).c_str(), ckpt.files().size());
    for (const io::safetensors_file& f : ckpt.files()) {
        if (ckpt.files().size() > 1) std::printf("file %s:\n", printable(f.path()).c_str());
        if (!f.metadata().empty()) {
            std::printf("metadata:\n");
            for (const auto& [key, value] : f.metadata())
                std::printf("  %s = %s\n", printable(key).c_str(), printable(value).c_str());
        }
    }
    std::printf("tensors:\n");
    std::size_t total = 0;
    for (const io::raw_tensor& t : ckpt.tensors()) {
        print_tensor(t.name, t.dtype, t.shape, t.data.size());
        total += t.data.size();
    }
    print_total(ckpt.tensors().size(), total);
}

} // namespace

void print_inspect_help() {
    std::printf(
        "usage: qtensor inspect [options] FILE\n"
        "\n"
        "Prints the metadata and the tensors (name, type, shape, bytes) of FILE, and\n"
        "their total. FILE is a GGUF file, a .safetensors file, a\n"
        "model.safetensors.index.json, or a Hugging Face model directory.\n"
        "\n"
        "Options:\n"
        "  -a, --all    print metadata arrays in full (default: the first 8 elements)\n"
        "  -h, --help   show this help\n");
}

int run_inspect(std::span<const std::string_view> args) {
    const parsed_args parsed = parse_args("inspect", args, inspect_options);
    if (parsed.help) {
        print_inspect_help();
        return 0;
    }
    if (parsed.positionals.size() != 1)
        usage_error("inspect: expected one FILE, got " + std::to_string(parsed.positionals.size()) +
                    " (see 'qtensor inspect --help')");
    const std::string path(parsed.positionals[0]);
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) run_error("inspect: " + in_quotes(path) + " does not exist");
    if (!std::filesystem::is_directory(path, ec) && is_gguf(path))
        inspect_gguf(path, parsed.has(opt_all));
    else
        inspect_safetensors(path);
    return 0;
}

} // namespace qtensor::cli
