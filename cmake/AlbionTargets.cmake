# albion_module(NAME SOURCES ... [TORCH] [PUBLIC_LIBS ...] [PRIVATE_LIBS ...])
# One module library. Includes are rooted at the repository root ("collectives/world.h").
# TORCH: the module includes torch headers; it gets the shared precompiled header, which halves
# the compile time of each such file (Note [Torch precompiled header]).
#
# Note [Torch precompiled header]
# Every torch-using target reuses one precompiled header built once by albion_torch_pch; CMake's
# REUSE_FROM needs identical flags, which albion_module guarantees by giving every target the same
# options (the test-only emulated builds add one -D that no torch header reads, which GCC accepts).
# Sources include the narrow headers they need (ATen/ATen.h, torch/types.h); the PCH only
# makes them cheap.

add_library(albion_torch_pch OBJECT "${CMAKE_SOURCE_DIR}/cmake/torch_pch.cpp")
target_link_libraries(albion_torch_pch PUBLIC torch albion_warnings)
target_precompile_headers(albion_torch_pch PRIVATE <ATen/ATen.h> <torch/types.h>)

function(albion_module name)
  cmake_parse_arguments(ARG "TORCH" "" "SOURCES;PUBLIC_LIBS;PRIVATE_LIBS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  target_include_directories(${name} PUBLIC "${CMAKE_SOURCE_DIR}")
  target_link_libraries(${name} PUBLIC ${ARG_PUBLIC_LIBS} PRIVATE ${ARG_PRIVATE_LIBS} albion_warnings)
  if(ARG_TORCH)
    target_link_libraries(${name} PUBLIC torch)
    target_precompile_headers(${name} REUSE_FROM albion_torch_pch)
  endif()
endfunction()
