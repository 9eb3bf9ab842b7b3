#include "kernels/vulkan/device.h"

#include <algorithm>
#include <cstring>

#include "base/error.h"
#include "kernels/vulkan/shaders.h"

namespace csq::vulkan {
namespace {

constexpr uint32_t kPushBytes = 128;           // the minimum every device guarantees
constexpr uint32_t kSetsPerSubmit = 1024;      // descriptor sets before a forced submit
constexpr uint64_t kStagingBytes = 64u << 20;  // bounce buffer for non-mappable device memory

// A Vulkan info struct, zeroed, with its type set.
template <typename T>
T vk_struct(VkStructureType type) {
  T t{};
  t.sType = type;
  return t;
}

bool create_instance(Api& api, VkInstance& instance, std::string& why) {
  uint32_t version = VK_API_VERSION_1_0;
  if (api.vkEnumerateInstanceVersion) api.vkEnumerateInstanceVersion(&version);
  if (version < VK_API_VERSION_1_1) {
    why = "the Vulkan loader supports only version " + version_string(version) + " (csq needs 1.1)";
    return false;
  }
  auto app = vk_struct<VkApplicationInfo>(VK_STRUCTURE_TYPE_APPLICATION_INFO);
  app.pApplicationName = "csq";
  app.apiVersion = std::min<uint32_t>(version, VK_API_VERSION_1_3);
  auto create = vk_struct<VkInstanceCreateInfo>(VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO);
  create.pApplicationInfo = &app;
  const VkResult r = api.vkCreateInstance(&create, nullptr, &instance);
  if (r != VK_SUCCESS) {
    why = "vkCreateInstance failed: " + result_name(r);
    return false;
  }
  return load_instance_api(api, instance, why);
}

std::vector<VkPhysicalDevice> physical_devices(const Api& api, VkInstance instance) {
  uint32_t n = 0;
  api.vkEnumeratePhysicalDevices(instance, &n, nullptr);
  std::vector<VkPhysicalDevice> devices(n);
  if (n) api.vkEnumeratePhysicalDevices(instance, &n, devices.data());
  devices.resize(n);
  return devices;
}

std::vector<std::string> device_extensions(const Api& api, VkPhysicalDevice physical) {
  uint32_t n = 0;
  api.vkEnumerateDeviceExtensionProperties(physical, nullptr, &n, nullptr);
  std::vector<VkExtensionProperties> props(n);
  if (n) api.vkEnumerateDeviceExtensionProperties(physical, nullptr, &n, props.data());
  std::vector<std::string> names;
  for (uint32_t i = 0; i < n; ++i) names.emplace_back(props[i].extensionName);
  return names;
}

const char* type_name(VkPhysicalDeviceType t) {
  switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return "discrete GPU";
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return "integrated GPU";
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return "virtual GPU";
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return "CPU";
    default: return "other";
  }
}

// Whether the NV cooperative-matrix extension offers the one shape matmul_coopmat.comp uses.
bool has_coopmat_f16_shape(const Api& api, VkInstance instance, VkPhysicalDevice physical) {
  auto properties = reinterpret_cast<PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesNV>(
      api.vkGetInstanceProcAddr(instance, "vkGetPhysicalDeviceCooperativeMatrixPropertiesNV"));
  if (!properties) return false;
  uint32_t n = 0;
  if (properties(physical, &n, nullptr) != VK_SUCCESS || n == 0) return false;
  std::vector<VkCooperativeMatrixPropertiesNV> shapes(n);
  for (auto& s : shapes) s = vk_struct<VkCooperativeMatrixPropertiesNV>(VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_NV);
  if (properties(physical, &n, shapes.data()) != VK_SUCCESS) return false;
  for (uint32_t i = 0; i < n; ++i) {
    const VkCooperativeMatrixPropertiesNV& s = shapes[i];
    if (s.MSize == 16 && s.NSize == 16 && s.KSize == 16 && s.AType == VK_COMPONENT_TYPE_FLOAT16_NV &&
        s.BType == VK_COMPONENT_TYPE_FLOAT16_NV && s.CType == VK_COMPONENT_TYPE_FLOAT32_NV &&
        s.DType == VK_COMPONENT_TYPE_FLOAT32_NV && s.scope == VK_SCOPE_SUBGROUP_NV)
      return true;
  }
  return false;
}

DeviceInfo describe(const Api& api, VkInstance instance, VkPhysicalDevice physical, int index) {
  DeviceInfo info;
  info.index = index;
  VkPhysicalDeviceProperties basic;
  api.vkGetPhysicalDeviceProperties(physical, &basic);
  // Structures of Vulkan 1.2 are chained only for devices that have it.
  const bool v12 = basic.apiVersion >= VK_API_VERSION_1_2;
  auto subgroup = vk_struct<VkPhysicalDeviceSubgroupProperties>(VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES);
  auto driver = vk_struct<VkPhysicalDeviceDriverProperties>(VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES);
  if (v12) subgroup.pNext = &driver;
  auto props = vk_struct<VkPhysicalDeviceProperties2>(VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2);
  props.pNext = &subgroup;
  api.vkGetPhysicalDeviceProperties2(physical, &props);
  info.name = props.properties.deviceName;
  info.type = type_name(props.properties.deviceType);
  info.api_version = props.properties.apiVersion;
  info.driver = v12 ? std::string(driver.driverName) + (driver.driverInfo[0] ? std::string(" ") + driver.driverInfo : "")
                    : "driver " + std::to_string(basic.driverVersion);
  info.max_storage_buffer_bytes = props.properties.limits.maxStorageBufferRange;
  info.subgroup_size = subgroup.subgroupSize;

  bool nv_coopmat = false;
  for (const std::string& ext : device_extensions(api, physical)) {
    if (ext == "VK_KHR_shader_bfloat16") info.bf16 = true;
    if (ext == "VK_KHR_cooperative_matrix" || ext == "VK_NV_cooperative_matrix") info.cooperative_matrix = true;
    if (ext == "VK_NV_cooperative_matrix") nv_coopmat = true;
  }
  auto f16i8 = vk_struct<VkPhysicalDeviceShaderFloat16Int8Features>(VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES);
  auto coopmat = vk_struct<VkPhysicalDeviceCooperativeMatrixFeaturesNV>(VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV);
  auto features = vk_struct<VkPhysicalDeviceFeatures2>(VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2);
  if (v12) {
    features.pNext = &f16i8;
    if (nv_coopmat) f16i8.pNext = &coopmat;
  }
  api.vkGetPhysicalDeviceFeatures2(physical, &features);
  info.fp16 = f16i8.shaderFloat16;
  info.int8 = f16i8.shaderInt8;
  info.coopmat_f16 = v12 && nv_coopmat && coopmat.cooperativeMatrix && info.fp16 && info.subgroup_size == 32 &&
                     has_coopmat_f16_shape(api, instance, physical);
  VkPhysicalDeviceMemoryProperties memory;
  api.vkGetPhysicalDeviceMemoryProperties(physical, &memory);
  for (uint32_t h = 0; h < memory.memoryHeapCount; ++h)
    if (memory.memoryHeaps[h].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT)
      info.device_local_bytes = std::max<uint64_t>(info.device_local_bytes, memory.memoryHeaps[h].size);
  return info;
}

// The first memory type allowed by `bits` that has all of `wanted`, or -1.
int find_memory_type(const VkPhysicalDeviceMemoryProperties& memory, uint32_t bits, VkMemoryPropertyFlags wanted) {
  for (uint32_t i = 0; i < memory.memoryTypeCount; ++i)
    if ((bits & (1u << i)) && (memory.memoryTypes[i].propertyFlags & wanted) == wanted) return int(i);
  return -1;
}

}  // namespace

