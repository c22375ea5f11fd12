// File: runtime/parallel/muon_owners.h
// Which data-parallel rank orthogonalizes each Muon matrix under DDP (Note [Muon's matrices
// spread over DDP's ranks], data_parallel.cpp). Every rank computes the same assignment from the
// matrices' shapes alone, so no rank has to be told.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace albion::parallel {

// A step orthogonalizes Muon's matrices in windows of about this many per rank (data-parallel x
// tensor-parallel): enough to spread the work evenly, few enough that a window's transient buffers
// stay small (recipes/llama3_70b.ini's ZeRO-1 on 64 ranks: 8.9 GB, where all the matrices at once
// took 38.5 GB).
inline constexpr std::size_t kMuonMatricesPerRank = 2;

// Newton-Schulz's cost for a rows x cols matrix, up to a constant factor: each of its products is
// of the short side's Gram matrix, short^2 x long multiply-adds.
double newton_schulz_cost(std::int64_t rows, std::int64_t cols);

// The rank of `ranks` that computes each job of cost `costs[i]`: the costliest job first, onto the
// least loaded rank (ties to the lower job index and the lower rank), Graham's longest-processing-
// time rule: the most loaded rank carries at most 4/3 of the best possible assignment's.
std::vector<int> spread_over_ranks(const std::vector<double>& costs, int ranks);

}  // namespace albion::parallel
