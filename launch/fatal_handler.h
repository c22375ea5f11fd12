// File: launch/fatal_handler.h
// The top-level handler: the one place an exception becomes a process exit code. Prints one line
// "albion: error: ..." to stderr, never a stack trace, and maps albion::Error types to the exit
// codes of the CLI contract (runtime/base/error.h).
#pragma once

#include <exception>
#include <functional>

namespace albion::launch {

// Process-wide hardening done first thing in main: no core files (they could hold keys or private
// data) and a terminate handler that reports instead of dumping.
void harden_process();
// Whether this process can no longer dump core, to a file or to a core_pattern pipe.
bool core_dumps_disabled();

// Runs `body` and returns its exit code, or the exit code of the exception it threw.
int run_guarded(const std::function<int()>& body);

// Prints `error` as run_guarded does and, with peers running, MPI_Aborts the world at once, before
// destructors could block in a collective that a peer will never join. Returns the exit code. A
// JobError is printed by its reporter only, and aborts nothing.
int report_fatal(std::exception_ptr error);

}  // namespace albion::launch
