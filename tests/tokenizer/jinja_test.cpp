// The Jinja interpreter against outputs of Jinja2 3.1 configured as transformers does
// (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols, its tojson).
#include <gtest/gtest.h>

#include <string>

#include "base/error.h"
#include "tokenizer/jinja/template.h"

namespace csq::jinja {
namespace {

using ojson = nlohmann::ordered_json;

const ojson& context() {
  static const ojson ctx = ojson::parse(R"({
    "x": [1, 2, 3], "d": {"b": 1, "a": [1, "x"], "c": null}, "s": "Hello World", "n": null, "t": true,
    "f": 1.5, "u8": "héllo wörld ß",
    "msgs": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo", "extra": 1}]})");
  return ctx;
}

std::string render(const std::string& source, const ojson& ctx = context()) {
  return Template(source, "test.jinja").render(ctx);
}

// Renders and returns the error message; fails the test if rendering succeeds.
std::string render_error(const std::string& source, Limits limits = {}) {
  try {
    Template(source, "test.jinja", limits).render(context());
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::BadInput);
    return e.what();
  }
  ADD_FAILURE() << "expected an error from: " << source;
  return "";
}

TEST(JinjaExpr, Arithmetic) {
  EXPECT_EQ(render("{{ 1 + 2 }}|{{ 7 // 2 }}|{{ -7 // 2 }}|{{ -7 % 3 }}|{{ 7 / 2 }}|{{ 2 ** 10 }}|{{ 1.5 * 2 }}|"
                   "{{ 10 / 4 }}|{{ 1e-5 }}|{{ 1/3 }}|{{ 1e20 }}|{{ 123456789012345678.0 }}"),
            "3|3|-4|2|3.5|1024|3.0|2.5|1e-05|0.3333333333333333|1e+20|1.2345678901234568e+17");
  EXPECT_EQ(render("{{ 10 - 3 - 2 }}|{{ 2 ** 3 ** 2 }}|{{ -2 ** 2 }}|{{ (1 + 2) * 3 }}|{{ 1 + 2 * 3 }}|"
                   "{{ not 1 == 2 }}|{{ 5 // 2 * 2 }}|{{ 0x1F }}|{{ 0b101 }}|{{ 0o17 }}|{{ 1_000 }}|{{ 1.5e3 }}|{{ 2E-3 }}"),
            "5|64|4|9|7|True|4|31|5|15|1000|1500.0|0.002");
  EXPECT_EQ(render("{{ -0.0 }}|{{ 100.0 }}|{{ 1e16 }}|{{ 1e15 }}|{{ 0.0001 }}|{{ 0.00001 }}"),
            "-0.0|100.0|1e+16|1000000000000000.0|0.0001|1e-05");
}

TEST(JinjaExpr, StringsListsConcat) {
  EXPECT_EQ(render("{{ \"a\" ~ 1 ~ none ~ true }}|{{ \"ab\" * 3 }}|{{ [1] * 2 }}|{{ [1,2] + [3] }}"),
            "a1NoneTrue|ababab|[1, 1]|[1, 2, 3]");
  EXPECT_EQ(render(R"({{ "a\tb\\n\x41\u00e9" }}|{{ 'it\'s' }}|{{ "adj" "acent" }})"), "a\tb\\nAé|it's|adjacent");
}

TEST(JinjaExpr, PythonReprOfValues) {
  EXPECT_EQ(render(R"({{ d }}|{{ x }}|{{ n }}|{{ t }}|{{ (1,) }}|{{ (1,2) }}|{{ ["it's", 'say "hi"', "both ' \""] }}|{{ {"k": [1, {"z": none}]} }})"),
            R"({'b': 1, 'a': [1, 'x'], 'c': None}|[1, 2, 3]|None|True|(1,)|(1, 2)|["it's", 'say "hi"', 'both \' "']|{'k': [1, {'z': None}]})");
}

