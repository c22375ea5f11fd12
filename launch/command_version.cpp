// File: launch/command_version.cpp
// `albion version`: what this binary is and what it was built with.
#include <iostream>

#include "launch/build_info.h"
#include "launch/cli.h"
#include "launch/command_options.h"
#include "runtime/device.h"

namespace albion::launch {

int run_version(const CommandArgs& args, const ProcessEnvironment&) {
  const CommandSpec spec{"version", "albion version",
                         "Print the albion version, build type, GPU architectures and torch build."};
  if (!parse_command(args, spec, po::options_description("options"))) return 0;
  const runtime::ComputeReport compute = runtime::probe_compute();
  std::cout << "albion " << kAlbionVersion << " (" << kBuildType << ")\n"
            << "built with CUDA " << kCudaCompilerVersion << " for architectures "
            << kCudaArchitectures << "\n"
            << "torch " << compute.torch_version << " (CUDA "
            << (compute.torch_has_cuda ? compute.torch_cuda_build : "none") << ")\n";
  return 0;
}

}  // namespace albion::launch