std::string version_string(uint32_t v) {
  return std::to_string(VK_API_VERSION_MAJOR(v)) + "." + std::to_string(VK_API_VERSION_MINOR(v)) + "." +
         std::to_string(VK_API_VERSION_PATCH(v));
}

DeviceList list_devices() {
  DeviceList list;
  Api* global = load_api(list.problem);
  if (!global) return list;
  Api api = *global;
  VkInstance instance = VK_NULL_HANDLE;
  if (!create_instance(api, instance, list.problem)) {
    if (instance && api.vkDestroyInstance) api.vkDestroyInstance(instance, nullptr);
    return list;
  }
  int index = 0;
  for (VkPhysicalDevice physical : physical_devices(api, instance)) list.devices.push_back(describe(api, instance, physical, index++));
  api.vkDestroyInstance(instance, nullptr);
  if (list.devices.empty()) list.problem = "the Vulkan loader found no device (is a driver such as mesa-vulkan-drivers installed?)";
  return list;
}

Buffer::Buffer(Device& device, uint64_t size) : device_(device), size_(size) {}

Buffer::~Buffer() {
  // Commands recorded but not yet submitted may use this buffer (a zero fill, a dispatch left
  // behind by an exception): run them before its memory goes. A failure here is the device's,
  // and the next call on it reports that; a destructor cannot.
  if (device_.recording_) {
    try {
      device_.finish();
    } catch (const std::exception&) {
    }
  }
  const Api& api = device_.api_;
  if (mapped_) api.vkUnmapMemory(device_.device_, memory_);
  if (buffer_) api.vkDestroyBuffer(device_.device_, buffer_, nullptr);
  if (memory_) api.vkFreeMemory(device_.device_, memory_, nullptr);
}

