// File: runtime/base/error.h
// Albion's one exception hierarchy. Library code throws; only launch/ turns an exception into a
// process exit code (see launch/fatal_handler.cpp). The exit codes are part of the CLI contract:
//   2  usage or configuration error (bad argument, recipe key, value, path)
//   3  integrity or authentication failure (wrong key, tampered or truncated file)
//   1  anything else (a failed CUDA/NCCL/MPI/HDF5/OpenSSL call, an unimplemented feature)
// Messages are one line, name the offending file/key/argument, and never contain secrets.
#pragma once

#include <stdexcept>
#include <string>

namespace albion {

enum class ExitCode : int {
  kOk = 0,
  kFailure = 1,
  kUsage = 2,
  kIntegrity = 3,
};

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
  virtual ExitCode exit_code() const { return ExitCode::kFailure; }
};

// Bad command line, recipe, or other configuration: the user can fix it by changing the input.
class UsageError : public Error {
 public:
  using Error::Error;
  ExitCode exit_code() const override { return ExitCode::kUsage; }
};

// Data failed authentication or an integrity check: never use it, never guess.
class IntegrityError : public Error {
 public:
  using Error::Error;
  ExitCode exit_code() const override { return ExitCode::kIntegrity; }
};

// A call into CUDA, NCCL, MPI, HDF5, OpenSSL or the OS failed. The message carries host and rank.
class SystemError : public Error {
 public:
  using Error::Error;
};

// An error every rank of a job raised together, having agreed on it (one message, one exit code;
// checkpoint/format/rank_group.h): no rank is left waiting in a collective, so the job ends
// without MPI_Abort, and only the rank marked `reporter` prints it.
class JobError : public Error {
 public:
  JobError(const std::string& message, ExitCode code, bool reporter)
      : Error(message), code_(code), reporter_(reporter) {}
  ExitCode exit_code() const override { return code_; }
  bool reporter() const { return reporter_; }

 private:
  ExitCode code_;
  bool reporter_;
};

// A feature whose issue has not landed yet; says so instead of pretending.
class NotImplementedError : public Error {
 public:
  using Error::Error;
};

}  // namespace albion