TEST(JinjaExpr, IndexingAndSlicing) {
  EXPECT_EQ(render("{{ s[::-1] }}|{{ s[1:3] }}|{{ s[-1] }}|{{ x[-1] }}|{{ x[1:] }}|{{ x[::2] }}|{{ x[10] }}|"
                   "{{ u8[1] }}|{{ u8[::-1] }}|{{ u8|length }}"),
            "dlroW olleH|el|d|3|[2, 3]|[1, 3]||é|ß dlröw olléh|13");
  EXPECT_EQ(render(R"({{ d.get("b") }}|{{ d.get("zz", 7) }}|{{ d.get("zz") }}|{{ d.keys()|list }}|{{ d.values()|list }}|{{ d["a"][1] }}|{{ d.a.1 }}|{{ msgs[0].role }}|{{ msgs[0]["content"] }})"),
            "1|7|None|['b', 'a', 'c']|[1, [1, 'x'], None]|x|x|user|hi");
}

TEST(JinjaExpr, LogicComparisonsTernary) {
  EXPECT_EQ(render("{{ 1 if t else 2 }}|{{ 1 if n else 2 }}|{{ \"yes\" if n }}|{{ t and 5 }}|{{ n or \"dflt\" }}|"
                   "{{ not t }}|{{ 1 < 2 < 3 }}|{{ 3 > 2 > 2 }}"),
            "1|2||5|dflt|False|True|False");
  EXPECT_EQ(render(R"({{ 1 == 1.0 }}|{{ true == 1 }}|{{ [1,2] == [1,2] }}|{{ (1,2) == [1,2] }}|{{ {"a":1} == {"a":1} }}|{{ "1" == 1 }})"),
            "True|True|True|False|True|False");
  EXPECT_EQ(render(R"({{ 1 in x }}|{{ 5 not in x }}|{{ "ell" in s }}|{{ "b" in d }}|{{ "zz" in d }})"),
            "True|True|True|True|False");
}

TEST(JinjaExpr, Tests) {
  EXPECT_EQ(render("{{ undefinedvar is defined }}|{{ undefinedvar is undefined }}|{{ n is none }}|{{ s is string }}|"
                   "{{ d is mapping }}|{{ x is iterable }}|{{ 1 is number }}|{{ t is number }}|{{ t is true }}|"
                   "{{ 1 is true }}|{{ f is float }}|{{ 1 is integer }}|{{ x is sequence }}|{{ 3 is odd }}|"
                   "{{ 4 is even }}|{{ 9 is divisibleby 3 }}|{{ 1 is eq 1 }}|{{ s is not none }}|{{ t is false }}"),
            "False|True|True|True|True|True|True|True|True|False|True|True|True|True|True|True|True|True|False");
}

TEST(JinjaExpr, UndefinedSemantics) {
  EXPECT_EQ(render(R"({{ undefinedvar }}|{{ undefinedvar|default("dv") }}|{{ ""|default("dv") }}|{{ ""|default("dv", true) }}|{{ n|d("x") }}|{{ undefinedvar|length }}|{% for q in undefinedvar %}x{% endfor %}|{{ undefinedvar == none }}|{{ d.zz is defined }}|{{ d.a is defined }}|{{ none.foo }})"),
            "|dv||dv|None|0||False|False|True|");
  EXPECT_EQ(render("{{ undefinedvar ~ 'x' }}"), "x");
}

