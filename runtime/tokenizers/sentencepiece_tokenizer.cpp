// File: runtime/tokenizers/sentencepiece_tokenizer.cpp
// Wraps sentencepiece::SentencePieceProcessor. SentencePiece itself never turns text into control
// symbols (<s>, </s>), so with SpecialTokens::kRecognize Albion cuts the text at control-piece
// strings and encodes the pieces between separately; decode() mirrors that, decoding each run of
// ordinary ids separately, so decode(encode(x)) == x holds across special tokens too.
// Round trips are exact only for models without text normalisation (Llama 2 and Mistral use
// identity normalisation and byte fallback); an NFKC model returns normalised text, as it must.
#include "runtime/tokenizers/sentencepiece_tokenizer.h"

#include <sentencepiece_processor.h>

#include "runtime/base/check.h"
#include "runtime/tokenizers/bpe_tokenizer.h"
#include "runtime/tokenizers/content_hash.h"
#include "runtime/tokenizers/read_file.h"
#include "runtime/tokenizers/special_token_matcher.h"
#include "runtime/tokenizers/utf8.h"

namespace albion::tokenizers {
namespace {

// Calls field(number, bytes) for each top-level field of a serialised protobuf message, with
// `bytes` the field's whole encoding (key included). Returns false on a malformed message.
template <typename Field>
bool for_each_proto_field(std::string_view msg, Field&& field) {
  std::size_t pos = 0;
  auto varint = [&](std::uint64_t& v) {
    v = 0;
    for (int shift = 0; shift < 64 && pos < msg.size(); shift += 7) {
      const auto b = static_cast<unsigned char>(msg[pos++]);
      v |= std::uint64_t{b & 0x7Fu} << shift;
      if ((b & 0x80) == 0) return true;
    }
    return false;
  };
  while (pos < msg.size()) {
    const std::size_t start = pos;
    std::uint64_t key = 0, len = 0;
    if (!varint(key)) return false;
    switch (key & 7) {
      case 0:
        if (!varint(len)) return false;
        break;
      case 1:
        pos += 8;
        break;
      case 2:
        if (!varint(len) || len > msg.size() - pos) return false;
        pos += len;
        break;
      case 5:
        pos += 4;
        break;
      default:
        return false;
    }
    if (pos > msg.size()) return false;
    field(key >> 3, msg.substr(start, pos - start));
  }
  return true;
}

class SentencePieceTokenizer final : public Tokenizer {
 public:
  explicit SentencePieceTokenizer(const std::string& path) : path_(path) {
    // Read the bytes ourselves: a missing file then gets the same message as for other formats.
    const std::string bytes = read_definition_file(path);
    const auto status = processor_.LoadFromSerializedProto(bytes);
    ALBION_CHECK_AS(UsageError, status.ok(), path, ": not a valid SentencePiece model: ",
                    status.ToString());
    const int n = processor_.GetPieceSize();
    ALBION_CHECK_AS(UsageError, n > 0, path, ": SentencePiece model has no pieces");
    for (int id = 0; id < n; ++id) {
      if (processor_.IsControl(id)) {
        special_.push_back({processor_.IdToPiece(id), static_cast<TokenId>(id)});
      }
    }
    matcher_ = SpecialTokenMatcher(special_);
    is_special_.assign(n, false);
    for (const auto& s : special_) is_special_[s.id] = true;
    const int eos = processor_.eos_id();
    if (eos >= 0 && eos < n) end_of_text_ = static_cast<TokenId>(eos);
    hash_ = compute_hash(path, processor_.serialized_model_proto());
  }

  std::vector<TokenId> encode(std::string_view text, SpecialTokens special) const override {
    require_valid_utf8(text, "encode");
    std::vector<TokenId> out;
    std::vector<int> ids;
    auto piece = [&](std::string_view p) {
      const auto status = processor_.Encode(p, &ids);
      ALBION_CHECK(status.ok(), "SentencePiece encode failed: ", status.ToString());
      out.insert(out.end(), ids.begin(), ids.end());
    };
    if (special == SpecialTokens::kRecognize) {
      matcher_.split(text, piece, [&](TokenId id) { out.push_back(id); });
    } else if (!text.empty()) {
      piece(text);
    }
    return out;
  }

  std::string decode(std::span<const TokenId> ids) const override {
    std::string out, run_text;
    std::vector<int> run;
    auto flush = [&] {
      if (run.empty()) return;
      const auto status = processor_.Decode(run, &run_text);
      ALBION_CHECK(status.ok(), "SentencePiece decode failed: ", status.ToString());
      out += run_text;
      run.clear();
    };
    for (TokenId id : ids) {
      ALBION_CHECK_AS(UsageError, id < is_special_.size(), "decode: token id ", id,
                      " is not in the vocabulary (size ", is_special_.size(), ")");
      if (is_special_[id]) {
        flush();
        out += processor_.IdToPiece(static_cast<int>(id));
      } else {
        run.push_back(static_cast<int>(id));
      }
    }
    flush();
    return out;
  }

  std::size_t vocab_size() const override { return is_special_.size(); }
  const std::vector<SpecialToken>& special_tokens() const override { return special_; }
  std::optional<TokenId> end_of_text() const override { return end_of_text_; }
  std::string content_hash() const override { return hash_; }
  std::string description() const override {
    return str_cat("SentencePiece from ", path_, ", ", is_special_.size(), " tokens");
  }

 private:
  // ModelProto fields: 1 pieces, 2 trainer_spec, 3 normalizer_spec, 4 self_test_data,
  // 5 denormalizer_spec. Self-test data and the trainer's input files and output name (TrainerSpec
  // fields 1, 2, 7) do not change any id, so they are left out of the hash; the model type and
  // byte fallback live in trainer_spec and do, so the rest of it is kept.
  static std::string compute_hash(const std::string& path, std::string_view proto) {
    ContentHasher h;
    h.add_string("albion sentencepiece v1");
    const bool ok = for_each_proto_field(proto, [&](std::uint64_t number, std::string_view f) {
      if (number == 4) return;
      if (number != 2) {
        h.add_string(f);
        return;
      }
      // Skip the key and length of the trainer_spec field itself, then filter its fields.
      std::size_t header = 1;
      while (header < f.size() && (static_cast<unsigned char>(f[header]) & 0x80)) ++header;
      ++header;
      h.add_u64(2);
      for_each_proto_field(f.substr(std::min(header, f.size())),
                           [&](std::uint64_t n, std::string_view sub) {
                             if (n != 1 && n != 2 && n != 7) h.add_string(sub);
                           });
    });
    ALBION_CHECK_AS(UsageError, ok, path, ": malformed SentencePiece model");
    return h.finish();
  }

  std::string path_;
  sentencepiece::SentencePieceProcessor processor_;
  std::vector<SpecialToken> special_;
  std::vector<bool> is_special_;
  SpecialTokenMatcher matcher_;
  std::optional<TokenId> end_of_text_;
  std::string hash_;
};

}  // namespace

std::unique_ptr<Tokenizer> load_sentencepiece(const std::string& path) {
  return std::make_unique<SentencePieceTokenizer>(path);
}

}  // namespace albion::tokenizers
