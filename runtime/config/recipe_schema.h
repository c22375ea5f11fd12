// File: runtime/config/recipe_schema.h
// The single declaration of every recipe key (see recipe.h). A RecipeSchema binds each key to a
// field of one Recipe, so parsing into it fills the fields and printing reads them back.
#pragma once

#include <boost/program_options.hpp>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "runtime/config/recipe.h"

namespace albion::config {

class RecipeSchema {
 public:
  explicit RecipeSchema(Recipe& recipe);

  const boost::program_options::options_description& options() const { return options_; }
  // "[section]\nkey = value\n..." for every key, in declaration order.
  std::string to_ini() const;

 private:
  template <typename T>
  void key(const char* name, T& field, const char* help);

  boost::program_options::options_description options_{"recipe keys (section.key = default)"};
  std::vector<std::pair<std::string, std::function<std::string()>>> printers_;
};

// Strings in recipes may carry C escapes (\n, \t, \\) so one line can hold any prompt.
std::string unescape_recipe_string(const std::string& text);
std::string escape_recipe_string(const std::string& text);

}  // namespace albion::config
