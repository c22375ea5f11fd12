// File: tests/checkpoint/format/checkpoint_format_test.cpp
// Save and load through the real files: round trips (encrypted and plaintext, any range of any
// tensor), the commit protocol's directory states, retention, and every kind of bad input the
// issue lists, each of which must be an IntegrityError (exit code 3) naming the file and check.
#include <gtest/gtest.h>

#include <cstring>
#include <numeric>

#include "checkpoint/crypto/hex.h"
#include "checkpoint/crypto/sha256.h"
#include "checkpoint/format/checkpoint_directory.h"
#include "checkpoint/format/checkpoint_paths.h"
#include "checkpoint/format/checkpoint_reader.h"
#include "checkpoint/format/checkpoint_writer.h"
#include "checkpoint/format/shard_reader.h"
#include "checkpoint/keys/key_file.h"
#include "tests/checkpoint/temp_dir.h"

namespace albion::checkpoint {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;
using testing::read_file;
using testing::write_file;

// Two tensors (one bigger than several chunks) and a small integer one.
struct State {
  std::vector<float> weights;
  std::vector<float> moments;
  std::vector<std::int64_t> counters;

  explicit State(float seed) : weights(10'000), moments(333), counters{7, -1, 42} {
    for (std::size_t i = 0; i < weights.size(); ++i) weights[i] = seed + 0.5f * static_cast<float>(i);
    for (std::size_t i = 0; i < moments.size(); ++i) moments[i] = seed * static_cast<float>(i);
  }
  template <typename T>
  static std::span<const std::uint8_t> bytes(const std::vector<T>& v) {
    return {reinterpret_cast<const std::uint8_t*>(v.data()), v.size() * sizeof(T)};
  }
  std::vector<TensorSlice> slices() const {
    return {{"model.w", "F32", {100, 100}, 0, 10'000, bytes(weights)},
            {"optim.m", "F32", {1000}, 500, 333, bytes(moments)},
            {"counters", "I64", {3}, 0, 3, bytes(counters)}};
  }
};

class CheckpointFormatTest : public ::testing::Test {
 protected:
  fs::path make_key(const std::string& name) {
    const fs::path path = dir / name;
    generate_key_file(path, KeyFileOverwrite::kRefuse);
    return path;
  }
  CheckpointOptions options(const KeyProvider* provider) {
    CheckpointOptions o;
    o.directory = dir / "checkpoints";
    o.key = provider;
    o.shard.chunk_bytes = 4096;  // many chunks per tensor
    return o;
  }
  fs::path save(std::int64_t step, const State& state, const KeyProvider* provider, int keep = 3) {
    SingleProcessGroup group;
    CheckpointOptions o = options(provider);
    o.keep = keep;
    CheckpointWriter writer(o, group);
    return writer.save({step, state.slices(), "[run]\nseed = 1\n", R"({"steps_done": 5})", 1});
  }
  TempDir dir;
  std::unique_ptr<KeyProvider> key = open_key_provider("file:" + make_key("kek").string());
};

std::vector<float> read_floats(CheckpointReader& reader, const std::string& name, std::int64_t offset,
                               std::int64_t count) {
  std::vector<float> out(static_cast<std::size_t>(count));
  reader.read(name, offset, count, {reinterpret_cast<std::uint8_t*>(out.data()), out.size() * 4});
  return out;
}

TEST_F(CheckpointFormatTest, EncryptedRoundTripReadsAnyRange) {
  const State state(1.0f);
  const fs::path path = save(10, state, key.get());
  EXPECT_EQ(path.filename(), "step-00000010");
  CheckpointReader reader(path, key.get());
  EXPECT_EQ(reader.manifest().header.step, 10);
  EXPECT_EQ(reader.manifest().header.cipher, "AES-256-GCM");
  EXPECT_EQ(reader.manifest().recipe, "[run]\nseed = 1\n");
  EXPECT_EQ(reader.manifest().state_json, R"({"steps_done":5})");
  EXPECT_EQ(read_floats(reader, "model.w", 0, 10'000), state.weights);
  // A range that starts and ends inside chunks (a chunk is 1024 floats).
  const std::vector<float> middle = read_floats(reader, "model.w", 1000, 3001);
  EXPECT_EQ(middle, std::vector<float>(state.weights.begin() + 1000, state.weights.begin() + 4001));
  EXPECT_EQ(read_floats(reader, "optim.m", 500, 333), state.moments);
  // Elements the checkpoint does not hold.
  std::vector<float> missing(10);
  EXPECT_THROW(reader.read("optim.m", 0, 10, {reinterpret_cast<std::uint8_t*>(missing.data()), 40}), IntegrityError);
  // verify_all reports every byte it hashes and opens, also of a shard a read opened before.
  std::uint64_t progressed = 0;
  reader.verify_all([&](std::uint64_t bytes) { progressed += bytes; });
  EXPECT_EQ(progressed, reader.verify_all_bytes());
  progressed = 0;
  CheckpointReader(path, key.get()).verify_all([&](std::uint64_t bytes) { progressed += bytes; });
  EXPECT_EQ(progressed, reader.verify_all_bytes());
  EXPECT_GT(progressed, fs::file_size(path / "shard-00000.h5"));
  // No plaintext of a tensor anywhere in the shard file.
  const std::string shard = read_file(path / "shard-00000.h5");
  const std::string needle(reinterpret_cast<const char*>(state.weights.data() + 100), 64);
  EXPECT_EQ(shard.find(needle), std::string::npos);
  EXPECT_EQ(read_file(dir / "checkpoints" / "latest"), "step-00000010\n");
}

TEST_F(CheckpointFormatTest, PlaintextRoundTrip) {
  const State state(2.0f);
  const fs::path path = save(3, state, nullptr);
  CheckpointReader reader(path, nullptr);
  EXPECT_EQ(reader.manifest().header.cipher, "none");
  // A run with a key refuses it: a plaintext checkpoint in place of an encrypted one is a downgrade.
  EXPECT_THROW(CheckpointReader(path, key.get()), IntegrityError);
  EXPECT_EQ(read_floats(reader, "model.w", 17, 5000),
            std::vector<float>(state.weights.begin() + 17, state.weights.begin() + 5017));
}

// The IntegrityError's message opening a plaintext checkpoint gives ("" if it opens).
std::string integrity_error_opening(const fs::path& path) {
  try {
    CheckpointReader reader(path, nullptr);
  } catch (const IntegrityError& error) {
    return error.what();
  }
  return "";
}

// Format 2 records tensors stored transposed (a column cut under tensor parallelism); all of a
// tensor's slices must agree, and only a 2-D tensor can be. Format 1 checkpoints still open.
TEST_F(CheckpointFormatTest, TransposedTensorsAreRecordedAndFormat1StillReads) {
  const State state(3.0f);
  std::vector<TensorSlice> slices = state.slices();
  slices[0].transposed = true;
  SingleProcessGroup group;
  CheckpointWriter writer(options(nullptr), group);
  const fs::path path = writer.save({1, slices, "", "{}", 1});
  {
    CheckpointReader reader(path, nullptr);
    EXPECT_EQ(reader.manifest().header.format, "albion-checkpoint/2");
    EXPECT_TRUE(reader.tensor("model.w")->transposed);
    EXPECT_FALSE(reader.tensor("optim.m")->transposed);
    EXPECT_EQ(read_floats(reader, "model.w", 0, 10'000), state.weights);  // in the order stored
  }
  // Halves of one tensor that disagree on its order; a transposed 1-D tensor.
  std::vector<TensorSlice> halves = state.slices();
  halves[0].numel = 5000;
  halves[0].bytes = halves[0].bytes.first(20'000);
  TensorSlice second = halves[0];
  second.offset = 5000;
  second.bytes = State::bytes(state.weights).subspan(20'000);
  second.transposed = true;
  halves.push_back(second);
  const fs::path mixed = writer.save({2, halves, "", "{}", 1});
  EXPECT_NE(integrity_error_opening(mixed).find("model.w has slices of different"), std::string::npos);
  std::vector<TensorSlice> flat = state.slices();
  flat[1].transposed = true;
  const fs::path one_dimensional = writer.save({3, flat, "", "{}", 1});
  EXPECT_NE(integrity_error_opening(one_dimensional).find("optim.m is stored transposed but is not 2-D"),
            std::string::npos);

  const State old(4.0f);
  const fs::path v1 = save(4, old, nullptr);
  std::string manifest = read_file(v1 / "manifest.json");
  for (std::size_t at; (at = manifest.find("albion-checkpoint/2")) != std::string::npos;) {
    manifest.replace(at, 19, "albion-checkpoint/1");
  }
  write_file(v1 / "manifest.json", manifest);
  CheckpointReader reader(v1, nullptr);
  EXPECT_EQ(reader.manifest().header.format, "albion-checkpoint/1");
  EXPECT_EQ(read_floats(reader, "model.w", 0, 10'000), old.weights);
  for (std::size_t at; (at = manifest.find("albion-checkpoint/1")) != std::string::npos;) {
    manifest.replace(at, 19, "albion-checkpoint/9");
  }
  write_file(v1 / "manifest.json", manifest);
  EXPECT_NE(integrity_error_opening(v1).find("unsupported 'albion-checkpoint/9'"), std::string::npos);
}

TEST_F(CheckpointFormatTest, RetentionKeepsTheNewestAndLeftoversAreRemoved) {
  const State state(1.0f);
  for (int step = 1; step <= 5; ++step) save(step, state, key.get(), /*keep=*/2);
  fs::create_directory(dir / "checkpoints" / "step-00000009.tmp");  // a crashed save
  std::vector<CommittedCheckpoint> all = list_checkpoints(dir / "checkpoints");
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].step, 4);
  EXPECT_EQ(all[1].step, 5);
  save(6, state, key.get(), 2);
  EXPECT_FALSE(fs::exists(dir / "checkpoints" / "step-00000009.tmp"));
  EXPECT_EQ(*read_latest(dir / "checkpoints"), "step-00000006");
}

TEST_F(CheckpointFormatTest, WrongKeyIsAnIntegrityError) {
  const fs::path path = save(1, State(1.0f), key.get());
  auto other = open_key_provider("file:" + make_key("other").string());
  try {
    CheckpointReader reader(path, other.get());
    FAIL() << "opened with the wrong key";
  } catch (const IntegrityError& error) {
    EXPECT_NE(std::string(error.what()).find("wrong key"), std::string::npos) << error.what();
  }
  EXPECT_THROW(CheckpointReader(path, nullptr), UsageError);
}

// Every byte of the manifest, and bytes all over each shard, flipped one at a time.
TEST_F(CheckpointFormatTest, AnyFlippedByteIsDetected) {
  const fs::path path = save(1, State(1.0f), key.get());
  for (const std::string name : {"manifest.json", "shard-00000.h5"}) {
    const std::string original = read_file(path / name);
    const std::size_t stride = name == "manifest.json" ? 1 : 97;
    for (std::size_t at = 0; at < original.size(); at += stride) {
      std::string damaged = original;
      damaged[at] ^= 0x01;
      write_file(path / name, damaged);
      try {
        CheckpointReader reader(path, key.get());
        reader.verify_all();
        // Only JSON whitespace may change without effect.
        ASSERT_TRUE(name == "manifest.json" && std::isspace(static_cast<unsigned char>(original[at])))
            << name << " byte " << at << " flipped and nothing noticed";
      } catch (const IntegrityError& error) {
        EXPECT_NE(std::string(error.what()).find(path.string()), std::string::npos) << error.what();
      }
    }
    write_file(path / name, original);
  }
  CheckpointReader(path, key.get()).verify_all();
}

// A read authenticates what it uses: in a sealed checkpoint, a damaged optimizer chunk stops a read
// of the optimizer state and `verify_all`, not a read of the weights alone (eval, generate, or a
// rank's part), which never opens it. A plaintext file has only its digest: any damage stops any read.
TEST_F(CheckpointFormatTest, AReadOfTheWeightsNeedsOnlyTheirChunksIntact) {
  const KeyProvider* const sealed = key.get();
  for (const KeyProvider* provider : {sealed, static_cast<const KeyProvider*>(nullptr)}) {
    const State state(1.0f);
    const fs::path path = save(provider ? 1 : 2, state, provider);
    std::uint64_t at = 0;  // the first byte of optim.m's chunks
    {
      const CheckpointReader reader(path, provider);
      const ShardRecord& shard = reader.manifest().shards.at(0);
      for (const SliceRecord& slice : shard.slices) {
        if (slice.name == "optim.m") at = shard.data_offset + slice.data_position;
      }
    }
    ASSERT_GT(at, 0u);
    std::string damaged = read_file(path / "shard-00000.h5");
    damaged[at + 5] ^= 0x01;
    write_file(path / "shard-00000.h5", damaged);
    CheckpointReader reader(path, provider);
    if (provider) {
      EXPECT_EQ(read_floats(reader, "model.w", 0, 10'000), state.weights);
      EXPECT_THROW(read_floats(reader, "optim.m", 500, 333), IntegrityError);
    } else {
      EXPECT_THROW(read_floats(reader, "model.w", 0, 10'000), IntegrityError);
    }
    try {
      CheckpointReader(path, provider).verify_all();
      FAIL() << "verify_all missed a damaged chunk";
    } catch (const IntegrityError& error) {
      EXPECT_NE(std::string(error.what()).find("SHA-256 check failed"), std::string::npos) << error.what();
    }
  }
}

TEST_F(CheckpointFormatTest, TruncatedAndMissingFilesAreDetected) {
  const fs::path path = save(1, State(1.0f), key.get());
  const std::string shard = read_file(path / "shard-00000.h5");
  write_file(path / "shard-00000.h5", shard.substr(0, shard.size() - 1));
  EXPECT_THROW(CheckpointReader(path, key.get()).verify_all(), IntegrityError);
  fs::remove(path / "shard-00000.h5");
  try {
    CheckpointReader(path, key.get()).verify_all();
    FAIL();
  } catch (const IntegrityError& error) {
    EXPECT_NE(std::string(error.what()).find("missing"), std::string::npos) << error.what();
  }
  write_file(path / "shard-00000.h5", shard);
  const std::string manifest = read_file(path / "manifest.json");
  write_file(path / "manifest.json", manifest.substr(0, manifest.size() / 2));
  EXPECT_THROW(CheckpointReader(path, key.get()), IntegrityError);
  fs::remove(path / "manifest.json");
  EXPECT_THROW(CheckpointReader(path, key.get()), IntegrityError);
}

TEST_F(CheckpointFormatTest, ShardsAndManifestsFromOtherCheckpointsAreDetected) {
  const fs::path one = save(1, State(1.0f), key.get());
  const fs::path two = save(2, State(2.0f), key.get());
  // A shard of another checkpoint (same key, same layout).
  const std::string shard_one = read_file(one / "shard-00000.h5");
  write_file(one / "shard-00000.h5", read_file(two / "shard-00000.h5"));
  EXPECT_THROW(CheckpointReader(one, key.get()).verify_all(), IntegrityError);
  write_file(one / "shard-00000.h5", shard_one);
  // A manifest of another step, and a whole checkpoint renamed to another step.
  const std::string manifest_one = read_file(one / "manifest.json");
  write_file(one / "manifest.json", read_file(two / "manifest.json"));
  try {
    CheckpointReader reader(one, key.get());
    FAIL();
  } catch (const IntegrityError& error) {
    EXPECT_NE(std::string(error.what()).find("step check failed"), std::string::npos) << error.what();
  }
  write_file(one / "manifest.json", manifest_one);
  // The header edited to claim another step: the authenticated body disagrees.
  std::string edited = manifest_one;
  const std::size_t at = edited.find("\"step\": 1");
  ASSERT_NE(at, std::string::npos);
  edited.replace(at, 9, "\"step\": 2");
  fs::create_directory(dir / "checkpoints" / "step-00000099");
  write_file(one / "manifest.json", edited);
  EXPECT_THROW(CheckpointReader(one, key.get()), IntegrityError);
  write_file(one / "manifest.json", manifest_one);
  CheckpointReader(one, key.get()).verify_all();
}

// Chunks swapped inside a shard, with the file digest recomputed (as an attacker who could also
// rewrite the manifest's digest would): each chunk's tag binds it to its place.
TEST_F(CheckpointFormatTest, SwappedChunksFailTheirTags) {
  const fs::path path = save(1, State(1.0f), key.get());
  CheckpointReader reader(path, key.get());
  ShardRecord record = reader.manifest().shards[0];
  std::string bytes = read_file(path / record.file);
  const std::size_t stride = 4096 + 16;
  const std::size_t a = record.data_offset;
  std::string first = bytes.substr(a, stride);
  bytes.replace(a, stride, bytes.substr(a + stride, stride));
  bytes.replace(a + stride, stride, first);
  write_file(path / record.file, bytes);
  record.sha256 = to_hex(sha256(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(bytes.data()),
                                                              bytes.size())));
  const std::unique_ptr<KeyProvider> provider = open_key_provider("file:" + (dir / "kek").string());
  const DataKey dek = provider->unwrap(reader.manifest().header.wrapped_key);
  ShardReader shard(path / record.file, record, &dek, reader.manifest().header.checkpoint_id, 4096);
  EXPECT_THROW(shard.verify_all_chunks(), IntegrityError);
}

// A chunk taken from another checkpoint (same key, same layout, same place in the file), with the
// digest recomputed: it was sealed under another DEK and checkpoint id, so its tag fails.
TEST_F(CheckpointFormatTest, ChunkFromAnotherCheckpointFailsItsTag) {
  const fs::path one = save(1, State(1.0f), key.get());
  const fs::path two = save(2, State(2.0f), key.get());
  CheckpointReader reader(one, key.get());
  ShardRecord record = reader.manifest().shards[0];
  std::string bytes = read_file(one / record.file);
  const std::string other = read_file(two / record.file);
  const std::size_t at = record.data_offset + 3 * (4096 + 16);  // the fourth chunk
  bytes.replace(at, 4096 + 16, other.substr(at, 4096 + 16));
  write_file(one / record.file, bytes);
  record.sha256 = to_hex(sha256(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(bytes.data()),
                                                              bytes.size())));
  const DataKey dek = key->unwrap(reader.manifest().header.wrapped_key);
  ShardReader shard(one / record.file, record, &dek, reader.manifest().header.checkpoint_id, 4096);
  try {
    shard.verify_all_chunks();
    FAIL() << "a chunk of another checkpoint was accepted";
  } catch (const IntegrityError& error) {
    EXPECT_NE(std::string(error.what()).find("model.w"), std::string::npos) << error.what();
  }
}

TEST_F(CheckpointFormatTest, RotatedKeyOpensTheSameCheckpoint) {
  const State state(3.0f);
  const fs::path path = save(1, state, key.get());
  auto new_key = open_key_provider("file:" + make_key("new").string());
  const std::string text = read_manifest_text(path);
  const DataKey dek = key->unwrap(parse_manifest_header(text, "m").wrapped_key);
  write_file(path / "manifest.json", rewrap_manifest(text, new_key->key_id(), new_key->wrap(dek), "m"));
  CheckpointReader reader(path, new_key.get());
  EXPECT_EQ(read_floats(reader, "model.w", 0, 10'000), state.weights);
  EXPECT_THROW(CheckpointReader(path, key.get()), IntegrityError);
}

TEST_F(CheckpointFormatTest, CrashBeforeTheRenameLeavesThePreviousCheckpoint) {
  save(1, State(1.0f), key.get());
  SingleProcessGroup group;
  CheckpointOptions o = options(key.get());
  o.on_phase = [](const char* phase) {
    if (std::strcmp(phase, "rename") == 0) throw std::runtime_error("simulated crash");
  };
  CheckpointWriter writer(o, group);
  EXPECT_THROW(writer.save({2, State(2.0f).slices(), "", "{}", 1}), SystemError);
  EXPECT_EQ(newest_checkpoint(dir / "checkpoints")->step, 1);
  EXPECT_EQ(*read_latest(dir / "checkpoints"), "step-00000001");
}

}  // namespace
}  // namespace albion::checkpoint
