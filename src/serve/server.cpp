#include "serve/server.h"

#include <httplib.h>

#include <fcntl.h>
#include <sys/socket.h>

#include <csignal>

#include "util/error.h"

namespace iflame::serve {

using nlohmann::json;
using namespace std::chrono_literals;

struct Server::Impl {
  Batcher& batcher;
  const TokenizerConfig tokenizer;
  const ServerOptions options;
  httplib::Server http;
  int port = -1;
  int listen_fd = -1;  // the socket httplib binds, seen through our socket options

  Impl(Batcher& b, TokenizerConfig tk, ServerOptions o) : batcher(b), tokenizer(tk), options(std::move(o)) {}

  static void reply_error(httplib::Response& res, int status, const std::string& message) {
    res.status = status;
    res.set_content(json{{"error", message}}.dump(), "application/json");
  }

  void health(httplib::Response& res) const {
    const Batcher::Load load = batcher.load();
    const json body = {{"status", "ok"},
                       {"model", options.model_name},
                       {"slots", {{"total", load.slots}, {"busy", load.busy}, {"free", load.slots - load.busy}}},
                       {"queue", {{"waiting", load.queued}, {"max", batcher.options().max_queue}}},
                       {"max_faces", batcher.options().max_faces},
                       {"defaults", defaults_json()},
                       {"tokens", load.tokens}};
    res.set_content(body.dump(), "application/json");
  }

  // What a request that leaves a field out gets (the model's sampling defaults); the web page
  // shows them and makes one checkbox per switch.
  json defaults_json() const {
    const SamplingOptions& s = options.defaults.sampling;
    json d = {{"temperature", s.temperature}, {"top_k", s.top_k},   {"top_p", s.top_p},
              {"min_p", s.min_p},             {"greedy", s.greedy}, {"max_faces", options.defaults.max_faces}};
    json switches = json::array();  // in the table's order, which the page keeps
    for (const SamplingSwitch& rule : sampling_switches()) switches.push_back({{"field", rule.field}, {"on", s.*rule.member}});
    d["switches"] = switches;
    return d;
  }

  void generate(const httplib::Request& req, httplib::Response& res) {
    ParsedRequest parsed;
    try {
      parsed = parse_generate_request(req.body, options.defaults, tokenizer);
    } catch (const Error& e) {
      return reply_error(res, 400, e.what());
    }
    parsed.request.deadline =
        Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(options.request_timeout_s));
    std::shared_ptr<GenerationJob> job;
    try {
      job = batcher.submit(std::move(parsed.request));
    } catch (const Error& e) {
      return reply_error(res, 400, e.what());
    }
    if (!job) {
      res.set_header("Retry-After", "1");
      return reply_error(res, 503, "the queue is full (" + std::to_string(batcher.options().max_queue) +
                                       " requests waiting); retry later");
    }
    const bool stream = parsed.stream;
    auto seen = std::make_shared<size_t>(0);
    const TokenizerConfig tk = tokenizer;
    auto provider = [job, seen, stream, tk](size_t, httplib::DataSink& sink) {
      std::vector<FaceRow> faces;
      const bool done = stream ? job->wait(*seen, 500ms, &faces) : job->wait_done(500ms);
      std::string out;
      for (const FaceRow& row : faces) out += "data: " + face_event(row, int64_t((*seen)++), tk).dump() + "\n\n";
      if (done) {
        const std::string body = response_json(*job, tk).dump();
        out += stream ? "data: " + body + "\n\n" : body;
      } else if (out.empty()) {
        out = stream ? ": waiting\n\n" : " ";  // a heartbeat: fails once the client is gone
      }
      if (!sink.write(out.data(), out.size())) return false;
      if (done) sink.done();
      return true;
    };
    // Called when the response ends; success false: the client went away first.
    auto releaser = [job](bool success) {
      if (!success) job->cancel("client disconnected");
    };
    res.set_chunked_content_provider(stream ? "text/event-stream" : "application/json", provider, releaser);
    if (stream) res.set_header("Cache-Control", "no-cache");
  }

  void routes() {
    http.Get("/health", [this](const httplib::Request&, httplib::Response& res) { health(res); });
    http.Post("/v1/generate", [this](const httplib::Request& req, httplib::Response& res) { generate(req, res); });
    http.Get("/", [this](const httplib::Request&, httplib::Response& res) {
      if (options.page_html.empty()) return reply_error(res, 404, "this server has no web page");
      res.set_content(options.page_html, "text/html; charset=utf-8");
    });
    http.Get("/iflame-viewer.js", [this](const httplib::Request&, httplib::Response& res) {
      if (options.viewer_script.empty()) return reply_error(res, 404, "no viewer script");
      res.set_content(options.viewer_script, "text/javascript");
    });
    http.set_error_handler([](const httplib::Request&, httplib::Response& res) {
      if (!res.body.empty()) return;
      const char* what = res.status == 413 ? "the body is too large" : res.status == 404 ? "no such endpoint" : "error";
      res.set_content(json{{"error", what}}.dump(), "application/json");
    });
  }
};

Server::Server(Batcher& batcher, TokenizerConfig tokenizer, ServerOptions options)
    : impl_(std::make_unique<Impl>(batcher, tokenizer, std::move(options))) {
  // A client that leaves mid-response makes the next write raise SIGPIPE; the write's error is
  // what we want instead.
  std::signal(SIGPIPE, SIG_IGN);
  Impl& m = *impl_;
  const BatcherOptions& b = batcher.options();
  const int threads = m.options.http_threads > 0 ? m.options.http_threads : int(b.max_batch + b.max_queue + 16);
  m.http.new_task_queue = [threads] { return new httplib::ThreadPool(size_t(threads)); };
  // httplib's own options set only SO_REUSEPORT, which lets a second server bind a port in use.
  // Ours: SO_REUSEADDR (a restart need not wait out TIME_WAIT), close-on-exec (the mesh readers
  // run in forked children), and the fd kept for the backlog below.
  m.http.set_socket_options([&m](int fd) {
    const int yes = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    m.listen_fd = fd;
  });
  m.http.set_payload_max_length(m.options.max_body_bytes);
  m.http.set_read_timeout(10, 0);
  m.http.set_write_timeout(10, 0);
  m.routes();
}

Server::~Server() { stop(); }

int Server::bind() {
  Impl& m = *impl_;
  m.port = m.options.port == 0 ? m.http.bind_to_any_port(m.options.host) : m.http.bind_to_port(m.options.host, m.options.port) ? m.options.port : -1;
  if (m.port < 0) {
    throw Error("serve: cannot listen on " + m.options.host + ":" + std::to_string(m.options.port) +
                " (in use, or not an address of this machine)");
  }
  // Debian's httplib listens with a backlog of 5, compiled in. A burst of clients overflowed it:
  // dropped handshakes were retried for seconds, and httplib's 5 s wait for a request closed some
  // connections unread. Listening again on a listening socket only raises the backlog (Linux).
  if (m.listen_fd >= 0) ::listen(m.listen_fd, SOMAXCONN);
  return m.port;
}

void Server::run() { impl_->http.listen_after_bind(); }

void Server::stop() {
  if (impl_->http.is_running()) impl_->http.stop();
}

}  // namespace iflame::serve
