// File: launch/job_layout.cpp
#include "launch/job_layout.h"

#include "collectives/device_mesh.h"
#include "runtime/base/check.h"

namespace albion::launch {

void check_job_layout(const config::Recipe& recipe, int world_size) {
  const collectives::DeviceMesh mesh(world_size, static_cast<int>(recipe.parallel.tensor),
                                     static_cast<int>(recipe.parallel.pipeline));
  ALBION_CHECK_AS(NotImplementedError, mesh.tensor() == 1 && mesh.pipeline() == 1,
                  "recipe keys 'parallel.tensor' and 'parallel.pipeline': the device mesh is built, but "
                  "tensor and pipeline parallelism are not implemented yet; set both to 1");
  recipe.train.accumulation_steps(mesh.data());
}

}  // namespace albion::launch
