// File: tests/launch/launch_plan_test.cpp
// The mpirun/srun command `albion launch` builds, and its refusals; host checks against local
// sockets (one greeting like sshd, one silent like a proxy that accepts everything).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <thread>

#include "launch/host_reachability.h"
#include "launch/launch_plan.h"
#include "launch/rank_threads.h"
#include "runtime/base/error.h"

namespace albion::launch {
namespace {

LaunchContext cpu_machine() {
  LaunchContext c;
  c.albion_executable = "/opt/albion/bin/albion";
  c.local_cores = 2;
  c.forwarded_variables = {"NCCL_DEBUG", "ALBION_LOG_LEVEL"};
  return c;
}

std::string line(const std::vector<std::string>& argv) { return shell_quote(argv); }

TEST(LaunchPlan, TwoCpuRanksUnderMpirun) {
  LaunchRequest r;
  r.processes = 2;
  r.command = {"train", "recipes/tiny.ini"};
  EXPECT_EQ(line(plan_launch(r, cpu_machine())),
            "mpirun -np 2 --map-by slot --bind-to none -x NCCL_DEBUG -x ALBION_LOG_LEVEL "
            "/opt/albion/bin/albion train recipes/tiny.ini");
  r.processes = 4;  // more than the 2 cores
  EXPECT_NE(line(plan_launch(r, cpu_machine())).find("--oversubscribe"), std::string::npos);
  LaunchContext root = cpu_machine();
  root.running_as_root = true;
  EXPECT_NE(line(plan_launch(r, root)).find("--allow-run-as-root"), std::string::npos);
}

TEST(LaunchPlan, OneRankPerGpuPackedByNode) {
  LaunchContext c = cpu_machine();
  c.local_gpus = 4;
  LaunchRequest r;
  r.hosts = parse_host_list("a:4,b:4", "--hosts");
  r.command = {"train", "x.ini"};
  const std::string command = line(plan_launch(r, c));
  EXPECT_NE(command.find("mpirun -np 8 "), std::string::npos) << command;  // from the slots
  EXPECT_NE(command.find("--host a:4,b:4 --map-by ppr:4:node"), std::string::npos) << command;
  r.hosts = parse_host_list("a:8", "--hosts");
  EXPECT_THROW(plan_launch(r, c), UsageError);  // 8 ranks on a 4-GPU node
  r.hosts.clear();
  r.gpus_per_node = 8;
  EXPECT_THROW(plan_launch(r, c), UsageError);
}

TEST(LaunchPlan, SlurmAllocationUsesSrunAndItsTaskCount) {
  LaunchContext c = cpu_machine();
  c.local_gpus = 4;
  c.in_slurm_allocation = true;
  c.slurm_job_nodes = 18;
  LaunchRequest r;
  r.command = {"train", "x.ini"};
  const std::string command = line(plan_launch(r, c));
  EXPECT_EQ(command.rfind("srun --mpi=pmix --kill-on-bad-exit=1 --export=ALL --ntasks=72 --ntasks-per-node=4 ", 0), 0u)
      << command;
  r.launcher = "mpirun";
  EXPECT_EQ(line(plan_launch(r, c)).rfind("mpirun -np 72 ", 0), 0u);
  c.in_slurm_allocation = false;
  r.launcher = "srun";
  EXPECT_THROW(plan_launch(r, c), UsageError);
}

TEST(LaunchPlan, RefusesWhatCannotWork) {
  LaunchRequest r;
  r.command = {"train", "x.ini"};
  EXPECT_THROW(plan_launch(r, cpu_machine()), UsageError);  // no -n and nothing to count from
  r.processes = 2;
  r.command.clear();
  EXPECT_THROW(plan_launch(r, cpu_machine()), UsageError);
  r.command = {"launch"};
  EXPECT_THROW(plan_launch(r, cpu_machine()), UsageError);
  r.command = {"train"};
  r.processes = 9;
  r.hosts = parse_host_list("a:4,b:4", "--hosts");
  EXPECT_THROW(plan_launch(r, cpu_machine()), UsageError);
  EXPECT_THROW(parse_host_list("a:0", "--hosts"), UsageError);
  EXPECT_THROW(parse_host_list("a:x", "--hosts"), UsageError);
  EXPECT_THROW(parse_host_list("a,,b", "--hosts"), UsageError);
}

TEST(LaunchPlan, QuotesForTheShell) {
  EXPECT_EQ(shell_quote({"train", "--eval.sample_prompt=It is", "a'b"}), "train '--eval.sample_prompt=It is' 'a'\\''b'");
}

// A listening socket on 127.0.0.2 that greets (or not) each connection.
class LocalServer {
 public:
  explicit LocalServer(bool greet) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = inet_addr("127.0.0.2");
    bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address));
    socklen_t length = sizeof(address);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    listen(fd_, 4);
    thread_ = std::thread([this, greet] {
      const int client = accept(fd_, nullptr, nullptr);
      if (client >= 0 && greet) (void)!write(client, "SSH-2.0-OpenSSH_9.2\r\n", 21);
      std::this_thread::sleep_for(std::chrono::milliseconds(400));
      if (client >= 0) close(client);
    });
  }
  ~LocalServer() {
    thread_.join();
    close(fd_);
  }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
};

TEST(HostReachability, AcceptsAnSshServerAndRefusesSilentOrUnknownHosts) {
  {
    LocalServer sshd(true);
    EXPECT_NO_THROW(require_reachable({{"127.0.0.2", 4}}, "this-host", std::chrono::milliseconds(300), sshd.port()));
  }
  {
    LocalServer proxy(false);
    EXPECT_THROW(require_reachable({{"127.0.0.2", 4}}, "this-host", std::chrono::milliseconds(200), proxy.port()),
                 UsageError);
  }
  EXPECT_THROW(require_reachable({{"no-such-host.invalid", 4}}, "this-host"), UsageError);
  EXPECT_NO_THROW(require_reachable({{"localhost", 2}, {"this-host", 2}}, "this-host"));  // not probed
}

// Each rank's share of the cores, unless the user set OMP_NUM_THREADS (an empty value is unset).
TEST(RankThreads, EachRankTakesItsShareOfTheCores) {
  EXPECT_EQ(rank_thread_count(2, 2, nullptr), 1);
  EXPECT_EQ(rank_thread_count(16, 1, nullptr), 16);
  EXPECT_EQ(rank_thread_count(144, 4, nullptr), 36);  // a Grace-Hopper node, one rank per GPU
  EXPECT_EQ(rank_thread_count(2, 4, nullptr), 1);     // oversubscribed: never zero
  EXPECT_EQ(rank_thread_count(2, 2, ""), 1);
  EXPECT_EQ(rank_thread_count(2, 2, "2"), std::nullopt);
}

}  // namespace
}  // namespace albion::launch
