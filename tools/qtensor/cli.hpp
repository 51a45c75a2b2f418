// tools/qtensor/cli.hpp: what every `qtensor` subcommand shares: the failure
// type that becomes a one-line message and an exit status, the command table
// entry, and a small option parser.
#pragma once

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "qtensor/core/error.hpp"

namespace qtensor::cli {

// Exit statuses: 0 success, 1 the run failed (files, sizes, values), 2 the
// command line was wrong.
inline constexpr int exit_failure = 1;
inline constexpr int exit_usage = 2;

// A failure the user can act on. The message has no "qtensor: " prefix and no
// newline; main() adds the prefix and prints it as one line on stderr.
class failure : public std::runtime_error {
public:
    failure(int exit_code, const std::string& message)
        : std::runtime_error(message), exit_code_(exit_code) {}
    int exit_code() const noexcept { return exit_code_; }

private:
    int exit_code_;
};

[[noreturn]] inline void usage_error(const std::string& message) {
    throw failure(exit_usage, message);
}
[[noreturn]] inline void run_error(const std::string& message) {
    throw failure(exit_failure, message);
}

// A library error's message without the "qtensor: " its constructor adds, so
// the tool can put context (a row number) between prefix and message.
inline std::string library_message(const qtensor::error& e) {
    return std::string(e.message());
}

// "12.34 MiB", for sizes in progress and summary lines.
inline std::string mib(std::size_t bytes) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
    return buf;
}

// "[2, 3]" for a tensor's shape.
inline std::string shape_text(const std::vector<std::size_t>& shape) {
    std::string s = "[";
    for (std::size_t i = 0; i < shape.size(); ++i) {
        if (i != 0) s += ", ";
        s += std::to_string(shape[i]);
    }
    return s + "]";
}

// 'x' with quotes, for names and values inside messages.
// Built by append: GCC 12 gives a false -Wrestrict for "'" + std::string(s).
inline std::string in_quotes(std::string_view s) {
    std::string out;
    out.reserve(s.size() + 2);
    out.append(1, '\'').append(s).append(1, '\'');
    return out;
}

// One subcommand. Adding a command is one entry in main.cpp's table.
struct command {
    std::string_view name;
    std::string_view summary; // one line for `qtensor --help`
    void (*print_help)();     // full help on stdout
    int (*run)(std::span<const std::string_view> args); // args after the command name
};

// --- options ----------------------------------------------------------------

struct option_spec {
    std::string_view long_name;  // without the leading "--"
    char short_name;             // 0 when there is none
    bool takes_value;
};

struct parsed_args {
    std::vector<std::optional<std::string_view>> values; // by spec index; "" for flags
    std::vector<std::string_view> positionals;
    bool help = false;

    bool has(std::size_t spec) const { return values[spec].has_value(); }
};

// GNU-style: `--name value`, `--name=value`, `-n value`, `--` ends the options.
// -h/--help is always accepted. An unknown option, a missing value or an option
// given twice is a usage error naming the command.
inline parsed_args parse_args(std::string_view command_name,
                              std::span<const std::string_view> args,
                              std::span<const option_spec> specs) {
    parsed_args out;
    out.values.resize(specs.size());
    const std::string where = std::string(command_name) + ": ";
    bool options_done = false;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string_view arg = args[i];
        if (options_done || arg.size() < 2 || arg[0] != '-') {
            out.positionals.push_back(arg);
            continue;
        }
        if (arg == "--") {
            options_done = true;
            continue;
        }
        if (arg == "-h" || arg == "--help") {
            out.help = true;
            continue;
        }
        std::string_view name;
        std::optional<std::string_view> inline_value;
        std::size_t found = specs.size();
        if (arg.starts_with("--")) {
            name = arg.substr(2);
            if (const auto eq = name.find('='); eq != std::string_view::npos) {
                inline_value = name.substr(eq + 1);
                name = name.substr(0, eq);
            }
            for (std::size_t s = 0; s < specs.size(); ++s)
                if (specs[s].long_name == name) found = s;
        } else if (arg.size() == 2) {
            for (std::size_t s = 0; s < specs.size(); ++s)
                if (specs[s].short_name != 0 && specs[s].short_name == arg[1]) found = s;
        }
        if (found == specs.size())
            usage_error(where + "unknown option " + in_quotes(arg) + " (see 'qtensor " +
                        std::string(command_name) + " --help')");
        const option_spec& spec = specs[found];
        const std::string shown = "--" + std::string(spec.long_name);
        if (out.values[found])
            usage_error(where + shown + " given more than once");
        if (!spec.takes_value) {
            if (inline_value) usage_error(where + shown + " takes no value");
            out.values[found] = std::string_view{};
        } else if (inline_value) {
            out.values[found] = *inline_value;
        } else {
            if (i + 1 == args.size()) usage_error(where + shown + " needs a value");
            out.values[found] = args[++i];
        }
    }
    return out;
}

// A positive decimal integer that fits in size_t with `max_value` as the cap;
// anything else ("", "12x", "-3", "0", "1e3", too large) is a usage error.
inline std::size_t parse_count(std::string_view option, std::string_view text,
                               std::size_t max_value) {
    std::uint64_t value = 0;
    const char* first = text.data();
    const char* last = text.data() + text.size();
    const auto [end, ec] = std::from_chars(first, last, value);
    if (ec == std::errc::result_out_of_range ||
        (ec == std::errc{} && end == last && value > max_value))
        usage_error(std::string(option) + " " + in_quotes(text) + " is too large (at most " +
                    std::to_string(max_value) + ")");
    if (ec != std::errc{} || end != last || text.empty())
        usage_error(std::string(option) + " " + in_quotes(text) + " is not a positive integer");
    if (value == 0) usage_error(std::string(option) + " must be positive, got 0");
    return static_cast<std::size_t>(value);
}

} // namespace qtensor::cli
