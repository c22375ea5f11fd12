// File: fuzz/recipe_fuzzer.cpp
// libFuzzer target: any bytes as a recipe (an INI file a user wrote, or the one a checkpoint stores
// and `ckpt export`, `generate` and a resume read back). Parsing and validation must accept or
// throw albion::Error, never crash or overflow (validate() once divided by an overflowed product);
// an accepted recipe must print as INI that parses back to the same text, since that printed form
// is what a checkpoint stores; the batch split over data-parallel ranks must not overflow either.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <string>

#include "runtime/base/error.h"
#include "runtime/config/recipe.h"

namespace config = albion::config;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  config::Recipe recipe;
  try {
    std::istringstream ini(std::string(reinterpret_cast<const char*>(data), size));
    recipe = config::parse_recipe(ini, "fuzz", {});
  } catch (const albion::Error&) {
    return 0;
  }
  const std::string printed = config::resolved_recipe_ini(recipe);
  try {
    std::istringstream again(printed);
    if (config::resolved_recipe_ini(config::parse_recipe(again, "printed", {})) != printed) std::abort();
  } catch (const albion::Error&) {
    // A PKCS#11 PIN is printed as "(not shown)" (runtime/base/redact.h), which may not parse back
    // into a valid spec; anything else that printed must read back.
    if (printed.find("(not shown)") == std::string::npos) std::abort();
  }
  for (int ranks : {1, 3, 1024, 1 << 30}) {
    try {
      recipe.train.accumulation_steps(ranks);
    } catch (const albion::Error&) {
    }
  }
  return 0;
}
