# Language standards, warnings, compiler cache and GPU architectures for every Albion target.

set(CMAKE_CXX_STANDARD 20)
set(CMAKE_CXX_STANDARD_REQUIRED ON)
set(CMAKE_CXX_EXTENSIONS OFF)
set(CMAKE_CUDA_STANDARD 20)
set(CMAKE_CUDA_STANDARD_REQUIRED ON)
set(CMAKE_EXPORT_COMPILE_COMMANDS ON)
set(CMAKE_POSITION_INDEPENDENT_CODE ON)

if(NOT CMAKE_BUILD_TYPE AND NOT CMAKE_CONFIGURATION_TYPES)
  set(CMAKE_BUILD_TYPE RelWithDebInfo CACHE STRING "Build type" FORCE)
endif()

# ccache makes clean rebuilds (CI, a second build directory) nearly free. Precompiled headers need
# its pch sloppiness settings, passed through the environment of the launcher.
find_program(ALBION_CCACHE ccache)
if(ALBION_CCACHE)
  set(_albion_launcher "${CMAKE_COMMAND}" -E env
      "CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime"
      "${ALBION_CCACHE}")
  set(CMAKE_CXX_COMPILER_LAUNCHER ${_albion_launcher})
  set(CMAKE_CUDA_COMPILER_LAUNCHER ${_albion_launcher})
  message(STATUS "Albion: compiler cache ${ALBION_CCACHE}")
endif()

# GPU architectures of our own kernels: Ampere (A100, many HPC centres' fleet), Hopper (H100/H200)
# and Blackwell (B200, GB300), as real code, plus PTX of the newest for forward compatibility.
# Before sm_90 the cross-entropy's row held in a cluster runs as its one-block-per-row kernel.
set(ALBION_CUDA_ARCHITECTURES "80-real;90-real;100-real;103" CACHE STRING "CUDA architectures for Albion kernels")

# Source locations in error messages relative to the repository, not the build machine's layout.
add_compile_options($<$<COMPILE_LANGUAGE:CXX>:-fmacro-prefix-map=${CMAKE_SOURCE_DIR}/=>)

# Warnings apply to our code only (torch's headers are SYSTEM includes).
add_library(albion_warnings INTERFACE)
target_compile_options(albion_warnings INTERFACE
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Wno-unused-parameter>
  $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall --expt-relaxed-constexpr>)
