// Event input: JSON Lines, concatenated pretty-printed objects, evtx_dump's "Record N" output,
// Winlogbeat/ECS and evtx_dump layouts normalised to Sigma names, gzip; and bad input (huge
// records, invalid UTF-8, deep nesting, truncated gzip) as counted, named problems.
#include <gtest/gtest.h>
#include <zlib.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "detect/runner.h"
#include "test_paths.h"

namespace csq::detect {
namespace {

std::string write_temp(const std::string& name, const std::string& content) {
  const std::string path = csq::test::temp_dir() + "/" + name;
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

std::string gzip(const std::string& data) {
  z_stream z{};
  deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  std::string out(compressBound(uLong(data.size())) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = uInt(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = uInt(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

std::string temp_dir_missing() { return csq::test::temp_dir() + "/no-such-file.jsonl"; }

struct Read {
  std::vector<Record> records;
  std::vector<std::string> problems;
};

Read read_all(const std::string& path, size_t max_bytes = RecordReader::kDefaultMaxRecordBytes) {
  RecordReader reader(ByteSource::open(path), max_bytes);
  Read r;
  Record rec;
  std::string problem;
  while (true) {
    problem.clear();
    const auto st = reader.next(rec, problem);
    if (st == RecordReader::Status::End) break;
    if (st == RecordReader::Status::Problem) r.problems.push_back(problem);
    else r.records.push_back(rec);
  }
  return r;
}

std::map<std::string, std::string> normalise(const std::string& json) {
  Normalizer n;
  NormalizedEvent ev;
  std::string text = json;
  text.reserve(text.size() + 64);
  const auto problem = n.parse(text, ev);
  EXPECT_FALSE(problem) << *problem;
  std::map<std::string, std::string> out;
  for (const Field& f : ev.fields) out[std::string(f.name)] = f.is_null ? "<null>" : std::string(f.value);
  out["<time>"] = std::string(ev.time);
  return out;
}

TEST(DetectEvents, JsonLinesWithCrlfAndBlankLines) {
  const Read r = read_all(write_temp("a.jsonl", "{\"a\": 1}\r\n\r\n{\"a\": 2}\r\n{\"a\": 3}"));
  ASSERT_EQ(r.records.size(), 3u);
  EXPECT_EQ(r.records[0].text, "{\"a\": 1}");
  EXPECT_EQ(r.records[1].number, 3u);  // line numbers, blank line counted
  EXPECT_EQ(r.records[2].text, "{\"a\": 3}");
}

TEST(DetectEvents, ConcatenatedPrettyObjectsAndRecordHeaders) {
  const Read r = read_all(write_temp("b.json", "{\n  \"a\": \"}{\",\n  \"b\": {\"c\": 1}\n}\n{\n  \"a\": 2\n}\n"));
  ASSERT_EQ(r.records.size(), 2u);
  EXPECT_EQ(r.records[0].number, 1u);
  EXPECT_EQ(r.records[1].number, 2u);
  EXPECT_EQ(r.records[1].line, 5u);
  // evtx_dump -o json: "Record N" before each object gives the record number.
  const Read d = read_all(write_temp("c.json", "Record 7\n{\n  \"a\": 1\n}\nRecord 9\n{\n  \"a\": 2\n}\n"));
  ASSERT_EQ(d.records.size(), 2u);
  EXPECT_EQ(d.records[0].number, 7u);
  EXPECT_EQ(d.records[1].number, 9u);
  // A JSON array of events.
  const Read a = read_all(write_temp("d.json", "[\n {\"a\": 1},\n {\"a\": 2}\n]\n"));
  EXPECT_EQ(a.records.size(), 2u);
}

TEST(DetectEvents, ObjectsOverSeveralLinesAreRecognisedBeyondTheFirstTwoBytes) {
  // The layout is decided on the first object, not on the two bytes read to look for gzip:
  // PowerShell's ConvertTo-Json ("{\r\n"), and an object whose first line holds a field.
  for (const char* text : {"{\r\n    \"a\":  1,\r\n    \"b\":  2\r\n}\r\n{\r\n    \"a\":  3\r\n}\r\n",
                           "{\"a\": 1,\n \"b\": 2}\n{\"a\": 3,\n \"b\": 4}\n"}) {
    const Read r = read_all(write_temp("e.json", text));
    EXPECT_TRUE(r.problems.empty()) << r.problems[0];
    ASSERT_EQ(r.records.size(), 2u) << text;
    EXPECT_EQ(nlohmann::json::parse(r.records[1].text)["a"], 3);
  }
}

TEST(DetectEvents, GzipIsInflatedWhateverTheName) {
  const std::string path = write_temp("e.data", gzip("{\"a\": 1}\n{\"a\": 2}\n"));
  EXPECT_EQ(read_all(path).records.size(), 2u);
  // Truncated gzip: an error naming the file, not a crash or silence.
  std::string gz = gzip(std::string(100000, 'x'));
  const std::string cut = write_temp("f.gz", gz.substr(0, gz.size() / 2));
  EXPECT_THROW(read_all(cut), csq::Error);
}

TEST(DetectEvents, ADirectoryIsBadInputNamingIt) {
  try {
    ByteSource::open(csq::test::temp_dir());
    FAIL() << "a directory was opened as events";
  } catch (const csq::Error& e) {
    EXPECT_EQ(e.code(), csq::ErrorCode::BadInput);
    EXPECT_EQ(std::string(e.what()), csq::test::temp_dir() + ": is a directory, not a file of events");
  }
}

TEST(DetectEvents, EvtxDumpLayout) {
  const auto f = normalise(R"({"Event": {"#attributes": {"xmlns": "x"}, "System": {
      "Provider": {"#attributes": {"Name": "Microsoft-Windows-Sysmon", "Guid": "G"}},
      "EventID": 1, "Channel": "Microsoft-Windows-Sysmon/Operational",
      "TimeCreated": {"#attributes": {"SystemTime": "2025-12-25T14:30:27.369114Z"}},
      "Execution": {"#attributes": {"ProcessID": 3208}}},
    "EventData": {"Image": "C:\\a.exe", "Source Name": "x", "ProcessId": 14144}}})");
  EXPECT_EQ(f.at("Provider_Name"), "Microsoft-Windows-Sysmon");
  EXPECT_EQ(f.at("EventID"), "1");
  EXPECT_EQ(f.at("Execution_ProcessID"), "3208");
  EXPECT_EQ(f.at("Image"), "C:\\a.exe");
  EXPECT_EQ(f.at("SourceName"), "x");  // spaces stripped, as the specification says
  EXPECT_EQ(f.at("ProcessId"), "14144");
  EXPECT_EQ(f.at("<time>"), "2025-12-25T14:30:27.369114Z");
  // EventID with Qualifiers, and UserData's wrapper element.
  const auto g = normalise(R"({"Event": {"System": {"EventID": {"#attributes": {"Qualifiers": 16384}, "#text": 7045}},
      "UserData": {"Operation_ClientFailure": {"#attributes": {"xmlns": "y"}, "Operation": "op"}}}})");
  EXPECT_EQ(g.at("EventID"), "7045");
  EXPECT_EQ(g.at("EventID_Qualifiers"), "16384");
  EXPECT_EQ(g.at("Operation"), "op");
}

TEST(DetectEvents, WinlogbeatLayout) {
  const auto f = normalise(R"({"@timestamp": "2024-01-01T00:00:00Z", "winlog": {"channel": "Security",
      "event_id": 4688, "provider_name": "Microsoft-Windows-Security-Auditing",
      "event_data": {"NewProcessName": "C:\\x.exe"}}, "process": {"command_line": "x"}})");
  EXPECT_EQ(f.at("Channel"), "Security");
  EXPECT_EQ(f.at("EventID"), "4688");
  EXPECT_EQ(f.at("Provider_Name"), "Microsoft-Windows-Security-Auditing");
  EXPECT_EQ(f.at("NewProcessName"), "C:\\x.exe");
  EXPECT_EQ(f.at("process.command_line"), "x");
  EXPECT_EQ(f.at("<time>"), "2024-01-01T00:00:00Z");
}

