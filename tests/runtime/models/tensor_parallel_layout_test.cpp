// File: tests/runtime/models/tensor_parallel_layout_test.cpp
// How checkpoints store tensors cut over tensor-parallel ranks (runtime/models/tensor_parallel.h):
// every cut part, in its stored order, is its ranges of the stored whole tensor, so a rank saves
// and reads only its own part; and a part reads back from either stored order (a column cut's
// transposed one, and format 1's row-major one), as does the whole tensor on one rank.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "runtime/models/tensor_parallel.h"

namespace albion::models {
namespace {

struct Layout {
  std::string what;
  std::vector<std::int64_t> shape;
  TensorParallelCut cut;
};

std::vector<Layout> layouts() {
  return {{"rows", {8, 6}, {0, 1}},           {"rows in 3 groups (GPT-2's q, k, v bias)", {24}, {0, 3}},
          {"rows of a 3-D tensor", {4, 3, 2}, {0, 1}}, {"columns (o_proj)", {6, 8}, {1, 1}},
          {"columns in 3 groups (GPT-2's c_attn)", {5, 24}, {1, 3}}};
}

// A reader of `stored`'s elements that counts the elements it is asked for.
struct CountingReader {
  at::Tensor stored;
  std::int64_t elements_read = 0;
  at::Tensor operator()(std::int64_t offset, std::int64_t numel) {
    elements_read += numel;
    return stored.narrow(0, offset, numel).clone();
  }
};

TEST(TensorParallelLayout, EachPartIsItsRangesOfTheStoredTensor) {
  at::manual_seed(7);
  for (const Layout& layout : layouts()) {
    const at::Tensor whole = at::randn(layout.shape, at::kDouble);
    const at::Tensor stored = in_stored_order(whole, layout.cut);
    for (std::int64_t count : {1, 2, 4}) {
      for (std::int64_t index = 0; index < count; ++index) {
        const std::string where = layout.what + ", part " + std::to_string(index) + " of " + std::to_string(count);
        const at::Tensor part = tensor_parallel_part(whole, layout.cut.dim, index, count, layout.cut.groups);
        const at::Tensor part_stored = in_stored_order(part.contiguous(), layout.cut);
        std::vector<at::Tensor> pieces;
        for (const ElementRange& range : tensor_parallel_stored_ranges(layout.cut, part.sizes(), index, count)) {
          pieces.push_back(stored.narrow(0, range.offset, range.numel));
        }
        EXPECT_TRUE(at::equal(at::cat(pieces), part_stored)) << where;

        CountingReader reader{stored};
        const at::Tensor read = read_tensor_parallel_part(std::ref(reader), layout.cut, part.sizes(), index, count,
                                                          stored_transposed(layout.cut));
        EXPECT_TRUE(at::equal(read, part)) << where;
        EXPECT_EQ(reader.elements_read, part.numel()) << where << ": reads only the part";
      }
    }
  }
}

TEST(TensorParallelLayout, PartsAndWholeTensorsReadFromEitherStoredOrder) {
  at::manual_seed(8);
  for (const Layout& layout : layouts()) {
    if (layout.shape.size() != 2) continue;
    const at::Tensor whole = at::randn(layout.shape, at::kDouble);
    for (bool transposed : {false, true}) {
      CountingReader reader{transposed ? whole.t().contiguous().view({-1}) : whole.reshape({-1})};
      const std::string where = layout.what + (transposed ? ", stored transposed" : ", stored row by row");
      // One process: no cut, the whole tensor.
      EXPECT_TRUE(at::equal(read_tensor_parallel_part(std::ref(reader), {}, whole.sizes(), 0, 1, transposed), whole))
          << where;
      for (std::int64_t index = 0; index < 2; ++index) {
        const at::Tensor part = tensor_parallel_part(whole, layout.cut.dim, index, 2, layout.cut.groups);
        EXPECT_TRUE(at::equal(
            read_tensor_parallel_part(std::ref(reader), layout.cut, part.sizes(), index, 2, transposed), part))
            << where << ", part " << index << " of 2";
      }
    }
  }
}

TEST(TensorParallelLayout, OnlyColumnCutsAreStoredTransposedAndThenOnly2D) {
  EXPECT_FALSE(stored_transposed({}));
  EXPECT_FALSE(stored_transposed({0, 3}));
  EXPECT_TRUE(stored_transposed({1, 1}));
  EXPECT_TRUE(at::equal(in_stored_order(at::arange(6).view({2, 3}), {1, 1}), at::tensor({0, 3, 1, 4, 2, 5})));
  EXPECT_THROW(in_stored_order(at::zeros({2, 3, 4}), {1, 1}), std::exception);
  EXPECT_THROW(tensor_parallel_stored_ranges({0, 3}, {5}, 0, 2), std::exception);
}

}  // namespace
}  // namespace albion::models
