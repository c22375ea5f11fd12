// File: tests/support/mpi_test_main.cpp
// The shared gtest + MPI main for tests that run under mpirun (label mpi) or as one plain process.
// MPI is started through launch::MpiSession, and the ranks on this machine share its cores
// (launch/rank_threads.h), as in the albion executable. Only rank 0 prints the
// full gtest report; other ranks print their failures. Every rank exits with the worst result of
// any rank, so a failure on rank 3 fails the ctest entry.
#include <gtest/gtest.h>
#include <mpi.h>

#include "launch/mpi_session.h"
#include "launch/rank_threads.h"

namespace {

// Prints only failed assertions, prefixed with the rank, for ranks other than 0.
class FailurePrinter : public testing::EmptyTestEventListener {
 public:
  explicit FailurePrinter(int rank) : rank_(rank) {}
  void OnTestPartResult(const testing::TestPartResult& result) override {
    if (result.failed()) {
      std::fprintf(stderr, "[rank %d] %s:%d: %s\n", rank_, result.file_name() ? result.file_name() : "?",
                   result.line_number(), result.summary());
    }
  }

 private:
  int rank_;
};

}  // namespace

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  albion::launch::MpiSession session;
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm node;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node);
  int local_ranks = 1;
  MPI_Comm_size(node, &local_ranks);
  MPI_Comm_free(&node);
  albion::launch::share_cores_among_local_ranks(local_ranks);
  if (rank != 0) {
    testing::TestEventListeners& listeners = testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new FailurePrinter(rank));
  }
  int local = RUN_ALL_TESTS();
  int worst = 0;
  MPI_Allreduce(&local, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  return worst;
}
