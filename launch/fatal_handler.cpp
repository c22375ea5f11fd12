// File: launch/fatal_handler.cpp
#include "launch/fatal_handler.h"

#include <c10/util/Exception.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "launch/mpi_session.h"
#include "runtime/base/error.h"

namespace albion::launch {
namespace {

void print_error(const std::string& message) {
  // One line: a multi-line message (torch adds backtraces) keeps only its first line.
  std::string line = "albion: error: " + message.substr(0, message.find('\n')) + "\n";
  [[maybe_unused]] ssize_t written = ::write(STDERR_FILENO, line.data(), line.size());
}

int fail(const std::string& message, ExitCode code) {
  print_error(message);
  abort_world(static_cast<int>(code));
  return static_cast<int>(code);
}

[[noreturn]] void on_terminate() {
  print_error("internal error: unhandled exception or std::terminate");
  std::_Exit(static_cast<int>(ExitCode::kFailure));
}

}  // namespace

void harden_process() {
  rlimit no_core{0, 0};
  setrlimit(RLIMIT_CORE, &no_core);
  std::set_terminate(on_terminate);
}

int run_guarded(const std::function<int()>& body) {
  try {
    return body();
  } catch (...) {
    return report_fatal(std::current_exception());
  }
}

int report_fatal(std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const Error& e) {
    return fail(e.what(), e.exit_code());
  } catch (const c10::Error& e) {
    return fail(std::string("torch: ") + e.what_without_backtrace(), ExitCode::kFailure);
  } catch (const std::bad_alloc&) {
    return fail("out of host memory", ExitCode::kFailure);
  } catch (const std::exception& e) {
    return fail(std::string("internal error: ") + e.what(), ExitCode::kFailure);
  }
}

}  // namespace albion::launch
