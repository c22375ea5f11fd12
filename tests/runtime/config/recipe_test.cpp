// File: tests/runtime/config/recipe_test.cpp
// Recipes: every shipped recipe validates, the resolved form round-trips, overrides win, help and
// parser agree, and each class of bad input is a one-line UsageError naming the key.
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>

#include "runtime/base/error.h"
#include "runtime/config/recipe.h"
#include "runtime/config/recipe_schema.h"
#include "tests/support/temp_dir.h"

namespace albion::config {
namespace {

namespace fs = std::filesystem;
using testing_support::TempDir;

std::string usage_error(const std::string& ini, const std::vector<std::string>& overrides = {}) {
  TempDir dir;
  try {
    load_recipe(dir.write("r.ini", ini), overrides);
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

const char* const kMinimal = "[data]\ndataset = somewhere\n";

TEST(Recipe, EveryShippedRecipeValidates) {
  int count = 0;
  for (const auto& entry : fs::directory_iterator(std::string(ALBION_SOURCE_DIR) + "/recipes")) {
    if (entry.path().extension() != ".ini") continue;
    SCOPED_TRACE(entry.path().string());
    EXPECT_NO_THROW(load_recipe(entry.path().string(), {}));
    ++count;
  }
  EXPECT_GE(count, 3);
}

TEST(Recipe, ResolvedFormRoundTrips) {
  TempDir dir;
  Recipe original = load_recipe(std::string(ALBION_SOURCE_DIR) + "/recipes/tiny.ini",
                                {"--eval.sample_prompt=Line one\\nline two\\ttab"});
  EXPECT_EQ(original.eval.sample_prompt, "Line one\nline two\ttab");
  const std::string resolved = resolved_recipe_ini(original);
  Recipe again = load_recipe(dir.write("resolved.ini", resolved), {});
  EXPECT_EQ(resolved_recipe_ini(again), resolved);
  EXPECT_EQ(again.eval.sample_prompt, original.eval.sample_prompt);
  EXPECT_EQ(again.optim.lr, original.optim.lr);
}

// The resolved recipe is printed, written to the run directory and stored in checkpoints: a PIN
// in a PKCS#11 key spec stays out of it, and the recipe itself still holds it for the provider.
TEST(Recipe, ResolvedFormHidesAPkcs11Pin) {
  const std::string spec = "pkcs11:token=hsm;object=kek?module-path=/m.so&pin-value=246813";
  const Recipe recipe = load_recipe(std::string(ALBION_SOURCE_DIR) + "/recipes/tiny.ini",
                                    {"--checkpoint.key=" + spec, "--data.key=" + spec});
  EXPECT_EQ(recipe.checkpoint.key, spec);
  const std::string resolved = resolved_recipe_ini(recipe);
  EXPECT_EQ(resolved.find("246813"), std::string::npos) << resolved;
  EXPECT_NE(resolved.find("key = pkcs11:token=hsm;object=kek?module-path=/m.so&pin-value=(not shown)"),
            std::string::npos) << resolved;
}

TEST(Recipe, CommandLineOverridesWinOverTheFile) {
  TempDir dir;
  Recipe r = load_recipe(dir.write("r.ini", std::string(kMinimal) + "[train]\nsteps = 200\n"),
                         {"--train.steps=300", "--optim.lr=3e-4"});
  EXPECT_EQ(r.train.steps, 300);
  EXPECT_DOUBLE_EQ(r.optim.lr, 3e-4);
  EXPECT_EQ(r.train.seq_len, Recipe{}.train.seq_len);  // untouched keys keep their defaults
}

TEST(Recipe, HelpAndParserAgreeOnEveryKey) {
  Recipe recipe;
  RecipeSchema schema(recipe);
  const std::string help = recipe_help();
  const std::string ini = schema.to_ini();
  for (const auto& option : schema.options().options()) {
    const std::string& key = option->long_name();
    EXPECT_NE(help.find("--" + key), std::string::npos) << key << " missing from --help";
    // The parser accepts the key on the command line with its default value.
    const std::string section = key.substr(0, key.find('.'));
    const std::string name = key.substr(key.find('.') + 1);
    EXPECT_NE(ini.find("[" + section + "]"), std::string::npos) << key;
    EXPECT_NE(ini.find("\n" + name + " = "), std::string::npos) << key;
  }
  EXPECT_GE(schema.options().options().size(), 30u);
}

TEST(RecipeErrors, UnknownKeySuggestsTheNearest) {
  std::string message = usage_error(std::string(kMinimal) + "[train]\nseqlen = 64\n");
  EXPECT_NE(message.find("unknown key 'train.seqlen' (did you mean 'train.seq_len'?)"), std::string::npos) << message;
  EXPECT_NE(message.find("r.ini"), std::string::npos) << message;
  message = usage_error(kMinimal, {"--optim.learning_rate=1"});
  EXPECT_NE(message.find("unknown option '--optim.learning_rate'"), std::string::npos) << message;
}

TEST(RecipeErrors, WrongTypeNamesTheKey) {
  std::string message = usage_error(std::string(kMinimal) + "[train]\nsteps = many\n");
  EXPECT_NE(message.find("train.steps"), std::string::npos) << message;
  EXPECT_NE(usage_error(kMinimal, {"--log.tensorboard=perhaps"}).find("log.tensorboard"), std::string::npos);
}

// Boost substitutes a bad value into its message until its placeholder is gone: a value holding
// "%value%" used to hang (found by fuzz/recipe_fuzzer.cpp). Now the value is shown as given.
TEST(RecipeErrors, AValueSpellingBoostsPlaceholderIsReportedVerbatim) {
  EXPECT_NE(usage_error(kMinimal, {"--train.steps=%value%"}).find("the argument ('%value%') for option '--train.steps'"),
            std::string::npos);
  const std::string message = usage_error(std::string(kMinimal) + "[train]\nsteps = %original_token%%value%\n");
  EXPECT_NE(message.find("('%original_token%%value%') for option 'train.steps'"), std::string::npos) << message;
}

TEST(RecipeErrors, OutOfRangeValuesNameTheKey) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"--train.seq_len=0", "train.seq_len"},      {"--optim.lr=-1", "optim.lr"},
      {"--optim.min_lr=1", "optim.min_lr"},        {"--optim.schedule=linear", "optim.schedule"},
      {"--optim.beta2=1", "optim.beta2"},          {"--run.device=tpu", "run.device"},
      {"--data.val_fraction=1", "data.val_fraction"}, {"--precision.dtype=fp8", "precision.dtype"},
      {"--optim.warmup_steps=5000", "optim.warmup_steps"},
      {"--profile.steps=-1", "profile.steps"},      {"--profile.start_step=0", "profile.start_step"},
      // micro_batch x seq_len overflowed int64 to 0, and the trainer died of SIGFPE.
      {"--train.micro_batch=576460752303423488", "train.global_batch_tokens"},
      {"--optim.lr=inf", "optim.lr"},              {"--optim.eps=inf", "optim.eps"},
      {"--optim.weight_decay=inf", "optim.weight_decay"}, {"--eval.temperature=inf", "eval.temperature"},
      {"--eval.sample_tokens=1000000", "eval.sample_tokens"},
      {"--eval.top_p=0", "eval.top_p"},             {"--eval.top_p=1.5", "eval.top_p"},
      {"--model.context_length=100000000000", "model.context_length"},
      {"--model.vocab_size=-1", "model.vocab_size"},
      {"--run.seed=-1", "--run.seed"},  // unsigned: Boost alone would wrap it to 2^64 - 1
      // Sequence parallelism cuts a micro-batch's 8 x 256 tokens over the tensor-parallel ranks.
      {"--parallel.tensor=3", "parallel.sequence"},
  };
  for (const auto& [override_arg, key] : cases) {
    std::string message = usage_error(kMinimal, {override_arg});
    EXPECT_NE(message.find("'" + key + "'"), std::string::npos) << override_arg << ": " << message;
  }
  EXPECT_EQ(usage_error(kMinimal, {"--parallel.tensor=3", "--parallel.sequence=false"}), "");
}

// optim.name: adamw or muon; Muon orthogonalizes whole weight matrices, which ZeRO's pieces and
// tensor-parallel parts are put together into, but LoRA's adapters are not: refused, naming the
// key and why.
TEST(RecipeErrors, MuonIsRefusedForLoraAdapters) {
  EXPECT_NE(usage_error(kMinimal, {"--optim.name=sgd"}).find("'optim.name' must be adamw or muon"), std::string::npos);
  EXPECT_NE(usage_error(kMinimal, {"--optim.muon_momentum=1"}).find("'optim.muon_momentum'"), std::string::npos);
  for (const char* parallel : {"--parallel.zero=0", "--parallel.zero=1", "--parallel.zero=2"}) {
    EXPECT_EQ(usage_error(kMinimal, {"--optim.name=muon", parallel}), "") << parallel;
    EXPECT_EQ(usage_error(kMinimal, {"--optim.name=muon", parallel, "--parallel.tensor=2"}), "") << parallel;
  }
  const std::string message = usage_error(kMinimal, {"--optim.name=muon", "--lora.rank=8", "--model.init=/m"});
  EXPECT_NE(message.find("recipe key 'optim.name' = muon orthogonalizes each weight matrix whole, but lora.rank > 0"),
            std::string::npos)
      << message;
}

TEST(Recipe, AccumulationStepsSplitTheGlobalBatchOverTheDataRanks) {
  TrainConfig train;
  train.micro_batch = 16;
  train.seq_len = 128;
  train.global_batch_tokens = 8192;  // four micro-batches
  EXPECT_EQ(train.accumulation_steps(1), 4);
  EXPECT_EQ(train.accumulation_steps(2), 2);
  EXPECT_EQ(train.accumulation_steps(4), 1);
  EXPECT_THROW(train.accumulation_steps(3), UsageError);
  EXPECT_THROW(train.accumulation_steps(8), UsageError);
  train.global_batch_tokens = 8192 + 128;  // four and a sixteenth
  EXPECT_THROW(train.accumulation_steps(1), UsageError);
}

TEST(RecipeErrors, MissingFileAndMissingDataset) {
  EXPECT_THROW(load_recipe("/nonexistent/recipe.ini", {}), UsageError);
  EXPECT_NE(usage_error("[run]\nseed = -1\n").find("'run.seed' must not be negative"), std::string::npos);
  EXPECT_NE(usage_error("[train]\nsteps = 5\n").find("data.dataset"), std::string::npos);
}

TEST(RecipeStrings, EscapesRoundTrip) {
  const std::string text = "a\nb\tc\\d";
  EXPECT_EQ(unescape_recipe_string(escape_recipe_string(text)), text);
  EXPECT_EQ(unescape_recipe_string("\\q"), "\\q");  // unknown escapes stay as written
}

}  // namespace
}  // namespace albion::config
