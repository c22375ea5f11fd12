# Pinned versions and package lists, sourced by setup.sh: the one place to change them.
ALBION_CUDA_MAJOR=13
ALBION_TORCH_VERSION=2.11.0   # PyPI's torch 2.11.0 is the CUDA 13.0 build (torch.version.cuda == 13.0)

# Debian 12 packages: compilers and build tools, then the field's libraries.
ALBION_DEBIAN_PACKAGES=(
  g++ ninja-build ccache pkg-config python3-venv
  openmpi-bin libopenmpi-dev
  libboost-program-options-dev
  libhdf5-dev
  libssl-dev
  libgtest-dev googletest
  nlohmann-json3-dev
  libpcre2-dev libsentencepiece-dev
  softhsm2 opensc libp11-kit-dev
  clang libclang-rt-14-dev
)
