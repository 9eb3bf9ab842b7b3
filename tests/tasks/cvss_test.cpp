#include "tasks/cvss.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "base/error.h"
#include "eval/benchmarks.h"
#include "test_paths.h"

namespace csq::tasks {
namespace {

struct Case {
  const char* what;
  const char* vector;
  double score;
  const char* severity;
};

// FIRST, "CVSS v3.1: Examples" (the specification's companion document): vector and base score.
const Case kSpecExamples[] = {
    {"CVE-2013-1937 phpMyAdmin reflected XSS", "AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1, "Medium"},
    {"CVE-2013-0375 MySQL stored SQL injection", "AV:N/AC:L/PR:L/UI:N/S:C/C:L/I:L/A:N", 6.4, "Medium"},
    {"CVE-2014-3566 SSLv3 POODLE", "AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:N/A:N", 3.1, "Low"},
    {"CVE-2012-1516 VMware guest-to-host escape", "AV:N/AC:L/PR:L/UI:N/S:C/C:H/I:H/A:H", 9.9, "Critical"},
    {"CVE-2009-0783 Apache Tomcat XML parser", "AV:L/AC:L/PR:H/UI:N/S:U/C:L/I:L/A:L", 4.2, "Medium"},
    {"CVE-2012-0384 Cisco IOS command injection", "AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 8.8, "High"},
    {"CVE-2015-1098 Apple iWork denial of service", "AV:L/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H", 7.8, "High"},
    {"CVE-2014-0160 OpenSSL Heartbleed", "AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N", 7.5, "High"},
    {"CVE-2014-6271 GNU Bash Shellshock", "AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8, "Critical"},
    {"CVE-2008-1447 DNS Kaminsky bug", "AV:N/AC:H/PR:N/UI:N/S:C/C:N/I:H/A:N", 6.8, "Medium"},
    {"CVE-2014-2005 Sophos Disk Encryption", "AV:P/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 6.8, "Medium"},
    {"CVE-2010-0467 Joomla directory traversal", "AV:N/AC:L/PR:N/UI:N/S:C/C:L/I:N/A:N", 5.8, "Medium"},
    {"CVE-2012-1342 Cisco ASR ACL bypass", "AV:N/AC:L/PR:N/UI:N/S:C/C:N/I:L/A:N", 5.8, "Medium"},
    {"CVE-2013-6014 Juniper proxy ARP", "AV:A/AC:L/PR:N/UI:N/S:C/C:H/I:N/A:H", 9.3, "Critical"},
    {"CVE-2014-9253 DokuWiki stored XSS", "AV:N/AC:L/PR:L/UI:R/S:C/C:L/I:L/A:N", 5.4, "Medium"},
    {"CVE-2011-1265 Microsoft Bluetooth stack", "AV:A/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 8.8, "High"},
    {"CVE-2014-2019 Apple iOS passcode bypass", "AV:P/AC:L/PR:N/UI:N/S:U/C:N/I:H/A:N", 4.6, "Medium"},
    {"CVE-2015-0970 SearchBlox CSRF", "AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H", 8.8, "High"},
    {"CVE-2014-0224 OpenSSL CCS injection", "AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:N", 7.4, "High"},
    {"CVE-2012-5376 Chrome IPC sandbox escape", "AV:N/AC:L/PR:N/UI:R/S:C/C:H/I:H/A:H", 9.6, "Critical"},
    {"CVE-2016-1645 Chrome PDFium", "AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H", 8.8, "High"},
    {"CVE-2016-0128 Badlock", "AV:N/AC:H/PR:N/UI:R/S:U/C:H/I:H/A:N", 6.8, "Medium"},
};

// NVD's published CVSS 3.x base scores for well-known CVEs.
const Case kNvd[] = {
    {"CVE-2021-44228 Log4Shell", "AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0, "Critical"},
    {"CVE-2017-0144 EternalBlue", "AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H", 8.1, "High"},
    {"CVE-2021-34527 PrintNightmare", "AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 8.8, "High"},
    {"CVE-2021-3156 sudo Baron Samedit", "AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 7.8, "High"},
    {"CVE-2019-5736 runc container escape", "AV:L/AC:L/PR:N/UI:R/S:C/C:H/I:H/A:H", 8.6, "High"},
    {"CVE-2023-44487 HTTP/2 Rapid Reset", "AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", 7.5, "High"},
};

TEST(Cvss, SpecificationExamples) {
  for (const auto& c : kSpecExamples) {
    const CvssVector v = parse_cvss(std::string("CVSS:3.1/") + c.vector);
    EXPECT_DOUBLE_EQ(cvss_base_score(v), c.score) << c.what;
    EXPECT_STREQ(cvss_severity(cvss_base_score(v)), c.severity) << c.what;
  }
}

TEST(Cvss, NvdSpotChecks) {
  for (const auto& c : kNvd) EXPECT_DOUBLE_EQ(cvss_base_score(parse_cvss(std::string("CVSS:3.1/") + c.vector)), c.score) << c.what;
}

TEST(Cvss, RoundupIsImmuneToFloatingPointNoise) {
  // Appendix A: Roundup(4.02) = 4.1, Roundup(4.00) = 4.0; a value a hair above 4.0 that only
  // floating-point error produced must not become 4.1 as a naive ceil would make it.
  EXPECT_DOUBLE_EQ(cvss_roundup(4.02), 4.1);
  EXPECT_DOUBLE_EQ(cvss_roundup(4.00), 4.0);
  EXPECT_DOUBLE_EQ(cvss_roundup(4.000000000000001), 4.0);
  EXPECT_DOUBLE_EQ(cvss_roundup(0.1 + 0.2), 0.3);
  EXPECT_DOUBLE_EQ(cvss_roundup(9.99), 10.0);
}

TEST(Cvss, SeverityBands) {
  EXPECT_STREQ(cvss_severity(0.0), "None");
  EXPECT_STREQ(cvss_severity(0.1), "Low");
  EXPECT_STREQ(cvss_severity(3.9), "Low");
  EXPECT_STREQ(cvss_severity(4.0), "Medium");
  EXPECT_STREQ(cvss_severity(6.9), "Medium");
  EXPECT_STREQ(cvss_severity(7.0), "High");
  EXPECT_STREQ(cvss_severity(8.9), "High");
  EXPECT_STREQ(cvss_severity(9.0), "Critical");
  EXPECT_DOUBLE_EQ(cvss_base_score(parse_cvss("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N")), 0.0);
}

TEST(Cvss, ParsesBothVersionsAnyOrderAndIgnoresTemporalMetrics) {
  const CvssVector a = parse_cvss("CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H");
  EXPECT_EQ(a.version, CvssVersion::V30);
  EXPECT_EQ(a.str(), "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H");
  const CvssVector b = parse_cvss("CVSS:3.1/A:H/I:H/C:H/S:U/UI:N/PR:N/AC:L/AV:N/E:P/RL:O/MAV:L");
  EXPECT_TRUE(a.same_base(b));
  EXPECT_EQ(b.str(), "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H");
  EXPECT_DOUBLE_EQ(cvss_base_score(b), 9.8);
}

void expect_rejected(const std::string& vector, const std::string& fragment) {
  try {
    parse_cvss(vector);
    ADD_FAILURE() << vector << " was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::BadInput);
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(Cvss, StrictErrorsNameTheMetric) {
  expect_rejected("AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "must start with CVSS:3.1/");
  expect_rejected("CVSS:2.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "must start with");
  expect_rejected("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H", "base metric A is missing");
  expect_rejected("CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "metric AV has value 'X'");
  expect_rejected("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/AV:L", "metric AV appears twice");
  expect_rejected("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/Q:1", "unknown metric 'Q'");
  expect_rejected("CVSS:3.1/av:n/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "unknown metric 'av'");
  expect_rejected("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:HH", "metric A has value 'HH'");
  expect_rejected("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/", "is not METRIC:VALUE");
  std::string why;
  EXPECT_FALSE(try_parse_cvss("CVSS:3.1/AV:N", nullptr, &why));
  EXPECT_NE(why.find("AC is missing"), std::string::npos) << why;
}

TEST(Cvss, EveryGoldVectorOfCtiVsp) {
  if (!std::filesystem::exists(test::data_dir() + "/cti-bench/cti-vsp.tsv"))
    GTEST_SKIP() << "benchmark data not found at " << test::data_dir();
  const eval::Benchmark b = eval::load_benchmark("cti-vsp", test::data_dir());
  ASSERT_EQ(b.items.size(), 1000u);
  for (const auto& item : b.items) {
    const CvssVector v = parse_cvss(item.gold);
    EXPECT_EQ(v.version, CvssVersion::V31) << item.source;
    const double s = cvss_base_score(v);
    ASSERT_GE(s, 0.0) << item.gold;
    ASSERT_LE(s, 10.0) << item.gold;
    EXPECT_DOUBLE_EQ(s * 10, std::round(s * 10)) << item.gold;  // one decimal place
    const bool no_impact = v.c == 'N' && v.i == 'N' && v.a == 'N';
    EXPECT_EQ(s == 0.0, no_impact) << item.gold;
    const std::string sev = cvss_severity(s);
    const std::string band = s == 0 ? "None" : s < 4 ? "Low" : s < 7 ? "Medium" : s < 9 ? "High" : "Critical";
    EXPECT_EQ(sev, band) << item.gold;
  }
}

}  // namespace
}  // namespace csq::tasks
