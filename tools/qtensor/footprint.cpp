// tools/qtensor/footprint.cpp: `qtensor footprint CONFIG`: the bytes a Gemma 4
// model takes in a policy, from its config.json alone (gemma4/footprint.hpp,
// docs/footprint.md).
#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "commands.hpp"
#include "model_args.hpp"
#include "qtensor/core/text.hpp"
#include "qtensor/gemma4/config.hpp"
#include "qtensor/gemma4/footprint.hpp"
#include "qtensor/io/json.hpp"
#include "qtensor/io/mapped_file.hpp"

namespace qtensor::cli {
namespace {

constexpr option_spec footprint_options[] = {
    {"policy", 'p', true},
    {"set", 0, true},
    {"context", 'c', true},
    {"text-only", 0, false},
};
enum : std::size_t { fp_policy, fp_set, fp_context, fp_text_only };

// The text model's config and the encoders' parameter counts.
struct model_config {
    gemma4::config text;
    gemma4::encoder_parameters encoders;
    std::string note; // what the count leaves out
};

model_config read_config(const std::string& path) {
    const io::mapped_file file(path);
    if (file.size() > gemma4::max_config_bytes) run_error("footprint: " + path + " is too large for a config.json");
    const nlohmann::json j = io::parse_json(
        std::string_view(reinterpret_cast<const char*>(file.bytes().data()), file.size()), gemma4::max_config_depth,
        path);
    try {
        model_config out{gemma4::config::from_hf_json(j), gemma4::encoder_parameters::from_json(j), {}};
        // A Hugging Face multimodal config describes its encoders, which this does not count.
        for (const char* part : {"vision_config", "audio_config"})
            if (j.contains(part) && out.encoders.vision == 0 && out.encoders.audio == 0)
                out.note += std::string(out.note.empty() ? "" : "; ") + "the config's " + part +
                            " is not counted (give \"qtensor_encoder_parameters\", see docs/footprint.md)";
        return out;
    } catch (const qtensor::error& e) {
        run_error(path + ": " + library_message(e));
    }
}

// "attention=q4_0,embedding=q8_0" applied to plan.
void apply_sets(gemma4::storage_plan& plan, std::string_view sets) {
    while (!sets.empty()) {
        const std::size_t comma = sets.find(',');
        const std::string_view one = sets.substr(0, comma);
        sets = comma == std::string_view::npos ? std::string_view{} : sets.substr(comma + 1);
        const std::size_t eq = one.find('=');
        if (eq == std::string_view::npos || eq == 0 || eq + 1 == one.size())
            usage_error("footprint: --set " + in_quotes(one) + " is not PART=SCHEME");
        try {
            plan.set(one.substr(0, eq), one.substr(eq + 1));
        } catch (const qtensor::error& e) {
            usage_error("footprint: --set: " + library_message(e));
        }
    }
}

// 2.86 GB (2.66 GiB)
std::string gigabytes(std::size_t bytes) {
    char buf[64];
    const double b = static_cast<double>(bytes);
    std::snprintf(buf, sizeof buf, "%.3f GB (%.3f GiB)", b / 1e9, b / (1024.0 * 1024.0 * 1024.0));
    return buf;
}

} // namespace

void print_footprint_help() {
    std::printf(
        "usage: qtensor footprint [--policy POLICY] [--set PART=SCHEME,...] [--context N]\n"
        "                         [--text-only] CONFIG\n"
        "\n"
        "The bytes a Gemma 4 model takes when its weights are stored in a policy's\n"
        "schemes, counted from its config.json alone: per part (token table,\n"
        "per-layer table, attention, MLP, experts, ...), in total, as GGUF tensor\n"
        "data, what a memory-mapped run keeps resident after N tokens (of a lookup\n"
        "table only the rows of the tokens it reads), and the KV cache for N tokens.\n"
        "Vision and audio encoders, which qtensor does not run, are counted from\n"
        "\"qtensor_encoder_parameters\" in the config when it has them.\n"
        "\n"
        "CONFIG is a config.json (docs/configs/ has the released sizes) or a model\n"
        "directory holding one.\n"
        "\n"
        "Options:\n"
        "  -p, --policy POLICY   %s (default f32)\n"
        "      --set PART=SCHEME store a part in another scheme, to count only\n"
        "                        (comma-separated). PART: attention, mlp,\n"
        "                        experts; embedding (the token table and the\n"
        "                        per-layer table); per_layer (the per-layer\n"
        "                        projections); kv_cache (f32, bf16, q8_0);\n"
        "                        encoders (counted in the policy's attention\n"
        "                        scheme unless set)\n"
        "  -c, --context N       count the KV cache and resident table rows for N\n"
        "                        tokens (default: none)\n"
        "      --text-only       leave out the vision and audio encoders\n"
        "  -h, --help            show this help\n"
        "\n"
        "Exit status: 0 done, 1 failed (files, a scheme that cannot hold a\n"
        "tensor's rows), 2 bad command line.\n",
        policy_list(gemma4::policy_names).c_str());
}

int run_footprint(std::span<const std::string_view> args) {
    const parsed_args parsed = parse_args("footprint", args, footprint_options);
    if (parsed.help) {
        print_footprint_help();
        return 0;
    }
    if (parsed.positionals.size() != 1)
        usage_error("footprint: expected one CONFIG, got " + std::to_string(parsed.positionals.size()) +
                    " (see 'qtensor footprint --help')");
    const std::string_view policy = policy_of(parsed, fp_policy);
    gemma4::storage_plan plan = gemma4::with_policy(policy, []<class P>(P) { return gemma4::storage_plan::of<P>(); });
    if (parsed.has(fp_set)) apply_sets(plan, *parsed.values[fp_set]);
    const std::size_t context =
        parsed.has(fp_context) ? parse_count("--context", *parsed.values[fp_context], std::size_t{1} << 40) : 0;

    std::string path(parsed.positionals[0]);
    if (std::filesystem::is_directory(path)) path += "/config.json";
    model_config mc = read_config(path);
    if (parsed.has(fp_text_only)) mc.encoders = {};
    check_context("footprint", mc.text, context);
    const gemma4::footprint f = gemma4::measure_footprint(mc.text, plan, context, mc.encoders);

    std::printf("%s, policy %s%s%s\n", printable(path).c_str(), std::string(policy).c_str(),
                parsed.has(fp_set) ? ", " : "",
                parsed.has(fp_set) ? printable(*parsed.values[fp_set]).c_str() : "");
    std::printf("%-24s %-6s %8s %15s %15s %15s\n", "part", "scheme", "tensors", "parameters", "bytes", "resident");
    for (const gemma4::footprint_part& p : f.parts)
        std::printf("%-24s %-6s %8s %15zu %15zu %15zu\n", p.name.c_str(), std::string(p.scheme).c_str(),
                    p.tensors == 0 ? "-" : std::to_string(p.tensors).c_str(), p.parameters, p.bytes, p.resident);
    std::printf("%-24s %-6s %8s %15zu %15zu %15zu\n", "total", "", "", f.parameters, f.bytes, f.resident);
    std::printf("weights:             %s, %.3f bits a parameter\n", gigabytes(f.bytes).c_str(),
                f.parameters == 0 ? 0.0 : 8.0 * static_cast<double>(f.bytes) / static_cast<double>(f.parameters));
    std::printf("GGUF tensor data:    %s (text model; the file adds its metadata)\n", gigabytes(f.tensor_data).c_str());
    if (context == 0) {
        std::printf("resident, mapped:    %s without the lookup tables (--context N adds their rows)\n",
                    gigabytes(f.resident).c_str());
        std::printf("KV cache:            --context N counts it\n");
    } else {
        std::printf("resident, mapped:    %s after %zu tokens\n", gigabytes(f.resident).c_str(), context);
        std::printf("KV cache (%s):%*s%s for %zu tokens\n", std::string(plan.kv_cache.scheme).c_str(),
                    static_cast<int>(9 - std::min<std::size_t>(9, plan.kv_cache.scheme.size())), "",
                    gigabytes(f.kv_cache).c_str(), context);
    }
    if (!mc.note.empty()) std::printf("note: %s\n", mc.note.c_str());
    return 0;
}

} // namespace qtensor::cli
