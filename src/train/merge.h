// Merging LoRA adapters into a Hugging Face checkpoint: W' = W + factor · B A for every adapted
// projection, written in the base tensor's own dtype, shard by shard (memory stays bounded by one
// shard), with every other file of the directory (config, tokenizer, template) copied.
#pragma once

#include <string>

#include "model/model.h"

namespace csq::train {

// `model` was loaded from the Hugging Face directory `base_dir` and carries the adapters to
// merge (Model::set_adapters). Throws csq::Error naming the file on failure; refuses to write
// into base_dir.
void write_merged_hf(const Model& model, const std::string& base_dir, const std::string& out_dir);

}  // namespace csq::train
