// Each value modifier of the Sigma modifier appendix (v2.1) and the value rules of the
// specification (wildcards, escapes, lists, null, keywords), each with events that must match
// and near misses that must not.
#include <gtest/gtest.h>

#include "detect/value.h"
#include "detect_helpers.h"

namespace csq::detect::test {
namespace {

TEST(DetectValues, ExactMatchIsCaseInsensitiveAndWhole) {
  const std::string d = "    sel:\n        Image: 'C:\\Windows\\System32\\cmd.exe'\n    condition: sel\n";
  EXPECT_TRUE(fires(d, R"({"Image": "c:\\windows\\system32\\CMD.EXE"})"));
  EXPECT_FALSE(fires(d, R"({"Image": "c:\\windows\\system32\\cmd.exe2"})"));
  EXPECT_FALSE(fires(d, R"({"Image2": "c:\\windows\\system32\\cmd.exe"})"));
}

TEST(DetectValues, WildcardsStarAndQuestionMark) {
  // Spec: `prog?.exe`, `antivirus_V*.exe`.
  const std::string d = "    sel:\n        Image:\n            - 'prog?.exe'\n            - 'antivirus_V*.exe'\n"
                        "    condition: sel\n";
  EXPECT_TRUE(fires(d, R"({"Image": "progA.exe"})"));
  EXPECT_TRUE(fires(d, R"({"Image": "antivirus_V21.2.1.exe"})"));
  EXPECT_TRUE(fires(d, R"({"Image": "antivirus_V.exe"})"));
  EXPECT_FALSE(fires(d, R"({"Image": "prog.exe"})"));
  EXPECT_FALSE(fires(d, R"({"Image": "progAB.exe"})"));
  EXPECT_FALSE(fires(d, R"({"Image": "xantivirus_V1.exe"})"));
}

TEST(DetectValues, EscapedWildcardsAreLiteral) {
  // `\*` is a star, `\\*` a backslash then any text, `\\\*` a backslash then a star.
  EXPECT_TRUE(fires("    sel:\n        F: 'a\\*b'\n    condition: sel\n", R"({"F": "a*b"})"));
  EXPECT_FALSE(fires("    sel:\n        F: 'a\\*b'\n    condition: sel\n", R"({"F": "axxb"})"));
  EXPECT_TRUE(fires("    sel:\n        F: 'a\\\\*'\n    condition: sel\n", R"({"F": "a\\anything"})"));
  EXPECT_FALSE(fires("    sel:\n        F: 'a\\\\*'\n    condition: sel\n", R"({"F": "ab"})"));
  EXPECT_TRUE(fires("    sel:\n        F: 'a\\\\\\*'\n    condition: sel\n", R"({"F": "a\\*"})"));
  EXPECT_FALSE(fires("    sel:\n        F: 'a\\\\\\*'\n    condition: sel\n", R"({"F": "a\\x"})"));
  // A plain backslash before another character stays one backslash.
  EXPECT_TRUE(fires("    sel:\n        F: 'C:\\Temp'\n    condition: sel\n", R"({"F": "C:\\Temp"})"));
}

TEST(DetectModifiers, ContainsStartswithEndswith) {
  const std::string c = "    sel:\n        CommandLine|contains: ' -enc '\n    condition: sel\n";
  EXPECT_TRUE(fires(c, R"({"CommandLine": "powershell -ENC abc"})"));
  EXPECT_FALSE(fires(c, R"({"CommandLine": "powershell -encx abc"})"));
  const std::string s = "    sel:\n        Image|startswith: 'C:\\Users\\'\n    condition: sel\n";
  EXPECT_TRUE(fires(s, R"({"Image": "c:\\users\\bob\\a.exe"})"));
  EXPECT_FALSE(fires(s, R"({"Image": "D:\\c:\\users\\a.exe"})"));
  const std::string e = "    sel:\n        Image|endswith: '\\cmd.exe'\n    condition: sel\n";
  EXPECT_TRUE(fires(e, R"({"Image": "C:\\Windows\\System32\\cmd.exe"})"));
  EXPECT_FALSE(fires(e, R"({"Image": "C:\\Windows\\System32\\cmd.exe.bak"})"));
  EXPECT_FALSE(fires(e, R"({"Image": "C:\\Windows\\System32\\xcmd.exe"})"));
}

TEST(DetectModifiers, AllTurnsTheListIntoAnd) {
  const std::string d =
      "    sel:\n        CommandLine|contains|all:\n            - 'net'\n            - ' user '\n            - '/add'\n"
      "    condition: sel\n";
  EXPECT_TRUE(fires(d, R"({"CommandLine": "NET user bob pw /ADD"})"));
  EXPECT_FALSE(fires(d, R"({"CommandLine": "net user bob"})"));
  // Without `all` any value is enough.
  EXPECT_TRUE(fires("    sel:\n        F|contains:\n            - x\n            - y\n    condition: sel\n",
                    R"({"F": "only y"})"));
}

TEST(DetectModifiers, CasedMatchesCaseSensitively) {
  const std::string d = "    sel:\n        F|cased: 'CamelCase'\n    condition: sel\n";
  EXPECT_TRUE(fires(d, R"({"F": "CamelCase"})"));
  EXPECT_FALSE(fires(d, R"({"F": "camelcase"})"));
  EXPECT_TRUE(fires("    sel:\n        F|contains|cased: 'Mimi'\n    condition: sel\n", R"({"F": "xMimikatz"})"));
  EXPECT_FALSE(fires("    sel:\n        F|contains|cased: 'Mimi'\n    condition: sel\n", R"({"F": "xmimikatz"})"));
}

TEST(DetectModifiers, ExistsChecksPresenceOnly) {
  // Spec example: PasswordLastSet|exists: true, whatever its value, even empty.
  const std::string d = "    sel:\n        EventID: 4738\n        PasswordLastSet|exists: true\n    condition: sel\n";
  EXPECT_TRUE(fires(d, R"({"EventID": 4738, "PasswordLastSet": ""})"));
  EXPECT_FALSE(fires(d, R"({"EventID": 4738})"));
  const std::string absent = "    sel:\n        Foo|exists: false\n    condition: sel\n";
  EXPECT_TRUE(fires(absent, R"({"Bar": 1})"));
  EXPECT_FALSE(fires(absent, R"({"Foo": null})"));
}

TEST(DetectModifiers, NeqMatchesOtherValues) {
  const std::string d = "    sel:\n        EventID: 4625\n        LogonType|neq: 3\n    condition: sel\n";
  EXPECT_TRUE(fires(d, R"({"EventID": 4625, "LogonType": 2})"));
  EXPECT_FALSE(fires(d, R"({"EventID": 4625, "LogonType": 3})"));
  const std::string list = "    sel:\n        Status|neq:\n            - a\n            - b\n    condition: sel\n";
  EXPECT_TRUE(fires(list, R"({"Status": "c"})"));
  EXPECT_FALSE(fires(list, R"({"Status": "B"})"));
}

TEST(DetectModifiers, RegexIsCaseSensitiveUnlessI) {
  const std::string d = "    sel:\n        CommandLine|re: '\\s-[Ee]nc(odedcommand)?\\s'\n    condition: sel\n";
  EXPECT_TRUE(fires(d, R"({"CommandLine": "powershell -enc AAA"})"));
  EXPECT_TRUE(fires(d, R"({"CommandLine": "powershell -Encodedcommand AAA"})"));
  EXPECT_FALSE(fires(d, R"({"CommandLine": "powershell -ENC AAA"})"));
  const std::string i = "    sel:\n        F|re|i: '^abc$'\n    condition: sel\n";
  EXPECT_TRUE(fires(i, R"({"F": "ABC"})"));
  EXPECT_FALSE(fires(i, R"({"F": "ABCD"})"));
}

TEST(DetectModifiers, RegexMultilineAndDotAll) {
  const std::string m = "    sel:\n        F|re|m: '^second$'\n    condition: sel\n";
  EXPECT_TRUE(fires(m, R"({"F": "first\nsecond\nthird"})"));
  EXPECT_FALSE(fires("    sel:\n        F|re: '^second$'\n    condition: sel\n", R"({"F": "first\nsecond\nthird"})"));
  const std::string s = "    sel:\n        F|re|s: 'a.b'\n    condition: sel\n";
  EXPECT_TRUE(fires(s, R"({"F": "a\nb"})"));
  EXPECT_FALSE(fires("    sel:\n        F|re: 'a.b'\n    condition: sel\n", R"({"F": "a\nb"})"));
}

TEST(DetectModifiers, RegexThatRe2RefusesSkipsTheRule) {
  // Backreferences and look-arounds have no linear-time match; RE2 refuses them.
  EXPECT_NE(load_problem(rule_with("    sel:\n        F|re: '(a)\\1'\n    condition: sel\n"))
                .find("regular expression not accepted by RE2"),
            std::string::npos);
  EXPECT_NE(load_problem(rule_with("    sel:\n        F|re: 'a(?=b)'\n    condition: sel\n")), "");
  EXPECT_NE(load_problem(rule_with("    sel:\n        F|re: '(unclosed'\n    condition: sel\n")), "");
}

TEST(DetectModifiers, WindashCoversEveryDash) {
  const std::string d = "    sel:\n        CommandLine|contains|windash: ' -exec bypass'\n    condition: sel\n";
  EXPECT_TRUE(fires(d, R"({"CommandLine": "powershell -exec bypass"})"));
  EXPECT_TRUE(fires(d, R"({"CommandLine": "powershell /exec bypass"})"));
  EXPECT_TRUE(fires(d, "{\"CommandLine\": \"powershell \u2013exec bypass\"}"));
  EXPECT_TRUE(fires(d, "{\"CommandLine\": \"powershell \u2014exec bypass\"}"));
  EXPECT_TRUE(fires(d, "{\"CommandLine\": \"powershell \u2015exec bypass\"}"));
  EXPECT_FALSE(fires(d, R"({"CommandLine": "powershell exec bypass"})"));
  EXPECT_FALSE(fires(d, R"({"CommandLine": "powershell +exec bypass"})"));
  // Two flags: every combination.
  EXPECT_EQ(windash_variants("-a -b").size(), 25u);
  // A dash inside a word is not a flag.
  EXPECT_EQ(windash_variants("Get-Process").size(), 1u);
}

TEST(DetectModifiers, Base64AndBase64Offset) {
  EXPECT_EQ(base64_encode("/bin/sh"), "L2Jpbi9zaA==");
  const std::string d = "    sel:\n        CommandLine|base64: 'http://'\n    condition: sel\n";
  EXPECT_TRUE(fires(d, R"({"CommandLine": "aHR0cDovLw=="})"));
  EXPECT_FALSE(fires(d, R"({"CommandLine": "xaHR0cDovLw=="})"));
  // base64offset: the value at each of the three byte offsets inside a longer encoded text.
  const auto v = base64offset_variants("http://");
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(v[0], "aHR0cDovL");
  EXPECT_EQ(v[1], "h0dHA6Ly");
  EXPECT_EQ(v[2], "odHRwOi8v");
  const std::string o = "    sel:\n        CommandLine|base64offset|contains: 'http://'\n    condition: sel\n";
  for (const std::string prefix : {"", "a", "ab"}) {
    const std::string enc = base64_encode(prefix + "http://evil.example/");
    EXPECT_TRUE(fires(o, "{\"CommandLine\": \"powershell -e " + enc + "\"}")) << prefix;
  }
  EXPECT_FALSE(fires(o, "{\"CommandLine\": \"" + base64_encode("https://evil") + "\"}"));
}

TEST(DetectModifiers, Utf16EncodingsBeforeBase64) {
  // Spec: cmd → 63 00 6d 00 64 00 (le), 00 63 00 6d 00 64 (be), FF FE 63 00 ... (utf16).
  EXPECT_EQ(utf16_encode("cmd", false, false), std::string("c\0m\0d\0", 6));
  EXPECT_EQ(utf16_encode("cmd", true, false), std::string("\0c\0m\0d", 6));
  EXPECT_EQ(utf16_encode("cmd", false, true), std::string("\xFF\xFE" "c\0m\0d\0", 8));
  // PowerShell's -EncodedCommand is base64 of UTF-16LE.
  const std::string d = "    sel:\n        CommandLine|wide|base64offset|contains: 'Invoke-Mimikatz'\n    condition: sel\n";
  const std::string enc = base64_encode(utf16_encode("IEX (Invoke-Mimikatz -DumpCreds)", false, false));
  EXPECT_TRUE(fires(d, "{\"CommandLine\": \"powershell -enc " + enc + "\"}"));
  EXPECT_FALSE(fires(d, "{\"CommandLine\": \"powershell -enc " + base64_encode("IEX (Invoke-Mimikatz)") + "\"}"));
  const std::string be = "    sel:\n        F|utf16be|base64: 'cmd'\n    condition: sel\n";
  EXPECT_TRUE(fires(be, "{\"F\": \"" + base64_encode(std::string("\0c\0m\0d", 6)) + "\"}"));
  EXPECT_FALSE(fires(be, "{\"F\": \"" + base64_encode(std::string("c\0m\0d\0", 6)) + "\"}"));
  const std::string bom = "    sel:\n        F|utf16|base64: 'cmd'\n    condition: sel\n";
  EXPECT_TRUE(fires(bom, "{\"F\": \"" + base64_encode(std::string("\xFF\xFE" "c\0m\0d\0", 8)) + "\"}"));
}

TEST(DetectModifiers, CidrV4AndV6) {
  const std::string d = "    sel:\n        DestinationIp|cidr:\n            - 10.0.0.0/8\n            - 'fe80::/10'\n"
                        "    condition: sel\n";
  EXPECT_TRUE(fires(d, R"({"DestinationIp": "10.20.30.40"})"));
  EXPECT_FALSE(fires(d, R"({"DestinationIp": "11.0.0.1"})"));
  EXPECT_TRUE(fires(d, R"({"DestinationIp": "fe80::1"})"));
  EXPECT_FALSE(fires(d, R"({"DestinationIp": "fec0::1"})"));
  EXPECT_FALSE(fires(d, R"({"DestinationIp": "not an ip"})"));
  EXPECT_NE(load_problem(rule_with("    sel:\n        Ip|cidr: 10.0.0.0/33\n    condition: sel\n")), "");
}

TEST(DetectModifiers, NumericComparisons) {
  auto d = [](const char* mod) {
    return std::string("    sel:\n        Count|") + mod + ": 10\n    condition: sel\n";
  };
  EXPECT_TRUE(fires(d("lt"), R"({"Count": 9})"));
  EXPECT_FALSE(fires(d("lt"), R"({"Count": 10})"));
  EXPECT_TRUE(fires(d("lte"), R"({"Count": "10"})"));
  EXPECT_FALSE(fires(d("lte"), R"({"Count": 11})"));
  EXPECT_TRUE(fires(d("gt"), R"({"Count": "0x20"})"));
  EXPECT_FALSE(fires(d("gt"), R"({"Count": 10})"));
  EXPECT_TRUE(fires(d("gte"), R"({"Count": 10.0})"));
  EXPECT_FALSE(fires(d("gte"), R"({"Count": "nine"})"));
  EXPECT_NE(load_problem(rule_with("    sel:\n        Count|gt: many\n    condition: sel\n")), "");
}

TEST(DetectModifiers, TimeParts) {
  const std::string d = "    sel:\n        UtcTime|hour|gte: 22\n    condition: sel\n";
  EXPECT_TRUE(fires(d, R"({"UtcTime": "2024-03-01 23:10:00.000"})"));
  EXPECT_FALSE(fires(d, R"({"UtcTime": "2024-03-01 21:59:59.000"})"));
  EXPECT_TRUE(fires("    sel:\n        T|month: 3\n    condition: sel\n", R"({"T": "2024-03-01T00:00:00Z"})"));
  EXPECT_FALSE(fires("    sel:\n        T|month: 3\n    condition: sel\n", R"({"T": "2024-04-01T00:00:00Z"})"));
  EXPECT_EQ(extract_time_part("2021-01-03", TimePart::Week), 53);  // ISO week of 2020
  EXPECT_EQ(extract_time_part("2024-12-30", TimePart::Week), 1);
}

TEST(DetectModifiers, FieldrefComparesTwoFields) {
  const std::string d = "    sel:\n        TargetUserName|fieldref: SubjectUserName\n    condition: sel\n";
  EXPECT_TRUE(fires(d, R"({"TargetUserName": "Bob", "SubjectUserName": "bob"})"));
  EXPECT_FALSE(fires(d, R"({"TargetUserName": "Bob", "SubjectUserName": "alice"})"));
  EXPECT_FALSE(fires(d, R"({"TargetUserName": "Bob"})"));
  const std::string neq = "    sel:\n        A|fieldref|neq: B\n    condition: sel\n";
  EXPECT_TRUE(fires(neq, R"({"A": "x", "B": "y"})"));
  EXPECT_FALSE(fires(neq, R"({"A": "x", "B": "x"})"));
  const std::string c = "    sel:\n        CommandLine|fieldref|contains: Image\n    condition: sel\n";
  EXPECT_TRUE(fires(c, R"({"CommandLine": "\"C:\\a.exe\" /x", "Image": "C:\\a.exe"})"));
}

TEST(DetectModifiers, ExpandWithPlaceholderFile) {
  Placeholders ph{{"Administrators", {"admin*", "root"}}};
  LoadOptions lo;
  lo.placeholders = &ph;
  const std::string yaml = rule_with("    sel:\n        User|expand: '%Administrators%'\n    condition: sel\n");
  const RuleSet set = rules_from(yaml, lo);
  EXPECT_TRUE(fires(set, R"({"User": "Administrator"})"));
  EXPECT_TRUE(fires(set, R"({"User": "ROOT"})"));
  EXPECT_FALSE(fires(set, R"({"User": "bob"})"));
  // Without the placeholder file, or with an unknown name, the rule is refused.
  EXPECT_NE(load_problem(yaml).find("placeholder '%Administrators%'"), std::string::npos);
  Placeholders other{{"Servers", {"srv*"}}};
  LoadOptions lo2;
  lo2.placeholders = &other;
  RuleSet bad;
  load_rules_text(yaml, "x.yml", lo2, bad);
  ASSERT_EQ(bad.problems.size(), 1u);
  EXPECT_NE(bad.problems[0].reason.find("not defined"), std::string::npos);
  // Without expand, %name% is plain text.
  EXPECT_TRUE(fires("    sel:\n        F: '%name%'\n    condition: sel\n", R"({"F": "%NAME%"})"));
}

TEST(DetectValues, NullMeansAbsentOrEmpty) {
  // Spec example: EventID 4738 and not PasswordLastSet: null.
  const std::string d =
      "    selection:\n        EventID: 4738\n    filter:\n        PasswordLastSet: null\n"
      "    condition: selection and not filter\n";
  EXPECT_TRUE(fires(d, R"({"EventID": 4738, "PasswordLastSet": "2024-01-01"})"));
  EXPECT_FALSE(fires(d, R"({"EventID": 4738})"));
  EXPECT_FALSE(fires(d, R"({"EventID": 4738, "PasswordLastSet": ""})"));
  EXPECT_FALSE(fires(d, R"({"EventID": 4738, "PasswordLastSet": null})"));
}

TEST(DetectValues, EmptyStringMatchesEmptyValueOnly) {
  const std::string d = "    sel:\n        F: ''\n    condition: sel\n";
  EXPECT_TRUE(fires(d, R"({"F": ""})"));
  EXPECT_FALSE(fires(d, R"({"F": "x"})"));
}

TEST(DetectValues, KeywordsSearchEveryField) {
  // Spec: keyword lists (OR) and '|all' (AND) over the whole event.
  const std::string any = "    keywords:\n        - 'EVILSERVICE'\n        - 'svchost.exe -n evil'\n    condition: keywords\n";
  EXPECT_TRUE(fires(any, R"({"Message": "The service evilservice was installed"})"));
  EXPECT_TRUE(fires(any, R"({"A": 1, "B": "x svchost.exe -n evil y"})"));
  EXPECT_FALSE(fires(any, R"({"Message": "svchost.exe -n good"})"));
  const std::string all = "    keywords_cmdlet:\n        '|all':\n            - 'OabVirtualDirectory'\n"
                          "            - ' -ExternalUrl '\n    condition: keywords_cmdlet\n";
  EXPECT_TRUE(fires(all, R"({"Payload": "Set-OabVirtualDirectory -ExternalUrl http://x"})"));
  EXPECT_FALSE(fires(all, R"({"Payload": "Set-OabVirtualDirectory -InternalUrl http://x"})"));
}

TEST(DetectValues, ListOfMapsIsOr) {
  // Spec: Image endswith example.exe OR Description contains Test executable.
  const std::string d = "    selection:\n        - Image|endswith: '\\example.exe'\n"
                        "        - Description|contains: 'Test executable'\n    condition: selection\n";
  EXPECT_TRUE(fires(d, R"({"Image": "C:\\example.exe"})"));
  EXPECT_TRUE(fires(d, R"({"Description": "a test executable here"})"));
  EXPECT_FALSE(fires(d, R"({"Image": "C:\\example.exe.txt", "Description": "tests"})"));
}

TEST(DetectValues, MapIsAndListValuesAreOr) {
  // Spec: EventLog Security and (EventID 517 or 1102).
  const std::string d = "    selection:\n        EventLog: Security\n        EventID:\n            - 517\n"
                        "            - 1102\n    condition: selection\n";
  EXPECT_TRUE(fires(d, R"({"EventLog": "Security", "EventID": 1102})"));
  EXPECT_TRUE(fires(d, R"({"EventLog": "security", "EventID": "517"})"));
  EXPECT_FALSE(fires(d, R"({"EventLog": "System", "EventID": 1102})"));
  EXPECT_FALSE(fires(d, R"({"EventLog": "Security", "EventID": 1103})"));
}

TEST(DetectModifiers, UnknownModifierSkipsOnlyThatRule) {
  RuleSet set;
  load_rules_text(rule_with("    sel:\n        F|containz: x\n    condition: sel\n") + "---\n" +
                      rule_with("    sel:\n        F: x\n    condition: sel\n"),
                  "two.yml", {}, set);
  ASSERT_EQ(set.problems.size(), 1u);
  EXPECT_EQ(set.problems[0].reason, "unknown modifier 'containz'");
  EXPECT_EQ(set.problems[0].file, "two.yml");
  EXPECT_EQ(set.problems[0].line, 11);
  EXPECT_EQ(set.rules.size(), 1u);
}

TEST(DetectModifiers, ChainedTransformationsAreBoundedNotExponential) {
  // Each windash takes 625 variants of four flags; chained, they would multiply past any memory.
  RuleSet set;
  load_rules_text(rule_with("    sel:\n        F|windash|windash|windash|windash: '-a -b -c -d'\n"
                            "    condition: sel\n"),
                  "chain.yml", {}, set);
  ASSERT_EQ(set.problems.size(), 1u);
  EXPECT_EQ(set.problems[0].reason, "value modifiers produce more than 4096 values");
  EXPECT_TRUE(set.rules.empty());
}

}  // namespace
}  // namespace csq::detect::test