TEST(JinjaFilters, StringFilters) {
  EXPECT_EQ(render(R"J({{ u8|upper }}|{{ u8.upper() }}|{{ "ǅ"|lower }}|{{ u8|title }}|{{ "hello-world (x)"|title }}|{{ "it's a test"|title }}|{{ "it's a test".title() }})J"),
            "HÉLLO WÖRLD SS|HÉLLO WÖRLD SS|ǆ|Héllo Wörld SS|Hello-World (X)|It's A Test|It'S A Test");
  EXPECT_EQ(render(R"({{ " x "|trim }}|{{ "xxhixx"|trim("x") }}|{{ 3.7|int }}|{{ "42"|int }}|{{ "4.5"|int }}|{{ "abc"|int }}|{{ "3.5"|float }}|{{ 3|float }}|{{ 5|string }}|{{ -3|abs }}|{{ "a<b>&'\""|e }}|{{ "x"|safe }}|{{ 2.5|round }}|{{ 3.14159|round(2) }}|{{ 2.1|round(0, "ceil") }})"),
            "x|hi|3|42|4|0|3.5|3.0|5|3|a&lt;b&gt;&amp;&#39;&#34;|x|2.0|3.14|3.0");
  EXPECT_EQ(render(R"({{ "hello"|capitalize }}|{{ "a b"|replace(" ", "_") }}|{{ "ab"|replace("", "-") }})"),
            "Hello|a_b|-a-b-");
}

TEST(JinjaFilters, SequenceFilters) {
  EXPECT_EQ(render(R"({{ x|join(",") }}|{{ x|first }}|{{ x|last }}|{{ x|length }}|{{ d|count }}|{{ x|sum }}|{{ x|reverse|list }}|{{ "abc"|list }}|{{ [3,1,2]|sort }}|{{ [3,1,2]|sort(reverse=true) }}|{{ ["b","A","c"]|sort }}|{{ [1,2,1,3]|unique|list }}|{{ x|max }}|{{ x|min }})"),
            "1,2,3|1|3|3|3|6|[3, 2, 1]|['a', 'b', 'c']|[1, 2, 3]|[3, 2, 1]|['A', 'b', 'c']|[1, 2, 3]|3|1");
  EXPECT_EQ(render(R"({{ msgs|selectattr("role", "equalto", "user")|list }}|{{ msgs|rejectattr("role", "equalto", "user")|map(attribute="content")|list }}|{{ msgs|map(attribute="role")|join("/") }}|{{ x|select("odd")|list }}|{{ x|reject("odd")|list }}|{{ msgs|selectattr("extra")|list|length }}|{{ ["a","b"]|map("upper")|list }})"),
            "[{'role': 'user', 'content': 'hi'}]|['yo']|user/assistant|[1, 3]|[2]|1|['A', 'B']");
  EXPECT_EQ(render(R"({{ d|dictsort }}|{{ [1,2,3]|map("string")|join("-") }}|{{ range(3)|list }}|{{ range(1, 10, 3)|list }}|{{ dict(a=1, b=2) }})"),
            "[('a', [1, 'x']), ('b', 1), ('c', None)]|1-2-3|[0, 1, 2]|[1, 4, 7]|{'a': 1, 'b': 2}");
}

TEST(JinjaFilters, ToJsonIsPythonJsonDumps) {
  EXPECT_EQ(render(R"({{ d|tojson }}|{{ x|tojson }}|{{ "é\n\"\u0001"|tojson }}|{{ d|tojson(sort_keys=true) }}|{{ 1.0|tojson }}|{{ "é"|tojson(true) }})"),
            R"({"b": 1, "a": [1, "x"], "c": null}|[1, 2, 3]|"é\n\"\u0001"|{"a": [1, "x"], "b": 1, "c": null}|1.0|"\u00e9")");
  EXPECT_EQ(render("{{ d|tojson(indent=2) }}"), "{\n  \"b\": 1,\n  \"a\": [\n    1,\n    \"x\"\n  ],\n  \"c\": null\n}");
  EXPECT_EQ(render(R"({{ {"a": {}, "b": []}|tojson(indent=2) }}|{{ d|tojson(separators=(",", ":")) }}|{{ [1,[2,3]]|tojson(indent=0) }})"),
            "{\n  \"a\": {},\n  \"b\": []\n}|{\"b\":1,\"a\":[1,\"x\"],\"c\":null}|[\n1,\n[\n2,\n3\n]\n]");
  EXPECT_EQ(render(R"({{ t|tojson }}|{{ n|tojson }}|{{ "</script>"|tojson }}|{{ 1e100|tojson }}|{{ 0.1|tojson }})"),
            R"(true|null|"</script>"|1e+100|0.1)");
}

