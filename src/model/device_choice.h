// What a --device option asks for: "cpu", "vulkan" (device 0) or "vulkan:N". Kept apart from
// device_model.h so option structs can hold one without the Vulkan headers.
#pragma once

#include <string>

namespace csq {

struct DeviceChoice {
  bool vulkan = false;
  int index = 0;
};
// Throws csq::Error (usage) naming the text when it is none of those.
DeviceChoice parse_device(const std::string& text);

}  // namespace csq
