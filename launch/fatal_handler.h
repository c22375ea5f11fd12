// File: launch/fatal_handler.h
// The top-level handler: the one place an exception becomes a process exit code. Prints one line
// "albion: error: ..." to stderr, never a stack trace, and maps albion::Error types to the exit
// codes of the CLI contract (runtime/base/error.h).
#pragma once

#include <functional>

namespace albion::launch {

// Process-wide hardening done first thing in main: no core files (they could hold keys or private
// data) and a terminate handler that reports instead of dumping.
void harden_process();

// Runs `body` and returns its exit code, or the exit code of the exception it threw.
int run_guarded(const std::function<int()>& body);

}  // namespace albion::launch