void Device::check(VkResult r, const char* what) const {
  if (r != VK_SUCCESS) fail_runtime("Vulkan device " + std::to_string(info_.index) + " (" + info_.name + "): " + what +
                                    " failed: " + result_name(r));
}

std::unique_ptr<Device> Device::open(int index) {
  std::string why;
  Api* global = load_api(why);
  if (!global) fail_runtime(why);
  std::unique_ptr<Device> d(new Device());
  d->api_ = *global;
  Api& api = d->api_;
  if (!create_instance(api, d->instance_, why)) fail_runtime(why);
  const std::vector<VkPhysicalDevice> physicals = physical_devices(api, d->instance_);
  if (index < 0 || index >= int(physicals.size()))
    fail_usage("no Vulkan device " + std::to_string(index) + ": this machine has " + std::to_string(physicals.size()) +
               " (see csq info --devices)");
  d->physical_ = physicals[size_t(index)];
  d->info_ = describe(api, d->instance_, d->physical_, index);

  uint32_t n_families = 0;
  api.vkGetPhysicalDeviceQueueFamilyProperties(d->physical_, &n_families, nullptr);
  std::vector<VkQueueFamilyProperties> families(n_families);
  api.vkGetPhysicalDeviceQueueFamilyProperties(d->physical_, &n_families, families.data());
  int family = -1;
  for (uint32_t i = 0; i < n_families && family < 0; ++i)
    if (families[i].queueFlags & VK_QUEUE_COMPUTE_BIT) family = int(i);
  if (family < 0) fail_runtime("Vulkan device " + std::to_string(index) + " (" + d->info_.name + ") has no compute queue");
  d->queue_family_ = uint32_t(family);

  const float priority = 1.0f;
  auto queue = vk_struct<VkDeviceQueueCreateInfo>(VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO);
  queue.queueFamilyIndex = d->queue_family_;
  queue.queueCount = 1;
  queue.pQueuePriorities = &priority;
  auto create = vk_struct<VkDeviceCreateInfo>(VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO);
  create.queueCreateInfoCount = 1;
  create.pQueueCreateInfos = &queue;
  // The cooperative-matrix kernel's extension and features, only where it will be chosen.
  const char* coopmat_extension = "VK_NV_cooperative_matrix";
  auto f16 = vk_struct<VkPhysicalDeviceShaderFloat16Int8Features>(VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES);
  auto coopmat = vk_struct<VkPhysicalDeviceCooperativeMatrixFeaturesNV>(VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV);
  if (d->info_.coopmat_f16) {
    f16.shaderFloat16 = VK_TRUE;
    coopmat.cooperativeMatrix = VK_TRUE;
    f16.pNext = &coopmat;
    create.pNext = &f16;
    create.enabledExtensionCount = 1;
    create.ppEnabledExtensionNames = &coopmat_extension;
  }
  d->check(api.vkCreateDevice(d->physical_, &create, nullptr, &d->device_), "vkCreateDevice");
  if (!load_device_api(api, d->device_, why)) fail_runtime(why);
  api.vkGetDeviceQueue(d->device_, d->queue_family_, 0, &d->queue_);

  VkPhysicalDeviceProperties props;
  api.vkGetPhysicalDeviceProperties(d->physical_, &props);
  d->max_groups_x_ = props.limits.maxComputeWorkGroupCount[0];

  auto pool = vk_struct<VkCommandPoolCreateInfo>(VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO);
  pool.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT;
  pool.queueFamilyIndex = d->queue_family_;
  d->check(api.vkCreateCommandPool(d->device_, &pool, nullptr, &d->command_pool_), "vkCreateCommandPool");
  auto alloc = vk_struct<VkCommandBufferAllocateInfo>(VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO);
  alloc.commandPool = d->command_pool_;
  alloc.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
  alloc.commandBufferCount = 1;
  d->check(api.vkAllocateCommandBuffers(d->device_, &alloc, &d->commands_), "vkAllocateCommandBuffers");
  auto fence = vk_struct<VkFenceCreateInfo>(VK_STRUCTURE_TYPE_FENCE_CREATE_INFO);
  d->check(api.vkCreateFence(d->device_, &fence, nullptr, &d->fence_), "vkCreateFence");

  VkDescriptorPoolSize sizes{VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, kSetsPerSubmit * 8};
  auto dpool = vk_struct<VkDescriptorPoolCreateInfo>(VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO);
  dpool.maxSets = kSetsPerSubmit;
  dpool.poolSizeCount = 1;
  dpool.pPoolSizes = &sizes;
  d->check(api.vkCreateDescriptorPool(d->device_, &dpool, nullptr, &d->descriptor_pool_), "vkCreateDescriptorPool");

  // Device-local memory the host can map directly is used as is on CPUs and integrated GPUs
  // (one memory); discrete GPUs keep weights in plain VRAM and copy through a staging buffer.
  VkPhysicalDeviceMemoryProperties memory;
  api.vkGetPhysicalDeviceMemoryProperties(d->physical_, &memory);
  const VkMemoryPropertyFlags host = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
  const bool unified = props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU ||
                       props.deviceType == VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU;
  int device_type = unified ? find_memory_type(memory, ~0u, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT | host) : -1;
  d->device_memory_mappable_ = device_type >= 0;
  if (device_type < 0) device_type = find_memory_type(memory, ~0u, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT);
  if (device_type < 0) {
    device_type = find_memory_type(memory, ~0u, host);
    d->device_memory_mappable_ = device_type >= 0;
  }
  const int staging_type = find_memory_type(memory, ~0u, host);
  if (device_type < 0 || staging_type < 0)
    fail_runtime("Vulkan device " + std::to_string(index) + " (" + d->info_.name + ") has no usable memory type");
  d->device_memory_type_ = uint32_t(device_type);
  d->staging_memory_type_ = uint32_t(staging_type);
  return d;
}

