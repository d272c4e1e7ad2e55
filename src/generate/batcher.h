// Continuous batching (after llama.cpp's server and vLLM): one decode loop owns the model and a
// fixed pool of sequence slots in one hybrid cache. A request waits in a bounded queue; at the
// next step it is prefilled on its own and placed in a free slot, joining sequences that are
// already running. Slots sit at different positions, so each step runs every hourglass stage
// only for the rows whose token completes that stage's position (fast_decode_rows). A finished
// or cancelled sequence frees its slot at once.
//
// Sampling is per request with its own generator, seeded as `iflame sample --seed S` seeds its
// first sample, and a row's logits do not depend on the rows beside it: a request gives the same
// mesh at any load.
#pragma once
#include <array>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "generate/generate.h"

namespace iflame {

struct DecodeCache;  // generate/decode_cache.h

struct BatcherOptions {
  int64_t max_batch = 16;   // sequence slots decoded together
  int64_t max_queue = 64;   // requests waiting while every slot is busy; submit() refuses more
  int64_t max_faces = 800;  // the most faces a request may hold, prompt included
  bool bf16 = false;        // weights and K/V in bfloat16 for decoding
};

using Clock = std::chrono::steady_clock;

struct GenerationRequest {
  SamplingOptions sampling;
  uint64_t seed = 0;
  int64_t max_faces = 800;      // new faces; the face cap appends an EOS row
  std::vector<int64_t> prompt;  // BOS row + face rows (a multiple of 9 tokens); empty = the BOS row
  Clock::time_point deadline = Clock::time_point::max();  // cancelled when still running then
};

using FaceRow = std::array<int64_t, 9>;

// One request's progress: written by the decode loop, read by the client's thread.
class GenerationJob {
 public:
  struct Timing {
    double queue_ms = 0;       // submit -> placed in a slot
    double first_face_ms = 0;  // submit -> first face (0 when none)
    double total_ms = 0;       // submit -> done
  };

  // Waits until the job has more than `seen` new faces or is done, at most `timeout`. Appends
  // the faces after `seen` to `faces` and returns whether the job is done.
  bool wait(size_t seen, std::chrono::milliseconds timeout, std::vector<FaceRow>* faces);
  // Waits until the job is done, at most `timeout`; returns done().
  bool wait_done(std::chrono::milliseconds timeout);
  // Asks the loop to stop this sequence ("client disconnected", "timeout"); its slot is freed at
  // the next step and it finishes as Finish::kCancelled.
  void cancel(const std::string& reason);
  bool done() const;
  // After done(): the tokens (prompt included), why it ended, and when.
  GeneratedSequence result() const;
  Timing timing() const;
  std::string cancel_reason() const;

 private:
  friend class Batcher;
  explicit GenerationJob(GenerationRequest request) : request_(std::move(request)) {}
  void add_face(const FaceRow& row);
  void finish(GeneratedSequence sequence);
  bool cancel_requested();

  const GenerationRequest request_;
  const Clock::time_point submitted_ = Clock::now();
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<FaceRow> faces_;
  GeneratedSequence result_;
  Timing timing_;
  std::string cancel_reason_;
  bool done_ = false, cancelled_ = false;
};

class Batcher {
 public:
  // Starts the decode loop. The model must run the fused CPU decoder (float32 parameters on the
  // CPU); `tokenizer` must match it.
  Batcher(IFlameModel model, TokenizerConfig tokenizer, BatcherOptions options);
  ~Batcher();  // stops the loop; sequences still queued or running finish as cancelled
  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  // Queues a request. Returns null when the queue is full. Throws iflame::Error naming the
  // field when the request is invalid (sampling options, prompt, face counts).
  std::shared_ptr<GenerationJob> submit(GenerationRequest request);

  struct Load {
    int64_t slots = 0, busy = 0, queued = 0;
    int64_t tokens = 0;  // tokens decoded since start
  };
  Load load() const;
  const BatcherOptions& options() const { return options_; }

 private:
  struct Slot {
    std::shared_ptr<GenerationJob> job;  // null: free
    GeneratedSequence sequence;
    SequenceLimits limits;
    std::vector<at::Generator> generator;  // one, in the vector sample_tokens takes
    torch::Tensor logits;                  // (1, V): the next token's
  };

  void loop();
  void admit(std::vector<std::shared_ptr<GenerationJob>>& incoming);
  void step();
  void finish_slot(Slot& slot, Finish finish);

  IFlameModel model_;
  const TokenizerConfig tokenizer_;
  const BatcherOptions options_;
  std::unique_ptr<DecodeCache> cache_;
  std::vector<Slot> slots_;  // only the loop's thread touches these

  mutable std::mutex mutex_;  // guards queue_, busy_, stop_, tokens_
  std::condition_variable wake_;
  std::deque<std::shared_ptr<GenerationJob>> queue_;
  int64_t busy_ = 0, tokens_ = 0;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace iflame
