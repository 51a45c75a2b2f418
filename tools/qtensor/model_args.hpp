// tools/qtensor/model_args.hpp: the arguments the model commands share
// (convert, logits, generate, ppl, grad, train): --policy, --ids, --threads, MODEL.
#pragma once

#include <algorithm>
#include <array>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include "cli.hpp"
#include "qtensor/gemma4/config.hpp"
#include "qtensor/gemma4/policy.hpp"
#include "qtensor/gemma4/weights.hpp"

namespace qtensor::cli {

// Caps that keep a typo from asking for absurd work (or memory) up front.
constexpr std::size_t max_threads = 1024;
constexpr std::size_t max_new_tokens = std::size_t{1} << 20;

template <std::size_t K>
std::string policy_list(const std::array<std::string_view, K>& names) {
    std::string s;
    for (std::string_view n : names) {
        if (!s.empty()) s += ", ";
        s += n;
    }
    return s;
}

// --policy NAME, one of `names`, default f32; an unknown name is a usage
// error (`also`: what else the command would have taken).
template <std::size_t K>
std::string_view policy_in(const parsed_args& parsed, std::size_t opt, const std::array<std::string_view, K>& names,
                           std::string_view also = {}) {
    if (!parsed.has(opt)) return gemma4::f32_policy::name;
    const std::string_view name = *parsed.values[opt];
    for (std::string_view n : names)
        if (n == name) return name;
    if (name == gemma4::stored_policy::name)
        usage_error("--policy stored runs a model as its file holds it; this command needs a policy that names its "
                    "schemes (one of " + policy_list(names) + (also.empty() ? std::string() : "; " + std::string(also)) +
                    ")");
    usage_error("--policy " + in_quotes(name) + " is not a policy (one of " + policy_list(names) +
                (also.empty() ? std::string() : "; " + std::string(also)) + ")");
}

// A typed policy (gemma4::with_policy), for commands that convert or train.
inline std::string_view policy_of(const parsed_args& parsed, std::size_t opt, std::string_view also = {}) {
    return policy_in(parsed, opt, gemma4::policy_names, also);
}

// Any policy a model runs with (gemma4::with_inference_policy).
inline std::string_view inference_policy_of(const parsed_args& parsed, std::size_t opt) {
    return policy_in(parsed, opt, gemma4::inference_policy_names);
}

// "5,17,3" -> {5, 17, 3}: non-negative decimal integers that fit int32.
// Whether the model's vocabulary has them is the model's to say.
inline std::vector<std::int32_t> parse_ids(std::string_view text) {
    if (text.empty()) usage_error("--ids is empty (expected token ids like 5,17,3)");
    std::vector<std::int32_t> ids;
    std::size_t start = 0;
    for (;;) {
        const std::size_t comma = std::min(text.find(',', start), text.size());
        const std::string_view item = text.substr(start, comma - start);
        std::int32_t id = 0;
        const auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), id);
        if (ec == std::errc::result_out_of_range)
            usage_error("--ids: " + in_quotes(item) + " is too large for a token id");
        if (item.empty() || ec != std::errc{} || end != item.data() + item.size() || id < 0)
            usage_error("--ids: " + in_quotes(item) + " (item " + std::to_string(ids.size()) +
                        ") is not a non-negative integer");
        ids.push_back(id);
        if (comma == text.size()) return ids;
        start = comma + 1;
    }
}

inline std::size_t threads_of(const parsed_args& parsed, std::size_t opt) {
    if (parsed.has(opt)) return parse_count("--threads", *parsed.values[opt], max_threads);
    return std::max(1u, std::thread::hardware_concurrency());
}

// --in-place: Q4_0 and Q8_0 matrices read from the file as they are, not repacked.
inline gemma4::weight_layout layout_of(const parsed_args& parsed, std::size_t opt) {
    return parsed.has(opt) ? gemma4::weight_layout::in_place : gemma4::weight_layout::interleaved;
}

// The positional MODEL, checked to exist so the message says which argument is wrong.
inline std::string model_path(std::string_view command, const std::string_view arg) {
    std::error_code ec;
    if (!std::filesystem::exists(arg, ec))
        run_error(std::string(command) + ": model " + in_quotes(arg) + " does not exist");
    return std::string(arg);
}

// The whole of a file's bytes (a text to train on or to score).
inline std::string read_text(std::string_view command, const std::string& path) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) run_error(std::string(command) + ": " + in_quotes(path) + " is a directory");
    std::ifstream in(path, std::ios::binary);
    if (!in) run_error(std::string(command) + ": cannot open " + in_quotes(path));
    std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    if (in.bad()) run_error(std::string(command) + ": cannot read " + in_quotes(path));
    return text;
}

inline void check_context(std::string_view command, const gemma4::config& c, std::size_t positions) {
    if (positions > c.max_position_embeddings)
        run_error(std::string(command) + ": " + std::to_string(positions) + " positions exceed the model's context of " +
                  std::to_string(c.max_position_embeddings));
}

} // namespace qtensor::cli
