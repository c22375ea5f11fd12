// File: checkpoint/format/checkpoint_directory.cpp
#include "checkpoint/format/checkpoint_directory.h"

#include <algorithm>
#include <fstream>

#include "checkpoint/format/checkpoint_paths.h"
#include "checkpoint/io/atomic_file.h"
#include "checkpoint/io/unique_fd.h"
#include "runtime/base/remove_tree.h"

namespace albion::checkpoint {

namespace fs = std::filesystem;

std::vector<CommittedCheckpoint> list_checkpoints(const fs::path& directory) {
  std::vector<CommittedCheckpoint> out;
  std::error_code error;
  if (!fs::is_directory(directory, error)) return out;
  for (const fs::directory_entry& entry : fs::directory_iterator(directory)) {
    const std::optional<std::int64_t> step = parse_step_directory_name(entry.path().filename().string());
    if (step && entry.is_directory()) out.push_back({*step, entry.path()});
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.step < b.step; });
  return out;
}

std::optional<CommittedCheckpoint> newest_checkpoint(const fs::path& directory) {
  std::vector<CommittedCheckpoint> all = list_checkpoints(directory);
  if (all.empty()) return std::nullopt;
  return all.back();
}

std::optional<std::string> read_latest(const fs::path& directory) {
  std::ifstream in(directory / kLatestFileName);
  std::string name;
  if (!in || !std::getline(in, name) || !parse_step_directory_name(name)) return std::nullopt;
  return name;
}

void write_latest(const fs::path& directory, const std::string& name) {
  write_file_atomically(directory / kLatestFileName, name + "\n", ExistingFile::kReplace);
}

void remove_leftovers(const fs::path& directory) {
  std::error_code error;
  if (!fs::is_directory(directory, error)) return;
  std::vector<fs::path> doomed;
  for (const fs::directory_entry& entry : fs::directory_iterator(directory)) {
    const std::string name = entry.path().filename().string();
    const bool staging = name.starts_with("step-") && name.ends_with(kStagingSuffix);
    if (entry.is_directory() && (staging || name.starts_with(kDeletingPrefix))) doomed.push_back(entry.path());
  }
  for (const fs::path& path : doomed) remove_tree(path.string());  // what remains is retried next time
}

void remove_checkpoint(const fs::path& checkpoint) {
  const fs::path parent = checkpoint.parent_path();
  const fs::path doomed = parent / (kDeletingPrefix + checkpoint.filename().string());
  fs::rename(checkpoint, doomed);
  fsync_directory(parent);
  remove_tree(doomed.string());  // a leftover .deleting- directory is removed by the next save
}

}  // namespace albion::checkpoint