TEST(JinjaMethods, StringMethods) {
  EXPECT_EQ(render(R"({{ s.split() }}|{{ s.split('o') }}|{{ s.split('o', 1) }}|{{ s.rsplit('o', 1) }}|{{ "  a  b  ".split() }}|{{ "a,b,,c".split(",")[0] }}|{{ " a b c ".split(None, 1) }}|{{ " a b c ".rsplit(None, 1) }})"),
            "['Hello', 'World']|['Hell', ' W', 'rld']|['Hell', ' World']|['Hello W', 'rld']|['a', 'b']|a|['a', 'b c ']|[' a b', 'c']");
  EXPECT_EQ(render(R"({{ "  xx  ".strip() }}|{{ "--xx--".strip("-") }}|{{ "\n\nx\n".lstrip("\n") }}|{{ "xyzzy".rstrip("yz") }}|{{ s.upper() }}|{{ s.lower() }}|{{ s.replace("l", "L") }}|{{ s.replace("l", "L", 2) }}|{{ s.startswith("He") }}|{{ s.endswith(("x", "ld")) }}|{{ s.title() }}|{{ "hELLO wORLD".capitalize() }})"),
            "xx|xx|x\n|x|HELLO WORLD|hello world|HeLLo WorLd|HeLLo World|True|True|Hello World|Hello world");
  EXPECT_EQ(render(R"({{ "x".join(["a", "b"]) }}|{{ s.find("o") }}|{{ s.count("l") }}|{{ "a\nb\r\nc".splitlines() }}|{{ "123".isdigit() }}|{{ x.index(2) }})"),
            "axb|4|3|['a', 'b', 'c']|True|1");
}

TEST(JinjaStatements, ForLoopVariables) {
  EXPECT_EQ(render("{% for i in x %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}"
                   "{{ loop.revindex }}{{ loop.revindex0 }};{% endfor %}"),
            "10TrueFalse332;21FalseFalse321;32FalseTrue310;");
  EXPECT_EQ(render("{% for i in x if i > 1 %}{{ i }}:{{ loop.index }}/{{ loop.length }} {% endfor %}"), "2:1/2 3:2/2 ");
  EXPECT_EQ(render("{% for i in [] %}x{% else %}empty{% endfor %}|{% for i in x if i > 5 %}x{% else %}none{% endfor %}"),
            "empty|none");
  EXPECT_EQ(render("{% for i in x %}{{ loop.cycle(\"a\", \"b\") }}{{ loop.previtem }}{{ loop.nextitem }}{% endfor %}"),
            "a2b13a2");
  EXPECT_EQ(render("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}|{% for k in d %}{{ k }}{% endfor %}|"
                   "{% for k, v in d|items %}{{ k }}{% endfor %}"),
            "b=1;a=[1, 'x'];c=None;|bac|bac");
}

TEST(JinjaStatements, LoopControls) {
  EXPECT_EQ(render("{% for i in x %}{% if i == 2 %}{% continue %}{% endif %}{% if i == 3 %}{% break %}{% endif %}"
                   "{{ i }}{% endfor %}"),
            "1");
  EXPECT_EQ(render("{% for i in x %}{% for j in x %}{% if j == 2 %}{% break %}{% endif %}{{ i }}{{ j }} {% endfor %}{% endfor %}"),
            "11 21 31 ");
}

TEST(JinjaStatements, ScopingAndNamespace) {
  EXPECT_EQ(render("{% set ns = namespace(a=1, b=\"x\") %}{% for i in x %}{% set ns.a = ns.a + i %}{% endfor %}{{ ns.a }}{{ ns.b }}"),
            "7x");
  EXPECT_EQ(render("{% set y = 5 %}{% for i in x %}{% set y = i %}{% endfor %}{{ y }}"), "5");
  EXPECT_EQ(render("{% if t %}{% set y = 3 %}{% endif %}{{ y }}"), "3");
  EXPECT_EQ(render("{% with a = 1, b = 2 %}{{ a + b }}{% endwith %}{{ a }}"), "3");
  EXPECT_NE(render_error("{% set s.x = 1 %}").find("namespace"), std::string::npos);
}

TEST(JinjaStatements, MacrosCallAndCapture) {
  EXPECT_EQ(render("{% macro greet(name, greeting=\"Hi\") %}{{ greeting }}, {{ name }}!{% endmacro %}"
                   "{{ greet(\"A\") }} {{ greet(\"B\", \"Yo\") }} {{ greet(greeting=\"Hey\", name=\"C\") }}"),
            "Hi, A! Yo, B! Hey, C!");
  EXPECT_EQ(render("{% macro f(n) %}{% if n > 0 %}{{ n }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(5) }}"), "54321");
  EXPECT_EQ(render("{% set z = 1 %}{% macro m() %}{{ z }}{% endmacro %}{% set z = 2 %}{{ m() }}"), "2");
  EXPECT_EQ(render("{% macro wrap() %}[{{ caller() }}]{% endmacro %}{% call wrap() %}inside{% endcall %}"), "[inside]");
  EXPECT_EQ(render("{% set t2 %}captured {{ 1 + 1 }}{% endset %}{{ t2 | upper }}"), "CAPTURED 2");
  EXPECT_EQ(render("{% filter upper %}hello {{ s }}{% endfilter %}"), "HELLO HELLO WORLD");
}

