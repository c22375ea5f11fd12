// File: kernels/cross_entropy/softmax_cross_entropy_ref.cpp
// CPU reference of the softmax cross-entropy (softmax_cross_entropy.cuh has the formulas).
#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/cross_entropy/softmax_cross_entropy.cuh"
#include "runtime/base/check.h"

namespace albion::kernels {

template <typename T>
void softmax_cross_entropy_reference(T* logits, const std::int64_t* targets, T* losses, std::int64_t rows,
                                     std::int64_t vocab, std::int64_t ignore_index, bool write_gradient) {
  for (std::int64_t r = 0; r < rows; ++r) {
    T* row = logits + r * vocab;
    const std::int64_t target = targets[r];
    if (target == ignore_index) {
      losses[r] = 0;
      if (write_gradient) std::fill(row, row + vocab, T(0));
      continue;
    }
    ALBION_CHECK_AS(UsageError, target >= 0 && target < vocab, "cross-entropy: target ", target, " of row ", r,
                    " is outside the vocabulary [0, ", vocab, ") and is not the ignore index ", ignore_index);
    double max = -std::numeric_limits<double>::infinity();
    for (std::int64_t j = 0; j < vocab; ++j) max = std::max(max, static_cast<double>(row[j]));
    double sum = 0;
    for (std::int64_t j = 0; j < vocab; ++j) sum += std::exp(static_cast<double>(row[j]) - max);
    const double lse = max + std::log(sum);
    losses[r] = static_cast<T>(lse - static_cast<double>(row[target]));
    if (!write_gradient) continue;
    for (std::int64_t j = 0; j < vocab; ++j) {
      row[j] = static_cast<T>(std::exp(static_cast<double>(row[j]) - lse) - (j == target ? 1.0 : 0.0));
    }
  }
}

template <typename T>
void softmax_logsumexp_reference(const T* logits, const std::int64_t* targets, T* lse, std::int64_t rows,
                                 std::int64_t vocab, std::int64_t ignore_index) {
  for (std::int64_t r = 0; r < rows; ++r) {
    const T* row = logits + r * vocab;
    if (targets[r] == ignore_index) {
      lse[r] = 0;
      continue;
    }
    double max = -std::numeric_limits<double>::infinity();
    for (std::int64_t j = 0; j < vocab; ++j) max = std::max(max, static_cast<double>(row[j]));
    // -inf entries add nothing, even to a row of them (whose logsumexp is -inf, as the kernels'); a
    // NaN reaches the sum.
    double sum = 0;
    for (std::int64_t j = 0; j < vocab; ++j) {
      if (!std::isinf(row[j]) || row[j] > 0) sum += std::exp(static_cast<double>(row[j]) - max);
    }
    lse[r] = static_cast<T>(max + std::log(sum));
  }
}

template <typename T>
void softmax_gradient_reference(T* logits, const std::int64_t* targets, const T* lse, std::int64_t rows,
                                std::int64_t vocab) {
  for (std::int64_t r = 0; r < rows; ++r) {
    T* row = logits + r * vocab;
    for (std::int64_t j = 0; j < vocab; ++j) {
      row[j] = static_cast<T>(std::exp(static_cast<double>(row[j]) - static_cast<double>(lse[r])) -
                              (j == targets[r] ? 1.0 : 0.0));
    }
  }
}

template void softmax_cross_entropy_reference<float>(float*, const std::int64_t*, float*, std::int64_t,
                                                     std::int64_t, std::int64_t, bool);
template void softmax_cross_entropy_reference<double>(double*, const std::int64_t*, double*, std::int64_t,
                                                      std::int64_t, std::int64_t, bool);

template void softmax_logsumexp_reference<float>(const float*, const std::int64_t*, float*, std::int64_t, std::int64_t,
                                                 std::int64_t);
template void softmax_logsumexp_reference<double>(const double*, const std::int64_t*, double*, std::int64_t,
                                                  std::int64_t, std::int64_t);
template void softmax_gradient_reference<float>(float*, const std::int64_t*, const float*, std::int64_t,
                                                std::int64_t);
template void softmax_gradient_reference<double>(double*, const std::int64_t*, const double*, std::int64_t,
                                                 std::int64_t);

}  // namespace albion::kernels
