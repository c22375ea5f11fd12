// File: checkpoint/format/rank_group.cpp
#include "checkpoint/format/rank_group.h"

#include "runtime/base/check.h"

namespace albion::checkpoint {
namespace {

// A rank's outcome as it travels: "" for success, else its exit code's digit and its error.
std::string encode(const std::exception_ptr& failure) {
  if (!failure) return "";
  ExitCode code = ExitCode::kFailure;
  std::string error = "failed";
  try {
    std::rethrow_exception(failure);
  } catch (const Error& e) {
    code = e.exit_code();
    error = e.what();
  } catch (const std::exception& e) {
    error = e.what();
  } catch (...) {
  }
  if (error.empty()) error = "failed";
  return str_cat(static_cast<int>(code), error);
}

}  // namespace

JobOutcome agree_on_outcome(RankGroup& ranks, const std::exception_ptr& failure) {
  std::string first;
  if (ranks.size() == 1) {
    first = encode(failure);
  } else {
    const std::vector<std::string> outcomes = ranks.gather(encode(failure));  // on rank 0
    for (std::size_t rank = 0; rank < outcomes.size() && first.empty(); ++rank) {
      const std::string& outcome = outcomes[rank];
      if (!outcome.empty()) first = rank == 0 ? outcome : str_cat(outcome[0], "rank ", rank, ": ", outcome.substr(1));
    }
    first = ranks.broadcast(first);
  }
  if (first.empty()) return {};
  return {first.substr(1), static_cast<ExitCode>(first[0] - '0')};
}

void throw_agreed_failure(const RankGroup& ranks, const JobOutcome& outcome, const std::exception_ptr& failure) {
  if (!outcome.failed()) return;
  if (ranks.size() == 1) std::rethrow_exception(failure);
  throw JobError(outcome.error, outcome.code, ranks.rank() == 0);
}

}  // namespace albion::checkpoint
