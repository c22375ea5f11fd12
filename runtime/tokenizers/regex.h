// File: runtime/tokenizers/regex.h
// A compiled PCRE2 pattern (UTF + UCP, so \p{L}, \s and \w are Unicode-aware), JIT-compiled when
// the platform allows. Owns its pcre2_code; immutable after construction and safe to match from
// many threads at once, each with its own MatchData. Subjects must already be valid UTF-8: matching
// runs with PCRE2_NO_UTF_CHECK, since encode() validates its input once.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

struct pcre2_real_code_8;
struct pcre2_real_match_data_8;

namespace albion::tokenizers {

class Regex {
 public:
  // Throws UsageError "<context>: bad regex '<pattern>': <PCRE2 message> at offset N".
  Regex(std::string pattern, std::string_view context);

  const std::string& pattern() const { return pattern_; }

  // Per-thread match state for one Regex (pcre2_match_data).
  class MatchData {
   public:
    explicit MatchData(const Regex& regex);
    pcre2_real_match_data_8* get() const { return data_.get(); }

   private:
    struct Free {
      void operator()(pcre2_real_match_data_8* p) const;
    };
    std::unique_ptr<pcre2_real_match_data_8, Free> data_;
  };

  // Finds the first match at or after `offset`; sets [begin, end) and returns true, or false.
  bool find(std::string_view subject, std::size_t offset, MatchData& match, std::size_t& begin,
            std::size_t& end) const;

 private:
  struct Free {
    void operator()(pcre2_real_code_8* p) const;
  };
  std::string pattern_;
  std::unique_ptr<pcre2_real_code_8, Free> code_;
};

// Escapes pattern metacharacters so `literal` matches only itself.
std::string regex_escape(std::string_view literal);

}  // namespace albion::tokenizers
