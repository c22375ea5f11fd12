// File: runtime/config/program_options.cpp
#include "runtime/config/program_options.h"

#include <algorithm>
#include <map>
#include <typeinfo>
#include <utility>
#include <vector>

#include "runtime/base/check.h"
#include "runtime/config/nearest_name.h"

namespace albion::config {

std::vector<std::string> long_option_names(const po::options_description& options) {
  std::vector<std::string> names;
  for (const auto& option : options.options()) names.push_back("--" + option->long_name());
  return names;
}

namespace {

bool is_unsigned_integer(const std::type_info& type) {
  return type == typeid(unsigned char) || type == typeid(unsigned short) ||
         type == typeid(unsigned int) || type == typeid(unsigned long) ||
         type == typeid(unsigned long long);
}

// A copy of Boost's error whose substitutions it can read and replace (they are protected).
class SafeMessage : public po::error_with_option_name {
 public:
  explicit SafeMessage(const po::error_with_option_name& error) : po::error_with_option_name(error) {}

  // Each substitution becomes a marker without '%' while Boost fills the template, then the
  // markers become the values in one pass here, which never looks inside what it inserted.
  std::string message() {
    const std::map<std::string, std::string> values = m_substitutions;
    std::vector<std::pair<std::string, std::string>> markers;
    for (const auto& [name, value] : values) {
      markers.emplace_back(str_cat('\x01', markers.size(), '\x01'), value);
      set_substitute(name, markers.back().first);
    }
    std::string text = what();
    for (const auto& [marker, value] : markers) {
      for (std::size_t at = text.find(marker); at != std::string::npos; at = text.find(marker, at + value.size())) {
        text.replace(at, marker.size(), value);
      }
    }
    return text;
  }
};

}  // namespace

std::string program_options_message(const po::error& e) {
  const auto* named = dynamic_cast<const po::error_with_option_name*>(&e);
  return named != nullptr ? SafeMessage(*named).message() : e.what();
}

void refuse_negative_unsigned(const po::parsed_options& parsed, const std::string& name_prefix) {
  for (const po::option& option : parsed.options) {
    if (option.unregistered || parsed.description == nullptr) continue;
    const po::option_description* description = parsed.description->find_nothrow(option.string_key, false);
    if (description == nullptr) continue;
    auto typed = boost::dynamic_pointer_cast<const po::typed_value_base>(description->semantic());
    if (!typed || !is_unsigned_integer(typed->value_type())) continue;
    for (const std::string& raw : option.value) {
      auto first = raw.find_first_not_of(" \t");
      if (first != std::string::npos && raw[first] == '-') {
        throw po::error(str_cat("the argument ('", raw, "') for option '", name_prefix, option.string_key,
                                "' must not be negative"));
      }
    }
  }
}

ParsedOptions parse_options(const std::vector<std::string>& args,
                            const po::options_description& options,
                            const po::positional_options_description& positional,
                            const std::string& context) {
  ParsedOptions parsed;
  auto separator = std::find(args.begin(), args.end(), "--");
  std::vector<std::string> own(args.begin(), separator);
  if (separator != args.end()) parsed.passthrough.assign(separator + 1, args.end());
  try {
    po::parsed_options given = po::command_line_parser(own)
                                   .options(options)
                                   .positional(positional)
                                   .style(po::command_line_style::unix_style ^
                                          po::command_line_style::allow_guessing)
                                   .run();
    refuse_negative_unsigned(given, "--");
    po::store(given, parsed.values);
    // --help is answered even when required options are missing: notify would refuse first.
    if (parsed.values.count("help") == 0) po::notify(parsed.values);
  } catch (const po::unknown_option& e) {
    std::string given = e.get_option_name();
    given = given.substr(0, given.find('='));  // "--stesp=3" names the option "--stesp"
    std::string hint;
    if (auto near = nearest_name(given, long_option_names(options))) {
      hint = str_cat(" (did you mean '", *near, "'?)");
    }
    throw UsageError(str_cat(context, ": unknown option '", given, "'", hint));
  } catch (const po::too_many_positional_options_error&) {
    throw UsageError(str_cat(context, ": too many arguments"));
  } catch (const po::error& e) {
    throw UsageError(str_cat(context, ": ", program_options_message(e)));
  }
  return parsed;
}

}  // namespace albion::config
