# Finds LibTorch inside a Python installation of the `torch` wheel and checks that the wheel was
# built for the same CUDA major version as the toolkit that compiles our kernels.
#
# Input:  ALBION_PYTHON (cache) — the Python whose torch we build against (scripts/setup.sh passes
#         .venv/bin/python; a machine with its own torch passes its python).
# Output: the Torch package (targets `torch`, TORCH_LIBRARIES), ALBION_TORCH_VERSION,
#         ALBION_TORCH_CUDA_VERSION, ALBION_WHEEL_LIBRARY_DIRS (the wheel's nvidia/*/lib folders, for
#         the run path: see Note [One copy of each CUDA library] in cmake/AlbionRuntimePaths.cmake).

set(ALBION_PYTHON "${CMAKE_SOURCE_DIR}/.venv/bin/python" CACHE FILEPATH
    "Python interpreter whose torch package provides LibTorch")
if(NOT EXISTS "${ALBION_PYTHON}")
  message(FATAL_ERROR "ALBION_PYTHON=${ALBION_PYTHON} does not exist. Run scripts/setup.sh, or pass "
                      "-DALBION_PYTHON=/path/to/python of an environment that has torch installed.")
endif()

execute_process(
  COMMAND "${ALBION_PYTHON}" -c [=[
import os, torch, torch.utils
site = os.path.dirname(os.path.dirname(torch.__file__))
libs = [os.path.join(site, "nvidia", d, "lib") for d in sorted(os.listdir(os.path.join(site, "nvidia")))
        if os.path.isdir(os.path.join(site, "nvidia", d, "lib"))] if os.path.isdir(os.path.join(site, "nvidia")) else []
print(torch.__version__.split("+")[0], torch.version.cuda or "none", torch.utils.cmake_prefix_path,
      ";".join(libs), sep="\n")
]=]
  OUTPUT_VARIABLE _albion_torch_probe
  ERROR_VARIABLE _albion_torch_error
  RESULT_VARIABLE _albion_torch_rc
  OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT _albion_torch_rc EQUAL 0)
  message(FATAL_ERROR "Cannot import torch with ${ALBION_PYTHON}: ${_albion_torch_error}"
                      "Run scripts/setup.sh to install the pinned torch wheel.")
endif()
string(REPLACE "\n" ";" _albion_torch_probe "${_albion_torch_probe}")
list(GET _albion_torch_probe 0 ALBION_TORCH_VERSION)
list(GET _albion_torch_probe 1 ALBION_TORCH_CUDA_VERSION)
list(GET _albion_torch_probe 2 _albion_torch_prefix)
list(SUBLIST _albion_torch_probe 3 -1 ALBION_WHEEL_LIBRARY_DIRS)

# The wheel's CUDA build must match the toolkit's major version: kernels compiled by this nvcc run
# in the same process as torch's own, against one CUDA runtime.
string(REGEX MATCH "^[0-9]+" _albion_torch_cuda_major "${ALBION_TORCH_CUDA_VERSION}")
string(REGEX MATCH "^[0-9]+" _albion_nvcc_major "${CMAKE_CUDA_COMPILER_VERSION}")
if(NOT _albion_torch_cuda_major STREQUAL _albion_nvcc_major)
  message(FATAL_ERROR
    "torch ${ALBION_TORCH_VERSION} from ${ALBION_PYTHON} is built for CUDA ${ALBION_TORCH_CUDA_VERSION}, "
    "but the CUDA toolkit (${CMAKE_CUDA_COMPILER}) is ${CMAKE_CUDA_COMPILER_VERSION}. Install a torch "
    "wheel built for CUDA ${_albion_nvcc_major} (scripts/requirements.txt pins one) or point "
    "CMAKE_CUDA_COMPILER at a CUDA ${_albion_torch_cuda_major} toolkit.")
endif()

# Torch's config selects GPU architectures through TORCH_CUDA_ARCH_LIST for its legacy FindCUDA
# flags only; set it so it does not probe for a GPU. Our own architectures are set per target.
set(TORCH_CUDA_ARCH_LIST "9.0;10.0" CACHE STRING "Architectures torch's CMake config reports")
# CMake sets a default CMAKE_CUDA_ARCHITECTURES that torch would warn about and discard.
unset(CMAKE_CUDA_ARCHITECTURES CACHE)
unset(CMAKE_CUDA_ARCHITECTURES)
list(PREPEND CMAKE_PREFIX_PATH "${_albion_torch_prefix}")
find_package(Torch REQUIRED)
message(STATUS "Albion: torch ${ALBION_TORCH_VERSION} (CUDA ${ALBION_TORCH_CUDA_VERSION}) from ${ALBION_PYTHON}")
