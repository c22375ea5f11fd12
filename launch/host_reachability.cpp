// File: launch/host_reachability.cpp
#include "launch/host_reachability.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "runtime/base/check.h"

namespace albion::launch {
namespace {

bool is_this_machine(const std::string& host, const std::string& local_hostname) {
  return host == "localhost" || host == "127.0.0.1" || host == "::1" || host == local_hostname ||
         host == local_hostname.substr(0, local_hostname.find('.'));
}

// True when `address` accepts a TCP connection and greets like an ssh server ("SSH-2.0-...")
// within `timeout`. The greeting matters: firewalls and transparent proxies accept connections
// for hosts that are not there.
bool answers_as_ssh(const addrinfo& address, std::chrono::milliseconds timeout) {
  const int fd = socket(address.ai_family, address.ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, address.ai_protocol);
  if (fd < 0) return false;
  bool connected = connect(fd, address.ai_addr, address.ai_addrlen) == 0;
  if (!connected && errno == EINPROGRESS) {
    pollfd waiting{fd, POLLOUT, 0};
    if (poll(&waiting, 1, static_cast<int>(timeout.count())) == 1) {
      int error = 0;
      socklen_t length = sizeof(error);
      connected = getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0 && error == 0;
    }
  }
  bool greeted = false;
  if (connected) {
    pollfd waiting{fd, POLLIN, 0};
    char banner[8] = {};
    greeted = poll(&waiting, 1, static_cast<int>(timeout.count())) == 1 &&
              recv(fd, banner, 4, MSG_WAITALL) == 4 && std::memcmp(banner, "SSH-", 4) == 0;
  }
  close(fd);
  return greeted;
}

}  // namespace

void require_reachable(const std::vector<HostSlots>& hosts, const std::string& local_hostname,
                       std::chrono::milliseconds timeout, int port) {
  for (const HostSlots& h : hosts) {
    if (is_this_machine(h.host, local_hostname)) continue;
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    const int status = getaddrinfo(h.host.c_str(), std::to_string(port).c_str(), &hints, &found);
    ALBION_CHECK_AS(UsageError, status == 0, "launch: host '", h.host, "' does not resolve (",
                    gai_strerror(status), ")");
    std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> addresses(found, freeaddrinfo);
    bool reached = false;
    for (const addrinfo* a = found; a != nullptr && !reached; a = a->ai_next) reached = answers_as_ssh(*a, timeout);
    ALBION_CHECK_AS(UsageError, reached, "launch: host '", h.host, "' has no ssh server answering on port ", port,
                    " within ", timeout.count(), " ms (mpirun starts remote ranks over ssh)");
  }
}

}  // namespace albion::launch
