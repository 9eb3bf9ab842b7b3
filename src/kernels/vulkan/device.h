// A Vulkan compute device: enumeration, storage buffers, and a command stream of compute
// dispatches submitted in one batch. Everything above (the kernels in vulkan/ops.h and the
// forward pass) goes through this class; nothing else touches Vulkan objects.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kernels/vulkan/loader.h"

namespace csq::vulkan {

struct DeviceInfo {
  int index = 0;
  std::string name;
  std::string type;  // "discrete GPU", "integrated GPU", "virtual GPU", "CPU", "other"
  std::string driver;
  uint32_t api_version = 0;
  uint64_t device_local_bytes = 0;  // the largest device-local heap
  uint64_t max_storage_buffer_bytes = 0;
  uint32_t subgroup_size = 0;
  bool fp16 = false;  // shaderFloat16
  bool int8 = false;  // shaderInt8
  bool bf16 = false;  // VK_KHR_shader_bfloat16
  bool cooperative_matrix = false;  // VK_KHR_cooperative_matrix or VK_NV_cooperative_matrix
  // What the cooperative-matrix kernel (shaders/matmul_coopmat.comp) needs: VK_NV_cooperative_matrix
  // with its feature, a 16 x 16 x 16 float16 x float16 -> float32 subgroup shape, 32-wide
  // subgroups and shaderFloat16. Debian 12's glslang compiles only the NV extension's GLSL.
  bool coopmat_f16 = false;
};

// The Vulkan devices of this machine; `problem` says why the list is empty (no loader, no
// driver, instance creation failed) and is empty otherwise.
struct DeviceList {
  std::vector<DeviceInfo> devices;
  std::string problem;
};
DeviceList list_devices();

// "1.3.230" for a VK_MAKE_API_VERSION value.
std::string version_string(uint32_t api_version);

class Device;

// A storage buffer in device memory (device-local where the device has it). Destroyed with the
// Device's resources; never outlives its Device.
class Buffer {
 public:
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer();
  uint64_t size() const { return size_; }

 private:
  friend class Device;
  Buffer(Device& device, uint64_t size);
  Device& device_;
  uint64_t size_;
  VkBuffer buffer_ = VK_NULL_HANDLE;
  VkDeviceMemory memory_ = VK_NULL_HANDLE;
  void* mapped_ = nullptr;  // host pointer when the memory is host-visible and coherent
};

class Device {
 public:
  // Opens device `index` of list_devices(). Throws csq::Error (runtime) naming the device and
  // the Vulkan call that failed.
  static std::unique_ptr<Device> open(int index);
  ~Device();
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;

  const DeviceInfo& info() const { return info_; }

  // A zero-filled buffer of `bytes` (at least 4).
  std::unique_ptr<Buffer> create_buffer(uint64_t bytes);
  // Host <-> buffer copies. They first run whatever was recorded (finish()), so they see it.
  void upload(Buffer& dst, uint64_t offset, const void* src, uint64_t bytes);
  void download(const Buffer& src, uint64_t offset, void* dst, uint64_t bytes);

  // Records one dispatch of the embedded shader `shader` with `buffers` at bindings 0, 1, ...
  // and `push` (at most 128 bytes, a multiple of 4) as its push constants; `spec` gives the
  // shader's specialisation constants (constant_id i = spec[i]; one pipeline per distinct set).
  // Each dispatch waits for the writes of the ones recorded before it.
  void dispatch(const char* shader, const std::vector<const Buffer*>& buffers, const void* push, uint32_t push_bytes,
                uint32_t groups_x, uint32_t groups_y = 1, uint32_t groups_z = 1,
                const std::vector<uint32_t>& spec = {});
  template <typename Push>
  void dispatch(const char* shader, const std::vector<const Buffer*>& buffers, const Push& push, uint32_t groups_x,
                uint32_t groups_y = 1, uint32_t groups_z = 1, const std::vector<uint32_t>& spec = {}) {
    static_assert(sizeof(Push) % 4 == 0 && sizeof(Push) <= 128);
    dispatch(shader, buffers, &push, uint32_t(sizeof(Push)), groups_x, groups_y, groups_z, spec);
  }
  // Records a copy between buffers (ordered after earlier dispatches, before later ones).
  void copy(const Buffer& src, uint64_t src_offset, const Buffer& dst, uint64_t dst_offset, uint64_t bytes);
  // Submits everything recorded and waits for it.
  void finish();

  // The most workgroups one dispatch may have along x (at least 65535).
  uint32_t max_groups_x() const { return max_groups_x_; }

 private:
  friend class Buffer;
  struct Pipeline {
    VkDescriptorSetLayout set_layout = VK_NULL_HANDLE;
    VkPipelineLayout layout = VK_NULL_HANDLE;
    VkPipeline pipeline = VK_NULL_HANDLE;
    uint32_t n_bindings = 0;
  };
  Device() = default;
  void check(VkResult r, const char* what) const;
  const Pipeline& pipeline(const char* shader, uint32_t n_bindings, const std::vector<uint32_t>& spec);
  void begin_if_needed();
  void barrier();
  void staged_copy(VkBuffer buffer, uint64_t offset, void* host, uint64_t bytes, bool to_device);

  Api api_{};
  DeviceInfo info_;
  VkInstance instance_ = VK_NULL_HANDLE;
  VkPhysicalDevice physical_ = VK_NULL_HANDLE;
  VkDevice device_ = VK_NULL_HANDLE;
  VkQueue queue_ = VK_NULL_HANDLE;
  uint32_t queue_family_ = 0;
  VkCommandPool command_pool_ = VK_NULL_HANDLE;
  VkCommandBuffer commands_ = VK_NULL_HANDLE;
  VkFence fence_ = VK_NULL_HANDLE;
  VkDescriptorPool descriptor_pool_ = VK_NULL_HANDLE;
  uint32_t sets_used_ = 0;
  bool recording_ = false;
  uint32_t device_memory_type_ = 0, staging_memory_type_ = 0;
  bool device_memory_mappable_ = false;
  uint32_t max_groups_x_ = 65535;
  std::map<std::string, Pipeline> pipelines_;
  // Host-visible bounce buffer, for devices whose device-local memory the host cannot map.
  VkDeviceMemory staging_memory_ = VK_NULL_HANDLE;
  VkBuffer staging_buffer_ = VK_NULL_HANDLE;
  void* staging_mapped_ = nullptr;
};

}  // namespace csq::vulkan
