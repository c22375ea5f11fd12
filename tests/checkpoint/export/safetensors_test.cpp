// File: tests/checkpoint/export/safetensors_test.cpp
// safetensors files: write-then-parse round trips, the 8-byte header alignment and the layout
// that keeps each tensor aligned, refusals (overwrite, wrong byte counts, duplicate names), hand-
// made bad headers, and a parser that survives every single-bit flip and every truncation of a
// small file with nothing but albion::Error. Where .venv's Python has `safetensors` and `numpy`,
// the reference implementation reads our file and we read its file (skipped otherwise).
#include "checkpoint/export/safetensors.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "runtime/base/error.h"
#include "tests/checkpoint/temp_dir.h"
#include "tests/support/run_command.h"

namespace albion::checkpoint {
namespace {

using testing::read_file;
using testing::TempDir;
using testing::write_file;

std::vector<std::uint8_t> bytes_of(const std::string& text) { return {text.begin(), text.end()}; }

template <typename T>
std::vector<std::uint8_t> raw_bytes(const std::vector<T>& values) {
  std::vector<std::uint8_t> out(values.size() * sizeof(T));
  if (!out.empty()) std::memcpy(out.data(), values.data(), out.size());
  return out;
}

// A file made of a header size, the given header text and `buffer_bytes` zero bytes.
std::vector<std::uint8_t> file_with_header(const std::string& header, std::size_t buffer_bytes) {
  std::vector<std::uint8_t> out(8 + header.size() + buffer_bytes, 0);
  const std::uint64_t size = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<std::uint8_t>(size >> (8 * i));
  std::memcpy(out.data() + 8, header.data(), header.size());
  return out;
}

template <typename ErrorType, typename F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const ErrorType& e) {
    return e.what();
  }
  ADD_FAILURE() << "no " << typeid(ErrorType).name() << " thrown";
  return {};
}

struct Sample {
  std::vector<std::uint8_t> f32 = raw_bytes(std::vector<float>{0.5f, -1.0f, 2.25f, 3.0f, -4.5f, 1e-3f});
  std::vector<std::uint8_t> bf16 = raw_bytes(std::vector<std::uint16_t>{0x3f80, 0xc000, 0x4049, 0x0001, 0x7f80});
  std::vector<std::uint8_t> i64 = raw_bytes(std::vector<std::int64_t>{-7});
  std::vector<std::uint8_t> u8 = {1, 2, 3};
  std::vector<std::uint8_t> f64 = raw_bytes(std::vector<double>{3.141592653589793, -0.0});

  std::vector<SafetensorsTensor> tensors() const {
    return {
        {"z.u8", "U8", {3}, u8},
        {"a.weight", "F32", {2, 3}, f32},
        {"b.bf16", "BF16", {5}, bf16},
        {"scalar", "I64", {}, i64},
        {"empty", "F32", {0, 4}, {}},
        {"m.f64", "F64", {2, 1}, f64},
    };
  }
  std::map<std::string, std::string> metadata() const { return {{"format", "pt"}, {"albion.step", "1000"}}; }
};

