// --device and csq info --devices from the command line: the CPU fallback without a Vulkan
// loader (the run is the CPU's, bit for bit, with one line saying so), the device list, and
// the errors for device names that do not exist.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "kernels/vulkan/device.h"
#include "test_paths.h"

namespace csq {
namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Points the loader at a file that does not exist for the life of the object (the children
// csq starts inherit it): the machine looks like one without Vulkan.
struct NoVulkanLoader {
  NoVulkanLoader() { setenv("CSQ_VULKAN_LOADER", "/nonexistent/libvulkan.so.1", 1); }
  ~NoVulkanLoader() { unsetenv("CSQ_VULKAN_LOADER"); }
};

TEST(CliDevice, VulkanWithoutALoaderRunsOnTheCpuAndSaysSoOnce) {
  CSQ_REQUIRE_FIXTURES();
  const std::string model = test::fixture("hf/qwen3-tiny-gqa");
  const std::string cpu = test::temp_dir() + "/device-cpu.safetensors";
  const std::string fallback = test::temp_dir() + "/device-fallback.safetensors";
  const auto a = test::run_csq({"logits", "--model", model, "--tokens", "1,2,3,4,5", "--out", cpu});
  ASSERT_EQ(a.exit_code, 0) << a.err;
  const NoVulkanLoader no_loader;
  const auto b = test::run_csq({"logits", "--model", model, "--tokens", "1,2,3,4,5", "--device", "vulkan", "--out", fallback});
  ASSERT_EQ(b.exit_code, 0) << b.err;
  EXPECT_EQ(b.err.find("csq: no Vulkan device (cannot open the Vulkan loader /nonexistent/libvulkan.so.1"), 0u) << b.err;
  EXPECT_EQ(std::count(b.err.begin(), b.err.end(), '\n'), 1) << b.err;
  EXPECT_EQ(slurp(cpu), slurp(fallback));
}

TEST(CliDevice, InfoListsNoVulkanDeviceWithoutALoader) {
  const NoVulkanLoader no_loader;
  const auto r = test::run_csq({"info", "--devices", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_TRUE(j["cpu"].get<bool>());
  EXPECT_TRUE(j["vulkan"].empty());
  EXPECT_NE(j["vulkan_problem"].get<std::string>().find("/nonexistent/libvulkan.so.1"), std::string::npos);
}

TEST(CliDevice, InfoListsTheVulkanDevicesWithTheirFeatures) {
  const vulkan::DeviceList list = vulkan::list_devices();
  const auto r = test::run_csq({"info", "--devices", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["vulkan"].size(), list.devices.size());
  for (size_t i = 0; i < list.devices.size(); ++i) {
    EXPECT_EQ(j["vulkan"][i]["name"], list.devices[i].name);
    EXPECT_EQ(j["vulkan"][i]["device"], "vulkan:" + std::to_string(i));
    EXPECT_EQ(j["vulkan"][i]["subgroup_size"], list.devices[i].subgroup_size);
    EXPECT_TRUE(j["vulkan"][i].contains("cooperative_matrix"));
    EXPECT_TRUE(j["vulkan"][i].contains("coopmat_f16"));
  }
  const auto text = test::run_csq({"info", "--devices"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  for (const vulkan::DeviceInfo& d : list.devices) EXPECT_NE(text.out.find(d.name), std::string::npos) << text.out;
}

TEST(CliDevice, BadDeviceNamesAreUsageErrors) {
  CSQ_REQUIRE_FIXTURES();
  const std::string model = test::fixture("hf/qwen3-tiny-gqa");
  const auto r = test::run_csq({"generate", "--model", model, "--tokens", "1,2", "--print-ids", "--device", "gpu"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--device must be cpu, vulkan or vulkan:N"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("'gpu'"), std::string::npos) << r.err;
  const vulkan::DeviceList list = vulkan::list_devices();
  if (list.devices.empty()) GTEST_SKIP() << "no Vulkan device: " << list.problem;
  const auto missing = test::run_csq({"generate", "--model", model, "--tokens", "1,2", "--print-ids", "--device",
                                      "vulkan:" + std::to_string(list.devices.size())});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("this machine has " + std::to_string(list.devices.size())), std::string::npos) << missing.err;
}

}  // namespace
}  // namespace csq
