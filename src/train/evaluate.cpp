#include "train/evaluate.h"

#include <cmath>

#include "model/loss.h"
#include "train/data.h"
#include "util/progress.h"

namespace iflame {

TeacherForcedResult evaluate_teacher_forced(IFlameModelImpl& model, const DatasetReader& data,
                                            const std::vector<size_t>& indices, const TeacherForcedOptions& options) {
  TeacherForcedResult r;
  std::vector<size_t> fit;
  for (size_t i : indices) {
    const int64_t faces = int64_t(data[i].num_faces);
    if (faces > 0 && faces <= options.max_faces) fit.push_back(i);
  }
  r.left_out = int64_t(indices.size() - fit.size());
  if (fit.empty()) return r;

  torch::NoGradGuard no_grad;
  // Back to the caller's mode on every exit, exceptions included.
  struct ModeGuard {
    IFlameModelImpl& model;
    bool training;
    ~ModeGuard() { model.train(training); }
  } mode{model, model.is_training()};
  model.eval();
  const torch::Device device = model.parameters().empty() ? torch::Device(torch::kCPU) : model.parameters()[0].device();
  const BatchPlanOptions plan{options.batch_tokens, options.batch_size, options.max_faces, options.drop_repeated_faces,
                              options.noise};
  auto batches = plan_epoch(data, fit, plan, options.seed, /*epoch=*/0);
  if (options.max_batches > 0 && int64_t(batches.size()) > options.max_batches) batches.resize(size_t(options.max_batches));
  double loss_sum = 0;
  for (const auto& b : batches) {
    const TokenBatch batch = make_batch(data, b, /*augment=*/false, options.seed, 0, plan).to(device);  // (B, L)
    compat::AutocastGuard autocast(device.type(), torch::kBFloat16, options.bf16);
    const LossStats s = sequence_loss(model.forward(batch.inputs), batch.targets, model.config.pad_token);
    loss_sum += s.loss.item<double>() * double(s.targets);
    r.targets += s.targets;
    r.correct += s.correct;
    r.faces += s.faces;
    r.faces_correct += s.faces_correct;
    r.sequences += int64_t(b.size());
    ++r.batches;
    if (options.progress) options.progress->add(b.size());
  }
  if (r.targets > 0) {
    r.loss = loss_sum / double(r.targets);
    r.perplexity = std::exp(r.loss);
    r.token_accuracy = double(r.correct) / double(r.targets);
    r.face_accuracy = r.faces ? double(r.faces_correct) / double(r.faces) : 0.0;
  }
  return r;
}

}  // namespace iflame
