# Sourced by the scripts that run albion or its tests (after setup.sh): tool paths and MPI settings.

build=${ALBION_BUILD:-build}
python=${ALBION_PYTHON:-.venv/bin/python}
# ctest from the same CMake that configured the build (pinned in requirements.txt), else PATH's.
ctest=$(dirname "$python")/ctest
[ -x "$ctest" ] || ctest=ctest

# OpenMPI refuses to run as root (CI containers, the lent GPU machines) unless told twice;
# containers also forbid the cross-memory-attach calls its shared-memory transport would use.
if [ "$(id -u)" -eq 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
export OMPI_MCA_btl_vader_single_copy_mechanism=${OMPI_MCA_btl_vader_single_copy_mechanism:-none}
