// File: tests/launch/memory_plan_test.cpp
// The memory one rank will hold, planned from the shipped recipes before anything starts: Llama 3.1
// 70B as 8 x 8 with ZeRO-1 and without, and the 8B LoRA recipe on 8 data-parallel ranks (with
// packed documents' attention mask too). The counts are the published models' (70,553,706,496 and
// 8,030,261,248 parameters) cut by the tensor-parallel rules; the test under mpirun
// (tensor_parallel_test) checks the plan against the parameters and AdamW state a real cut rank
// holds.
#include "launch/memory_plan.h"

#include <gtest/gtest.h>

#include <filesystem>

namespace albion::launch {
namespace {

config::Recipe shipped(const std::string& name, std::vector<std::string> overrides = {}) {
  return config::load_recipe((std::filesystem::path(ALBION_SOURCE_DIR) / "recipes" / name).string(), overrides);
}

TEST(MemoryPlan, Llama70bAsEightTimesEightWithZeroOne) {
  const std::optional<RankMemory> memory = plan_rank_memory(shipped("llama3_70b.ini"), 64);
  ASSERT_TRUE(memory.has_value());
  // The norms (80 layers x 2 + 1, of 8192) are replicated; everything else is cut 8 ways.
  const std::int64_t norms = 161 * 8192;
  EXPECT_EQ(memory->parameters, (70'553'706'496 - norms) / 8 + norms);
  EXPECT_EQ(memory->parameters, 8'820'367'360);
  EXPECT_EQ(memory->trained, memory->parameters);
  EXPECT_EQ(memory->weight_bytes, 4 * memory->parameters);
  EXPECT_EQ(memory->gradient_bytes, 4 * memory->parameters);
  EXPECT_EQ(memory->optimizer_shards, 8);
  EXPECT_EQ(memory->optimizer_bytes, memory->parameters);  // 8 bytes each, over 8 ranks
  // Every block recomputed; sequence parallelism keeps 1/8 of each block input's tokens.
  EXPECT_EQ(memory->kept_input_bytes, 80LL * 1 * 4096 * 8192 * 4 / 8);
  EXPECT_FALSE(memory->other_activations);
  EXPECT_EQ(describe(*memory),
            "8.82 B parameters held (8.82 B trained); weights 35.3 GB, gradients 35.3 GB, AdamW state 8.8 GB "
            "(ZeRO-1 over 8), kept block inputs 1.3 GB: 80.7 GB");
  const std::optional<RankMemory> whole_inputs =
      plan_rank_memory(shipped("llama3_70b.ini", {"--parallel.sequence=false"}), 64);
  ASSERT_TRUE(whole_inputs.has_value());
  EXPECT_EQ(whole_inputs->kept_input_bytes, 80LL * 1 * 4096 * 8192 * 4);
  EXPECT_NE(describe(*whole_inputs).find("kept block inputs 10.7 GB: 90.1 GB"), std::string::npos);

  const std::optional<RankMemory> ddp = plan_rank_memory(shipped("llama3_70b.ini", {"--parallel.zero=0"}), 64);
  ASSERT_TRUE(ddp.has_value());
  EXPECT_EQ(ddp->optimizer_bytes, 8 * memory->parameters);
  EXPECT_EQ(ddp->optimizer_shards, 1);
  EXPECT_EQ(ddp->total_bytes(), memory->total_bytes() + 7 * memory->parameters);  // 142.5 GB

  // ZeRO-2: 1/8 of the gradients, and the buckets it has in flight (2 reducing, 1 filling).
  const std::optional<RankMemory> zero2 = plan_rank_memory(shipped("llama3_70b.ini", {"--parallel.zero=2"}), 64);
  ASSERT_TRUE(zero2.has_value());
  EXPECT_EQ(zero2->gradient_bytes, 4 * memory->trained / 8 + 3 * (25 << 20));
  EXPECT_EQ(zero2->optimizer_bytes, memory->optimizer_bytes);
  EXPECT_EQ(describe(*zero2),
            "8.82 B parameters held (8.82 B trained); weights 35.3 GB, gradients 4.5 GB (a shard and the buckets "
            "in flight), AdamW state 8.8 GB (ZeRO-2 over 8), kept block inputs 1.3 GB: 49.9 GB");
  // ZeRO-1 with one micro-batch a step reduces in every backward too.
  const std::optional<RankMemory> one_micro_batch =
      plan_rank_memory(shipped("llama3_70b.ini", {"--train.global_batch_tokens=32768"}), 64);
  ASSERT_TRUE(one_micro_batch.has_value());
  EXPECT_EQ(one_micro_batch->gradient_bytes, zero2->gradient_bytes);
  EXPECT_TRUE(memory->gradient_bytes > zero2->gradient_bytes && !memory->gradients_sharded);
}

// optim.name = muon: one fp32 moment for each hidden matrix (GPT-2's c_attn, c_proj, c_fc and
// mlp.c_proj: 768 x 9,216 a block), AdamW's two for the embeddings, norms and biases.
TEST(MemoryPlan, MuonHoldsOneMomentForEachHiddenMatrix) {
  const std::optional<RankMemory> adamw = plan_rank_memory(shipped("gpt2_124m.ini"), 1);
  const std::optional<RankMemory> muon = plan_rank_memory(shipped("gpt2_124m.ini", {"--optim.name=muon"}), 1);
  ASSERT_TRUE(adamw.has_value() && muon.has_value());
  EXPECT_EQ(adamw->trained, 124'439'808);
  const std::int64_t matrices = 12LL * 768 * (3 * 768 + 768 + 4 * 768 + 4 * 768);
  EXPECT_EQ(adamw->optimizer_bytes, 8 * adamw->trained);
  EXPECT_EQ(muon->optimizer_bytes, 4 * matrices + 8 * (muon->trained - matrices));
  EXPECT_NE(describe(*muon).find(", Muon and AdamW state 655.8 MB"), std::string::npos) << describe(*muon);
  EXPECT_EQ(muon->muon_gather_bytes, 0);
  // Under ZeRO the state is sharded, and each step gathers the matrices whole, 8 at a time on 4
  // ranks (two blocks), in an fp32 buffer from a block's c_attn to the next block's mlp.c_proj: the
  // two blocks' norms and biases (9,984 each) are inside it but the first ln_1 (1,536) and the last
  // mlp.c_proj.bias (768) are not. The directions come back to a quarter of it.
  const std::optional<RankMemory> sharded =
      plan_rank_memory(shipped("gpt2_124m.ini", {"--optim.name=muon", "--parallel.zero=1"}), 4);
  ASSERT_TRUE(sharded.has_value());
  EXPECT_EQ(sharded->optimizer_bytes, muon->optimizer_bytes / 4);
  const std::int64_t window = 2 * (matrices / 12 + 9'984) - 1'536 - 768;
  EXPECT_EQ(sharded->muon_gather_bytes, 4 * (window + window / 4));
  EXPECT_NE(describe(*sharded).find(", Muon's matrices gathered 70.9 MB"), std::string::npos) << describe(*sharded);
  // Under DDP each rank orthogonalizes some of a window's matrices, and they gather the directions
  // in bf16.
  const std::optional<RankMemory> spread = plan_rank_memory(shipped("gpt2_124m.ini", {"--optim.name=muon"}), 4);
  ASSERT_TRUE(spread.has_value());
  EXPECT_EQ(spread->optimizer_bytes, muon->optimizer_bytes);
  EXPECT_EQ(spread->muon_gather_bytes, 2 * (2 * matrices / 12));
}

TEST(MemoryPlan, LoraTrainsTheAdaptersOverAWholeFrozenBase) {
  const std::optional<RankMemory> memory = plan_rank_memory(shipped("llama3_8b_lora.ini"), 8);
  ASSERT_TRUE(memory.has_value());
  // Rank 16 on q, k, v, o, gate, up and down of 32 layers: 16 x (in + out) each.
  const std::int64_t adapters = 32LL * 16 * ((4096 + 4096) * 2 + (4096 + 1024) * 2 + (4096 + 14336) * 3);
  EXPECT_EQ(adapters, 41'943'040);
  EXPECT_EQ(memory->trained, adapters);
  EXPECT_EQ(memory->parameters, 8'030'261'248 + adapters);
  // The frozen linear weights, the output head's included, in bf16 (the recipe trains under bf16
  // autocast on GPUs); the embedding table (128,256 x 4,096), the norms and the adapters in fp32.
  const std::int64_t fp32_parameters = 128'256LL * 4096 + (2 * 32 + 1) * 4096 + adapters;
  EXPECT_EQ(memory->weight_bytes, 4 * fp32_parameters + 2 * (memory->parameters - fp32_parameters));
  const std::optional<RankMemory> fp32 = plan_rank_memory(shipped("llama3_8b_lora.ini", {"--precision.dtype=fp32"}), 8);
  ASSERT_TRUE(fp32.has_value());
  EXPECT_EQ(fp32->weight_bytes, 4 * memory->parameters);
  EXPECT_EQ(memory->gradient_bytes, 4 * adapters);
  EXPECT_EQ(memory->optimizer_bytes, 8 * adapters);
  EXPECT_EQ(memory->kept_input_bytes, 32LL * 2 * 4096 * 4096 * 4);
  // Activation checkpointing off: the plan says what it leaves out.
  const std::optional<RankMemory> plain =
      plan_rank_memory(shipped("llama3_8b_lora.ini", {"--model.activation_checkpointing=0"}), 8);
  ASSERT_TRUE(plain.has_value());
  EXPECT_EQ(plain->kept_input_bytes, 0);
  EXPECT_NE(describe(*plain).find("plus the activations of blocks not recomputed"), std::string::npos);
}

// data.document_masking: one micro-batch's [2, 1, 4096, 4096] mask, in bf16 under autocast on GPUs
// and in fp32 on the CPU, counted in the total.
TEST(MemoryPlan, PackedDocumentsAddOneAttentionMask) {
  const std::optional<RankMemory> plain = plan_rank_memory(shipped("llama3_8b_lora.ini"), 8);
  const std::optional<RankMemory> masked =
      plan_rank_memory(shipped("llama3_8b_lora.ini", {"--data.document_masking=true"}), 8);
  const std::optional<RankMemory> on_cpu =
      plan_rank_memory(shipped("llama3_8b_lora.ini", {"--data.document_masking=true", "--run.device=cpu"}), 8);
  ASSERT_TRUE(plain && masked && on_cpu);
  EXPECT_EQ(plain->document_mask_bytes, 0);
  EXPECT_EQ(masked->document_mask_bytes, 2LL * 4096 * 4096 * 2);
  EXPECT_EQ(masked->total_bytes(), plain->total_bytes() + masked->document_mask_bytes);
  EXPECT_NE(describe(*masked).find(", document mask 67.1 MB"), std::string::npos) << describe(*masked);
  EXPECT_EQ(on_cpu->document_mask_bytes, 2LL * 4096 * 4096 * 4);
}

TEST(MemoryPlan, APlanLargerThanTheGpuIsWarnedAbout) {
  const std::optional<RankMemory> memory =
      plan_rank_memory(shipped("llama3_70b.ini", {"--parallel.sequence=false"}), 64);
  ASSERT_TRUE(memory.has_value());
  EXPECT_EQ(device_memory_warning(*memory, 150'000'000'000, "NVIDIA H200"), "");
  EXPECT_EQ(device_memory_warning(*memory, 85'520'809'984, "NVIDIA H100 80GB HBM3"),
            "a rank will hold 90.1 GB, more than the 85.5 GB of this node's NVIDIA H100 80GB HBM3: more "
            "tensor-parallel ranks (parallel.tensor), sequence parallelism (parallel.sequence), ZeRO-2 "
            "(parallel.zero = 2), LoRA (lora.rank) or activation checkpointing (model.activation_checkpointing) "
            "would shrink it");
  // With sequence parallelism on (the recipe's), the plan fits 85.5 GB; under 80 GB it does not, and
  // the warning does not suggest what is already on.
  const std::optional<RankMemory> cut = plan_rank_memory(shipped("llama3_70b.ini"), 64);
  ASSERT_TRUE(cut.has_value());
  EXPECT_EQ(device_memory_warning(*cut, 85'520'809'984, "NVIDIA H100 80GB HBM3"), "");
  const std::string warning = device_memory_warning(*cut, 80'000'000'000, "a GPU");
  EXPECT_NE(warning, "");
  EXPECT_EQ(warning.find("parallel.sequence"), std::string::npos) << warning;
}

TEST(MemoryPlan, AVocabularyFromADatasetNotYetPreparedIsNotGuessed) {
  EXPECT_FALSE(plan_rank_memory(shipped("tiny.ini", {"--data.dataset=/nonexistent/albion-dataset"}), 1).has_value());
}

}  // namespace
}  // namespace albion::launch
