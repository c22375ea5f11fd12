# The field's libraries, each found as CMake finds it; no vendored copies.
# Produces imported targets used by the module libraries:
#   MPI::MPI_CXX, Boost::program_options, hdf5::hdf5 (albion_hdf5), OpenSSL::Crypto,
#   albion::nccl (the NCCL that torch loads), GTest::gtest, nlohmann_json::nlohmann_json,
#   PkgConfig::PCRE2, PkgConfig::SENTENCEPIECE.

find_package(MPI REQUIRED COMPONENTS CXX)
find_package(Boost 1.74 REQUIRED COMPONENTS program_options)
find_package(OpenSSL 3.0 REQUIRED COMPONENTS Crypto)
# Debian keeps OpenSSL's per-architecture headers (openssl/configuration.h) in include/<multiarch>/.
# The compiler searches that folder by itself under /usr only; under another prefix (the lent GPU
# machine's, scripts/gpu_check.sh) it must be named. CMake drops it again where it is implicit.
if(CMAKE_LIBRARY_ARCHITECTURE AND
   EXISTS "${OPENSSL_INCLUDE_DIR}/${CMAKE_LIBRARY_ARCHITECTURE}/openssl/configuration.h")
  set_property(TARGET OpenSSL::Crypto APPEND PROPERTY INTERFACE_INCLUDE_DIRECTORIES
               "${OPENSSL_INCLUDE_DIR}/${CMAKE_LIBRARY_ARCHITECTURE}")
endif()

# Serial HDF5: each rank writes its own shard file. Debian also ships an OpenMPI build; asking for
# the C component without HDF5_PREFER_PARALLEL keeps the serial one.
set(HDF5_PREFER_PARALLEL OFF)
find_package(HDF5 1.10 REQUIRED COMPONENTS C)
if(HDF5_IS_PARALLEL)
  message(FATAL_ERROR "Found a parallel (MPI) HDF5 at ${HDF5_INCLUDE_DIRS}; Albion writes one shard "
                      "per rank with serial HDF5 (Debian package libhdf5-dev).")
endif()
add_library(albion_hdf5 INTERFACE)
target_include_directories(albion_hdf5 SYSTEM INTERFACE ${HDF5_C_INCLUDE_DIRS} ${HDF5_INCLUDE_DIRS})
target_link_libraries(albion_hdf5 INTERFACE ${HDF5_C_LIBRARIES})
target_compile_definitions(albion_hdf5 INTERFACE ${HDF5_C_DEFINITIONS} ${HDF5_DEFINITIONS})

# NCCL: CMake has no module for it. Use the copy torch itself links (the wheel's nvidia/nccl), so
# the process loads exactly one libnccl.so.2; fall back to the toolkit's when torch has none.
set(_albion_nccl_hints)
foreach(_dir IN LISTS ALBION_WHEEL_LIBRARY_DIRS)
  if(_dir MATCHES "/nccl/lib$")
    get_filename_component(_root "${_dir}" DIRECTORY)
    list(APPEND _albion_nccl_hints "${_root}")
  endif()
endforeach()
find_path(ALBION_NCCL_INCLUDE_DIR nccl.h
          PATHS ${_albion_nccl_hints} "${CUDAToolkit_LIBRARY_ROOT}"
          PATH_SUFFIXES include NO_DEFAULT_PATH)
find_library(ALBION_NCCL_LIBRARY NAMES nccl libnccl.so.2 NAMES_PER_DIR
             PATHS ${_albion_nccl_hints} "${CUDAToolkit_LIBRARY_ROOT}"
             PATH_SUFFIXES lib lib64 NO_DEFAULT_PATH)
if(NOT ALBION_NCCL_INCLUDE_DIR OR NOT ALBION_NCCL_LIBRARY)
  message(FATAL_ERROR "NCCL not found (looked in the torch wheel's nvidia/nccl and ${CUDAToolkit_LIBRARY_DIR}).")
endif()
add_library(albion::nccl UNKNOWN IMPORTED)
set_target_properties(albion::nccl PROPERTIES IMPORTED_LOCATION "${ALBION_NCCL_LIBRARY}"
                      INTERFACE_INCLUDE_DIRECTORIES "${ALBION_NCCL_INCLUDE_DIR}")
target_link_libraries(albion::nccl INTERFACE CUDA::cudart)
message(STATUS "Albion: NCCL ${ALBION_NCCL_LIBRARY}")

if(ALBION_BUILD_TESTS)
  find_package(GTest 1.12 REQUIRED)
endif()

# JSON (tokenizer.json, JSONL datasets, manifests, audit records).
find_package(nlohmann_json 3.11 REQUIRED)

# PCRE2 (pre-tokenizer regexes need \p{L}, \p{N}) and SentencePiece, through pkg-config.
find_package(PkgConfig REQUIRED)
pkg_check_modules(PCRE2 REQUIRED IMPORTED_TARGET libpcre2-8)
pkg_check_modules(SENTENCEPIECE REQUIRED IMPORTED_TARGET sentencepiece)
