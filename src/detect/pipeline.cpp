#include "detect/pipeline.h"

#include <yaml-cpp/yaml.h>

#include <fstream>
#include <sstream>

#include "base/error.h"

namespace csq::detect {

namespace {

std::string where(const std::string& origin, const YAML::Node& n) {
  return origin + ":" + std::to_string(n.Mark().line + 1);
}

std::map<std::string, std::string> read_fieldmappings(const YAML::Node& n, const std::string& origin) {
  std::map<std::string, std::string> out;
  if (!n) return out;
  if (!n.IsMap()) fail_input(where(origin, n) + ": fieldmappings must map a rule field to an event field");
  for (const auto& kv : n) {
    if (!kv.first.IsScalar() || !kv.second.IsScalar())
      fail_input(where(origin, kv.first) + ": fieldmappings must map a rule field to an event field");
    out[kv.first.Scalar()] = kv.second.Scalar();
  }
  return out;
}

}  // namespace

Pipeline Pipeline::parse(const std::string& text, const std::string& origin) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    fail_input(origin + ":" + std::to_string(e.mark.line + 1) + ": not valid YAML (" + e.msg + ")");
  }
  if (!root.IsMap()) fail_input(origin + ": a pipeline is a map with 'logsources'");
  Pipeline p;
  p.origin = origin;
  if (root["name"] && root["name"].IsScalar()) p.name = root["name"].Scalar();
  p.fieldmappings = read_fieldmappings(root["fieldmappings"], origin);
  const YAML::Node sources = root["logsources"];
  if (!sources || !sources.IsMap()) fail_input(origin + ": 'logsources' must map entry names to entries");
  for (const auto& kv : sources) {
    PipelineEntry e;
    e.name = kv.first.as<std::string>();
    const YAML::Node& body = kv.second;
    const std::string at = where(origin, kv.first) + ": entry '" + e.name + "'";
    if (!body.IsMap()) fail_input(at + " must be a map");
    const YAML::Node ls = body["logsource"];
    if (!ls || !ls.IsMap() || ls.size() == 0) fail_input(at + " needs a 'logsource' map (product, category, service)");
    for (const auto& lkv : ls) {
      const std::string key = lkv.first.as<std::string>();
      if (!lkv.second.IsScalar()) fail_input(at + ": logsource '" + key + "' must be a value");
      const std::string value = fold(lkv.second.Scalar());
      if (key == "product") e.logsource.product = value;
      else if (key == "category") e.logsource.category = value;
      else if (key == "service") e.logsource.service = value;
      else fail_input(at + ": logsource key '" + key + "' is not product, category or service");
    }
    const YAML::Node conds = body["conditions"];
    if (conds) {
      if (!conds.IsMap()) fail_input(at + ": 'conditions' must map event fields to values");
      for (const auto& ckv : conds) {
        PipelineCondition c;
        c.field = ckv.first.as<std::string>();
        if (ckv.second.IsScalar()) {
          c.values.push_back(fold(ckv.second.Scalar()));
        } else if (ckv.second.IsSequence() && ckv.second.size() > 0) {
          for (const auto& v : ckv.second) {
            if (!v.IsScalar()) fail_input(at + ": condition '" + c.field + "' lists plain values only");
            c.values.push_back(fold(v.Scalar()));
          }
        } else {
          fail_input(at + ": condition '" + c.field + "' needs a value or a list of values");
        }
        e.conditions.push_back(std::move(c));
      }
    }
    e.fieldmappings = read_fieldmappings(body["fieldmappings"], origin);
    p.entries.push_back(std::move(e));
  }
  return p;
}

Pipeline Pipeline::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail_input(path + ": cannot open the pipeline file");
  std::ostringstream ss;
  ss << in.rdbuf();
  return parse(ss.str(), path);
}

Pipeline Pipeline::windows_default() { return parse(windows_default_yaml(), "built-in"); }

std::vector<const PipelineEntry*> Pipeline::entries_for(const LogSource& ls) const {
  std::vector<const PipelineEntry*> out;
  for (const PipelineEntry& e : entries)
    if (e.logsource.product == ls.product && e.logsource.category == ls.category &&
        e.logsource.service == ls.service)
      out.push_back(&e);
  return out;
}

}  // namespace csq::detect
