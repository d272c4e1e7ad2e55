#include "generate/batcher.h"

#include <algorithm>

#include "generate/decode_cache.h"
#include "generate/decoder.h"
#include "generate/fast_decode.h"
#include "util/error.h"

namespace iflame {

namespace {

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

}  // namespace

// ---------------------------------------------------------------------------------------
// GenerationJob: the client's view.

bool GenerationJob::wait(size_t seen, std::chrono::milliseconds timeout, std::vector<FaceRow>* faces) {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait_for(lock, timeout, [&] { return done_ || faces_.size() > seen; });
  if (faces && faces_.size() > seen) faces->insert(faces->end(), faces_.begin() + long(seen), faces_.end());
  return done_;
}

bool GenerationJob::wait_done(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return done_; });
}

void GenerationJob::cancel(const std::string& reason) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (done_ || cancelled_) return;
  cancelled_ = true;
  cancel_reason_ = reason;
}

bool GenerationJob::done() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return done_;
}

GeneratedSequence GenerationJob::result() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return result_;
}

GenerationJob::Timing GenerationJob::timing() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return timing_;
}

std::string GenerationJob::cancel_reason() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return cancel_reason_;
}

void GenerationJob::add_face(const FaceRow& row) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (faces_.empty()) timing_.first_face_ms = ms_between(submitted_, Clock::now());
    faces_.push_back(row);
  }
  changed_.notify_all();
}

void GenerationJob::finish(GeneratedSequence sequence) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    result_ = std::move(sequence);
    timing_.total_ms = ms_between(submitted_, Clock::now());
    done_ = true;
  }
  changed_.notify_all();
}

bool GenerationJob::cancel_requested() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!cancelled_ && Clock::now() >= request_.deadline) {
    cancelled_ = true;
    cancel_reason_ = "timeout";
  }
  return cancelled_;
}

// ---------------------------------------------------------------------------------------
// Batcher: the decode loop.

Batcher::Batcher(IFlameModel model, TokenizerConfig tokenizer, BatcherOptions options)
    : model_(std::move(model)), tokenizer_(tokenizer), options_(options) {
  if (options_.max_batch < 1 || options_.max_queue < 0 || options_.max_faces < 1) {
    throw Error("batcher: max_batch and max_faces must be positive and max_queue at least 0");
  }
  const ModelConfig& cfg = model_->config;
  if (cfg.vocab != tokenizer_.vocab_size()) {
    throw Error("batcher: the model's vocabulary (" + std::to_string(cfg.vocab) + ") does not match the tokenizer's (" +
                std::to_string(tokenizer_.vocab_size()) + ")");
  }
  // Room for the BOS row, max_faces faces in all and the EOS row.
  const int64_t capacity = int64_t(sequence_tokens(size_t(options_.max_faces)));
  cache_ = std::make_unique<DecodeCache>(cfg, options_.max_batch, capacity, torch::kCPU,
                                         options_.bf16 ? torch::kBFloat16 : torch::kFloat);
  // Touch every page now: the server's memory is the same idle or busy.
  for (auto& layer : cache_->layers) {
    if (layer.k.defined()) layer.k.zero_(), layer.v.zero_();
  }
  if (!fast_decode_supported(*model_, *cache_)) {
    throw Error("batcher: continuous batching needs the fused CPU decoder (float32 parameters on the CPU)");
  }
  slots_.resize(size_t(options_.max_batch));
  thread_ = std::thread([this] { loop(); });
}

Batcher::~Batcher() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

std::shared_ptr<GenerationJob> Batcher::submit(GenerationRequest request) {
  check_sampling_options(request.sampling, tokenizer_.vocab_size(), OptionNames::kRequestFields);
  if (request.prompt.empty()) request.prompt.assign(kTokensPerFace, tokenizer_.bos());
  const auto& p = request.prompt;
  if (p.size() % kTokensPerFace != 0) throw Error("prompt: " + std::to_string(p.size()) + " tokens, not a multiple of 9");
  for (size_t i = 0; i < p.size(); ++i) {
    const bool ok = i < size_t(kTokensPerFace) ? p[i] == tokenizer_.bos() : tokenizer_.is_coordinate(p[i]);
    if (!ok) throw Error("prompt: token " + std::to_string(i) + " is " + std::to_string(p[i]) +
                         " (a BOS row, then coordinate rows, is expected)");
  }
  const int64_t faces_in_prompt = int64_t(prompt_faces(p.size()));
  if (request.max_faces < 1 || faces_in_prompt + request.max_faces > options_.max_faces) {
    throw Error("max_faces: " + std::to_string(request.max_faces) + " must be between 1 and " +
                std::to_string(options_.max_faces - faces_in_prompt) + " (the server's cap of " +
                std::to_string(options_.max_faces) + " faces, less the prompt's " + std::to_string(faces_in_prompt) + ")");
  }
  std::shared_ptr<GenerationJob> job(new GenerationJob(std::move(request)));
  {
    std::lock_guard<std::mutex> lock(mutex_);
    // Free slots take requests at the next step; beyond them, max_queue may wait.
    if (stop_ || int64_t(queue_.size()) >= options_.max_queue + (options_.max_batch - busy_)) return nullptr;
    queue_.push_back(job);
  }
  wake_.notify_all();
  return job;
}

