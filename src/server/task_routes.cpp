// The analyst's endpoints: POST /v1/detect (events -> Sigma alerts), /v1/triage (alerts ->
// triage lines) and /v1/respond (an alert or triage line -> a response plan). Each calls the
// library functions the commands call (detect::run_detection_on_text, tasks::triage_stream,
// tasks::respond_request and build_plan), generation running as jobs of the server's own
// scheduler beside the chat requests. docs/server.md documents the bodies and answers.
#include <algorithm>
#include <atomic>
#include <future>
#include <initializer_list>
#include <random>

#include "base/error.h"
#include "detect/runner.h"
#include "server/http_server.h"
#include "server/routes.h"
#include "tasks/respond.h"
#include "tasks/triage.h"

namespace csq::server {
namespace {

using ojson = nlohmann::ordered_json;

// A request triages at most this many records: the answer waits for all of them.
constexpr size_t kMaxTriageRecords = 64;
// A detection request answers with at most this many alerts (each holds its event).
constexpr size_t kMaxDetectAlerts = 10000;

// The sampling fields every task endpoint takes besides its own.
constexpr std::initializer_list<const char*> kSamplingFields = {"model", "temperature", "top_p", "top_k", "min_p",
                                                                "seed",  "max_tokens"};

// A field the endpoint does not know is an error, not silently ignored (a typo in "records"
// would otherwise answer a different question).
void expect_fields(const ojson& body, std::initializer_list<const char*> own) {
  if (!body.is_object()) throw error(400, "the request body must be a JSON object");
  for (const auto& item : body.items()) {
    const std::string& key = item.key();  // not a structured binding: clang 14 cannot capture one
    const auto known = [&](const char* name) { return key == name; };
    if (std::any_of(own.begin(), own.end(), known) || std::any_of(kSamplingFields.begin(), kSamplingFields.end(), known))
      continue;
    std::string expected;
    for (const char* name : own) expected += std::string(expected.empty() ? "" : ", ") + name;
    for (const char* name : kSamplingFields) expected += std::string(", ") + name;
    throw with_param(error(400, "unknown field '" + key + "' (expected " + expected + ")"), key);
  }
}

// csq::Error from the libraries: bad input is the client's (400), the rest the server's (500).
ApiError from_library(const Error& e) {
  return e.code() == ErrorCode::BadInput || e.code() == ErrorCode::Usage ? error(400, e.what())
                                                                         : error(500, e.what(), "server_error");
}

// The error a task request ended with, as the client sees it (a full queue: 429 with Retry-After).
ApiError as_api_error(std::exception_ptr failure, httplib::Response& res) {
  try {
    std::rethrow_exception(failure);
  } catch (const ApiError& e) {
    return e;
  } catch (const tasks::BackendBusy&) {
    return queue_full(res);
  } catch (const Error& e) {
    return from_library(e);
  } catch (const std::exception& e) {
    return error(500, e.what(), "server_error");
  }
}

// A task's generation, on its own thread. Dropping the last reference to an unfinished one (the
// response was abandoned) marks it abandoned, which cancels its jobs, and waits for the thread.
struct RunningTask {
  std::shared_ptr<std::atomic<bool>> abandoned = std::make_shared<std::atomic<bool>>(false);
  std::future<ojson> answer;
  ~RunningTask() {
    if (answer.valid() && answer.wait_for(std::chrono::seconds(0)) != std::future_status::ready) *abandoned = true;
  }
};

// A response still running after this long is committed as 200 and kept open with a space a
// second (JSON ignores leading whitespace): a failed write is a client that hung up.
constexpr auto kCommitAfter = std::chrono::seconds(1);

}  // namespace

void HttpServer::install_task_routes(httplib::Server& svr) {
  // Runs one task request: the common checks, the answer as JSON, errors in the OpenAI shape.
  auto task = [this](const char* route, auto&& answer) {
    return [this, route, answer](const httplib::Request& req, httplib::Response& res) {
      try {
        if (draining_) throw error(503, "the server is shutting down", "server_error");
        const ojson out = answer(req);
        res.status = 200;
        res.set_content(dump(out), "application/json");
      } catch (...) {
        send_error(res, as_api_error(std::current_exception(), res));
      }
      metrics_.count_request(route, res.status);
    };
  };
  // A generating task: `start(req, abandoned)` checks the request (its errors answer with their
  // status) and returns the work, whose backend watches `abandoned`. An answer ready within
  // kCommitAfter is sent as usual. After that the response is committed as 200 and kept alive
  // with spaces: a client that hangs up then cancels the generation instead of leaving it running
  // for nobody, and an error that ends the work later comes as the body's error object.
  auto generating_task = [this](const char* route, auto&& start) {
    return [this, route, start](const httplib::Request& req, httplib::Response& res) {
      try {
        if (draining_) throw error(503, "the server is shutting down", "server_error");
        auto task = std::make_shared<RunningTask>();
        task->answer = std::async(std::launch::async, start(req, task->abandoned));
        if (task->answer.wait_for(kCommitAfter) != std::future_status::ready) {
          res.status = 200;
          res.set_chunked_content_provider("application/json", [this, route, task](size_t, httplib::DataSink& sink) {
            while (task->answer.wait_for(std::chrono::seconds(1)) != std::future_status::ready)
              if (!sink.write(" ", 1)) {
                metrics_.count_request(route, kClientClosed);
                return false;  // ~RunningTask cancels the generation
              }
            std::string text;
            int status = 200;
            try {
              text = dump(task->answer.get());
            } catch (...) {
              httplib::Response committed;  // too late for a status or a Retry-After header
              const ApiError e = as_api_error(std::current_exception(), committed);
              text = dump(e.body());
              status = e.status;
            }
            sink.write(text.data(), text.size());
            sink.done();
            metrics_.count_request(route, status);
            return true;
          });
          return;
        }
        const ojson out = task->answer.get();
        res.status = 200;
        res.set_content(dump(out), "application/json");
      } catch (...) {
        send_error(res, as_api_error(std::current_exception(), res));
      }
      metrics_.count_request(route, res.status);
    };
  };
  // The sampling of a task request: `defaults` where the body says nothing.
  auto sampling = [this](const ojson& body, const SamplingParams& defaults) {
    ApiRequest api;
    api.sampling = defaults;
    parse_sampling_fields(body, options_.limits, api);
    if (!api.model.empty() && api.model != options_.model_alias)
      throw model_not_found(api.model);
    if (!api.seeded) api.sampling.seed = std::random_device{}();
    return api;
  };

  post_bounded(svr, "/v1/detect", options_.max_body_bytes, task("/v1/detect", [this](const httplib::Request& req) {
             if (!options_.detector)
               throw error(404, "this server has no detection rules (start csq serve with --rules DIR [--pipeline FILE])",
                           "invalid_request_error", "no_rules");
             ojson alerts = ojson::array(), problems = ojson::array();
             detect::RunStats stats;
             detect::run_detection_on_text(
                 *options_.detector, req.body, "request", detect::RunOptions{},
                 [&](detect::Alert&& a) {
                   if (alerts.size() == kMaxDetectAlerts)
                     throw error(413, "the events raise more than " + std::to_string(kMaxDetectAlerts) +
                                          " alerts; send fewer events per request");
                   alerts.push_back(ojson::parse(detect::alert_json(a)));
                 },
                 [&](const detect::InputProblem& p) {
                   problems.push_back({{"record", p.record}, {"reason", p.reason}});
                 },
                 stats);
             return ojson{{"events", stats.events}, {"alerts", std::move(alerts)}, {"problems", std::move(problems)}};
           }));

  post_bounded(svr, "/v1/triage", options_.max_body_bytes, generating_task("/v1/triage", [this, sampling](const httplib::Request& req,
                                                                         std::shared_ptr<const std::atomic<bool>> abandoned) {
             const ojson body = parse_body(req.body);
             expect_fields(body, {"records", "context"});
             tasks::TriageOptions options;
             const ApiRequest api = sampling(body, tasks::TriageOptions::greedy());
             options.sampling = api.sampling;
             // The server's --max-tokens-cap bounds the default answer as it bounds a request's own.
             options.max_tokens = api.max_tokens.value_or(std::min(options.max_tokens, options_.limits.max_tokens_cap));
             const auto records = body.find("records");
             if (records == body.end() || !records->is_array() || records->empty() || records->size() > kMaxTriageRecords)
               throw error(400, "'records' must be an array of 1 to " + std::to_string(kMaxTriageRecords) +
                                    " alerts or events (JSON objects)", "invalid_request_error");
             std::string context;
             if (const auto c = body.find("context"); c != body.end() && !c->is_null()) {
               if (!c->is_string()) throw error(400, "'context' must be a string (the site context)");
               context = c->get<std::string>();
             }
             std::vector<tasks::TriageInput> inputs;
             for (size_t i = 0; i < records->size(); ++i) {
               const std::string where = "records[" + std::to_string(i) + "]";
               if (!(*records)[i].is_object()) throw error(400, where + " must be a JSON object (an alert or an event)");
               tasks::TriageInput in;
               in.record = (*records)[i];
               in.id = tasks::triage_record_id(in.record, where);
               inputs.push_back(std::move(in));
             }
             return [this, abandoned, inputs = std::move(inputs), context, options]() {
               auto backend = tasks::make_scheduler_backend(engine_, scheduler_, options_.parse_special_in_content,
                                                            options_.request_timeout, abandoned);
               backend->prepare({});
               size_t next = 0;
               ojson data = ojson::array();
               tasks::triage_stream(
                   *backend, [&]() -> std::optional<tasks::TriageInput> {
                     if (next == inputs.size()) return std::nullopt;
                     return inputs[next++];
                   },
                   context, options, [&](size_t, const tasks::TriageResult& r) { data.push_back(r.to_json()); });
               return ojson{{"object", "list"}, {"data", std::move(data)}};
             };
           }));

  post_bounded(svr, "/v1/respond", options_.max_body_bytes, generating_task("/v1/respond", [this, sampling](const httplib::Request& req,
                                                                           std::shared_ptr<const std::atomic<bool>> abandoned) {
             if (!options_.kb) throw error(404, "no ATT&CK knowledge base is loaded (start csq serve with --kb DIR)");
             const ojson body = parse_body(req.body);
             expect_fields(body, {"alert", "text", "retrieve"});
             SamplingParams greedy;
             greedy.temperature = 0;  // the same alert gives the same plan unless asked otherwise
             const ApiRequest api = sampling(body, greedy);
             const auto alert = body.find("alert");
             const auto text = body.find("text");
             if ((alert == body.end()) == (text == body.end()))
               throw error(400, "give exactly one of 'alert' (a JSON object: an alert, an event or a triage line) or 'text'");
             tasks::RespondInput input;
             if (alert != body.end()) {
               if (!alert->is_object()) throw error(400, "'alert' must be a JSON object");
               input = {"alert", *alert, {}};
             } else {
               if (!text->is_string() || text->get<std::string>().find_first_not_of(" \t\r\n") == std::string::npos)
                 throw error(400, "'text' must be a non-empty string");
               input = {"text", nullptr, text->get<std::string>()};
             }
             size_t retrieve = 3;
             if (const auto r = body.find("retrieve"); r != body.end()) {
               if (!r->is_number_unsigned() || r->get<uint64_t>() > tasks::kMaxRetrieve)
                 throw error(400, "'retrieve' must be an integer from 0 to " + std::to_string(tasks::kMaxRetrieve));
               retrieve = r->get<size_t>();
             }
             const kb::KnowledgeBase& kb = *options_.kb;
             std::vector<std::string> unknown;
             const auto techniques = tasks::input_techniques(kb, input, retrieve, &unknown);
             tasks::ChatRequest request = tasks::respond_request(kb, input, techniques, api.sampling, 0);
             // Without max_tokens, as much as the context leaves (a plan cut short is no plan).
             ChatRenderOptions render;
             render.extra = request.template_kwargs;
             render.parse_special_in_content = options_.parse_special_in_content;
             const int64_t prompt_tokens = int64_t(engine_.encode_messages(request.messages, render).ids.size());
             request.max_tokens = api.max_tokens.value_or(
                 std::max<int64_t>(1, std::min(options_.limits.max_tokens_cap, scheduler_.config().n_ctx - prompt_tokens)));
             std::shared_ptr<tasks::ChatBackend> backend = tasks::make_scheduler_backend(
                 engine_, scheduler_, options_.parse_special_in_content, options_.request_timeout, std::move(abandoned));
             backend->prepare({request});  // a prompt too long for the context is a 400, before any answer
             return [&kb, backend, input, techniques, unknown, request, seed = api.sampling.seed]() {
               ojson plan = tasks::build_plan(kb, input, techniques, unknown, backend->complete(request));
               plan["seed"] = seed;
               return plan;
             };
           }));
}

}  // namespace csq::server
