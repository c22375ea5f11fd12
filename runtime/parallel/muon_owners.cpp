// File: runtime/parallel/muon_owners.cpp
#include "runtime/parallel/muon_owners.h"

#include <algorithm>
#include <numeric>

#include "runtime/base/check.h"

namespace albion::parallel {

double newton_schulz_cost(std::int64_t rows, std::int64_t cols) {
  const double shorter = static_cast<double>(std::min(rows, cols));
  return shorter * shorter * static_cast<double>(std::max(rows, cols));
}

std::vector<int> spread_over_ranks(const std::vector<double>& costs, int ranks) {
  ALBION_CHECK(ranks >= 1, "spreading work over ", ranks, " ranks");
  std::vector<std::size_t> order(costs.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return costs[a] > costs[b]; });
  std::vector<double> load(static_cast<std::size_t>(ranks), 0.0);
  std::vector<int> owners(costs.size(), 0);
  for (const std::size_t job : order) {
    const auto least = std::min_element(load.begin(), load.end());  // the first of equals: the lower rank
    *least += costs[job];
    owners[job] = static_cast<int>(least - load.begin());
  }
  return owners;
}

}  // namespace albion::parallel
