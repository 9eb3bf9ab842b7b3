#include "eval/report.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>

#include "base/error.h"
#include "eval/protocol.h"

namespace csq::eval {
namespace {

std::ofstream open_out(const std::string& path) {
  std::ofstream out(path, std::ios::binary);
  if (!out) fail_runtime(path + ": cannot write");
  return out;
}

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string md_cell(const std::string& s) {
  std::string out;
  for (char c : s) out += c == '|' ? std::string("\\|") : c == '\n' ? std::string(" ") : std::string(1, c);
  return out;
}

std::string fmt(double v, int digits = 4) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

std::string label_of(const nlohmann::ordered_json& s) {
  return s.contains("label") && s["label"].is_string() ? s["label"].get<std::string>() : std::string("run");
}

}  // namespace

void write_items_jsonl(const std::string& path, const Benchmark& benchmark, const ScoreResult& result) {
  auto out = open_out(path);
  const Protocol& protocol = result.protocol;
  for (const auto& r : result.items) {
    const Item& item = benchmark.items.at(r.index);
    nlohmann::ordered_json j;
    j["index"] = r.index;
    j["trial"] = r.trial;
    j["prompt"] = build_prompt(protocol, benchmark, item);
    j["response"] = r.response;
    j["parsed"] = r.answer.parsed;
    j["answer"] = r.answer.parsed ? nlohmann::ordered_json(r.answer.value) : nlohmann::ordered_json(nullptr);
    if (protocol.parser == tasks::AnswerParser::Faith) j["proper_format"] = r.answer.parsed && r.answer.proper;
    j["gold"] = item.gold;
    j["correct"] = r.correct;
    if (benchmark.kind == tasks::AnswerKind::Cvss)
      j["abs_error"] = r.answer.parsed ? nlohmann::ordered_json(r.abs_error) : nlohmann::ordered_json(nullptr);
    if (benchmark.kind == tasks::AnswerKind::Attack) {
      j["f1"] = r.f1;
      j["jaccard"] = r.jaccard;
    }
    out << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  }
}

std::string svg_bar_chart(const std::vector<nlohmann::ordered_json>& summaries, const std::string& metric) {
  struct Bar {
    std::string label;
    double mean, sd;
  };
  std::vector<Bar> bars;
  for (const auto& s : summaries) {
    if (!s.contains("metrics") || !s["metrics"].contains(metric)) continue;
    bars.push_back({label_of(s) + " · " + s.value("benchmark", std::string()),
                    s["metrics"][metric].value("mean", 0.0), s["metrics"][metric].value("sd", 0.0)});
  }
  if (bars.empty()) return {};
  // Accuracies and rates live in [0, 1]; deviations of CVSS scores in [0, 10].
  double top = metric.starts_with("mad") ? 0.0 : 1.0;
  for (const auto& b : bars) top = std::max(top, b.mean + b.sd);
  if (top <= 0) top = 1;
  const int label_w = 260, plot_w = 420, bar_h = 22, gap = 8, pad = 30;
  const int height = pad * 2 + int(bars.size()) * (bar_h + gap);
  const int width = label_w + plot_w + 90;
  std::string svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(width) + "\" height=\"" +
                    std::to_string(height) + "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  svg += "<text x=\"" + std::to_string(label_w) + "\" y=\"18\" font-weight=\"bold\">" + xml_escape(metric) +
         (metric.starts_with("mad") ? " (lower is better)" : "") + "</text>\n";
  for (size_t k = 0; k < bars.size(); ++k) {
    const auto& b = bars[k];
    const int y = pad + int(k) * (bar_h + gap);
    const double w = plot_w * b.mean / top;
    svg += "<text x=\"" + std::to_string(label_w - 6) + "\" y=\"" + std::to_string(y + bar_h - 6) +
           "\" text-anchor=\"end\">" + xml_escape(b.label) + "</text>\n";
    svg += "<rect x=\"" + std::to_string(label_w) + "\" y=\"" + std::to_string(y) + "\" width=\"" + fmt(w, 1) +
           "\" height=\"" + std::to_string(bar_h) + "\" fill=\"#4878a8\"/>\n";
    if (b.sd > 0) {
      const double lo = label_w + plot_w * std::max(0.0, b.mean - b.sd) / top;
      const double hi = label_w + plot_w * (b.mean + b.sd) / top;
      const std::string mid = std::to_string(y + bar_h / 2);
      svg += "<line x1=\"" + fmt(lo, 1) + "\" y1=\"" + mid + "\" x2=\"" + fmt(hi, 1) + "\" y2=\"" + mid +
             "\" stroke=\"#222\"/>\n";
    }
    svg += "<text x=\"" + fmt(label_w + w + 6, 1) + "\" y=\"" + std::to_string(y + bar_h - 6) + "\">" +
           fmt(b.mean) + (b.sd > 0 ? " ± " + fmt(b.sd) : "") + "</text>\n";
  }
  svg += "</svg>\n";
  return svg;
}

void write_report(const std::string& dir, const std::vector<nlohmann::ordered_json>& summaries,
                  const std::string& title) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) fail_runtime(dir + ": cannot create directory (" + ec.message() + ")");
  std::string md = "# " + title + "\n\n## Results\n\n";
  md += "| run | benchmark | protocol | headline | mean | sd | trials | parse failures |\n";
  md += "|---|---|---|---|---|---|---|---|\n";
  std::set<std::string> headlines;
  for (const auto& s : summaries) {
    const auto& h = s["headline"];
    const std::string metric = h.value("metric", std::string());
    headlines.insert(metric);
    const auto& m = s["metrics"];
    md += "| " + md_cell(label_of(s)) + " | " + md_cell(s.value("benchmark", std::string())) + " | " +
          md_cell(s["protocol"].value("name", std::string())) + " | " + metric + " | " + fmt(h.value("mean", 0.0)) +
          " | " + fmt(h.value("sd", 0.0)) + " | " + std::to_string(s["trials"].size()) + " | " +
          (m.contains("parse_failure_rate") ? fmt(m["parse_failure_rate"].value("mean", 0.0)) : "") + " |\n";
  }
  md += "\n";
  for (const auto& metric : headlines) {
    const std::string svg = svg_bar_chart(summaries, metric);
    const std::string file = "chart-" + metric + ".svg";
    open_out(dir + "/" + file) << svg;
    md += "![" + metric + "](" + file + ")\n\n";
  }
  md += "## Metrics\n\n";
  for (const auto& s : summaries) {
    md += "### " + md_cell(label_of(s)) + " · " + md_cell(s.value("benchmark", std::string())) + "\n\n";
    md += "| metric | mean | sd |\n|---|---|---|\n";
    for (const auto& [name, v] : s["metrics"].items())
      md += "| " + name + " | " + fmt(v.value("mean", 0.0)) + " | " + fmt(v.value("sd", 0.0)) + " |\n";
    md += "\n";
  }
  md += "## Protocols\n\n";
  std::set<std::string> described;
  for (const auto& s : summaries) {
    const auto& p = s["protocol"];
    const std::string name = p.value("name", std::string());
    if (!described.insert(p.dump()).second) continue;
    md += "### " + md_cell(name) + "\n\n| setting | value |\n|---|---|\n";
    for (const auto& [key, value] : p.items())
      md += "| " + key + " | " + md_cell(value.is_string() ? value.get<std::string>() : value.dump()) + " |\n";
    md += "\n";
  }
  open_out(dir + "/report.md") << md;
}

}  // namespace csq::eval