Device::~Device() {
  if (!device_) {
    if (instance_) api_.vkDestroyInstance(instance_, nullptr);
    return;
  }
  api_.vkDeviceWaitIdle(device_);
  for (auto& [name, p] : pipelines_) {
    api_.vkDestroyPipeline(device_, p.pipeline, nullptr);
    api_.vkDestroyPipelineLayout(device_, p.layout, nullptr);
    api_.vkDestroyDescriptorSetLayout(device_, p.set_layout, nullptr);
  }
  if (staging_mapped_) api_.vkUnmapMemory(device_, staging_memory_);
  if (staging_buffer_) api_.vkDestroyBuffer(device_, staging_buffer_, nullptr);
  if (staging_memory_) api_.vkFreeMemory(device_, staging_memory_, nullptr);
  if (descriptor_pool_) api_.vkDestroyDescriptorPool(device_, descriptor_pool_, nullptr);
  if (fence_) api_.vkDestroyFence(device_, fence_, nullptr);
  if (command_pool_) api_.vkDestroyCommandPool(device_, command_pool_, nullptr);
  api_.vkDestroyDevice(device_, nullptr);
  api_.vkDestroyInstance(instance_, nullptr);
}

std::unique_ptr<Buffer> Device::create_buffer(uint64_t bytes) {
  bytes = std::max<uint64_t>(4, (bytes + 3) & ~uint64_t(3));
  if (bytes > info_.max_storage_buffer_bytes)
    fail_runtime("Vulkan device " + std::to_string(info_.index) + " (" + info_.name + "): a buffer of " +
                 std::to_string(bytes) + " bytes exceeds its largest storage buffer (" +
                 std::to_string(info_.max_storage_buffer_bytes) + " bytes)");
  std::unique_ptr<Buffer> b(new Buffer(*this, bytes));
  auto create = vk_struct<VkBufferCreateInfo>(VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO);
  create.size = bytes;
  create.usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT;
  create.sharingMode = VK_SHARING_MODE_EXCLUSIVE;
  check(api_.vkCreateBuffer(device_, &create, nullptr, &b->buffer_), "vkCreateBuffer");
  VkMemoryRequirements req;
  api_.vkGetBufferMemoryRequirements(device_, b->buffer_, &req);
  auto alloc = vk_struct<VkMemoryAllocateInfo>(VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO);
  alloc.allocationSize = req.size;
  alloc.memoryTypeIndex = device_memory_type_;
  const VkResult r = api_.vkAllocateMemory(device_, &alloc, nullptr, &b->memory_);
  if (r != VK_SUCCESS)
    fail_runtime("Vulkan device " + std::to_string(info_.index) + " (" + info_.name + "): cannot allocate " +
                 std::to_string(bytes) + " bytes of device memory: " + result_name(r));
  check(api_.vkBindBufferMemory(device_, b->buffer_, b->memory_, 0), "vkBindBufferMemory");
  if (device_memory_mappable_) check(api_.vkMapMemory(device_, b->memory_, 0, VK_WHOLE_SIZE, 0, &b->mapped_), "vkMapMemory");
  begin_if_needed();
  api_.vkCmdFillBuffer(commands_, b->buffer_, 0, VK_WHOLE_SIZE, 0);
  barrier();
  return b;
}

