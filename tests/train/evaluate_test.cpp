// Teacher-forced evaluation: the batched, padded result equals a per-sequence computation;
// meshes over max_faces are left out; the model's mode is restored; `iflame eval --weights`.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "dataset/format.h"
#include "dataset/stats.h"
#include "model/loss.h"
#include "model/weights.h"
#include "test_paths.h"
#include "tokenizer/tokenizer.h"
#include "train/evaluate.h"

namespace iflame {
namespace {

// Random meshes of 3..30 faces (distinct lengths, so batches need padding), every 3rd in val.
std::string make_dataset(const std::string& dir, int count = 12) {
  std::mt19937_64 rng(5);
  std::vector<DatasetEntry> entries;
  for (int i = 0; i < count; ++i) {
    Mesh m;
    const int nv = 8 + int(rng() % 10);
    for (int v = 0; v < nv; ++v) m.vertices.push_back({uniform(rng, -1, 1), uniform(rng, -1, 1), uniform(rng, -1, 1)});
    const int nf = 3 + int(rng() % 28);
    for (int f = 0; f < nf; ++f) {
      const int32_t a = int32_t(rng() % nv), b = int32_t((a + 1 + rng() % (nv - 1)) % nv);
      int32_t c = int32_t(rng() % nv);
      while (c == a || c == b) c = int32_t(rng() % nv);
      m.faces.push_back({a, b, c});
    }
    const CanonicalMesh cm = canonicalize(m);
    const Mesh n = normalize_mesh(m);
    DatasetEntry e;
    e.name = "m" + std::to_string(i) + ".obj";
    e.group = e.name;
    e.source = "test";
    e.split = i % 3 == 0 ? Split::kVal : Split::kTrain;
    for (const Vec3& v : n.vertices) e.vertices.insert(e.vertices.end(), {float(v[0]), float(v[1]), float(v[2])});
    for (const Tri& f : n.faces) e.triangles.insert(e.triangles.end(), f.begin(), f.end());
    for (int32_t t : face_rows(cm)) e.tokens.push_back(uint16_t(t));
    e.input_faces = uint32_t(m.faces.size());
    entries.push_back(std::move(e));
  }
  const std::string path = dir + "/data.ifds";
  write_dataset(path, entries, 7, "{}");
  return path;
}

IFlameModel tiny_model() {
  torch::manual_seed(3);
  return IFlameModel(model_preset("tiny"));
}

// A tiny model saved beside a small dataset, for `iflame eval --weights --dataset`.
struct SavedModel {
  std::string dir = test::temp_dir();
  std::string data_path = make_dataset(dir);
  std::string weights = dir + "/model.safetensors";
  IFlameModel model = tiny_model();
  SavedModel() { save_model(*model, weights); }
  // The command line that evaluates it, with `options` appended.
  std::string eval_args(const std::string& options) const {
    return "eval --weights '" + weights + "' --dataset '" + data_path + "' " + options;
  }
};

TEST(EvalTeacherForced, BatchedEqualsPerSequence) {
  const std::string dir = test::temp_dir();
  DatasetReader data(make_dataset(dir));
  IFlameModel model = tiny_model();
  model->train();
  std::vector<size_t> all(data.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  TeacherForcedOptions o;
  o.batch_tokens = 2000;  // several batches, several sequences each
  const TeacherForcedResult r = evaluate_teacher_forced(*model, data, all, o);
  EXPECT_TRUE(model->is_training());
  EXPECT_EQ(r.sequences, int64_t(data.size()));
  EXPECT_GT(r.batches, 1);
  EXPECT_EQ(r.left_out, 0);

  // One sequence at a time, no padding.
  torch::NoGradGuard no_grad;
  model->eval();
  double loss_sum = 0;
  int64_t targets = 0, correct = 0, faces = 0, faces_correct = 0;
  for (size_t i : all) {
    const std::vector<int64_t> seq = data[i].sequence(data.tokenizer_config());
    const torch::Tensor tokens = torch::tensor(seq, torch::kLong).unsqueeze(0);  // (1, L)
    const LossStats s = sequence_loss(model->forward(tokens), tokens, model->config.pad_token);
    loss_sum += s.loss.item<double>() * double(s.targets);
    targets += s.targets;
    correct += s.correct;
    faces += s.faces;
    faces_correct += s.faces_correct;
    EXPECT_EQ(s.targets, int64_t(data[i].num_faces + 1) * 9);  // every face row and the EOS row
  }
  EXPECT_EQ(r.targets, targets);
  EXPECT_EQ(r.correct, correct);
  EXPECT_EQ(r.faces, faces);
  EXPECT_EQ(r.faces_correct, faces_correct);
  EXPECT_NEAR(r.loss, loss_sum / double(targets), 1e-5);
  EXPECT_NEAR(r.perplexity, std::exp(r.loss), 1e-9);
  EXPECT_DOUBLE_EQ(r.token_accuracy, double(correct) / double(targets));
  EXPECT_DOUBLE_EQ(r.face_accuracy, double(faces_correct) / double(faces));
  EXPECT_GT(r.loss, 0.0);
}

TEST(EvalTeacherForced, LongMeshesAreLeftOutAndCapsApply) {
  const std::string dir = test::temp_dir();
  DatasetReader data(make_dataset(dir));
  IFlameModel model = tiny_model();
  model->eval();
  const auto val = data.indices(Split::kVal);
  TeacherForcedOptions o;
  o.max_faces = 10;
  int64_t longer = 0;
  for (size_t i : val) longer += data[i].num_faces > 10;
  ASSERT_GT(longer, 0);
  const TeacherForcedResult r = evaluate_teacher_forced(*model, data, val, o);
  EXPECT_FALSE(model->is_training());
  EXPECT_EQ(r.left_out, longer);
  EXPECT_EQ(r.sequences + r.left_out, int64_t(val.size()));
  o.max_faces = 0;  // nothing fits: zeros, not an exception
  const TeacherForcedResult none = evaluate_teacher_forced(*model, data, val, o);
  EXPECT_EQ(none.sequences, 0);
  EXPECT_EQ(none.left_out, int64_t(val.size()));
  o.max_faces = 800;
  o.batch_size = 1;
  o.max_batches = 2;
  EXPECT_EQ(evaluate_teacher_forced(*model, data, val, o).sequences, 2);
}

TEST(EvalTeacherForced, CliReportsTheLibraryNumbers) {
  const SavedModel saved;
  const std::string& dir = saved.dir;
  IFlameModel model = saved.model;
  DatasetReader data(saved.data_path);
  const TeacherForcedResult r = evaluate_teacher_forced(*model, data, data.indices(Split::kVal), {});
  const auto run = test::run_iflame(saved.eval_args("--threads 1 --json '" + dir + "/tf.json'"));
  ASSERT_EQ(run.code, 0) << run.out;
  EXPECT_NE(run.out.find("perplexity"), std::string::npos) << run.out;
  std::ifstream in(dir + "/tf.json");
  const auto all = nlohmann::json::parse(in);
  const auto j = all["teacher_forced"];
  // The unigram baseline next to the model, from the library function.
  const UnigramBaseline u = unigram_baseline(data, 800);
  EXPECT_NE(run.out.find("unigram baseline"), std::string::npos) << run.out;
  EXPECT_DOUBLE_EQ(all["unigram_baseline"]["loss"].get<double>(), u.cross_entropy);
  EXPECT_EQ(all["unigram_baseline"]["val_targets"].get<int64_t>(), u.val_targets);
  EXPECT_NEAR(j["loss"].get<double>(), r.loss, 1e-5);
  EXPECT_EQ(j["targets"].get<int64_t>(), r.targets);
  EXPECT_EQ(j["sequences"].get<int64_t>(), int64_t(data.num_val()));
  EXPECT_DOUBLE_EQ(j["token_accuracy"].get<double>(), r.token_accuracy);
  EXPECT_NE(test::run_iflame("eval --weights '" + saved.weights + "'").code, 0);  // --dataset missing

  // Without repeated face rows: the model and the baseline are scored on the same, fewer targets.
  const auto dropped = test::run_iflame(saved.eval_args("--threads 1 --drop-repeated-faces --json '" + dir + "/tf-drop.json'"));
  ASSERT_EQ(dropped.code, 0) << dropped.out;
  std::ifstream in_drop(dir + "/tf-drop.json");
  const auto d = nlohmann::json::parse(in_drop);
  TeacherForcedOptions o;
  o.drop_repeated_faces = true;
  const TeacherForcedResult rd = evaluate_teacher_forced(*model, data, data.indices(Split::kVal), o);
  const UnigramBaseline ud = unigram_baseline(data, 800, /*drop_repeated_faces=*/true);
  EXPECT_LT(rd.targets, r.targets) << "the test data should hold repeated face rows";
  EXPECT_EQ(d["teacher_forced"]["targets"].get<int64_t>(), rd.targets);
  EXPECT_EQ(d["unigram_baseline"]["val_targets"].get<int64_t>(), ud.val_targets);
  EXPECT_DOUBLE_EQ(d["unigram_baseline"]["loss"].get<double>(), ud.cross_entropy);
  EXPECT_NEAR(double(ud.val_targets) / double(u.val_targets), double(rd.targets) / double(r.targets), 1e-12)
      << "both drop the same rows";
}

// --repeat-noise: the same targets scored with copies of earlier rows in the context, as the
// library computes it; a value that is not a probability is refused, naming the option.
TEST(EvalTeacherForced, RepeatNoiseScoresTheSameTargetsAfterCopies) {
  const SavedModel saved;
  IFlameModel model = saved.model;
  DatasetReader data(saved.data_path);
  const TeacherForcedResult clean = evaluate_teacher_forced(*model, data, data.indices(Split::kVal), {});
  TeacherForcedOptions o;
  o.noise.copy = 0.4;
  const TeacherForcedResult noisy = evaluate_teacher_forced(*model, data, data.indices(Split::kVal), o);
  EXPECT_EQ(noisy.targets, clean.targets);
  EXPECT_EQ(noisy.faces, clean.faces);
  EXPECT_NE(noisy.loss, clean.loss);
  const auto run = test::run_iflame(saved.eval_args("--threads 1 --repeat-noise 0.4 --json '" + saved.dir + "/tf.json'"));
  ASSERT_EQ(run.code, 0) << run.out;
  EXPECT_NE(run.out.find("copies / flat rows inserted before 40% / 0% of the face rows"), std::string::npos) << run.out;
  std::ifstream in(saved.dir + "/tf.json");
  const auto j = nlohmann::json::parse(in);
  EXPECT_NEAR(j["teacher_forced"]["loss"].get<double>(), noisy.loss, 1e-5);
  EXPECT_EQ(j["settings"]["repeat_noise"].get<double>(), 0.4);
  const std::pair<const char*, const char*> refusals[] = {  // options, the option the error names
      {"--repeat-noise 1", "--repeat-noise"},  {"--repeat-noise -0.1", "--repeat-noise"},
      {"--repeat-noise nan", "--repeat-noise"}, {"--repeat-noise 2", "--repeat-noise"},
      {"--flat-noise -1", "--flat-noise"},     {"--repeat-noise 0.5 --flat-noise 0.5", "--flat-noise"}};
  for (const auto& [bad, named] : refusals) {
    const auto refused = test::run_iflame(saved.eval_args(bad));
    EXPECT_NE(refused.code, 0) << bad;
    EXPECT_NE(refused.out.find(named), std::string::npos) << bad << ": " << refused.out;
  }
}

}  // namespace
}  // namespace iflame
