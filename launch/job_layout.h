// File: launch/job_layout.h
// The recipe checked against the number of ranks a job will have, before anything starts: `train`
// (--dry-run included, before any rank reads data) and `submit` (nodes x ranks per node, before
// the job waits in the queue) refuse what the trainer would refuse once the ranks are up.
#pragma once

#include "runtime/config/recipe.h"
#include "runtime/models/model_config.h"

namespace albion::launch {

// The model `recipe` trains, its vocabulary the tokenizer's where the preset takes it from there and
// the dataset is prepared and readable without a key; else its vocab_size stays 0 (unknown).
models::ModelConfig planned_model_config(const config::Recipe& recipe);

// UsageError naming the recipe key unless parallel.tensor x parallel.pipeline divides
// `world_size` and the data-parallel ranks that remain split train.global_batch_tokens into whole
// micro-batches, and unless the model can be cut parallel.tensor ways (its vocabulary too, where
// planned_model_config knows it); NotImplementedError for pipeline parallelism. `recipe` is validated.
void check_job_layout(const config::Recipe& recipe, int world_size);

}  // namespace albion::launch