TEST(DetectEvents, FlatNxlogLayout) {
  const auto f = normalise(R"({"SourceName": "Microsoft-Windows-Sysmon", "EventID": 1, "TimeCreated": "2020-10-18 07:50:06.220",
      "Keywords": -9223372036854775808, "Flag": true, "Nothing": null, "List": ["a", "b"]})");
  EXPECT_EQ(f.at("Provider_Name"), "Microsoft-Windows-Sysmon");
  EXPECT_EQ(f.at("Keywords"), "-9223372036854775808");
  EXPECT_EQ(f.at("Flag"), "true");
  EXPECT_EQ(f.at("Nothing"), "<null>");
  EXPECT_EQ(f.at("<time>"), "2020-10-18 07:50:06.220");
}

// One rule, A = 1, applied to every event.
RuleSet rule_a_equals_1() {
  RuleSet set;
  load_rules_text("title: t\nauthor: a\nlogsource: {product: windows}\ndetection:\n  s:\n    A: 1\n  condition: s\n",
                  "r.yml", {}, set);
  return set;
}

DetectorOptions any_logsource() {
  DetectorOptions o;
  o.ignore_logsource = true;
  return o;
}

TEST(DetectEvents, BadRecordsAreCountedAndNamed) {
  // A 100 MB line against a 1 MiB limit, invalid UTF-8, JSON nested 10,000 deep, a non-object,
  // then a good event: the good one is still read and matched.
  const RuleSet set = rule_a_equals_1();
  const Detector d(set, Pipeline{}, any_logsource());
  std::string input = "{\"A\": \"" + std::string(100u << 20, 'x') + "\"}\n";
  input += "{\"A\": \"\xff\xfe\"}\n";
  input += std::string(10000, '[') + std::string(10000, ']') + "\n";
  input += "[1, 2]\n";
  input += "{\"A\": 1}\n";
  const std::string path = write_temp("bad.jsonl", input);
  input.clear();
  input.shrink_to_fit();
  RunOptions ro;
  ro.max_record_bytes = 1 << 20;
  RunStats stats;
  std::vector<InputProblem> problems;
  size_t alerts = 0;
  run_detection(
      d, {path}, ro, [&](Alert&& a) {
        ++alerts;
        EXPECT_EQ(a.record, 5u);
      },
      [&](const InputProblem& p) { problems.push_back(p); }, stats);
  EXPECT_EQ(alerts, 1u);
  EXPECT_EQ(stats.events, 1u);
  EXPECT_EQ(stats.unparseable, 4u);
  ASSERT_EQ(problems.size(), 4u);
  EXPECT_EQ(problems[0].record, 1u);
  EXPECT_NE(problems[0].reason.find("exceeds the limit"), std::string::npos);
  EXPECT_NE(problems[1].reason.find("UTF-8"), std::string::npos) << problems[1].reason;
  EXPECT_NE(problems[2].reason.find("deep"), std::string::npos) << problems[2].reason;
  EXPECT_EQ(problems[3].reason, "not a JSON object");
}

