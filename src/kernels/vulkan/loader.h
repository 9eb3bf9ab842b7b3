// The Vulkan loader (libvulkan.so.1), opened at run time: csq links no Vulkan library, so it
// starts and runs on the CPU exactly as before on machines without a loader or driver.
// Entry points are fetched by hand into one table (VK_NO_PROTOTYPES: nothing else can call
// Vulkan behind the table's back).
#pragma once

#define VK_NO_PROTOTYPES
#include <vulkan/vulkan.h>

#include <string>

namespace csq::vulkan {

// X(name) for every entry point csq uses, by the level it is fetched at.
#define CSQ_VK_GLOBAL(X) X(vkCreateInstance) X(vkEnumerateInstanceVersion)
#define CSQ_VK_INSTANCE(X)                                                                                   \
  X(vkDestroyInstance) X(vkEnumeratePhysicalDevices) X(vkGetPhysicalDeviceProperties)                        \
  X(vkGetPhysicalDeviceProperties2) X(vkGetPhysicalDeviceFeatures2) X(vkGetPhysicalDeviceMemoryProperties)   \
  X(vkGetPhysicalDeviceQueueFamilyProperties) X(vkEnumerateDeviceExtensionProperties) X(vkCreateDevice)      \
  X(vkGetDeviceProcAddr)
#define CSQ_VK_DEVICE(X)                                                                                     \
  X(vkDestroyDevice) X(vkGetDeviceQueue) X(vkCreateBuffer) X(vkDestroyBuffer)                                \
  X(vkGetBufferMemoryRequirements) X(vkAllocateMemory) X(vkFreeMemory) X(vkBindBufferMemory) X(vkMapMemory)  \
  X(vkUnmapMemory) X(vkCreateShaderModule) X(vkDestroyShaderModule) X(vkCreateDescriptorSetLayout)          \
  X(vkDestroyDescriptorSetLayout) X(vkCreatePipelineLayout) X(vkDestroyPipelineLayout)                      \
  X(vkCreateComputePipelines) X(vkDestroyPipeline) X(vkCreateDescriptorPool) X(vkDestroyDescriptorPool)      \
  X(vkResetDescriptorPool) X(vkAllocateDescriptorSets) X(vkUpdateDescriptorSets) X(vkCreateCommandPool)      \
  X(vkDestroyCommandPool) X(vkAllocateCommandBuffers) X(vkBeginCommandBuffer) X(vkEndCommandBuffer)          \
  X(vkResetCommandBuffer) X(vkCmdBindPipeline) X(vkCmdBindDescriptorSets) X(vkCmdPushConstants)              \
  X(vkCmdDispatch) X(vkCmdPipelineBarrier) X(vkCmdCopyBuffer) X(vkCmdFillBuffer) X(vkQueueSubmit)            \
  X(vkCreateFence) X(vkDestroyFence) X(vkWaitForFences) X(vkResetFences) X(vkDeviceWaitIdle)

struct Api {
#define CSQ_VK_MEMBER(name) PFN_##name name = nullptr;
  PFN_vkGetInstanceProcAddr vkGetInstanceProcAddr = nullptr;
  CSQ_VK_GLOBAL(CSQ_VK_MEMBER)
  CSQ_VK_INSTANCE(CSQ_VK_MEMBER)
  CSQ_VK_DEVICE(CSQ_VK_MEMBER)
#undef CSQ_VK_MEMBER
};

// The process-wide table after dlopen + global entry points, or nullptr with `why` set when no
// loader can be opened (the library is missing, or lacks vkGetInstanceProcAddr). Thread-safe;
// the library stays open for the life of the process.
Api* load_api(std::string& why);

// Fills the instance-level entry points; false with `why` naming the first one missing.
bool load_instance_api(Api& api, VkInstance instance, std::string& why);
// Fills the device-level entry points into `out` (a copy per device).
bool load_device_api(Api& out, VkDevice device, std::string& why);

// "VK_ERROR_OUT_OF_DEVICE_MEMORY" etc.; the number for codes it does not know.
std::string result_name(VkResult r);

}  // namespace csq::vulkan
