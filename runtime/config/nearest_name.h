// File: runtime/config/nearest_name.h
// "Did you mean ...?" for unknown subcommands, options and recipe keys.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace albion::config {

// Edit distance (insertions, deletions, substitutions, adjacent transpositions).
std::size_t edit_distance(std::string_view a, std::string_view b);

// The valid name closest to `given`, if it is close enough to be a plausible typo
// (distance at most a third of the longer name, and at least 1 edit allowed).
std::optional<std::string> nearest_name(std::string_view given,
                                        const std::vector<std::string>& valid);

}  // namespace albion::config
