// File: runtime/train/device_peak.h
// Peak dense bf16 tensor-core rate per device, for MFU = model FLOPs per second / peak.
// Sources: NVIDIA datasheets (dense, without sparsity). See docs/metrics.md for the table.
#pragma once

#include <optional>
#include <string>

namespace albion::train {

// Peak bf16 FLOP/s of the named CUDA device ("NVIDIA H100 80GB HBM3"), or nullopt if unknown
// (CPUs, unlisted GPUs): MFU is then reported as null rather than guessed.
std::optional<double> peak_bf16_flops(const std::string& device_name);

}  // namespace albion::train