TEST(DetectEvents, RecordsBeforeGzipDamageAreMatchedAndTheInputCountsAsFailed) {
  // 3,000 events, the .gz cut in half: the events inflated before the cut are still matched
  // (they share a batch with the cut), the cut is one problem naming the file, the other
  // inputs (a missing file, a directory, a good file) are each read or named.
  const RuleSet set = rule_a_equals_1();
  const Detector d(set, Pipeline{}, any_logsource());
  std::string events;
  for (int i = 0; i < 3000; ++i) events += "{\"A\": 1, \"pad\": \"" + std::to_string(i * 7919) + "\"}\n";
  const std::string gz = gzip(events);
  const std::string cut = write_temp("cut.jsonl.gz", gz.substr(0, gz.size() / 2));
  const std::string good = write_temp("good.jsonl", "{\"A\": 1}\n");
  RunStats stats;
  std::vector<InputProblem> problems;
  std::map<std::string, size_t> alerts;
  run_detection(
      d, {cut, temp_dir_missing(), csq::test::temp_dir(), good}, {}, [&](Alert&& a) { ++alerts[a.source]; },
      [&](const InputProblem& p) { problems.push_back(p); }, stats);
  EXPECT_GT(alerts[cut], 500u);
  EXPECT_LT(alerts[cut], 3000u);
  EXPECT_EQ(alerts[good], 1u);
  EXPECT_EQ(stats.failed_inputs, 3u);
  ASSERT_EQ(problems.size(), 3u);
  EXPECT_EQ(problems[0].source, cut);
  EXPECT_NE(problems[0].reason.find("truncated"), std::string::npos) << problems[0].reason;
  EXPECT_NE(problems[1].reason.find("cannot open"), std::string::npos) << problems[1].reason;
  EXPECT_NE(problems[2].reason.find("directory"), std::string::npos) << problems[2].reason;
}

TEST(DetectEvents, AlertJsonCarriesAuthorAndEvent) {
  RuleSet set;
  load_rules_text("title: T\nid: abc\nauthor: Jane Doe\nstatus: test\nlevel: high\ntags: [attack.t1059]\n"
                  "logsource: {product: windows}\ndetection:\n  s:\n    A|contains: x\n  condition: s\n",
                  "r.yml", {}, set);
  DetectorOptions o;
  o.ignore_logsource = true;
  const Detector d(set, Pipeline{}, o);
  const std::string path = write_temp("one.json", "{\n  \"A\": \"xyz\",\n  \"@timestamp\": \"2024-05-01T00:00:00Z\"\n}\n");
  std::vector<std::string> lines;
  RunStats stats;
  run_detection(d, {path}, {}, [&](Alert&& a) { lines.push_back(alert_json(a)); }, [](const InputProblem&) {}, stats);
  ASSERT_EQ(lines.size(), 1u);
  const auto j = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(j["author"], "Jane Doe");
  EXPECT_EQ(j["rule_id"], "abc");
  EXPECT_EQ(j["level"], "high");
  EXPECT_EQ(j["status"], "test");
  EXPECT_EQ(j["tags"][0], "attack.t1059");
  EXPECT_EQ(j["time"], "2024-05-01T00:00:00Z");
  EXPECT_EQ(j["record"], 1);
  EXPECT_EQ(j["matched"]["A"], "xyz");
  EXPECT_EQ(j["event"]["A"], "xyz");
}

}  // namespace
}  // namespace csq::detect
