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
  # A two-node Slurm cluster for `albion submit`'s tests (tests/launch/slurm_test_cluster.sh).
  slurmctld slurmd slurm-client munge
)

# The lent GPU machine has CUDA, torch, a compiler, CMake and ninja, but no registry and none of
# the libraries above. scripts/gpu_debs.sh downloads these Debian 12 packages into .debs/ here;
# scripts/gpu_check.sh unpacks them into a private prefix there. Headers and libraries of each come
# together, so they cannot disagree with whatever the machine itself has.
ALBION_GPU_MACHINE_DEBS=(
  # Compile and link: headers, CMake/pkg-config files, and the libraries they name.
  libopenmpi-dev libopenmpi3 openmpi-bin openmpi-common
  libhdf5-dev libhdf5-103-1
  libboost1.74-dev libboost-program-options1.74-dev libboost-program-options1.74.0
  libssl-dev libssl3
  nlohmann-json3-dev libgtest-dev
  libsentencepiece-dev libsentencepiece0 libpcre2-dev libpcre2-8-0 libp11-kit-dev
  pkgconf pkgconf-bin libpkgconf3 patchelf
  # What those libraries (OpenMPI's components and HDF5's included) load in turn, found with ldd.
  libpmix2 libhwloc15 libevent-core-2.1-7 libevent-pthreads-2.1-7 libucx0 libfabric1
  libibverbs1 ibverbs-providers librdmacm1 libpsm2-2 libpsm-infinipath1 libnuma1 libmunge2
  libnl-3-200 libnl-route-3-200 libsz2 libaec0 libatomic1
  libcurl4 libnghttp2-14 libidn2-0 libunistring2 libpsl5 librtmp1 libssh2-1 libgnutls30
  libhogweed6 libnettle8 libgmp10 libtasn1-6 libp11-kit0 libffi8 libgssapi-krb5-2 libkrb5-3
  libk5crypto3 libkrb5support0 libkeyutils1 libcom-err2 libldap-2.5-0 libsasl2-2 libbrotli1 libzstd1
  libudev1 libuuid1
)
