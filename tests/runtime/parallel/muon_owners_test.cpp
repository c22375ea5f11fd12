// File: tests/runtime/parallel/muon_owners_test.cpp
// Which rank orthogonalizes each Muon matrix under DDP: balanced by Newton-Schulz's cost, the same
// on every rank, never worse than 4/3 of the best assignment (checked against every assignment of
// small random instances).
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "runtime/parallel/muon_owners.h"

namespace albion::parallel {
namespace {

double most_loaded(const std::vector<double>& costs, const std::vector<int>& owners, int ranks) {
  std::vector<double> load(static_cast<std::size_t>(ranks), 0.0);
  for (std::size_t i = 0; i < costs.size(); ++i) load[owners[i]] += costs[i];
  return *std::max_element(load.begin(), load.end());
}

// The best assignment's most loaded rank, by trying all ranks^jobs of them.
double best_possible(const std::vector<double>& costs, int ranks) {
  std::vector<int> owners(costs.size(), 0);
  double best = most_loaded(costs, owners, ranks);
  while (true) {
    std::size_t digit = 0;
    while (digit < owners.size() && ++owners[digit] == ranks) owners[digit++] = 0;
    if (digit == owners.size()) return best;
    best = std::min(best, most_loaded(costs, owners, ranks));
  }
}

TEST(MuonOwners, NewtonSchulzCostIsTheShortSideSquaredTimesTheLong) {
  EXPECT_EQ(newton_schulz_cost(768, 2304), 768.0 * 768 * 2304);
  EXPECT_EQ(newton_schulz_cost(3072, 768), newton_schulz_cost(768, 3072));
}

// GPT-2 124M's 48 hidden matrices on 4 ranks: every rank gets about a quarter of the work.
TEST(MuonOwners, Gpt2MatricesSpreadEvenlyOverFourRanks) {
  std::vector<double> costs;
  for (int block = 0; block < 12; ++block) {
    for (const auto& [rows, cols] : {std::pair{2304, 768}, {768, 768}, {3072, 768}, {768, 3072}}) {
      costs.push_back(newton_schulz_cost(rows, cols));
    }
  }
  const std::vector<int> owners = spread_over_ranks(costs, 4);
  EXPECT_EQ(owners, spread_over_ranks(costs, 4)) << "not the same on every call";
  double total = 0;
  for (double cost : costs) total += cost;
  EXPECT_LE(most_loaded(costs, owners, 4), 1.05 * total / 4);
  for (int rank = 0; rank < 4; ++rank) EXPECT_NE(std::count(owners.begin(), owners.end(), rank), 0) << rank;
}

TEST(MuonOwners, FewerJobsThanRanksTakeOneRankEachAndOneRankTakesAll) {
  EXPECT_EQ(spread_over_ranks({1.0, 3.0, 2.0}, 8), (std::vector<int>{2, 0, 1}));
  EXPECT_EQ(spread_over_ranks({1.0, 3.0, 2.0}, 1), (std::vector<int>{0, 0, 0}));
  EXPECT_TRUE(spread_over_ranks({}, 4).empty());
}

TEST(MuonOwners, NeverWorseThanFourThirdsOfTheBest) {
  std::mt19937 random(7);
  std::uniform_real_distribution<double> cost(0.1, 10.0);
  for (int instance = 0; instance < 200; ++instance) {
    const int ranks = 2 + instance % 3;
    std::vector<double> costs(static_cast<std::size_t>(4 + instance % 5));
    for (double& c : costs) c = cost(random);
    const std::vector<int> owners = spread_over_ranks(costs, ranks);
    ASSERT_EQ(owners.size(), costs.size());
    for (int owner : owners) ASSERT_TRUE(owner >= 0 && owner < ranks);
    EXPECT_LE(most_loaded(costs, owners, ranks), 4.0 / 3.0 * best_possible(costs, ranks) + 1e-9) << instance;
  }
}

}  // namespace
}  // namespace albion::parallel