Batcher::Load Batcher::load() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return {options_.max_batch, busy_, int64_t(queue_.size()), tokens_};
}

void Batcher::loop() {
  torch::NoGradGuard no_grad;
  std::vector<std::shared_ptr<GenerationJob>> incoming;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stop_ || busy_ > 0 || !queue_.empty(); });
      if (stop_) break;
      // Fill free slots from the queue, oldest first.
      while (!queue_.empty() && busy_ + int64_t(incoming.size()) < options_.max_batch) {
        incoming.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      busy_ += int64_t(incoming.size());
    }
    try {
      admit(incoming);
      step();
    } catch (const std::exception& e) {
      // Nothing a request can send reaches here (submit checks it); end every sequence rather
      // than leave clients waiting.
      for (Slot& slot : slots_) {
        if (slot.job) {
          slot.job->cancel(std::string("decode failed: ") + e.what());
          finish_slot(slot, Finish::kCancelled);
        }
      }
    }
    incoming.clear();
  }
  // Shutting down: nobody will decode what is left.
  std::deque<std::shared_ptr<GenerationJob>> left;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    left.swap(queue_);
  }
  for (Slot& slot : slots_) {
    if (slot.job) left.push_back(slot.job), slot.job = nullptr;
  }
  for (auto& job : left) {
    job->cancel("server shutting down");
    GeneratedSequence seq;
    seq.tokens = job->request_.prompt;
    seq.finished = Finish::kCancelled;
    job->finish(std::move(seq));
  }
}

// Prefills each new request on its own (a batch of 1) and copies its cache into a free slot.
void Batcher::admit(std::vector<std::shared_ptr<GenerationJob>>& incoming) {
  size_t next_free = 0;
  for (auto& job : incoming) {
    while (slots_[next_free].job) ++next_free;
    Slot& slot = slots_[next_free];
    slot.job = job;
    {
      std::lock_guard<std::mutex> lock(job->mutex_);
      job->timing_.queue_ms = ms_between(job->submitted_, Clock::now());
    }
    const GenerationRequest& request = job->request_;
    const int64_t P = int64_t(request.prompt.size());
    slot.sequence = GeneratedSequence{};
    slot.sequence.tokens = request.prompt;
    slot.limits = SequenceLimits{P, request.max_faces, 0, true};
    slot.generator = {make_generator(request.seed, 0)};
    if (job->cancel_requested()) {
      finish_slot(slot, Finish::kCancelled);
      continue;
    }
    DecodeCache single(model_->config, 1, P, torch::kCPU, cache_->kv_dtype());
    const torch::Tensor prompt = torch::tensor(request.prompt, torch::kLong).unsqueeze(0);  // (1, P)
    slot.logits = prefill(*model_, single, prompt).select(1, P - 1);                         // (1, V)
    cache_->copy_row_from(single, 0, int64_t(next_free));
  }
}

// One token for every running sequence: sample, publish completed faces, end sequences, decode.
void Batcher::step() {
  std::vector<int64_t> rows, positions, tokens;
  int64_t sampled = 0;
  for (size_t r = 0; r < slots_.size(); ++r) {
    Slot& slot = slots_[r];
    if (!slot.job) continue;
    if (slot.job->cancel_requested()) {
      finish_slot(slot, Finish::kCancelled);
      continue;
    }
    GeneratedSequence& seq = slot.sequence;
    const int64_t t = int64_t(seq.tokens.size());
    ++sampled;
    const SamplingOptions& sampling = slot.job->request_.sampling;
    const std::vector<const int64_t*> history = {seq.tokens.data()};
    const int64_t token = sample_tokens(slot.logits, t, sampling, tokenizer_, slot.generator, nullptr, history).item<int64_t>();
    if ((t + 1) % kTokensPerFace == 0) {  // a row completes: publish it when it is a face
      FaceRow row;
      std::copy(seq.tokens.end() - (kTokensPerFace - 1), seq.tokens.end(), row.begin());
      row.back() = token;
      if (is_face_row(row.data(), tokenizer_)) slot.job->add_face(row);
    }
    if (append_token(seq, token, slot.limits, tokenizer_)) {
      finish_slot(slot, seq.finished);
      continue;
    }
    rows.push_back(int64_t(r));
    positions.push_back(t);
    tokens.push_back(token);
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    tokens_ += sampled;
  }
  if (rows.empty()) return;
  const torch::Tensor logits = fast_decode_rows(*model_, *cache_, rows, positions, tokens);  // (n, V)
  for (size_t i = 0; i < rows.size(); ++i) slots_[size_t(rows[i])].logits = logits.narrow(0, int64_t(i), 1);
}

void Batcher::finish_slot(Slot& slot, Finish finish) {
  slot.sequence.finished = finish;
  slot.job->finish(std::move(slot.sequence));
  slot.job = nullptr;
  slot.logits = torch::Tensor();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    --busy_;
  }
}

}  // namespace iflame