void Device::begin_if_needed() {
  if (recording_) return;
  auto begin = vk_struct<VkCommandBufferBeginInfo>(VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO);
  begin.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
  check(api_.vkBeginCommandBuffer(commands_, &begin), "vkBeginCommandBuffer");
  recording_ = true;
}

void Device::barrier() {
  auto b = vk_struct<VkMemoryBarrier>(VK_STRUCTURE_TYPE_MEMORY_BARRIER);
  b.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
  b.dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_READ_BIT |
                    VK_ACCESS_TRANSFER_WRITE_BIT;
  const VkPipelineStageFlags stages = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
  api_.vkCmdPipelineBarrier(commands_, stages, stages, 0, 1, &b, 0, nullptr, 0, nullptr);
}

void Device::finish() {
  if (!recording_) return;
  recording_ = false;
  check(api_.vkEndCommandBuffer(commands_), "vkEndCommandBuffer");
  auto submit = vk_struct<VkSubmitInfo>(VK_STRUCTURE_TYPE_SUBMIT_INFO);
  submit.commandBufferCount = 1;
  submit.pCommandBuffers = &commands_;
  check(api_.vkQueueSubmit(queue_, 1, &submit, fence_), "vkQueueSubmit");
  check(api_.vkWaitForFences(device_, 1, &fence_, VK_TRUE, UINT64_MAX), "vkWaitForFences");
  check(api_.vkResetFences(device_, 1, &fence_), "vkResetFences");
  check(api_.vkResetCommandBuffer(commands_, 0), "vkResetCommandBuffer");
  check(api_.vkResetDescriptorPool(device_, descriptor_pool_, 0), "vkResetDescriptorPool");
  sets_used_ = 0;
}

