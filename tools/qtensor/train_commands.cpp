// tools/qtensor/train_commands.cpp: the commands that differentiate a Gemma 4
// model:
//   qtensor grad MODEL --ids ... --out F.safetensors   the loss and every parameter's gradient
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cli.hpp"
#include "commands.hpp"
#include "io.hpp"
#include "model_args.hpp"
#include "qtensor/gemma4/checkpoint.hpp"
#include "qtensor/gemma4/parameters.hpp"
#include "qtensor/gemma4/reference_grad.hpp"
#include "qtensor/io/safetensors_writer.hpp"

namespace qtensor::cli {
namespace {

constexpr option_spec grad_options[] = {
    {"ids", 'i', true},
    {"out", 'o', true},
};
enum : std::size_t { gr_ids, gr_out };

} // namespace

void print_grad_help() {
    std::printf(
        "usage: qtensor grad --ids IDS --out FILE MODEL\n"
        "\n"
        "Runs the token ids through the model, takes the mean cross-entropy of each\n"
        "position's logits against the next id (the training loss), and writes it\n"
        "with the gradient of every parameter to FILE, a safetensors file:\n"
        "  loss                      float32 [1]\n"
        "  grad.<Hugging Face name>  float32, the parameter's shape\n"
        "Computed in float32 from the model's weights widened to float32, by the\n"
        "scalar reference code (gemma4/reference_grad.hpp): a check, not a trainer.\n"
        "\n"
        "Options:\n"
        "  -i, --ids IDS     comma-separated token ids, at least 2 (e.g. 5,17,3)\n"
        "  -o, --out FILE    the safetensors file to write\n"
        "  -h, --help        show this help\n"
        "\n"
        "MODEL: a Hugging Face model directory (config.json, model.safetensors) or a\n"
        "GGUF file; quantized weights are differentiated as their float32 values.\n");
}

int run_grad(std::span<const std::string_view> args) {
    const parsed_args parsed = parse_args("grad", args, grad_options);
    if (parsed.help) {
        print_grad_help();
        return 0;
    }
    if (!parsed.has(gr_ids)) usage_error("grad: missing --ids");
    if (!parsed.has(gr_out)) usage_error("grad: missing --out");
    if (parsed.positionals.size() != 1)
        usage_error("grad: expected one MODEL, got " + std::to_string(parsed.positionals.size()) +
                    " (see 'qtensor grad --help')");
    const std::vector<std::int32_t> ids = parse_ids(*parsed.values[gr_ids]);
    if (ids.size() < 2) usage_error("grad: --ids needs at least 2 tokens (each position predicts the next)");
    const std::string model = model_path("grad", parsed.positionals[0]);

    const gemma4::checkpoint ck(model);
    check_context("grad", ck.config(), ids.size());
    const gemma4::tensors<float> params = gemma4::load_parameters(ck.config(), ck, ck.names());
    const auto result = gemma4::reference::loss_and_gradients<float>(ck.config(), params, ids);

    io::safetensors_writer w;
    const float loss = result.loss;
    w.add("loss", {1}, std::span(&loss, 1));
    for (const gemma4::parameter_shape& s : gemma4::parameter_shapes(ck.config()))
        if (s.trainable) w.add("grad." + s.name, s.shape, result.grads.at(s.name));
    output out(std::string(*parsed.values[gr_out]));
    w.write(out.file());
    std::fprintf(stderr, "qtensor: grad: loss %.6f over %zu tokens\n", static_cast<double>(loss), ids.size());
    return 0;
}

} // namespace qtensor::cli
