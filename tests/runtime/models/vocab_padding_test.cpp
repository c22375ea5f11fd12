// File: tests/runtime/models/vocab_padding_test.cpp
// Masked vocabulary padding (ModelConfig::vocab_padding, Note [Masked vocabulary padding]): a
// published model with zero rows added is the published model, in fp64, for GPT-2 and tied and
// untied Llama. The real ids' logits are equal and the padding's -inf; the loss is equal, the real
// rows' gradients too and the padding's are 0; greedy and top-k samples draw the same tokens. A
// Hugging Face directory loads into the padded model with zero rows, and the export drops them
// again; a padding that leaves no vocabulary is refused. A tensor-parallel degree gets the masked
// rows it needs, and stored rows read into them.
#include <gtest/gtest.h>
#include <torch/types.h>

#include <nlohmann/json.hpp>

#include "runtime/base/check.h"
#include "runtime/models/hf_export.h"
#include "runtime/models/hf_import.h"
#include "runtime/models/sampler.h"
#include "runtime/models/tensor_parallel.h"
#include "tests/runtime/models/model_test_support.h"
#include "tests/support/temp_dir.h"

namespace albion::models {
namespace {

constexpr std::int64_t kPadding = 31;  // the test configs' 97 ids in 128 rows

std::vector<ModelConfig> configs() {
  return {testing::small_gpt2(), testing::small_llama(true), testing::small_llama(false)};
}

std::string described(const ModelConfig& config) {
  return str_cat(architecture_name(config.architecture), config.tie_embeddings ? " tied" : " untied");
}

TEST(MaskedVocabularyPadding, ScoresLearnsAndSamplesAsThePublishedModel) {
  for (const ModelConfig& config : configs()) {
    SCOPED_TRACE(described(config));
    const auto published = testing::randomised_fp64_model(config, 3);
    const auto padded = testing::with_vocab_padding(*published, kPadding);
    const std::int64_t vocab = config.vocab_size;
    ASSERT_EQ(padded->config().vocab_in_use(), vocab);
    at::manual_seed(4);
    const at::Tensor ids = at::randint(vocab, {2, 16});
    const at::Tensor targets = at::randint(vocab, {2, 16});
    const at::Tensor mask = (at::arange(32) % 4 != 0).to(at::kLong).view({2, 16});
    {
      const at::NoGradGuard no_grad;
      const at::Tensor logits = padded->forward(ids);
      ASSERT_EQ(logits.size(-1), vocab + kPadding);
      EXPECT_LT(testing::relative_error(logits.narrow(-1, 0, vocab), published->forward(ids)), 1e-13);
      EXPECT_TRUE(logits.narrow(-1, vocab, kPadding).isneginf().all().item<bool>());
    }
    const at::Tensor expected = published->loss(ids, targets, mask);
    const at::Tensor loss = padded->loss(ids, targets, mask);
    EXPECT_NEAR(loss.item<double>(), expected.item<double>(), 1e-13 * expected.item<double>());
    expected.backward();
    loss.backward();
    const auto gradients = published->named_parameters();
    const auto padded_gradients = padded->named_parameters();
    ASSERT_EQ(gradients.size(), padded_gradients.size());
    int vocabulary_tensors = 0;
    for (std::size_t i = 0; i < gradients.size(); ++i) {
      const auto& [name, parameter] = gradients[i];
      const at::Tensor gradient = padded_gradients[i].second.grad();
      ASSERT_EQ(padded_gradients[i].first, name);
      if (gradient.size(0) == parameter.size(0)) {
        EXPECT_LT(testing::relative_error(gradient, parameter.grad()), 1e-12) << name;
        continue;
      }
      ++vocabulary_tensors;
      EXPECT_LT(testing::relative_error(gradient.narrow(0, 0, vocab), parameter.grad()), 1e-12) << name;
      EXPECT_TRUE(gradient.narrow(0, vocab, kPadding).eq(0).all().item<bool>()) << name;
    }
    EXPECT_EQ(vocabulary_tensors, config.tie_embeddings ? 1 : 2);

    for (std::int64_t top_k : {0, 1, 5}) {
      SamplingOptions options;
      options.max_new_tokens = 6;
      options.top_k = top_k;
      options.seed = 9;
      EXPECT_EQ(sample(*padded, {1, 2, 3}, options), sample(*published, {1, 2, 3}, options)) << "top_k " << top_k;
    }
  }
}

TEST(MaskedVocabularyPadding, AnImportAddsZeroRowsAndAnExportDropsThem) {
  for (const ModelConfig& config : configs()) {
    SCOPED_TRACE(described(config));
    at::manual_seed(5);
    const auto published = make_model(config);
    testing_support::TempDir dir;
    std::vector<HfTensor> files = to_hugging_face(config, published->named_parameters());
    checkpoint::write_safetensors(dir / "model.safetensors", to_safetensors(files),
                                  hugging_face_safetensors_metadata());
    EXPECT_EQ(hugging_face_vocab_size(config, dir.path()), config.vocab_size);

    ModelConfig padded_config = config;
    padded_config.vocab_size += kPadding;
    padded_config.vocab_padding = kPadding;
    at::manual_seed(6);
    const auto padded = make_model(padded_config);  // drawn, so the load must zero the padding
    load_hugging_face_weights(*padded, dir.path());
    const auto expected = testing::with_vocab_padding(*published, kPadding)->named_parameters();
    const auto loaded = padded->named_parameters();
    ASSERT_EQ(loaded.size(), expected.size());
    for (std::size_t i = 0; i < loaded.size(); ++i) {
      EXPECT_TRUE(at::equal(loaded[i].second, expected[i].second)) << loaded[i].first;
    }

    const std::vector<HfTensor> exported = to_hugging_face(padded_config, padded->named_parameters());
    ASSERT_EQ(exported.size(), files.size());
    for (std::size_t i = 0; i < exported.size(); ++i) {
      EXPECT_EQ(exported[i].name, files[i].name);
      EXPECT_TRUE(at::equal(exported[i].value, files[i].value)) << files[i].name;
    }
    const nlohmann::json json = nlohmann::json::parse(hugging_face_config_json(padded_config));
    EXPECT_EQ(json.at("vocab_size").get<std::int64_t>(), config.vocab_size);
  }
}

TEST(MaskedVocabularyPadding, APaddingThatLeavesNoVocabularyIsRefused) {
  ModelConfig config = testing::small_gpt2();
  config.vocab_padding = config.vocab_size;
  EXPECT_NE(testing::usage_error_of([&] { config.validate(); }).find("'vocab_padding' = 97"), std::string::npos);
  config.vocab_padding = -1;
  EXPECT_NE(testing::usage_error_of([&] { config.validate(); }).find("'vocab_padding'"), std::string::npos);
}

// Note [A checkpoint's vocabulary on another number of ranks]: the rows a degree needs, the
// vocabulary in use kept; stored rows read into more rows (zeros past them) or fewer.
TEST(MaskedVocabularyPadding, ADegreeGetsTheRowsItNeedsAndReadsTheStoredOnes) {
  struct Case {
    std::int64_t rows, padding, degree, padded_rows, padded_padding;
  };
  for (const Case& c : {Case{257, 0, 1, 257, 0}, Case{257, 0, 2, 258, 1}, Case{258, 1, 4, 260, 3},
                        Case{260, 3, 2, 260, 3}, Case{260, 3, 3, 258, 1}, Case{258, 0, 4, 260, 2}}) {
    ModelConfig config = testing::small_gpt2();
    config.vocab_size = c.rows;
    config.vocab_padding = c.padding;
    SCOPED_TRACE(str_cat(c.rows, " rows (", c.padding, " masked) cut ", c.degree, " ways"));
    EXPECT_EQ(config.pad_vocabulary_for(c.degree), c.rows != c.padded_rows);
    EXPECT_EQ(config.vocab_size, c.padded_rows);
    EXPECT_EQ(config.vocab_padding, c.padded_padding);
    EXPECT_EQ(config.vocab_in_use(), c.rows - c.padding);
  }

  const at::Tensor stored = at::arange(1, 16, at::kFloat);  // 5 rows of 3
  std::vector<std::pair<std::int64_t, std::int64_t>> reads;
  const auto reader = read_with_zeros_past(
      [&](std::int64_t offset, std::int64_t numel) {
        reads.emplace_back(offset, numel);
        return stored.narrow(0, offset, numel).clone();
      },
      stored.numel(), at::kFloat);
  EXPECT_TRUE(at::equal(reader(0, 18), at::cat({stored, at::zeros({3})})));  // 6 rows
  EXPECT_TRUE(at::equal(reader(9, 9), at::cat({stored.narrow(0, 9, 6), at::zeros({3})})));  // the last 3 of 6
  EXPECT_TRUE(at::equal(reader(15, 3), at::zeros({3})));  // a padding row alone: nothing read
  EXPECT_TRUE(at::equal(reader(0, 12), stored.narrow(0, 0, 12)));  // 4 rows: the 5th not read
  const std::vector<std::pair<std::int64_t, std::int64_t>> expected{{0, 15}, {9, 6}, {0, 12}};
  EXPECT_EQ(reads, expected);
}

}  // namespace
}  // namespace albion::models