const Device::Pipeline& Device::pipeline(const char* shader, uint32_t n_bindings, const std::vector<uint32_t>& spec) {
  std::string key = shader;
  for (uint32_t v : spec) key.append(":").append(std::to_string(v));
  auto it = pipelines_.find(key);
  if (it != pipelines_.end()) {
    if (it->second.n_bindings != n_bindings)
      fail_runtime(std::string("shader ") + shader + " dispatched with " + std::to_string(n_bindings) +
                   " buffers, earlier with " + std::to_string(it->second.n_bindings));
    return it->second;
  }
  const Shader* code = find_shader(shader);
  if (!code) fail_runtime(std::string("no embedded Vulkan shader named ") + shader);
  Pipeline p;
  p.n_bindings = n_bindings;
  std::vector<VkDescriptorSetLayoutBinding> bindings(n_bindings);
  for (uint32_t i = 0; i < n_bindings; ++i)
    bindings[i] = {i, VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 1, VK_SHADER_STAGE_COMPUTE_BIT, nullptr};
  auto set = vk_struct<VkDescriptorSetLayoutCreateInfo>(VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO);
  set.bindingCount = n_bindings;
  set.pBindings = bindings.data();
  check(api_.vkCreateDescriptorSetLayout(device_, &set, nullptr, &p.set_layout), "vkCreateDescriptorSetLayout");
  VkPushConstantRange push{VK_SHADER_STAGE_COMPUTE_BIT, 0, kPushBytes};
  auto layout = vk_struct<VkPipelineLayoutCreateInfo>(VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO);
  layout.setLayoutCount = 1;
  layout.pSetLayouts = &p.set_layout;
  layout.pushConstantRangeCount = 1;
  layout.pPushConstantRanges = &push;
  check(api_.vkCreatePipelineLayout(device_, &layout, nullptr, &p.layout), "vkCreatePipelineLayout");
  auto module_info = vk_struct<VkShaderModuleCreateInfo>(VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO);
  module_info.codeSize = code->n_words * 4;
  module_info.pCode = code->words;
  VkShaderModule module;
  check(api_.vkCreateShaderModule(device_, &module_info, nullptr, &module), "vkCreateShaderModule");
  auto create = vk_struct<VkComputePipelineCreateInfo>(VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO);
  create.stage = vk_struct<VkPipelineShaderStageCreateInfo>(VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO);
  create.stage.stage = VK_SHADER_STAGE_COMPUTE_BIT;
  create.stage.module = module;
  create.stage.pName = "main";
  std::vector<VkSpecializationMapEntry> entries(spec.size());
  for (uint32_t i = 0; i < spec.size(); ++i) entries[i] = {i, i * 4, 4};
  const VkSpecializationInfo specialization{uint32_t(spec.size()), entries.data(), spec.size() * 4, spec.data()};
  if (!spec.empty()) create.stage.pSpecializationInfo = &specialization;
  create.layout = p.layout;
  const VkResult r = api_.vkCreateComputePipelines(device_, VK_NULL_HANDLE, 1, &create, nullptr, &p.pipeline);
  api_.vkDestroyShaderModule(device_, module, nullptr);
  check(r, (std::string("vkCreateComputePipelines for ") + shader).c_str());
  return pipelines_.emplace(key, p).first->second;
}

void Device::dispatch(const char* shader, const std::vector<const Buffer*>& buffers, const void* push,
                      uint32_t push_bytes, uint32_t groups_x, uint32_t groups_y, uint32_t groups_z,
                      const std::vector<uint32_t>& spec) {
  if (groups_x == 0 || groups_y == 0 || groups_z == 0) return;
  if (push_bytes > kPushBytes) fail_runtime(std::string("push constants of ") + shader + " exceed 128 bytes");
  const Pipeline& p = pipeline(shader, uint32_t(buffers.size()), spec);
  if (sets_used_ == kSetsPerSubmit) finish();
  begin_if_needed();
  auto alloc = vk_struct<VkDescriptorSetAllocateInfo>(VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO);
  alloc.descriptorPool = descriptor_pool_;
  alloc.descriptorSetCount = 1;
  alloc.pSetLayouts = &p.set_layout;
  VkDescriptorSet set;
  check(api_.vkAllocateDescriptorSets(device_, &alloc, &set), "vkAllocateDescriptorSets");
  ++sets_used_;
  std::vector<VkDescriptorBufferInfo> infos(buffers.size());
  std::vector<VkWriteDescriptorSet> writes(buffers.size());
  for (size_t i = 0; i < buffers.size(); ++i) {
    infos[i] = {buffers[i]->buffer_, 0, VK_WHOLE_SIZE};
    writes[i] = vk_struct<VkWriteDescriptorSet>(VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET);
    writes[i].dstSet = set;
    writes[i].dstBinding = uint32_t(i);
    writes[i].descriptorCount = 1;
    writes[i].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
    writes[i].pBufferInfo = &infos[i];
  }
  api_.vkUpdateDescriptorSets(device_, uint32_t(writes.size()), writes.data(), 0, nullptr);
  api_.vkCmdBindPipeline(commands_, VK_PIPELINE_BIND_POINT_COMPUTE, p.pipeline);
  api_.vkCmdBindDescriptorSets(commands_, VK_PIPELINE_BIND_POINT_COMPUTE, p.layout, 0, 1, &set, 0, nullptr);
  if (push_bytes) api_.vkCmdPushConstants(commands_, p.layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, push_bytes, push);
  api_.vkCmdDispatch(commands_, groups_x, groups_y, groups_z);
  barrier();
}

