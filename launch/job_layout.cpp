// File: launch/job_layout.cpp
#include "launch/job_layout.h"

#include "collectives/device_mesh.h"
#include "runtime/base/check.h"
#include "runtime/data/dataset_manifest.h"
#include "runtime/models/tensor_parallel.h"
#include "runtime/train/trainer.h"

namespace albion::launch {

models::ModelConfig planned_model_config(const config::Recipe& recipe) {
  models::ModelConfig config = train::recipe_model_config(recipe);
  if (config.vocab_size == 0) {  // the tokenizer's
    try {
      config.take_tokenizer_vocabulary(data::read_manifest(recipe.data.dataset).vocab_size);
    } catch (const UsageError&) {
      // Not prepared yet, or sealed under a key: the ranks check it once they have read it.
    }
  }
  return config;
}

void check_job_layout(const config::Recipe& recipe, int world_size) {
  const collectives::DeviceMesh mesh(world_size, static_cast<int>(recipe.parallel.tensor),
                                     static_cast<int>(recipe.parallel.pipeline));
  ALBION_CHECK_AS(NotImplementedError, mesh.pipeline() == 1,
                  "recipe key 'parallel.pipeline': the device mesh is built, but pipeline parallelism is not "
                  "implemented yet; set it to 1");
  models::check_tensor_parallel_degree(planned_model_config(recipe), mesh.tensor());
  recipe.train.accumulation_steps(mesh.data());
}

}  // namespace albion::launch
