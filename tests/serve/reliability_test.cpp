// `iflame serve` under load (issue 16, part 4): 64 concurrent clients for 60 seconds over
// 127.0.0.1, mixing normal requests, streams the client abandons mid-way, malformed bodies,
// oversized max_faces and slow readers. Afterwards the server must be healthy with every slot
// free, every normal request must have come back with a valid mesh, and resident memory must
// be back within 10% of its idle level. Bounded: 64 clients, 60 s, every request <= 150 faces.
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "bench/bench.h"
#include "mesh/readers.h"
#include "model/model_test_util.h"
#include "serve/server.h"

namespace iflame::serve {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

struct Counts {
  std::atomic<int64_t> normal{0}, normal_bad{0}, abandoned{0}, refused{0}, refused_bad{0}, slow{0}, slow_bad{0};
};

// Why requests failed (the first few), so a failure under load says what went wrong.
struct Failures {
  std::mutex mutex;
  std::vector<std::string> reasons;
  void add(const std::string& reason) {
    std::lock_guard<std::mutex> lock(mutex);
    if (reasons.size() < 8) reasons.push_back(reason);
  }
  std::string text() {
    std::lock_guard<std::mutex> lock(mutex);
    std::string out;
    for (const std::string& r : reasons) out += "\n  " + r;
    return out;
  }
};
Failures failures;

// "" when the reply came with `status`; else what came instead.
std::string unexpected(const httplib::Result& res, int status) {
  if (!res) return "no reply: " + httplib::to_string(res.error());
  if (res->status != status) return "status " + std::to_string(res->status) + ": " + res->body.substr(0, 200);
  return "";
}

httplib::Request stream_request(uint64_t seed, int64_t max_faces) {
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/generate";
  req.set_header("Content-Type", "application/json");
  req.body = json{{"seed", seed}, {"max_faces", max_faces}, {"stream", true}}.dump();
  return req;
}

// A normal request: 200 with an OBJ that parses and has the face count the reply states.
bool normal_request(httplib::Client& client, uint64_t seed) {
  auto res = client.Post("/v1/generate", json{{"seed", seed}, {"max_faces", 20}}.dump(), "application/json");
  if (const std::string why = unexpected(res, 200); !why.empty()) return failures.add("normal: " + why), false;
  const json r = json::parse(res->body);
  const std::string obj = r.at("obj");
  const Mesh mesh = readers::read_obj(std::vector<uint8_t>(obj.begin(), obj.end()), "reply");
  const std::string finished = r.at("finished");
  return mesh.faces.size() == r.at("faces").get<size_t>() && (finished == "eos" || finished == "max_faces");
}

// A stream the client leaves after three faces (or at the end, if it ends sooner).
void abandoned_stream(httplib::Client& client, uint64_t seed) {
  httplib::Request req = stream_request(seed, 150);
  int faces = 0;
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    for (std::string_view s(data, n); s.find("\"face\"") != std::string_view::npos; s.remove_prefix(s.find("\"face\"") + 6)) ++faces;
    return faces < 3;
  };
  client.send(req);
}

// A slow reader: 30 ms per chunk; the stream must still end with the whole response.
bool slow_stream(httplib::Client& client, uint64_t seed) {
  httplib::Request req = stream_request(seed, 15);
  std::string text;
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    text.append(data, n);
    std::this_thread::sleep_for(30ms);
    return true;
  };
  auto res = client.send(req);
  if (const std::string why = unexpected(res, 200); !why.empty()) return failures.add("slow: " + why), false;
  const size_t last = text.rfind("data: ");
  const bool whole = last != std::string::npos && json::parse(text.substr(last + 6)).contains("obj");
  if (!whole) failures.add("slow: the stream ended without the response: " + text.substr(text.size() - std::min<size_t>(text.size(), 200)));
  return whole;
}

