// tools/qtensor/commands.hpp: the subcommands main.cpp dispatches to. Each
// takes the arguments after its name and returns the exit status, or throws
// cli::failure / qtensor::error.
#pragma once

#include <span>
#include <string_view>

namespace qtensor::cli {

void print_quantize_help();
int run_quantize(std::span<const std::string_view> args);

void print_dequantize_help();
int run_dequantize(std::span<const std::string_view> args);

void print_inspect_help();
int run_inspect(std::span<const std::string_view> args);

// model_commands.cpp: Gemma 4 checkpoints.
void print_convert_gguf_help();
int run_convert_gguf(std::span<const std::string_view> args);

void print_logits_help();
int run_logits(std::span<const std::string_view> args);

void print_generate_help();
int run_generate(std::span<const std::string_view> args);

void print_tokenize_help();
int run_tokenize(std::span<const std::string_view> args);

void print_ppl_help();
void print_calibrate_help();
int run_calibrate(std::span<const std::string_view> args);
int run_ppl(std::span<const std::string_view> args);

// footprint.cpp
void print_footprint_help();
int run_footprint(std::span<const std::string_view> args);

// lattice.cpp
void print_lattice_help();
int run_lattice(std::span<const std::string_view> args);

// train_commands.cpp: training.
void print_grad_help();
int run_grad(std::span<const std::string_view> args);

void print_train_help();
int run_train(std::span<const std::string_view> args);

void print_fake_quant_help();
int run_fake_quant(std::span<const std::string_view> args);

} // namespace qtensor::cli
