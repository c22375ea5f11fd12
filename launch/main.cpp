// File: launch/main.cpp
// Entry point of the `albion` executable: harden the process, read the environment once, run
// the subcommand under the fatal handler. Everything else lives in the subcommands.
#include <string>
#include <vector>

#include "launch/cli.h"
#include "launch/fatal_handler.h"
#include "launch/reproducible_cpu_math.h"
#include "runtime/base/env.h"
#include "runtime/base/log.h"

int main(int argc, char** argv) {
  albion::launch::harden_process();
  albion::launch::make_cpu_math_reproducible();  // before torch first calls MKL
  const std::vector<std::string> args(argv, argv + argc);
  return albion::launch::run_guarded([&] {
    const albion::ProcessEnvironment env = albion::read_process_environment();
    albion::log::configure(env);
    return albion::launch::run_cli(args, env);
  });
}