bool refused(httplib::Client& client, const std::string& body) {
  auto res = client.Post("/v1/generate", body, "application/json");
  if (const std::string why = unexpected(res, 400); !why.empty()) return failures.add("refused: " + why), false;
  return json::parse(res->body).contains("error");
}

TEST(ServeReliabilitySlow, SixtyFourClientsForAMinuteLeaveTheServerHealthy) {
  IFlameModel model = test::random_tiny_model(41);
  BatcherOptions b;
  b.max_faces = 200;
  Batcher batcher(model, TokenizerConfig{}, b);
  ServerOptions options;
  options.port = 0;
  Server server(batcher, TokenizerConfig{}, options);
  const int port = server.bind();
  std::thread server_thread([&] { server.run(); });
  auto client = [&] {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(120, 0);
    return c;
  };
  auto health = [&] {
    auto res = client().Get("/health");
    return res && res->status == 200 ? json::parse(res->body) : json();
  };
  auto wait_idle = [&] {
    for (int i = 0; i < 500; ++i) {
      const json h = health();
      if (!h.is_null() && h["slots"]["busy"] == 0 && h["queue"]["waiting"] == 0) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  };
  {  // Warm up (HTTP threads, packed weights), then take the idle level.
    auto c = client();
    ASSERT_TRUE(normal_request(c, 0));
  }
  ASSERT_TRUE(wait_idle());
  const int64_t idle_kb = bench::current_rss_kb();

  Counts counts;
  const auto stop_at = std::chrono::steady_clock::now() + 60s;
  std::vector<std::thread> clients;
  for (int i = 0; i < 64; ++i) {
    clients.emplace_back([&, i] {
      auto c = client();
      for (uint64_t k = 0; std::chrono::steady_clock::now() < stop_at; ++k) {
        const uint64_t seed = uint64_t(i) * 100000 + k;
        switch ((uint64_t(i) + k) % 5) {
          case 0:
            (normal_request(c, seed) ? counts.normal : counts.normal_bad)++;
            break;
          case 1:
            abandoned_stream(c, seed);
            counts.abandoned++;
            break;
          case 2:
            (refused(c, k % 2 ? "{\"seed\": 1, \"top_p\": " : "not json at all") ? counts.refused : counts.refused_bad)++;
            break;
          case 3:
            (refused(c, json{{"seed", seed}, {"max_faces", 100000}}.dump()) ? counts.refused : counts.refused_bad)++;
            break;
          case 4:
            (slow_stream(c, seed) ? counts.slow : counts.slow_bad)++;
            break;
        }
      }
    });
  }
  for (auto& t : clients) t.join();

  EXPECT_TRUE(wait_idle()) << "slots or queue still busy: " << health().dump();
  const json h = health();
  EXPECT_EQ(h["status"], "ok");
  EXPECT_EQ(h["slots"]["free"], h["slots"]["total"]);
  EXPECT_EQ(counts.normal_bad.load(), 0) << failures.text();
  EXPECT_EQ(counts.refused_bad.load(), 0) << failures.text();
  EXPECT_EQ(counts.slow_bad.load(), 0) << failures.text();
  EXPECT_GT(counts.normal.load(), 64);
  EXPECT_GT(counts.abandoned.load(), 64);
  EXPECT_GT(counts.slow.load(), 64);
  const int64_t after_kb = bench::current_rss_kb();
  EXPECT_LE(double(after_kb), 1.10 * double(idle_kb)) << "idle " << idle_kb << " kB, after the load " << after_kb << " kB";
  std::printf("normal %lld, abandoned %lld, refused %lld, slow %lld; RSS idle %lld kB, after %lld kB\n",
              (long long)counts.normal.load(), (long long)counts.abandoned.load(), (long long)counts.refused.load(),
              (long long)counts.slow.load(), (long long)idle_kb, (long long)after_kb);
  server.stop();
  server_thread.join();
}

}  // namespace
}  // namespace iflame::serve
