// qtensor/gemma4/activation_sites_json.hpp: activation_sites as JSON, the
// file `qtensor calibrate` writes and --scales reads:
//   {"format": "qtensor activation scales", "scales": {"layers.0.attention": 0.0234, ...}}
// A site absent from the file has no number (0). Apart from
// activation_sites.hpp so that a model (which declares no JSON reader when
// compiled separately) does not pull in nlohmann-json.
#pragma once

#include <cmath>
#include <cstddef>
#include <string>
#include <string_view>

#include "qtensor/core/config.hpp"
#include "qtensor/core/error.hpp"
#include "qtensor/gemma4/activation_sites.hpp"
#include "qtensor/io/json.hpp"

QTENSOR_BEGIN_NAMESPACE
namespace gemma4 {

inline constexpr std::string_view activation_sites_format = "qtensor activation scales";

// The sites with a number, by name, in site order.
inline std::string to_json(const activation_sites& s) {
    nlohmann::ordered_json scales = nlohmann::ordered_json::object();
    for (std::size_t i = 0; i < s.size(); ++i)
        if (s[i] > 0.0f) scales[s.name(i)] = s[i];
    nlohmann::ordered_json doc;
    doc["format"] = std::string(activation_sites_format);
    doc["scales"] = scales;
    return doc.dump(1) + "\n";
}

// Reads the JSON form for a model of `layers` layers; `where` names the text
// in errors. Refuses another format, names of no site of such a model, and
// numbers that are not finite and positive.
inline activation_sites activation_sites_from_json(std::string_view text, std::size_t layers, const std::string& where) {
    const nlohmann::json doc = io::parse_json(text, 8, where);
    if (!doc.is_object() || !doc.contains("format") || doc["format"] != activation_sites_format ||
        !doc.contains("scales") || !doc["scales"].is_object())
        throw error(where + ": not qtensor activation scales (an object with \"format\": \"" +
                    std::string(activation_sites_format) + "\" and \"scales\")");
    activation_sites s(layers);
    for (const auto& [key, value] : doc["scales"].items()) {
        std::size_t i = 0;
        while (i < s.size() && s.name(i) != key) ++i;
        if (i == s.size())
            throw error(where + ": \"" + key + "\" is no site of a model with " + std::to_string(layers) + " layers");
        const float v = value.is_number() ? value.get<float>() : -1.0f;
        if (!(v > 0.0f) || !std::isfinite(v))
            throw error(where + ": " + key + " is " + io::json_excerpt(value) + ", not a finite positive scale");
        s[i] = v;
    }
    return s;
}

} // namespace gemma4
QTENSOR_END_NAMESPACE