void Device::copy(const Buffer& src, uint64_t src_offset, const Buffer& dst, uint64_t dst_offset, uint64_t bytes) {
  if (bytes == 0) return;
  begin_if_needed();
  VkBufferCopy region{src_offset, dst_offset, bytes};
  api_.vkCmdCopyBuffer(commands_, src.buffer_, dst.buffer_, 1, &region);
  barrier();
}

void Device::staged_copy(VkBuffer buffer, uint64_t offset, void* host, uint64_t bytes, bool to_device) {
  if (!staging_buffer_) {
    auto create = vk_struct<VkBufferCreateInfo>(VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO);
    create.size = kStagingBytes;
    create.usage = VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT;
    check(api_.vkCreateBuffer(device_, &create, nullptr, &staging_buffer_), "vkCreateBuffer (staging)");
    VkMemoryRequirements req;
    api_.vkGetBufferMemoryRequirements(device_, staging_buffer_, &req);
    auto alloc = vk_struct<VkMemoryAllocateInfo>(VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO);
    alloc.allocationSize = req.size;
    alloc.memoryTypeIndex = staging_memory_type_;
    check(api_.vkAllocateMemory(device_, &alloc, nullptr, &staging_memory_), "vkAllocateMemory (staging)");
    check(api_.vkBindBufferMemory(device_, staging_buffer_, staging_memory_, 0), "vkBindBufferMemory (staging)");
    check(api_.vkMapMemory(device_, staging_memory_, 0, VK_WHOLE_SIZE, 0, &staging_mapped_), "vkMapMemory (staging)");
  }
  for (uint64_t done = 0; done < bytes; done += kStagingBytes) {
    const uint64_t n = std::min(kStagingBytes, bytes - done);
    uint8_t* h = static_cast<uint8_t*>(host) + done;
    if (to_device) std::memcpy(staging_mapped_, h, n);
    begin_if_needed();
    VkBufferCopy region{to_device ? 0 : offset + done, to_device ? offset + done : 0, n};
    api_.vkCmdCopyBuffer(commands_, to_device ? staging_buffer_ : buffer, to_device ? buffer : staging_buffer_, 1, &region);
    barrier();
    finish();
    if (!to_device) std::memcpy(h, staging_mapped_, n);
  }
}

void Device::upload(Buffer& dst, uint64_t offset, const void* src, uint64_t bytes) {
  if (offset + bytes > dst.size_) fail_runtime("upload past the end of a Vulkan buffer");
  finish();
  if (dst.mapped_)
    std::memcpy(static_cast<uint8_t*>(dst.mapped_) + offset, src, bytes);
  else
    staged_copy(dst.buffer_, offset, const_cast<void*>(src), bytes, true);
}

void Device::download(const Buffer& src, uint64_t offset, void* dst, uint64_t bytes) {
  if (offset + bytes > src.size_) fail_runtime("download past the end of a Vulkan buffer");
  finish();
  if (src.mapped_)
    std::memcpy(dst, static_cast<const uint8_t*>(src.mapped_) + offset, bytes);
  else
    staged_copy(src.buffer_, offset, dst, bytes, false);
}

}  // namespace csq::vulkan