TEST(Safetensors, RoundTripKeepsEveryByteShapeAndDtype) {
  TempDir dir;
  const Sample sample;
  const auto path = dir / "model.safetensors";
  write_safetensors(path, sample.tensors(), sample.metadata());
  const std::vector<std::uint8_t> file = bytes_of(read_file(path));
  const SafetensorsIndex index = parse_safetensors_header(file, path.string());

  EXPECT_EQ(index.metadata, sample.metadata());
  ASSERT_EQ(index.entries.size(), sample.tensors().size());
  std::map<std::string, const SafetensorsIndex::Entry*> by_name;
  for (const auto& entry : index.entries) by_name[entry.name] = &entry;
  for (const SafetensorsTensor& t : sample.tensors()) {
    ASSERT_TRUE(by_name.count(t.name)) << t.name;
    const SafetensorsIndex::Entry& entry = *by_name.at(t.name);
    EXPECT_EQ(entry.dtype, t.dtype) << t.name;
    EXPECT_EQ(entry.shape, t.shape) << t.name;
    ASSERT_EQ(entry.end - entry.begin, t.bytes.size()) << t.name;
    const std::uint8_t* stored = file.data() + index.data_start + entry.begin;
    EXPECT_TRUE(std::equal(t.bytes.begin(), t.bytes.end(), stored)) << t.name;
  }
  struct stat info {};
  ASSERT_EQ(::stat(path.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 07777, 0600u);
  EXPECT_FALSE(std::filesystem::exists(path.string() + ".partial"));
}

TEST(Safetensors, HeaderIsPaddedToEightAndTensorsAreAlignedToTheirElementSize) {
  TempDir dir;
  const Sample sample;
  // Names of every length 1..8 make the unpadded JSON end at every residue mod 8.
  for (int length = 1; length <= 8; ++length) {
    const auto path = dir / ("m" + std::to_string(length) + ".safetensors");
    std::vector<SafetensorsTensor> tensors = sample.tensors();
    tensors[0].name = std::string(static_cast<std::size_t>(length), 'x');
    write_safetensors(path, tensors, {});
    const std::string file = read_file(path);
    std::uint64_t header_size = 0;
    for (int i = 0; i < 8; ++i) header_size |= std::uint64_t{static_cast<std::uint8_t>(file[i])} << (8 * i);
    EXPECT_EQ(header_size % 8, 0u);
    const std::string header = file.substr(8, header_size);
    const std::size_t json_end = header.find_last_not_of(' ') + 1;
    EXPECT_EQ(header[json_end - 1], '}');
    EXPECT_LT(header.size() - json_end, 8u) << "padding is at most 7 spaces";
    EXPECT_EQ(header.find("__metadata__"), std::string::npos) << "no empty metadata object";

    const SafetensorsIndex index = parse_safetensors_header(bytes_of(file), path.string());
    EXPECT_EQ(index.data_start, 8 + header_size);
    for (const auto& entry : index.entries) {
      EXPECT_EQ((index.data_start + entry.begin) % *safetensors_dtype_size(entry.dtype), 0u) << entry.name;
    }
  }
}

TEST(Safetensors, RefusesToOverwriteAnExistingFileAndReplacesALeftoverPartial) {
  TempDir dir;
  const Sample sample;
  const auto path = dir / "model.safetensors";
  write_file(path, "precious");
  const std::string message =
      message_of<UsageError>([&] { write_safetensors(path, sample.tensors(), sample.metadata()); });
  EXPECT_NE(message.find(path.string()), std::string::npos) << message;
  EXPECT_NE(message.find("already exists"), std::string::npos) << message;
  EXPECT_EQ(read_file(path), "precious");

  const auto second = dir / "second.safetensors";
  write_file(second.string() + ".partial", "left by a crash");
  write_safetensors(second, sample.tensors(), sample.metadata());
  EXPECT_TRUE(std::filesystem::exists(second));
  EXPECT_FALSE(std::filesystem::exists(second.string() + ".partial"));
}

TEST(Safetensors, RefusesInconsistentTensorsBeforeWritingAnything) {
  TempDir dir;
  const Sample sample;
  const auto path = dir / "bad.safetensors";
  auto refused = [&](std::vector<SafetensorsTensor> tensors, const std::string& expected) {
    const std::string message = message_of<UsageError>([&] { write_safetensors(path, tensors, {}); });
    EXPECT_NE(message.find(expected), std::string::npos) << message;
    EXPECT_FALSE(std::filesystem::exists(path));
    EXPECT_FALSE(std::filesystem::exists(path.string() + ".partial"));
  };
  auto tensors = sample.tensors();
  tensors[1].shape = {3, 3};
  refused(tensors, "needs 36 bytes, got 24");
  tensors = sample.tensors();
  tensors[1].bytes = tensors[1].bytes.first(23);
  refused(tensors, "'a.weight'");
  tensors = sample.tensors();
  tensors[2].name = tensors[0].name;
  refused(tensors, "appears twice");
  tensors = sample.tensors();
  tensors[1].dtype = "float32";
  refused(tensors, "'float32'");
  tensors = sample.tensors();
  tensors[4].shape = {-1, 0};
  refused(tensors, "invalid shape [-1, 0]");
  tensors = sample.tensors();
  tensors[0].name = "__metadata__";
  refused(tensors, "__metadata__");
  tensors = sample.tensors();
  tensors[0].name = "bad\xff";
  refused(tensors, "UTF-8");
}

TEST(Safetensors, ParserRejectsMalformedHeaders) {
  const std::string ok = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  EXPECT_NO_THROW(parse_safetensors_header(file_with_header(ok, 8), "ok"));
  EXPECT_NO_THROW(parse_safetensors_header(file_with_header("{}", 0), "no tensors"));
  EXPECT_NO_THROW(parse_safetensors_header(file_with_header(ok + "   ", 8), "padded"));

  const std::vector<std::pair<std::string, std::size_t>> bad = {
      {ok, 7},   // buffer shorter than the tensors
      {ok, 9},   // bytes no tensor owns
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12},  // gap at the start
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12},
      {R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", 8},
      {R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8},
      {R"({"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", 8},
      {R"({"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,0]}})", 0},
      {R"({"a":{"dtype":"F32","shape":[18446744073709551615],"data_offsets":[0,0]}})", 0},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8,8]}})", 8},
      {R"({"a":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}})", 8},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"extra":1}})", 8},
      {R"({"a":{"dtype":"F32","shape":[2]}})", 8},
      {R"({"a":[1,2]})", 0},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 8},
      {R"({"a":{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 8},
      {R"({"__metadata__":{"k":1}})", 0},
      {R"({"__metadata__":["k"]})", 0},
      {"{\"__metadata__\":{\"k\":\"\xff\"}}", 0},
      {"{\"a\xff\":{}}", 0},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}} {})", 8},
      {R"([])", 0},
      {R"( {})", 0},
      {"", 0},
      {"{", 0},
  };
  for (const auto& [header, buffer] : bad) {
    const std::string message =
        message_of<IntegrityError>([&] { parse_safetensors_header(file_with_header(header, buffer), "x.st"); });
    EXPECT_NE(message.find("'x.st'"), std::string::npos) << header << " -> " << message;
  }

  // Header sizes past the file or the limit, and files too short to hold the size itself.
  std::vector<std::uint8_t> file = file_with_header(ok, 8);
  file[0] = 0xff;
  EXPECT_THROW(parse_safetensors_header(file, "x"), IntegrityError);
  file = file_with_header(ok, 8);
  file[7] = 0x80;
  EXPECT_THROW(parse_safetensors_header(file, "x"), IntegrityError);
  std::vector<std::uint8_t> huge(8, 0);
  const std::uint64_t too_big = kMaxSafetensorsHeaderBytes + 1;
  for (int i = 0; i < 8; ++i) huge[i] = static_cast<std::uint8_t>(too_big >> (8 * i));
  EXPECT_NE(message_of<IntegrityError>([&] { parse_safetensors_header(huge, "x"); }).find("limit"),
            std::string::npos);
  EXPECT_THROW(parse_safetensors_header(std::vector<std::uint8_t>(5, 0), "x"), IntegrityError);
}

