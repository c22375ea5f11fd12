// File: launch/mpi_session.h
// The MPI session of this process: the only place MPI_Init_thread and MPI_Finalize are called.
// RAII: construct once in a subcommand that needs MPI, finalized on scope exit. On a fatal error
// with peers running, abort_world() takes every rank down (MPI_Abort) instead of leaving them to
// hang in their next collective.
#pragma once

#include <mpi.h>

namespace albion::launch {

class MpiSession {
 public:
  MpiSession();  // MPI_Init_thread(MPI_THREAD_MULTIPLE); works under mpirun, srun, or alone
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

  MPI_Comm world() const { return MPI_COMM_WORLD; }
  int thread_level() const { return thread_level_; }

 private:
  int thread_level_ = 0;
};

// If MPI is running with more than one rank, MPI_Abort the world with `exit_code`; else return.
void abort_world(int exit_code) noexcept;

}  // namespace albion::launch