TEST(JinjaWhitespace, TrimAndLstripBlocks) {
  EXPECT_EQ(render("{% if t %}\n  yes\n{% endif %}\nafter"), "  yes\nafter");
  EXPECT_EQ(render("  {% if t %}\n    x\n  {% endif %}\n"), "    x\n");
  EXPECT_EQ(render("a  {% if t %}b{% endif %}  c\n"), "a  b  c");
  EXPECT_EQ(render("line\n    {{ s }}\n    {% for i in x %}\n    - {{ i }}\n    {% endfor %}\ndone"),
            "line\n    Hello World\n    - 1\n    - 2\n    - 3\ndone");
  EXPECT_EQ(render("\t{% if t %}tab{% endif %}"), "tab");
  EXPECT_EQ(render("  {{ 'var' }} {% if t %}\n  {% endif %}x"), "  var x");
  EXPECT_EQ(render("{% for i in x %}\n{{ i }}\n{% endfor %}"), "1\n2\n3\n");
  EXPECT_EQ(render("{% set a = 1 %}\n\n{{ a }}"), "\n1");
  EXPECT_EQ(render("a {% if t %} \n b{% endif %}"), "a  \n b");
  EXPECT_EQ(render("{%if t%}\n\n{%endif%}|"), "\n|");
}

TEST(JinjaWhitespace, ManualControlCommentsRaw) {
  EXPECT_EQ(render("x {%- if t -%} y {%- endif -%} z"), "xyz");
  EXPECT_EQ(render("x {%+ if t +%}\n y {% endif %}\n"), "x \n y ");
  EXPECT_EQ(render("{{- 'a' -}}\n  \n{{ 'b' }}"), "ab");
  EXPECT_EQ(render("{%- for i in x %}\n  {{- i }}\n{%- endfor %}"), "123");
  EXPECT_EQ(render("x\n  {%- if t %}y{% endif %}"), "xy");
  EXPECT_EQ(render("{# c #}\nA\n  {# c2 #}\nB\n   {#- c3 -#}   C"), "A\nBC");
  EXPECT_EQ(render("{{ 'a' }}  {# c #}  \n  b"), "a    \n  b");
  EXPECT_EQ(render("a\n   {# c #}\n{{ 'z' }}"), "a\nz");
  EXPECT_EQ(render("{% raw %}\n  {{ x }}\n{% endraw %}\nend"), "\n  {{ x }}\nend");
  EXPECT_EQ(render("  {%- raw -%}  {{x}}  {%- endraw -%}  end"), "{{x}}end");
  EXPECT_EQ(render("{{ \"Hello {{ name }}\" }}|{# comment #}after"), "Hello {{ name }}|after");
}

TEST(JinjaWhitespace, NewlinesNormalisedAndLastOneDropped) {
  EXPECT_EQ(render("a\r\nb\r\n{% if t %}\r\nc\r\n{% endif %}\r\n"), "a\nb\nc\n");
  EXPECT_EQ(render("text\n\n"), "text\n");
  EXPECT_EQ(render("{{ 'a' }}\n{{ 'b' }}\n"), "a\nb");
}

TEST(JinjaErrors, UnknownFilterNamesItAndTheLine) {
  const std::string msg = render_error("line1\n{{ x|nosuchfilter }}");
  EXPECT_NE(msg.find("nosuchfilter"), std::string::npos) << msg;
  EXPECT_NE(msg.find("line 2"), std::string::npos) << msg;
  // Like Jinja2, an unknown filter fails at parse time even in a branch never taken.
  EXPECT_NE(render_error("{% if false %}{{ 1|nope }}{% endif %}").find("'nope'"), std::string::npos);
  EXPECT_NE(render_error("{{ 1 is nosuchtest }}").find("nosuchtest"), std::string::npos);
}