// Whatever the parser accepts must describe tensors that lie inside the file and match their
// dtype and shape; whatever it rejects must be rejected with albion::Error.
void expect_sane_or_error(const std::vector<std::uint8_t>& file, const std::string& context) {
  try {
    const SafetensorsIndex index = parse_safetensors_header(file, "mutant");
    ASSERT_LE(index.data_start, file.size()) << context;
    for (const auto& entry : index.entries) {
      ASSERT_LE(entry.begin, entry.end) << context;
      ASSERT_LE(entry.end, file.size() - index.data_start) << context;
      std::uint64_t bytes = *safetensors_dtype_size(entry.dtype);
      for (const std::int64_t dim : entry.shape) bytes *= static_cast<std::uint64_t>(dim);
      ASSERT_EQ(bytes, entry.end - entry.begin) << context;
    }
  } catch (const Error&) {
    // Rejected properly.
  } catch (const std::exception& e) {
    FAIL() << context << ": " << typeid(e).name() << ": " << e.what();
  } catch (...) {
    FAIL() << context << ": a non-standard exception";
  }
}

TEST(Safetensors, ParserSurvivesEveryBitFlipAndTruncation) {
  TempDir dir;
  const auto path = dir / "small.safetensors";
  const std::vector<std::uint8_t> values = raw_bytes(std::vector<float>{1, 2, 3, 4, 5, 6});
  const std::vector<std::uint8_t> ids = raw_bytes(std::vector<std::int64_t>{10, 20});
  write_safetensors(path, {{"w", "F32", {2, 3}, values}, {"ids", "I64", {2}, ids}, {"e", "F16", {0}, {}}},
                    {{"k", "v"}});
  const std::vector<std::uint8_t> original = bytes_of(read_file(path));
  const std::uint64_t data_start = parse_safetensors_header(original, "small").data_start;

  std::size_t mutants = 0;
  for (std::size_t i = 0; i < data_start; ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::vector<std::uint8_t> mutant = original;
      mutant[i] ^= static_cast<std::uint8_t>(1u << bit);
      expect_sane_or_error(mutant, "byte " + std::to_string(i) + " bit " + std::to_string(bit));
      ++mutants;
    }
    for (const std::uint8_t value : {0x00, 0x20, 0x22, 0x7b, 0x7d, 0xff}) {
      std::vector<std::uint8_t> mutant = original;
      mutant[i] = value;
      expect_sane_or_error(mutant, "byte " + std::to_string(i) + " = " + std::to_string(value));
    }
  }
  for (std::size_t length = 0; length < original.size(); ++length) {
    const std::vector<std::uint8_t> truncated(original.begin(), original.begin() + static_cast<std::ptrdiff_t>(length));
    EXPECT_THROW(parse_safetensors_header(truncated, "truncated"), IntegrityError) << length;
  }
  EXPECT_GT(mutants, 8u * 64u);
}

