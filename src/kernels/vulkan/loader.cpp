#include "kernels/vulkan/loader.h"

#include <dlfcn.h>

#include <mutex>

namespace csq::vulkan {

Api* load_api(std::string& why) {
  static std::once_flag once;
  static Api api;
  static std::string failure;
  static bool ok = false;
  std::call_once(once, [] {
    // CSQ_VULKAN_LOADER names another loader (tests point it at a missing file to check the
    // CPU fallback); otherwise the versioned soname every distribution installs.
    const char* override_path = std::getenv("CSQ_VULKAN_LOADER");
    const char* path = override_path && *override_path ? override_path : "libvulkan.so.1";
    void* lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      const char* err = dlerror();
      failure = std::string("cannot open the Vulkan loader ") + path + (err ? std::string(": ") + err : "");
      return;
    }
    api.vkGetInstanceProcAddr = reinterpret_cast<PFN_vkGetInstanceProcAddr>(dlsym(lib, "vkGetInstanceProcAddr"));
    if (!api.vkGetInstanceProcAddr) {
      failure = std::string(path) + " has no vkGetInstanceProcAddr";
      return;
    }
    api.vkCreateInstance =
        reinterpret_cast<PFN_vkCreateInstance>(api.vkGetInstanceProcAddr(nullptr, "vkCreateInstance"));
    // Absent from Vulkan 1.0 loaders: callers treat null as version 1.0.
    api.vkEnumerateInstanceVersion = reinterpret_cast<PFN_vkEnumerateInstanceVersion>(
        api.vkGetInstanceProcAddr(nullptr, "vkEnumerateInstanceVersion"));
    if (!api.vkCreateInstance) {
      failure = std::string(path) + " returns no vkCreateInstance";
      return;
    }
    ok = true;
  });
  if (!ok) {
    why = failure;
    return nullptr;
  }
  return &api;
}

// Fetches entry point `name` with `get`; on a miss names it in `why` and returns false.
#define CSQ_VK_LOAD(name)                                  \
  api.name = reinterpret_cast<PFN_##name>(get(#name));     \
  if (!api.name) {                                         \
    why = std::string(missing) + #name;                    \
    return false;                                          \
  }

bool load_instance_api(Api& api, VkInstance instance, std::string& why) {
  const auto get = [&](const char* name) { return api.vkGetInstanceProcAddr(instance, name); };
  const char* missing = "the Vulkan loader has no ";
  CSQ_VK_INSTANCE(CSQ_VK_LOAD)
  return true;
}

bool load_device_api(Api& api, VkDevice device, std::string& why) {
  const auto get = [&](const char* name) { return api.vkGetDeviceProcAddr(device, name); };
  const char* missing = "the Vulkan driver has no ";
  CSQ_VK_DEVICE(CSQ_VK_LOAD)
  return true;
}
#undef CSQ_VK_LOAD

std::string result_name(VkResult r) {
  switch (r) {
#define CSQ_VK_CASE(c) \
  case c:              \
    return #c;
    CSQ_VK_CASE(VK_SUCCESS)
    CSQ_VK_CASE(VK_NOT_READY)
    CSQ_VK_CASE(VK_TIMEOUT)
    CSQ_VK_CASE(VK_INCOMPLETE)
    CSQ_VK_CASE(VK_ERROR_OUT_OF_HOST_MEMORY)
    CSQ_VK_CASE(VK_ERROR_OUT_OF_DEVICE_MEMORY)
    CSQ_VK_CASE(VK_ERROR_INITIALIZATION_FAILED)
    CSQ_VK_CASE(VK_ERROR_DEVICE_LOST)
    CSQ_VK_CASE(VK_ERROR_MEMORY_MAP_FAILED)
    CSQ_VK_CASE(VK_ERROR_LAYER_NOT_PRESENT)
    CSQ_VK_CASE(VK_ERROR_EXTENSION_NOT_PRESENT)
    CSQ_VK_CASE(VK_ERROR_FEATURE_NOT_PRESENT)
    CSQ_VK_CASE(VK_ERROR_INCOMPATIBLE_DRIVER)
    CSQ_VK_CASE(VK_ERROR_TOO_MANY_OBJECTS)
    CSQ_VK_CASE(VK_ERROR_FORMAT_NOT_SUPPORTED)
    CSQ_VK_CASE(VK_ERROR_FRAGMENTED_POOL)
    CSQ_VK_CASE(VK_ERROR_OUT_OF_POOL_MEMORY)
#undef CSQ_VK_CASE
    default:
      return "VkResult " + std::to_string(int(r));
  }
}

}  // namespace csq::vulkan
