// `iflame serve`: HTTP over a Batcher (cpp-httplib, as llama.cpp's server uses).
//
//   GET  /health        {"status":"ok","model":...,"slots":{"total","busy","free"},"queue":{"waiting","max"},
//                        "defaults":{temperature, top_k, top_p, min_p, greedy, max_faces, "switches":[{field, on}]},...}
//   POST /v1/generate   serve/request.h's JSON; with "stream": true, server-sent events: one
//                       `data: {"face":...,"index":i}` per face, then `data: <the response>`
//   GET  /              the web page (web/src/serve.html with the viewer bundle)
//
// Errors: 400 with {"error": message} for a bad request, 413 for a body over the limit, 503 with
// Retry-After when the queue is full. A response is written as it is produced (chunked), and a
// non-streaming one sends a space every half second while it waits (JSON allows leading
// whitespace): a write that fails means the client left, and its sequence is cancelled.
#pragma once
#include <memory>
#include <string>

#include "serve/request.h"

namespace iflame::serve {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                  // 0 picks a free port
  size_t max_body_bytes = 1 << 20;  // request bodies above this get 413
  double request_timeout_s = 300;   // a request still running then ends as cancelled ("timeout")
  std::string model_name;           // shown by /health
  RequestDefaults defaults;
  std::string page_html;            // GET / (empty: 404)
  std::string viewer_script;        // GET /iflame-viewer.js
  int http_threads = 0;             // 0: enough for every slot and queue place, plus 16
};

class Server {
 public:
  Server(Batcher& batcher, TokenizerConfig tokenizer, ServerOptions options);
  ~Server();
  // Binds the listening socket and returns its port; throws iflame::Error when it cannot.
  int bind();
  // Serves until stop() (from another thread or a signal handler's thread).
  void run();
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace iflame::serve
