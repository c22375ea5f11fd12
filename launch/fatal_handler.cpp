// File: launch/fatal_handler.cpp
#include "launch/fatal_handler.h"

#include <c10/util/Exception.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <string>

#include "launch/mpi_session.h"
#include "runtime/base/error.h"
#include "runtime/base/redact.h"

namespace albion::launch {
namespace {

constexpr rlim_t kCoreLimit = 1;

void print_error(const std::string& message) {
  // One line: a multi-line message (torch adds backtraces) keeps only its first line.
  // A PKCS#11 PIN that reached a message (a recipe value quoted back, say) is not shown.
  std::string line = "albion: error: " + without_pins(message.substr(0, message.find('\n'))) + "\n";
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
  // 1, not 0: where core_pattern pipes cores to a collector (systemd-coredump, apport), the kernel
  // ignores a limit of 0 and dumps anyway; 1 is the value it reserves for "no pipe dump", and no
  // core file is that small, so none is written either (fs/coredump.c). Hard limit too: nothing
  // in the process raises it again.
  rlimit no_core{kCoreLimit, kCoreLimit};
  setrlimit(RLIMIT_CORE, &no_core);
  std::set_terminate(on_terminate);
}

bool core_dumps_disabled() {
  rlimit limit{};
  if (getrlimit(RLIMIT_CORE, &limit) != 0) return false;
  if (limit.rlim_cur == kCoreLimit) return true;
  if (limit.rlim_cur != 0) return false;
  // 0 (a hard limit of 0 set before we ran, which we cannot raise to 1) stops core files only.
  std::ifstream pattern_file("/proc/sys/kernel/core_pattern");
  std::string pattern;
  std::getline(pattern_file, pattern);
  return !pattern.starts_with("|");
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
  } catch (const JobError& e) {
    if (e.reporter()) print_error(e.what());
    return static_cast<int>(e.exit_code());
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