TEST(JinjaErrors, UnclosedAndMismatchedBlocks) {
  const std::string msg = render_error("line1\n\n{% if t %}unclosed");
  EXPECT_NE(msg.find("'if' block opened on line 3"), std::string::npos) << msg;
  EXPECT_NE(msg.find("endif"), std::string::npos) << msg;
  EXPECT_NE(render_error("{% for i in x %}{% endif %}").find("expects 'endfor'"), std::string::npos);
  EXPECT_NE(render_error("{% endfor %}").find("'endfor'"), std::string::npos);
  EXPECT_NE(render_error("{# never closed").find("comment"), std::string::npos);
  EXPECT_NE(render_error("{{ 'unterminated }}").find("string"), std::string::npos);
  EXPECT_NE(render_error("{{ foo( }}").find("unexpected '}'"), std::string::npos);
  EXPECT_NE(render_error("{% break %}").find("outside of a loop"), std::string::npos);
}

TEST(JinjaErrors, RaiseExceptionCarriesTheMessage) {
  const std::string msg = render_error("x\n{{ raise_exception('Only user and assistant roles are supported!') }}");
  EXPECT_NE(msg.find("Only user and assistant roles are supported!"), std::string::npos) << msg;
  EXPECT_NE(msg.find("line 2"), std::string::npos) << msg;
}

TEST(JinjaErrors, UnsupportedConstructsAreNamed) {
  EXPECT_NE(render_error("{% extends 'base' %}").find("'extends' tag is not supported"), std::string::npos);
  EXPECT_NE(render_error("{% include 'x' %}").find("'include'"), std::string::npos);
  EXPECT_NE(render_error("{% for i in x recursive %}{% endfor %}").find("recursive"), std::string::npos);
  EXPECT_NE(render_error("{{ 'a %s' % 1 }}").find("'%'"), std::string::npos);
  EXPECT_NE(render_error("{% foo %}").find("unknown tag 'foo'"), std::string::npos);
}

TEST(JinjaErrors, RuntimeTypeErrors) {
  EXPECT_NE(render_error("{{ d.zz.y }}").find("'dict object' has no attribute 'zz'"), std::string::npos);
  EXPECT_NE(render_error("{{ undefinedvar + 1 }}").find("'undefinedvar' is undefined"), std::string::npos);
  EXPECT_NE(render_error("{{ 1 < 'a' }}").find("'<' not supported"), std::string::npos);
  EXPECT_NE(render_error("{{ 'a' + 1 }}").find("unsupported operand"), std::string::npos);
  EXPECT_NE(render_error("{% for a, b in x %}{% endfor %}").find("unpack"), std::string::npos);
  EXPECT_NE(render_error("{{ x.append(4) }}").find("append"), std::string::npos);
  EXPECT_NE(render_error("{{ x[1:2:0] }}").find("slice step"), std::string::npos);
  EXPECT_NE(render_error("{{ undefinedvar|tojson }}").find("not JSON serializable"), std::string::npos);
  EXPECT_NE(render_error("{{ 9223372036854775807 + 1 }}").find("overflow"), std::string::npos);
}

TEST(JinjaLimits, HostileTemplatesFailCleanly) {
  EXPECT_NE(render_error("{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}").find("template limit"), std::string::npos);
  EXPECT_NE(render_error("{% for i in range(100001) %}{% endfor %}").find("range() too big"), std::string::npos);
  Limits small;
  small.max_output = 1000;
  EXPECT_NE(render_error("{% for i in range(2000) %}x{% endfor %}", small).find("exceed 1000 bytes"), std::string::npos);
  EXPECT_NE(render_error("{{ 'ab' * 100000000000 }}", small).find("exceed"), std::string::npos);
  small.max_iterations = 50;
  EXPECT_NE(render_error("{% for i in range(10) %}{% for j in range(10) %}{% endfor %}{% endfor %}", small).find("iterations"),
            std::string::npos);
  EXPECT_NE(render_error("{{ " + std::string(500, '(') + "1" + std::string(500, ')') + " }}").find("nested deeper"), std::string::npos);
  std::string deep;
  for (int i = 0; i < 300; ++i) deep += "{% if t %}";
  EXPECT_NE(render_error(deep).find("nested deeper"), std::string::npos);
}

TEST(JinjaErrors, InvalidUtf8TemplateIsRejected) {
  EXPECT_NE(render_error("abc\xff").find("UTF-8"), std::string::npos);
}

}  // namespace
}  // namespace csq::jinja
