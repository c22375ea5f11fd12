// File: tests/runtime/base/env_test.cpp
// Each test sets the variables it needs and clears the rest; this executable is its own process,
// so nothing leaks into other tests.
#include <gtest/gtest.h>

#include <cstdlib>

#include "runtime/base/env.h"
#include "runtime/base/error.h"

namespace albion {
namespace {

class ProcessEnvironmentTest : public testing::Test {
 protected:
  void SetUp() override {
    for (const char* name :
         {"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK",
          "OMPI_COMM_WORLD_LOCAL_SIZE", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID",
          "SLURM_JOB_ID", "PMI_RANK", "PMI_SIZE", "ALBION_LOG_LEVEL"}) {
      unsetenv(name);
    }
  }
};

TEST_F(ProcessEnvironmentTest, PlainProcessIsRankZeroOfOne) {
  ProcessEnvironment env = read_process_environment();
  EXPECT_EQ(env.launcher, Launcher::kNone);
  EXPECT_EQ(env.world_rank, 0);
  EXPECT_EQ(env.world_size, 1);
  EXPECT_FALSE(env.local_size.has_value());
  EXPECT_EQ(env.log_level, LogLevel::kInfo);
}

TEST_F(ProcessEnvironmentTest, ReadsOpenMpiVariables) {
  setenv("OMPI_COMM_WORLD_RANK", "5", 1);
  setenv("OMPI_COMM_WORLD_SIZE", "8", 1);
  setenv("OMPI_COMM_WORLD_LOCAL_RANK", "1", 1);
  setenv("OMPI_COMM_WORLD_LOCAL_SIZE", "4", 1);
  ProcessEnvironment env = read_process_environment();
  EXPECT_EQ(env.launcher, Launcher::kOpenMpi);
  EXPECT_EQ(env.world_rank, 5);
  EXPECT_EQ(env.world_size, 8);
  EXPECT_EQ(env.local_rank, 1);
  EXPECT_EQ(env.local_size, 4);
}

TEST_F(ProcessEnvironmentTest, ReadsSlurmVariablesWithoutTrustingTasksPerNodeFormat) {
  setenv("SLURM_PROCID", "3", 1);
  setenv("SLURM_NTASKS", "4", 1);
  setenv("SLURM_LOCALID", "1", 1);
  setenv("SLURM_JOB_ID", "1234", 1);
  ProcessEnvironment env = read_process_environment();
  EXPECT_EQ(env.launcher, Launcher::kSlurm);
  EXPECT_EQ(env.world_rank, 3);
  EXPECT_EQ(env.local_rank, 1);
  EXPECT_TRUE(env.in_slurm_allocation);
}

TEST_F(ProcessEnvironmentTest, OpenMpiWinsOverSlurmInsideAnAllocation) {
  setenv("SLURM_PROCID", "0", 1);
  setenv("SLURM_NTASKS", "1", 1);
  setenv("OMPI_COMM_WORLD_RANK", "1", 1);
  setenv("OMPI_COMM_WORLD_SIZE", "2", 1);
  EXPECT_EQ(read_process_environment().launcher, Launcher::kOpenMpi);
}

TEST_F(ProcessEnvironmentTest, MalformedValuesAreUsageErrorsNamingTheVariable) {
  setenv("OMPI_COMM_WORLD_RANK", "two", 1);
  setenv("OMPI_COMM_WORLD_SIZE", "4", 1);
  try {
    read_process_environment();
    FAIL() << "expected a UsageError";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("OMPI_COMM_WORLD_RANK"), std::string::npos);
  }
  setenv("OMPI_COMM_WORLD_RANK", "4", 1);  // rank must be below size
  EXPECT_THROW(read_process_environment(), UsageError);
}

TEST_F(ProcessEnvironmentTest, LogLevel) {
  setenv("ALBION_LOG_LEVEL", "debug", 1);
  EXPECT_EQ(read_process_environment().log_level, LogLevel::kDebug);
  setenv("ALBION_LOG_LEVEL", "loud", 1);
  EXPECT_THROW(read_process_environment(), UsageError);
}

TEST(EnvironmentVariable, ReturnsValueOrNothing) {
  setenv("ALBION_TEST_VARIABLE", "value", 1);
  EXPECT_EQ(environment_variable("ALBION_TEST_VARIABLE"), "value");
  unsetenv("ALBION_TEST_VARIABLE");
  EXPECT_FALSE(environment_variable("ALBION_TEST_VARIABLE").has_value());
}

}  // namespace
}  // namespace albion
