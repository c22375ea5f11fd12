# Note [One copy of each CUDA library]
# The torch wheel brings its own CUDA runtime, cuBLAS, cuDNN and NCCL under site-packages/nvidia/,
# and the machine has a CUDA toolkit with its own copies. Two copies of libcudart or libnccl in one
# process would give two CUDA contexts' worth of state and undefined behaviour. So every Albion
# binary links the CUDA runtime as a shared library (not cudart_static) and puts the wheel's library
# folders first in its run path: the dynamic loader then resolves libcudart.so.13, libnccl.so.2 and
# libcudnn.so.9 once, from the wheel, for both our code and torch's. `albion doctor` prints where
# each was loaded from, and tests/launch/loaded_libraries_test.cpp fails if any appears twice.

set(CMAKE_CUDA_RUNTIME_LIBRARY Shared)
set(CMAKE_SKIP_BUILD_RPATH OFF)
set(CMAKE_BUILD_RPATH_USE_ORIGIN OFF)
get_filename_component(_albion_torch_lib_dir "${TORCH_LIBRARY}" DIRECTORY)
set(ALBION_EXTRA_RUN_PATH "" CACHE STRING
    "Folders added to every binary's run path: a private prefix's libraries (scripts/gpu_check.sh)")
set(CMAKE_BUILD_RPATH ${ALBION_WHEEL_LIBRARY_DIRS} "${_albion_torch_lib_dir}" ${ALBION_EXTRA_RUN_PATH})
set(CMAKE_INSTALL_RPATH ${CMAKE_BUILD_RPATH})
# DT_RPATH (not DT_RUNPATH) also applies to libraries loaded on behalf of ours, which is what keeps
# libtorch_cuda's own dependencies on the same copies.
add_link_options(LINKER:--disable-new-dtags)

# Note [std::filesystem from libtorch.so]
# The torch wheel's libtorch.so exports its own static copy of std::filesystem (64 symbols), and
# some of those entry points crash when called from our code (std::filesystem::remove_all jumps
# to address 0). The dynamic linker binds each symbol to the first library in the executable's
# DT_NEEDED list that defines it, and libtorch.so would come before libstdc++.so.6. Naming
# libstdc++ first on every link line makes the system's libstdc++ win for everyone, torch included
# (same ABI). tests/runtime/loaded_libraries_test.cpp keeps this from regressing.
add_link_options(-Wl,--push-state,--no-as-needed -lstdc++ -Wl,--pop-state)
