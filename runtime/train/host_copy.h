// File: runtime/train/host_copy.h
// A few device numbers copied to the host behind the work queued so far, read later without
// waiting for the work queued after them:
//
//   HostCopy numbers(at::stack({loss, grad_norm}));  // queues the copy; the host goes on
//   ... queue the next step ...
//   const std::vector<double> values = numbers.read();  // waits for the copy alone
//
// Why not tensor.item(): on a CUDA tensor it copies on the current stream and waits for that
// stream, so it waits for everything queued on it since, the next step included, and the device
// then idles until the host queues more (Note [Steps read one late], trainer.h). Here the copy
// goes into pinned host memory as soon as the values exist, an event marks its end, and read()
// waits for that event. CPU values are read as they are.
#pragma once

#include <ATen/ATen.h>
#include <ATen/cuda/CUDAEvent.h>

#include <optional>
#include <vector>

namespace albion::train {

class HostCopy {
 public:
  // `values`: any shape and number type, on the CPU or a CUDA device; read as fp64, flattened.
  explicit HostCopy(const at::Tensor& values);

  // The values, once their copy ended (at once for CPU values).
  std::vector<double> read();

 private:
  at::Tensor host_;                            // fp64, pinned for CUDA values
  std::optional<at::cuda::CUDAEvent> copied_;  // recorded after the copy; none for CPU values
};

}  // namespace albion::train
