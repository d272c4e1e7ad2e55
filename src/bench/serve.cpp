// iflame bench serve: the server driven by C concurrent local clients (streaming requests over
// 127.0.0.1), against `iflame sample --batch 16` (generate()) on the same model, seeds and face
// cap, side by side in one process. Request i uses seed i, so both sides make the same meshes.
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <thread>

#include "bench/bench.h"
#include "kernels/threads.h"
#include "model/weights.h"
#include "serve/server.h"
#include "util/args.h"
#include "util/error.h"
#include "util/report.h"

namespace iflame::bench {
namespace {

using Seconds = std::chrono::duration<double>;

struct ClientResult {
  double first_face_ms = 0, total_ms = 0;
  int64_t tokens = 0;
};

// One streaming request: time to the first face event, total time, tokens (from the final event).
ClientResult stream_request(int port, uint64_t seed, int64_t max_faces) {
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(600, 0);
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/generate";
  req.set_header("Content-Type", "application/json");
  req.body = nlohmann::json{{"seed", seed}, {"max_faces", max_faces}, {"stream", true}}.dump();
  ClientResult r;
  std::string text;
  const auto start = Clock::now();
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    if (r.first_face_ms == 0 && std::string_view(data, n).find("\"face\"") != std::string_view::npos) {
      r.first_face_ms = Seconds(Clock::now() - start).count() * 1000;
    }
    text.append(data, n);
    return true;
  };
  auto res = client.send(req);
  r.total_ms = Seconds(Clock::now() - start).count() * 1000;
  if (!res || res->status != 200) throw Error("bench serve: a request failed");
  const size_t last = text.rfind("data: ");
  r.tokens = nlohmann::json::parse(text.substr(last + 6)).at("tokens").get<int64_t>();
  return r;
}

double percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[std::min(v.size() - 1, size_t(q * double(v.size() - 1) + 0.5))];
}

}  // namespace

int run_serve_command(int argc, char** argv) {
  std::string weights, preset = "small", clients_list = "1,4,16,64";
  int64_t max_faces = 100, max_batch = 16, threads = 0, requests_per_client = 1;
  ArgParser args("bench serve",
                 "Aggregate tokens/s, time to first face (p50, p99) and tokens/s per client of `iflame serve`\n"
                 "at several numbers of concurrent clients, and `iflame sample --batch B` on the same model,\n"
                 "seeds and face cap in the same process (the ratio is the continuous-batching efficiency).");
  args.option("weights", &weights, "model weights (default: a randomly initialized --preset model)")
      .option("preset", &preset, "model preset when no --weights (tiny, small, ref)")
      .option("clients", &clients_list, "comma list of concurrent client counts")
      .option("requests", &requests_per_client, "requests each client sends, one after another")
      .option("max-faces", &max_faces, "faces per request")
      .option("max-batch", &max_batch, "server slots, and the batch of the sample baseline")
      .option("threads", &threads, "CPU threads (0 = all cores)");
  if (!args.parse(argc, argv)) return 0;
  if (max_faces < 1 || max_faces > 100000) throw Error("bench serve: --max-faces must be between 1 and 100000");
  if (max_batch < 1 || max_batch > 1024) throw Error("bench serve: --max-batch must be between 1 and 1024");
  if (requests_per_client < 1 || requests_per_client > 1000) throw Error("bench serve: --requests must be between 1 and 1000");
  const std::vector<int64_t> client_counts = int_list(clients_list, "--clients", 1);
  for (const int64_t c : client_counts) {
    if (c > 1024) throw Error("bench serve: --clients: " + std::to_string(c) + " is more than 1024");
  }
  set_compute_threads(threads);
  IFlameModel model = weights.empty() ? IFlameModel(model_preset(preset)) : load_model(weights);
  model->eval();
  const TokenizerConfig tokenizer;

  // The baseline: generate() over the same seeds, max_batch at a time.
  const int64_t baseline_count = max_batch;
  GenerateOptions gen;
  gen.count = baseline_count;
  gen.batch = max_batch;
  gen.max_faces = max_faces;
  GenerateStats stats;
  generate(*model, tokenizer, gen, &stats);
  const double baseline = double(stats.tokens) / stats.seconds;

  BatcherOptions bo;
  bo.max_batch = max_batch;
  bo.max_queue = 4096;
  bo.max_faces = max_faces;
  Batcher batcher(model, tokenizer, bo);
  serve::ServerOptions so;
  so.port = 0;
  so.http_threads = int(std::max<int64_t>(16, 2 * *std::max_element(client_counts.begin(), client_counts.end())));
  serve::Server server(batcher, tokenizer, so);
  const int port = server.bind();
  std::thread server_thread([&] { server.run(); });

  std::printf("model %s (%.2fM parameters), %lld faces per request, %lld slots; sample --batch %lld: %.0f tokens/s\n",
              weights.empty() ? preset.c_str() : weights.c_str(), double(model->config.parameter_count()) / 1e6,
              (long long)max_faces, (long long)max_batch, (long long)max_batch, baseline);
  std::printf("%8s %9s %12s %8s %14s %14s %16s\n", "clients", "requests", "tokens/s", "vs sample", "first face p50",
              "first face p99", "tokens/s/client");
  for (const int64_t c : client_counts) {
    std::vector<ClientResult> results(size_t(c * requests_per_client));
    std::vector<std::thread> pool;
    const auto start = Clock::now();
    for (int64_t i = 0; i < c; ++i) {
      pool.emplace_back([&, i] {
        for (int64_t k = 0; k < requests_per_client; ++k) {
          const size_t at = size_t(i * requests_per_client + k);
          results[at] = stream_request(port, uint64_t(at), max_faces);
        }
      });
    }
    for (auto& t : pool) t.join();
    const double seconds = Seconds(Clock::now() - start).count();
    int64_t tokens = 0;
    std::vector<double> first, per_client;
    for (const auto& r : results) {
      tokens += r.tokens;
      first.push_back(r.first_face_ms);
      per_client.push_back(double(r.tokens) * 1000.0 / r.total_ms);
    }
    const double rate = double(tokens) / seconds;
    std::printf("%8lld %9zu %12.0f %8.2fx %12.0f ms %12.0f ms %16.0f\n", (long long)c, results.size(), rate, rate / baseline,
                percentile(first, 0.5), percentile(first, 0.99), percentile(per_client, 0.5));
    std::fflush(stdout);
  }
  server.stop();
  server_thread.join();
  return 0;
}

}  // namespace iflame::bench
