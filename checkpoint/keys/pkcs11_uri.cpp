// File: checkpoint/keys/pkcs11_uri.cpp
#include "checkpoint/keys/pkcs11_uri.h"

#include <openssl/crypto.h>

#include "runtime/base/check.h"

namespace albion::checkpoint {
namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::vector<std::uint8_t> percent_decode(std::string_view text, std::string_view attribute) {
  std::vector<std::uint8_t> out;
  out.reserve(text.size());  // never reallocated: a PIN leaves no copy behind in freed memory
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out.push_back(static_cast<std::uint8_t>(text[i]));
      continue;
    }
    const int high = i + 2 < text.size() ? hex_digit(text[i + 1]) : -1;
    const int low = i + 2 < text.size() ? hex_digit(text[i + 2]) : -1;
    ALBION_CHECK_AS(UsageError, high >= 0 && low >= 0, "pkcs11 URI: attribute '", attribute,
                    "' has a bad percent-encoding (expected %XX)");
    out.push_back(static_cast<std::uint8_t>(high << 4 | low));
    i += 2;
  }
  return out;
}

std::string decode_text(std::string_view text, std::string_view attribute) {
  const std::vector<std::uint8_t> bytes = percent_decode(text, attribute);
  return {bytes.begin(), bytes.end()};
}

std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  if (text.empty()) return parts;
  for (std::size_t begin = 0;;) {
    const std::size_t end = text.find(separator, begin);
    parts.push_back(text.substr(begin, end == std::string_view::npos ? std::string_view::npos : end - begin));
    if (end == std::string_view::npos) break;
    begin = end + 1;
  }
  return parts;
}

void set_once(std::optional<std::string>& field, std::string_view name, std::string_view value) {
  ALBION_CHECK_AS(UsageError, !field.has_value(), "pkcs11 URI: attribute '", name, "' given twice");
  field = decode_text(value, name);
}

}  // namespace

Pkcs11Uri parse_pkcs11_uri(std::string_view uri) {
  constexpr std::string_view kScheme = "pkcs11:";
  ALBION_CHECK_AS(UsageError, uri.starts_with(kScheme), "key spec is not a pkcs11: URI");
  const std::string_view rest = uri.substr(kScheme.size());
  const std::size_t question = rest.find('?');
  const std::string_view path = rest.substr(0, question);
  const std::string_view query = question == std::string_view::npos ? std::string_view() : rest.substr(question + 1);

  Pkcs11Uri parsed;
  parsed.printable = str_cat(kScheme, path);
  for (std::string_view attribute : split(path, ';')) {
    const std::size_t equals = attribute.find('=');
    ALBION_CHECK_AS(UsageError, equals != std::string_view::npos && equals > 0, "pkcs11 URI: path attribute '",
                    attribute, "' is not NAME=VALUE");
    const std::string_view name = attribute.substr(0, equals);
    const std::string_view value = attribute.substr(equals + 1);
    if (name == "token") {
      set_once(parsed.token, name, value);
    } else if (name == "manufacturer") {
      set_once(parsed.manufacturer, name, value);
    } else if (name == "serial") {
      set_once(parsed.serial, name, value);
    } else if (name == "model") {
      set_once(parsed.model, name, value);
    } else if (name == "object") {
      set_once(parsed.object, name, value);
    } else if (name == "id") {
      ALBION_CHECK_AS(UsageError, !parsed.id.has_value(), "pkcs11 URI: attribute 'id' given twice");
      parsed.id = percent_decode(value, name);
    } else if (name == "type") {
      ALBION_CHECK_AS(UsageError, value == "secret-key", "pkcs11 URI: type=", value,
                      " cannot hold a key-encryption key (expected type=secret-key)");
    } else {
      throw UsageError(str_cat("pkcs11 URI: unsupported path attribute '", name,
                               "' (supported: token, manufacturer, serial, model, object, id, type)"));
    }
  }
  std::vector<std::string_view> printable_query;
  for (std::string_view attribute : split(query, '&')) {
    const std::size_t equals = attribute.find('=');
    ALBION_CHECK_AS(UsageError, equals != std::string_view::npos && equals > 0,
                    "pkcs11 URI: query attribute is not NAME=VALUE");
    const std::string_view name = attribute.substr(0, equals);
    const std::string_view value = attribute.substr(equals + 1);
    if (name == "pin-value") {
      ALBION_CHECK_AS(UsageError, !parsed.pin_value.has_value(), "pkcs11 URI: attribute 'pin-value' given twice");
      // Whitespace ends a PIN for without_pins (runtime/base/redact.h), which hides it in printed text.
      ALBION_CHECK_AS(UsageError, value.find_first_of(" \t\r\n") == std::string_view::npos,
                      "pkcs11 URI: pin-value holds whitespace; percent-encode it (%20 for a space)");
      std::vector<std::uint8_t> pin = percent_decode(value, name);
      parsed.pin_value = SecretBytes::copy_of(pin);
      OPENSSL_cleanse(pin.data(), pin.size());
      continue;  // never part of the printable form
    }
    printable_query.push_back(attribute);
    if (name == "module-path") {
      ALBION_CHECK_AS(UsageError, parsed.module_path.empty(), "pkcs11 URI: attribute 'module-path' given twice");
      parsed.module_path = decode_text(value, name);
    } else if (name == "pin-source") {
      set_once(parsed.pin_source, name, value);
    } else {
      throw UsageError(str_cat("pkcs11 URI: unsupported query attribute '", name,
                               "' (supported: module-path, pin-source, pin-value)"));
    }
  }
  for (std::size_t i = 0; i < printable_query.size(); ++i) {
    parsed.printable += str_cat(i == 0 ? "?" : "&", printable_query[i]);
  }
  ALBION_CHECK_AS(UsageError, !parsed.module_path.empty(), "key spec '", parsed.printable,
                  "' has no module-path (add ?module-path=/path/to/pkcs11-module.so)");
  ALBION_CHECK_AS(UsageError, parsed.token || parsed.serial, "key spec '", parsed.printable,
                  "' selects no token (add token=LABEL or serial=...)");
  ALBION_CHECK_AS(UsageError, parsed.object || parsed.id, "key spec '", parsed.printable,
                  "' selects no key (add object=LABEL or id=...)");
  ALBION_CHECK_AS(UsageError, !(parsed.pin_source && parsed.pin_value), "key spec '", parsed.printable,
                  "' gives both pin-source and pin-value");
  return parsed;
}

}  // namespace albion::checkpoint
