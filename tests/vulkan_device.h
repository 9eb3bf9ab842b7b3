// The Vulkan device the tests run on: device 0 (lavapipe in CI). Tests skip, saying why, where
// the machine has no Vulkan loader or device.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "kernels/vulkan/device.h"
#include "model/device_model.h"

namespace csq::test {

// Device 0, opened once per test binary for the kernel tests; nullptr (with `why` set) when no
// Vulkan device exists here.
inline vulkan::Device* vulkan_device(std::string& why) {
  static std::string problem;
  static std::unique_ptr<vulkan::Device> device = [] {
    const vulkan::DeviceList list = vulkan::list_devices();
    if (list.devices.empty()) {
      problem = list.problem;
      return std::unique_ptr<vulkan::Device>();
    }
    return vulkan::Device::open(0);
  }();
  why = problem;
  return device.get();
}

// Places `model` on device 0 as --device vulkan does; false (with `why` set) without a device.
inline bool place_on_vulkan(Model& model, std::string& why) {
  const vulkan::DeviceList list = vulkan::list_devices();
  why = list.problem;
  return !list.devices.empty() && place_model(model, DeviceChoice{true, 0});
}

}  // namespace csq::test

#define CSQ_REQUIRE_VULKAN(device)                                          \
  std::string vulkan_skip_reason;                                           \
  vulkan::Device* device = test::vulkan_device(vulkan_skip_reason);         \
  if (!device) GTEST_SKIP() << "no Vulkan device: " << vulkan_skip_reason
