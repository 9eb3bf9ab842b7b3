// What a --device option asks for: "cpu", "vulkan" (device 0) or "vulkan:N". Kept apart from
// device_model.h so option structs can hold one without the Vulkan headers.
#pragma once

#include <string>

namespace csq {

struct DeviceChoice {
  bool vulkan = false;
  int index = 0;
  // --gpu-layers: how many transformer layers run on the device, the first ones (the rest and
  // the output head on the CPU; 0 keeps the whole model on the CPU; more than the model has
  // means all). -1: all when the weights fit the device's memory, else as many as fit.
  int gpu_layers = -1;
};
// Throws csq::Error (usage) naming the text when it is none of those.
DeviceChoice parse_device(const std::string& text);

}  // namespace csq
