// File: launch/command_data.cpp
// `albion data`: planned (issue #3).
#include "launch/command_planned.h"

namespace albion::launch {

int run_data(const CommandArgs& args, const ProcessEnvironment&) {
  return run_planned(args, {{"data", "albion data prepare|inspect ...",
                             "Tokenize text, JSONL or chat data into (optionally encrypted) HDF5\n"
                             "token shards, and inspect prepared datasets."},
                            3, "tokenizers, data prepare, sharded loader"});
}

}  // namespace albion::launch
