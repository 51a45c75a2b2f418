// tools/qtensor/main.cpp: the `qtensor` command-line tool. Picks the
// subcommand, and is the one place failures become a one-line message on
// stderr and an exit status (0 done, 1 failed, 2 bad command line).
#include <cstdio>
#include <exception>
#include <new>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cli.hpp"
#include "commands.hpp"
#include "io.hpp"
#include "qtensor/core/config.hpp"
#include "qtensor/core/error.hpp"
#include "qtensor/core/text.hpp"

namespace qtensor::cli {
namespace {

// A new subcommand is one entry.
constexpr command commands[] = {
    {"quantize", "float32 rows -> rows of blocks of a type (q4_0, q8_0, ...)",
     print_quantize_help, run_quantize},
    {"dequantize", "rows of blocks of a type -> float32 rows", print_dequantize_help,
     run_dequantize},
    {"inspect", "metadata and tensors of a GGUF file or safetensors checkpoint", print_inspect_help,
     run_inspect},
    {"convert", "a Gemma 4 model (Hugging Face or GGUF) -> GGUF in a policy's schemes",
     print_convert_gguf_help, run_convert_gguf},
    {"logits", "run token ids through a Gemma 4 model, write the float32 logits", print_logits_help,
     run_logits},
    {"generate", "greedy decoding with a Gemma 4 model, with tokens/s and memory", print_generate_help,
     run_generate},
    {"tokenize", "a Gemma 4 model's tokenizer: text -> token ids (--chat: as a chat turn), ids -> text",
     print_tokenize_help, run_tokenize},
    {"ppl", "perplexity of a Gemma 4 model on a text (byte tokens) or on token ids", print_ppl_help, run_ppl},
    {"calibrate", "static activation scales of a Gemma 4 model from a text or token ids", print_calibrate_help,
     run_calibrate},
    {"footprint", "the bytes a Gemma 4 config takes in a policy: per part, mapped, KV cache",
     print_footprint_help, run_footprint},
    {"lattice", "how a model's Q4_0 blocks sit on Q4_0 grids (QAT checkpoints), and what packing does",
     print_lattice_help, run_lattice},
    {"grad", "the training loss of token ids and every parameter's gradient -> safetensors",
     print_grad_help, run_grad},
    {"train", "train or fine-tune a Gemma 4 model on a text (byte tokens), with QAT", print_train_help,
     run_train},
    {"fake-quant", "a model's weights as QAT under a policy sees them -> a bf16 or f32 checkpoint",
     print_fake_quant_help, run_fake_quant},
};

void print_usage(std::FILE* to) {
    std::fprintf(to,
                 "usage: qtensor <command> [options] [args]\n"
                 "       qtensor <command> --help\n"
                 "\n"
                 "Commands:\n");
    for (const command& c : commands)
        std::fprintf(to, "  %-12s %s\n", std::string(c.name).c_str(), std::string(c.summary).c_str());
    std::fprintf(to,
                 "\n"
                 "Options:\n"
                 "  -h, --help   show this help\n"
                 "  --version    print the version\n");
}

int dispatch(std::span<const std::string_view> args) {
    if (args.empty()) {
        print_usage(stderr);
        return exit_usage;
    }
    const std::string_view first = args[0];
    if (first == "-h" || first == "--help" || first == "help") {
        if (args.size() > 1 && first == "help") {
            for (const command& c : commands)
                if (c.name == args[1]) {
                    c.print_help();
                    return 0;
                }
            usage_error("unknown command " + in_quotes(args[1]) + " (see 'qtensor --help')");
        }
        print_usage(stdout);
        return 0;
    }
    if (first == "--version") {
        std::printf("qtensor %d.%d.%d\n", QTENSOR_VERSION_MAJOR, QTENSOR_VERSION_MINOR,
                    QTENSOR_VERSION_PATCH);
        return 0;
    }
    for (const command& c : commands)
        if (c.name == first) return c.run(args.subspan(1));
    if (first.starts_with("-"))
        usage_error("unknown option " + in_quotes(first) + " (see 'qtensor --help')");
    usage_error("unknown command " + in_quotes(first) + " (see 'qtensor --help')");
}

// One line: a message that somehow holds a newline must not break the
// "one line on stderr" promise scripts rely on.
// One line, whatever bytes a file name or argument in the message holds.
void report(const std::string& message) {
    end_progress_line();
    std::fprintf(stderr, "qtensor: %s\n", printable(message).c_str());
}

} // namespace
} // namespace qtensor::cli

int main(int argc, char** argv) {
    using namespace qtensor::cli;
    interrupt::install();
    try {
        const std::vector<std::string_view> args(argv + 1, argv + argc);
        const int status = dispatch(args);
        if (std::fflush(stdout) != 0) {
            report("cannot write to standard output");
            return exit_failure;
        }
        return status;
    } catch (const failure& e) {
        report(e.what());
        return e.exit_code();
    } catch (const qtensor::error& e) {
        report(library_message(e));
    } catch (const std::bad_alloc&) {
        report("out of memory");
    } catch (const std::exception& e) {
        report(e.what());
    }
    return exit_failure;
}
