// Continuous batching: ragged decode steps (rows at different positions) against per-sequence
// decoding, and the batcher's requests against generate() with the same seed, at any load.
#include "generate/batcher.h"

#include <gtest/gtest.h>

#include <random>

#include "generate/decoder.h"
#include "generate/fast_decode.h"
#include "util/error.h"

namespace iflame {
namespace {

using namespace std::chrono_literals;
using torch::Tensor;

// never_ends: the model cannot write EOS, so a request runs to its max_faces.
IFlameModel tiny_model(uint64_t seed, bool never_ends = false) {
  torch::manual_seed(seed);
  IFlameModel model(model_preset("tiny"));
  model->eval();
  if (never_ends) {
    torch::NoGradGuard no_grad;
    model->output_proj->bias[TokenizerConfig{}.eos()].fill_(-1e4);
  }
  return model;
}

// A BOS row then random coordinate rows: (L,) tokens.
std::vector<int64_t> random_sequence(int64_t faces, std::mt19937& rng) {
  const TokenizerConfig tk;
  std::vector<int64_t> seq(kTokensPerFace, tk.bos());
  std::uniform_int_distribution<int64_t> coord(0, tk.quant_max());
  for (int64_t i = 0; i < faces * kTokensPerFace; ++i) seq.push_back(coord(rng));
  return seq;
}

TEST(DecodeRows, RowsAtDifferentPositionsMatchDecodingEachAlone) {
  torch::NoGradGuard no_grad;
  IFlameModel model = tiny_model(3);
  std::mt19937 rng(5);
  // Three sequences that start 0, 4 and 7 steps apart: every stage runs on a different subset.
  const std::vector<int64_t> start = {0, 4, 7};
  std::vector<std::vector<int64_t>> seqs;
  std::vector<Tensor> want;  // (L, V) teacher-forced cached logits of each sequence alone
  for (size_t i = 0; i < start.size(); ++i) {
    seqs.push_back(random_sequence(3, rng));
    const Tensor tokens = torch::tensor(seqs.back(), torch::kLong).unsqueeze(0);
    want.push_back(cached_logits(*model, tokens, 9)[0]);
  }
  const int64_t L = int64_t(seqs[0].size());
  DecodeCache cache(model->config, 3, L, torch::kCPU);
  for (int64_t step = 0; step < L + 7; ++step) {
    std::vector<int64_t> rows, positions, tokens;
    for (int64_t r = 0; r < 3; ++r) {
      const int64_t p = step - start[size_t(r)];  // this row's prompt (the BOS row) enters at p = 0
      if (p == 0) {
        DecodeCache single(model->config, 1, 9, torch::kCPU);
        prefill(*model, single, torch::tensor(std::vector<int64_t>(seqs[size_t(r)].begin(), seqs[size_t(r)].begin() + 9)).unsqueeze(0));
        cache.copy_row_from(single, 0, r);
      }
      const int64_t t = p + 9;  // the token this step consumes
      if (p >= 0 && t < L) {
        rows.push_back(r);
        positions.push_back(t);
        tokens.push_back(seqs[size_t(r)][size_t(t)]);
      }
    }
    if (rows.empty()) continue;
    const Tensor logits = fast_decode_rows(*model, cache, rows, positions, tokens);
    for (size_t i = 0; i < rows.size(); ++i) {
      const Tensor expected = want[size_t(rows[i])][positions[i]];
      EXPECT_TRUE(torch::allclose(logits[int64_t(i)], expected, 1e-4, 1e-4))
          << "row " << rows[i] << " position " << positions[i] << " max diff "
          << (logits[int64_t(i)] - expected).abs().max().item<float>();
    }
  }
}

GenerationRequest request(uint64_t seed, int64_t max_faces) {
  GenerationRequest r;
  r.seed = seed;
  r.max_faces = max_faces;
  return r;
}

std::vector<int64_t> generate_one(IFlameModel& model, const GenerationRequest& r) {
  GenerateOptions opts;
  opts.sampling = r.sampling;
  opts.seed = r.seed;
  opts.max_faces = r.max_faces;
  opts.count = 1;
  opts.prompt = r.prompt;
  return generate(*model, TokenizerConfig{}, opts)[0].tokens;
}

GeneratedSequence wait_done(const std::shared_ptr<GenerationJob>& job) {
  EXPECT_TRUE(job->wait_done(60s));
  return job->result();
}

TEST(Batcher, EachRequestMatchesGenerateWithItsSeedWhateverRunsBesideIt) {
  IFlameModel model = tiny_model(11);
  BatcherOptions options;
  options.max_batch = 3;  // fewer slots than requests: some wait, some join a running batch
  options.max_queue = 16;
  options.max_faces = 20;
  Batcher batcher(model, TokenizerConfig{}, options);
  std::vector<GenerationRequest> requests;
  for (uint64_t i = 0; i < 7; ++i) requests.push_back(request(100 + i, 3 + int64_t(i % 4)));
  requests[1].sampling.temperature = 2.0;
  requests[2].sampling.top_k = 0, requests[2].sampling.top_p = 0.5;
  requests[3].sampling.order = true;
  requests[4].sampling.greedy = true;
  std::mt19937 rng(2);
  requests[5].prompt = random_sequence(2, rng);  // complete a partial mesh
  std::vector<std::shared_ptr<GenerationJob>> jobs;
  for (size_t i = 0; i < requests.size(); ++i) {
    jobs.push_back(batcher.submit(requests[i]));
    ASSERT_TRUE(jobs.back());
    if (i == 2) jobs[0]->wait(1, 2000ms, nullptr);  // the rest arrive while the first decode
  }
  for (size_t i = 0; i < jobs.size(); ++i) {
    const GeneratedSequence got = wait_done(jobs[i]);
    EXPECT_EQ(got.tokens, generate_one(model, requests[i])) << "request " << i;
    EXPECT_NE(got.finished, Finish::kCancelled);
  }
  EXPECT_EQ(batcher.load().busy, 0);
}

TEST(Batcher, StreamsEveryFaceRowOnceInOrder) {
  IFlameModel model = tiny_model(12);
  Batcher batcher(model, TokenizerConfig{}, BatcherOptions{});
  auto job = batcher.submit(request(7, 6));
  ASSERT_TRUE(job);
  std::vector<FaceRow> faces;
  bool done = false;
  for (int i = 0; i < 600 && !done; ++i) done = job->wait(faces.size(), 100ms, &faces);
  ASSERT_TRUE(done);
  const GeneratedSequence seq = job->result();
  size_t rows = 0;
  for (size_t r = 1; (r + 1) * 9 <= seq.tokens.size(); ++r) {
    if (!TokenizerConfig{}.is_coordinate(seq.tokens[r * 9])) break;
    ASSERT_LT(rows, faces.size());
    EXPECT_TRUE(std::equal(faces[rows].begin(), faces[rows].end(), seq.tokens.begin() + long(r * 9)));
    ++rows;
  }
  EXPECT_EQ(rows, faces.size());
  EXPECT_GT(job->timing().first_face_ms, 0);
  EXPECT_GE(job->timing().total_ms, job->timing().first_face_ms);
}

TEST(Batcher, AFullQueueRefusesAndACancelledRequestFreesItsSlot) {
  IFlameModel model = tiny_model(13, true);
  BatcherOptions options;
  options.max_batch = 1;
  options.max_queue = 1;
  options.max_faces = 400;
  Batcher batcher(model, TokenizerConfig{}, options);
  GenerationRequest long_request = request(1, 400);
  std::vector<std::shared_ptr<GenerationJob>> jobs;
  int refused = 0;
  for (int i = 0; i < 3; ++i) {
    auto job = batcher.submit(long_request);
    if (job) jobs.push_back(job);
    else ++refused;
  }
  EXPECT_GE(refused, 1);  // one slot and one queue place for three requests
  ASSERT_FALSE(jobs.empty());
  for (auto& job : jobs) job->cancel("client disconnected");
  for (auto& job : jobs) {
    const GeneratedSequence seq = wait_done(job);
    EXPECT_EQ(seq.finished, Finish::kCancelled);
    EXPECT_EQ(job->cancel_reason(), "client disconnected");
  }
  for (int i = 0; i < 100 && batcher.load().busy > 0; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(batcher.load().busy, 0);
  EXPECT_EQ(batcher.load().queued, 0);
  auto next = batcher.submit(request(2, 2));  // the slot serves the next request
  ASSERT_TRUE(next);
  EXPECT_NE(wait_done(next).finished, Finish::kCancelled);
}

TEST(Batcher, ARequestPastItsDeadlineEndsAsCancelled) {
  IFlameModel model = tiny_model(14, true);
  BatcherOptions options;
  options.max_faces = 400;
  Batcher batcher(model, TokenizerConfig{}, options);
  GenerationRequest r = request(3, 400);
  r.deadline = Clock::now() + 50ms;
  auto job = batcher.submit(r);
  ASSERT_TRUE(job);
  EXPECT_EQ(wait_done(job).finished, Finish::kCancelled);
  EXPECT_EQ(job->cancel_reason(), "timeout");
}

TEST(Batcher, InvalidRequestsAreRefusedWithTheFieldName) {
  IFlameModel model = tiny_model(15);
  BatcherOptions options;
  options.max_faces = 10;
  Batcher batcher(model, TokenizerConfig{}, options);
  auto message = [&](GenerationRequest r) {
    try {
      batcher.submit(r);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  GenerationRequest r = request(0, 5);
  r.sampling.top_p = 1.5;
  EXPECT_NE(message(r).find("top_p"), std::string::npos);
  r = request(0, 5);
  r.sampling.temperature = -1;
  EXPECT_NE(message(r).find("temperature"), std::string::npos);
  EXPECT_NE(message(request(0, 0)).find("max_faces"), std::string::npos);
  EXPECT_NE(message(request(0, 11)).find("max_faces"), std::string::npos);
  r = request(0, 5);
  r.prompt = {1, 2, 3};
  EXPECT_NE(message(r).find("prompt"), std::string::npos);
  r.prompt.assign(18, 5);  // no BOS row
  EXPECT_NE(message(r).find("prompt"), std::string::npos);
  std::mt19937 rng(1);
  r.prompt = random_sequence(8, rng);  // 8 prompt faces + 5 new > 10
  EXPECT_NE(message(r).find("max_faces"), std::string::npos);
  EXPECT_EQ(message(request(0, 10)), "accepted");
}

TEST(Batcher, StoppingEndsEveryQueuedAndRunningRequest) {
  IFlameModel model = tiny_model(16, true);
  std::vector<std::shared_ptr<GenerationJob>> jobs;
  {
    BatcherOptions options;
    options.max_batch = 2;
    options.max_faces = 400;
    Batcher batcher(model, TokenizerConfig{}, options);
    GenerationRequest r = request(4, 400);
    for (int i = 0; i < 4; ++i) jobs.push_back(batcher.submit(r));
  }
  for (auto& job : jobs) {
    ASSERT_TRUE(job);
    ASSERT_TRUE(job->done());
  }
}

}  // namespace
}  // namespace iflame
