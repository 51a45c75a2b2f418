// A checkpoint in memory for the Gemma 4 tests: parameters by Hugging Face
// name, stored as float32 or bf16, seen by the loaders as any file is
// (io::tensor_source).
#pragma once

#include <cstddef>
#include <list>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "qtensor/core/half.hpp"
#include "qtensor/gemma4/parameters.hpp"
#include "qtensor/io/tensor_entry.hpp"

namespace qtensor_test {

struct memory_source {
    std::vector<qtensor::io::tensor_entry> entries;
    std::list<std::vector<std::byte>> storage; // the bytes of the entries (a list: they never move)

    // Every parameter of c from p, stored as `type` (f32 or bf16).
    memory_source(const qtensor::gemma4::config& c, const qtensor::gemma4::tensors<float>& p,
                  qtensor::ggml_type type = qtensor::ggml_type::f32) {
        for (const qtensor::gemma4::parameter_shape& s : qtensor::gemma4::parameter_shapes(c)) {
            const std::vector<float>& v = p.at(s.name);
            std::vector<std::byte>& bytes = storage.emplace_back();
            if (type == qtensor::ggml_type::bf16) {
                std::vector<qtensor::bf16_t> h(v.size());
                for (std::size_t i = 0; i < v.size(); ++i) h[i] = qtensor::fp32_to_bf16(v[i]);
                const auto b = std::as_bytes(std::span(h));
                bytes.assign(b.begin(), b.end());
            } else {
                const auto b = std::as_bytes(std::span(v));
                bytes.assign(b.begin(), b.end());
            }
            entries.push_back({s.name, type, s.shape, bytes});
        }
    }
    memory_source(const memory_source&) = delete; // entries point into storage

    const qtensor::io::tensor_entry* find(std::string_view name) const {
        for (const qtensor::io::tensor_entry& e : entries)
            if (e.name == name) return &e;
        return nullptr;
    }
    std::string path() const { return "memory"; }
    std::vector<std::string_view> tensor_names() const {
        std::vector<std::string_view> out;
        for (const qtensor::io::tensor_entry& e : entries) out.push_back(e.name);
        return out;
    }
};

} // namespace qtensor_test