TEST(Safetensors, ReferenceImplementationAgreesBothWays) {
  const std::string python = ALBION_PYTHON;
  if (!testing_support::python_imports(python, "safetensors, numpy")) {
    GTEST_SKIP() << "no " << python << " with the `safetensors` and `numpy` packages";
  }
  TempDir dir;
  const Sample sample;
  std::vector<SafetensorsTensor> tensors = sample.tensors();
  std::erase_if(tensors, [](const SafetensorsTensor& t) { return t.dtype == "BF16"; });  // numpy has no bf16
  write_safetensors(dir / "ours.safetensors", tensors, sample.metadata());
  const std::string script = R"PY(
import sys
import numpy as np
from safetensors import safe_open
from safetensors.numpy import save_file
d = sys.argv[1]
with safe_open(d + "/ours.safetensors", framework="np") as f:
    assert f.metadata() == {"format": "pt", "albion.step": "1000"}, f.metadata()
    assert sorted(f.keys()) == ["a.weight", "empty", "m.f64", "scalar", "z.u8"], f.keys()
    expected = {
        "a.weight": np.array([[0.5, -1.0, 2.25], [3.0, -4.5, 1e-3]], dtype=np.float32),
        "empty": np.zeros((0, 4), dtype=np.float32),
        "m.f64": np.array([[3.141592653589793], [-0.0]], dtype=np.float64),
        "scalar": np.array(-7, dtype=np.int64),
        "z.u8": np.array([1, 2, 3], dtype=np.uint8),
    }
    for name, want in expected.items():
        got = f.get_tensor(name)
        assert got.dtype == want.dtype and got.shape == want.shape and np.array_equal(got, want), (name, got)
save_file({"b": np.arange(5, dtype=np.int16), "a": np.ones((3, 2), dtype=np.float64), "c": np.zeros(0, np.uint8)},
          d + "/theirs.safetensors", metadata={"who": "python"})
print("reference agrees")
)PY";
  write_file(dir / "check.py", script);
  const auto [status, output] = testing_support::run_command(python + " " + (dir / "check.py").string() + " " + dir.path().string());
  ASSERT_EQ(status, 0) << output;
  EXPECT_NE(output.find("reference agrees"), std::string::npos) << output;

  const std::vector<std::uint8_t> theirs = bytes_of(read_file(dir / "theirs.safetensors"));
  const SafetensorsIndex index = parse_safetensors_header(theirs, "theirs");
  EXPECT_EQ(index.metadata, (std::map<std::string, std::string>{{"who", "python"}}));
  std::map<std::string, SafetensorsIndex::Entry> by_name;
  for (const auto& entry : index.entries) by_name[entry.name] = entry;
  ASSERT_EQ(by_name.size(), 3u);
  EXPECT_EQ(by_name.at("a").dtype, "F64");
  EXPECT_EQ(by_name.at("a").shape, (std::vector<std::int64_t>{3, 2}));
  EXPECT_EQ(by_name.at("b").dtype, "I16");
  EXPECT_EQ(by_name.at("c").shape, (std::vector<std::int64_t>{0}));
  std::int16_t b[5];
  std::memcpy(b, theirs.data() + index.data_start + by_name.at("b").begin, sizeof(b));
  EXPECT_EQ(std::vector<std::int16_t>(b, b + 5), (std::vector<std::int16_t>{0, 1, 2, 3, 4}));
}

}  // namespace
}  // namespace albion::checkpoint
