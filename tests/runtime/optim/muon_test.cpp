// File: tests/runtime/optim/muon_test.cpp
// Muon (runtime/optim/muon.h) against torch.optim.Muon itself (run by ALBION_PYTHON on the same
// weights and gradients, with the "match_rms_adamw" learning-rate adjustment), tall and wide; its
// orthogonalization's singular values in the band the quintic lands them in; and in the hybrid
// optimizer, the matrices marked orthogonalized take Muon while the rest take AdamW, with one
// moment for Muon's state; on a GPU (suite MuonCuda), with the fused AdamW, as on the CPU.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "runtime/optim/adamw.h"
#include "runtime/optim/muon.h"
#include "tests/support/cuda_available.h"
#include "tests/support/run_command.h"
#include "tests/support/temp_dir.h"

namespace albion::optim {
namespace {

void write_floats(const std::string& path, const at::Tensor& values) {
  const at::Tensor contiguous = values.contiguous();
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(contiguous.data_ptr<float>()),
             static_cast<std::streamsize>(contiguous.numel() * sizeof(float)));
}

at::Tensor read_floats(const std::string& path, std::int64_t rows, std::int64_t cols) {
  at::Tensor values = at::empty({rows, cols}, at::kFloat);
  std::ifstream(path, std::ios::binary)
      .read(reinterpret_cast<char*>(values.data_ptr<float>()), static_cast<std::streamsize>(values.nbytes()));
  return values;
}

class MuonAgainstTorch : public testing::TestWithParam<std::pair<std::int64_t, std::int64_t>> {};

TEST_P(MuonAgainstTorch, FiveStepsEqualTorchOptimMuon) {
  const std::string python = ALBION_PYTHON;
  if (!testing_support::python_imports(python, "torch")) GTEST_SKIP() << "no " << python << " with torch";
  const auto [rows, cols] = GetParam();
  constexpr int kSteps = 5;
  constexpr double kLr = 0.01, kWeightDecay = 0.1, kMomentum = 0.95;
  testing_support::TempDir dir;
  at::manual_seed(7);
  const at::Tensor start = at::randn({rows, cols});
  write_floats(dir / "w0.bin", start);
  OptimizedParameter p;
  p.name = "w";
  p.parameter = start.clone();
  p.orthogonalized = true;
  AdamW optimizer({p}, AdamWOptions{0.9, 0.95, 1e-8, kWeightDecay, false, MuonOptions{kMomentum}});
  for (int step = 1; step <= kSteps; ++step) {
    const at::Tensor gradient = at::randn({rows, cols});
    write_floats(dir / ("g" + std::to_string(step) + ".bin"), gradient);
    optimizer.parameters()[0].parameter.mutable_grad() = gradient;
    optimizer.step(kLr * step);
  }
  const auto [status, output] = testing_support::run_command(
      python + " " + ALBION_SOURCE_DIR + "/tests/runtime/optim/torch_muon_reference.py " + dir.path() + " " +
      std::to_string(rows) + " " + std::to_string(cols) + " " + std::to_string(kSteps) + " 0.01 0.1 0.95 2>&1");
  ASSERT_EQ(status, 0) << output;
  const at::Tensor expected = read_floats(dir / "w_torch.bin", rows, cols);
  const at::Tensor& ours = optimizer.parameters()[0].parameter;
  EXPECT_TRUE(at::allclose(ours, expected, 1e-5, 1e-6))
      << "largest difference " << (ours - expected).abs().max().item<float>();
  EXPECT_FALSE(at::allclose(ours, start, 1e-2, 1e-2)) << "the weights did not move";
  EXPECT_EQ(optimizer.state_bytes(), rows * cols * 4);  // one moment, no second
  EXPECT_FALSE(optimizer.parameters()[0].exp_avg_sq.defined());
}

INSTANTIATE_TEST_SUITE_P(TallAndWide, MuonAgainstTorch,
                         testing::Values(std::pair<std::int64_t, std::int64_t>{24, 10},
                                         std::pair<std::int64_t, std::int64_t>{10, 24}));

// Five quintic steps take every singular value of a random matrix near 1 (here between 0.6 and
// 1.25; the iteration trades exact convergence for speed), whatever the matrix's scale.
TEST(Muon, OrthogonalizationLandsTheSingularValuesNearOne) {
  at::manual_seed(3);
  for (const double scale : {1e-3, 1.0, 1e3}) {
    const at::Tensor update = at::randn({64, 32}, at::kFloat) * scale;
    const at::Tensor singular = at::linalg_svdvals(orthogonalize(update).to(at::kFloat));
    EXPECT_GT(singular.min().item<float>(), 0.6) << scale;
    EXPECT_LT(singular.max().item<float>(), 1.25) << scale;
  }
}

// In the hybrid: a matrix marked orthogonalized moves by Muon's update, the other parameters by
// AdamW's as if alone.
TEST(Muon, OnlyTheMarkedMatricesTakeMuon) {
  at::manual_seed(5);
  const at::Tensor matrix = at::randn({8, 6});
  const at::Tensor bias = at::randn({6});
  auto make = [&](bool orthogonalized) {
    OptimizedParameter w;
    w.name = "w";
    w.parameter = matrix.clone();
    w.orthogonalized = orthogonalized;
    OptimizedParameter b;
    b.name = "b";
    b.parameter = bias.clone();
    b.decayed = false;
    return AdamW({w, b}, AdamWOptions{0.9, 0.95, 1e-8, 0.1, false, MuonOptions{0.9}});
  };
  AdamW hybrid = make(true);
  AdamW adamw = make(false);
  const at::Tensor gw = at::randn({8, 6});
  const at::Tensor gb = at::randn({6});
  for (AdamW* optimizer : {&hybrid, &adamw}) {
    optimizer->parameters()[0].parameter.mutable_grad() = gw.clone();
    optimizer->parameters()[1].parameter.mutable_grad() = gb.clone();
    optimizer->step(0.01);
  }
  EXPECT_TRUE(at::equal(hybrid.parameters()[1].parameter, adamw.parameters()[1].parameter));
  EXPECT_FALSE(at::allclose(hybrid.parameters()[0].parameter, adamw.parameters()[0].parameter, 1e-4, 1e-5));
  at::Tensor momentum = at::zeros({8, 6});
  at::Tensor expected = matrix.clone();
  muon_update(expected, gw, momentum, 0.01, 0.1, MuonOptions{0.9});
  EXPECT_TRUE(at::equal(hybrid.parameters()[0].parameter, expected));
}

// On a GPU (suite MuonCuda, label gpu): the hybrid with the fused AdamW kernel and a gradient scale
// (the trainer's clipping) moves a matrix as the CPU's Muon does, to bf16's precision, and the
// vector as the CPU's AdamW does.
TEST(MuonCuda, TheFusedHybridMatchesTheCpuStep) {
  ALBION_SKIP_WITHOUT_CUDA();
  at::manual_seed(11);
  const at::Tensor matrix = at::randn({96, 64});
  const at::Tensor vector = at::randn({64});
  auto make = [&](const at::Device& device, bool fused) {
    OptimizedParameter w;
    w.name = "w";
    w.parameter = matrix.to(device);
    w.orthogonalized = true;
    OptimizedParameter b;
    b.name = "b";
    b.parameter = vector.to(device);
    return AdamW({w, b}, AdamWOptions{0.9, 0.95, 1e-8, 0.1, fused, MuonOptions{0.95}});
  };
  AdamW gpu = make(at::Device(at::kCUDA, 0), true);
  AdamW cpu = make(at::kCPU, false);
  for (int step = 1; step <= 3; ++step) {
    const at::Tensor gw = at::randn({96, 64});
    const at::Tensor gb = at::randn({64});
    for (AdamW* optimizer : {&gpu, &cpu}) {
      const at::Device device = optimizer->parameters()[0].parameter.device();
      optimizer->parameters()[0].parameter.mutable_grad() = gw.to(device);
      optimizer->parameters()[1].parameter.mutable_grad() = gb.to(device);
      optimizer->step(0.02, at::full({}, 0.5f, at::TensorOptions().device(device)));
    }
  }
  EXPECT_EQ(gpu.fused_steps(), 3);
  const at::Tensor moved_gpu = gpu.parameters()[0].parameter.cpu() - matrix;
  const at::Tensor moved_cpu = cpu.parameters()[0].parameter - matrix;
  EXPECT_LT((moved_gpu - moved_cpu).norm().item<double>(), 2e-2 * moved_cpu.norm().item<double>());
  EXPECT_TRUE(at::allclose(gpu.parameters()[1].parameter.cpu(), cpu.parameters()[1].parameter, 1e-5, 1e-6));
}

}  // namespace
}  // namespace albion::optim
