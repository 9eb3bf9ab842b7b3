// What `csq quantize` and `csq synth` share: the file types they write, llama.cpp's rule for
// the type of each tensor (llama_tensor_get_type without an importance matrix), the tensor
// names and shapes of a dense decoder in llama.cpp's layout, and its GGUF metadata.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/gguf_writer.h"
#include "kernels/dtype.h"
#include "model/config.h"

namespace csq {
class Model;
}

namespace csq::app {

struct FileType {
  const char* name;    // "Q4_K_M"
  uint32_t ftype;      // general.file_type (llama_ftype)
  DType base;          // the type of most 2-D weights
  bool mixed;          // Q4_K_M / Q5_K_M: attn_v and ffn_down of some layers get Q6_K
};

// Throws a usage error listing the accepted names.
const FileType& parse_file_type(const std::string& name);
std::string file_type_names();
// The name of a general.file_type value csq writes, or nullptr.
const char* file_type_name(uint32_t ftype);

struct PlannedTensor {
  std::string name;            // llama.cpp name, e.g. "blk.3.ffn_down.weight"
  std::vector<int64_t> dims;   // ggml order: dims[0] is the row length
  int64_t layer = -1;          // block index, -1 for token_embd / output / output_norm
};

// Every tensor of the model in llama-quantize's file order (global tensors first, then each
// block's tensors by name).
std::vector<PlannedTensor> plan_tensors(const ModelConfig& c);

// The stored type of one tensor in a file of type `ft`.
DType tensor_type(const FileType& ft, const ModelConfig& c, const PlannedTensor& t);

// Architecture, hyper-parameters and file type, under llama.cpp's keys.
void write_metadata(io::GgufWriter& w, const ModelConfig& c, const std::string& model_name, const FileType& ft);

// Writes `model` (loaded from model_path) as a GGUF of file type `type` in llama.cpp's layout,
// with the model's attached LoRA adapters merged into the weights. Used by quantize and merge.
void write_gguf_model(const Model& model, const std::string& model_path, const std::string& type,
                      const std::string& out, int threads);

// The tokenizer and chat template of `source` (a Hugging Face directory or a .gguf) as GGUF
// metadata; a directory without a usable tokenizer only gets a warning.
void write_tokenizer_metadata(const std::string& source, const ModelConfig& c, io::GgufWriter& w);

// llama.cpp's rope_freqs tensor for Llama-3 frequency scaling: one divisor per frequency.
std::vector<float> llama3_rope_factors(const ModelConfig& c);

}  // namespace csq::app
