// The trainer: optimizers, schedule, config parsing, and that a resumed run (also after
// SIGKILL) continues the exact loss curve of an uninterrupted one.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <thread>

#include "dataset/format.h"
#include "mesh/mesh.h"
#include "error_text.h"
#include "model/loss.h"
#include "model/model_test_util.h"
#include "test_paths.h"
#include "tokenizer/tokenizer.h"
#include "train/checkpoint.h"
#include "train/data.h"
#include "train/train_test_util.h"
#include "train/trainer.h"
#include "util/error.h"
#include "util/fs.h"

namespace iflame {
namespace {

using torch::Tensor;
using test::losses;
using test::make_dataset;

TrainConfig small_config(const std::string& data, const std::string& out) { return test::quick_config(data, out, 6, 3, 3); }

TEST(Train, ResumeContinuesTheExactLossCurve) {
  const double part_noise_copy = 0.2, part_noise_flat = 0.1;
  const std::string dir = test::temp_dir();
  const std::string data = make_dataset(dir);
  TrainConfig full = small_config(data, dir + "/full");
  full.data_repeat_noise = part_noise_copy;  // its noise rows too must come back the same after a resume
  full.data_flat_noise = part_noise_flat;
  train(full, RunStart::kFresh);
  TrainConfig part = small_config(data, dir + "/part");
  part.data_repeat_noise = part_noise_copy;
  part.data_flat_noise = part_noise_flat;
  part.train_steps = 6;
  // Stop after 3 steps by training a run whose schedule is the same but which we cut short:
  // run 6 steps once with save_every 3, delete the last checkpoint and the tail of the log.
  train(part, RunStart::kFresh);
  std::filesystem::remove_all(dir + "/part/step-00000006");
  {
    auto all = losses(dir + "/part/log.jsonl");
    ASSERT_EQ(all.size(), 6u);
  }
  std::filesystem::remove(dir + "/part/log.jsonl");
  train(part, RunStart::kResume);  // resumes at step 3
  const auto a = losses(dir + "/full/log.jsonl");
  const auto b = losses(dir + "/part/log.jsonl");
  ASSERT_EQ(a.size(), 6u);
  ASSERT_EQ(b.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_DOUBLE_EQ(a[3 + i], b[i]) << "step " << 4 + i;
}

// The first validation loss of a run's log, at `step`.
double val_loss_at(const std::string& log_path, int64_t step) {
  std::ifstream in(log_path);
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line);
    if (j.value("step", int64_t(-1)) == step && j.contains("val_loss")) return j["val_loss"].get<double>();
  }
  ADD_FAILURE() << "no validation at step " << step << " in " << log_path;
  return 0;
}

// The learning rate each logged step used, by step.
std::map<int64_t, double> lrs(const std::string& log_path) {
  std::map<int64_t, double> out;
  std::ifstream in(log_path);
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line);
    if (j.contains("lr") && j.contains("step")) out[j["step"].get<int64_t>()] = j["lr"].get<double>();
  }
  return out;
}

TEST(Train, InitStartsANewRunFromGivenWeights) {
  const std::string dir = test::temp_dir();
  const std::string data = make_dataset(dir);
  TrainConfig trained = small_config(data, dir + "/trained");
  trained.optim_lr = 1e-2;  // far from the random start by step 3
  train(trained, RunStart::kFresh);
  // A run started from step 3's weights, whose single step barely moves them, validates as
  // the trained run did at step 3; a random start would not.
  TrainConfig init = small_config(data, dir + "/init");
  init.optim_lr = 1e-12;
  init.eval_every = 1;
  init.train_steps = 1;
  init.train_init = dir + "/trained/step-00000003/model.safetensors";
  train(init, RunStart::kFresh);
  TrainConfig fresh = init;
  fresh.train_init.clear();
  fresh.out_dir = dir + "/fresh";
  train(fresh, RunStart::kFresh);
  const double at3 = val_loss_at(dir + "/trained/log.jsonl", 3);
  EXPECT_NEAR(val_loss_at(dir + "/init/log.jsonl", 1), at3, 1e-5);
  EXPECT_GT(std::abs(val_loss_at(dir + "/fresh/log.jsonl", 1) - at3), 0.05);
}

TEST(Train, InitStepContinuesTheScheduleWithARampThatSurvivesResume) {
  const std::string dir = test::temp_dir();
  const std::string data = make_dataset(dir);
  TrainConfig trained = small_config(data, dir + "/trained");
  train(trained, RunStart::kFresh);
  TrainConfig c = small_config(data, dir + "/run");
  c.train_steps = 10;
  c.out_save_every = 1;
  c.train_init = dir + "/trained/step-00000006/model.safetensors";
  c.train_init_step = 6;
  c.optim_rewarmup = 4;
  train(c, RunStart::kFresh);
  const auto whole = lrs(dir + "/run/log.jsonl");
  ASSERT_EQ(whole.size(), 4u);  // steps 7..10: the run began at step 6
  const int64_t warmup = int64_t(c.optim_warmup * double(c.train_steps));
  for (int64_t step = 7; step <= 10; ++step) {
    const double ramp = std::min(1.0, double(step - 6) / 4.0);
    EXPECT_NEAR(whole.at(step), scheduled_lr(step - 1, 10, warmup, c.optim_lr) * ramp, 1e-15) << "step " << step;
  }
  const auto state = nlohmann::json::parse(read_file_text(dir + "/run/step-00000010/state.json"));
  EXPECT_EQ(state["start_step"], 6);
  // Cut the run back to step 8 and resume: the ramp goes on where it was.
  std::filesystem::remove_all(dir + "/run/step-00000009");
  std::filesystem::remove_all(dir + "/run/step-00000010");
  std::filesystem::remove(dir + "/run/log.jsonl");
  train(c, RunStart::kResume);
  const auto resumed = lrs(dir + "/run/log.jsonl");
  ASSERT_EQ(resumed.size(), 2u);
  EXPECT_DOUBLE_EQ(resumed.at(9), whole.at(9));
  EXPECT_DOUBLE_EQ(resumed.at(10), whole.at(10));
}

TEST(Train, InitRefusesWeightsThatDoNotFitAndSaysWhy) {
  const std::string dir = test::temp_dir();
  const std::string data = make_dataset(dir);
  TrainConfig other = small_config(data, dir + "/other");
  other.model_dim = 64;  // the ci preset is E = 32, H = 2
  other.model_heads = 4;
  other.train_steps = 1;
  train(other, RunStart::kFresh);
  const std::string wrong = dir + "/other/step-00000001/model.safetensors";
  auto error_of = [&](const TrainConfig& c) { return test::error_text([&] { train(c, RunStart::kFresh); }); };
  TrainConfig c = small_config(data, dir + "/a");
  c.train_init = wrong;
  EXPECT_NE(error_of(c).find(wrong), std::string::npos) << "a file of another width names the file";
  EXPECT_FALSE(std::filesystem::exists(dir + "/a")) << "a refused start claims no folder";
  c.out_dir = dir + "/b";
  c.train_init = dir + "/missing.safetensors";
  EXPECT_NE(error_of(c).find("missing.safetensors"), std::string::npos);
  c.out_dir = dir + "/c";
  c.train_init = wrong;
  c.train_init_step = 6;  // == train.steps
  EXPECT_NE(error_of(c).find("train.init_step"), std::string::npos);
  // Same shapes, other heads: the tensors fit, the attention would not.
  TrainConfig heads = small_config(data, dir + "/heads");
  heads.model_heads = 4;
  heads.train_steps = 1;
  train(heads, RunStart::kFresh);
  c.out_dir = dir + "/d";
  c.train_init = dir + "/heads/step-00000001/model.safetensors";
  c.train_init_step = 0;
  const std::string heads_error = error_of(c);
  EXPECT_NE(heads_error.find("num_heads = 4"), std::string::npos) << heads_error;
  EXPECT_THROW(c.set("train.init_step", "-1"), Error);
  EXPECT_THROW(c.set("optim.rewarmup", "-5"), Error);
}

TEST(Train, LossFallsOnASmallDataset) {
  const std::string dir = test::temp_dir();
  TrainConfig c = small_config(make_dataset(dir), dir + "/run");
  c.train_steps = 30;
  c.optim_lr = 1e-2;
  c.data_augment = false;
  c.out_save_every = 100;
  c.eval_every = 100;
  train(c, RunStart::kFresh);
  const auto l = losses(dir + "/run/log.jsonl");
  ASSERT_EQ(l.size(), 30u);
  EXPECT_LT((l[27] + l[28] + l[29]) / 3, (l[0] + l[1] + l[2]) / 3 - 0.5);
}

TEST(Train, LogsThroughputAndMfu) {
  const std::string dir = test::temp_dir();
  TrainConfig c = small_config(make_dataset(dir), dir + "/run");
  c.train_steps = 2;
  c.train_peak_gflops = 50;
  train(c, RunStart::kFresh);
  std::ifstream in(dir + "/run/log.jsonl");
  std::string line;
  int steps = 0;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line);
    if (j.contains("event")) {
      EXPECT_EQ(j.at("peak_gflops").get<double>(), 50.0);
      continue;
    }
    if (!j.contains("mfu")) continue;
    ++steps;
    // FLOPs of the step's batches (analytic, bench/flops.cpp) over its time, over the peak.
    EXPECT_GT(j.at("gflops").get<double>(), 0.0);
    EXPECT_NEAR(j.at("mfu").get<double>(), j.at("gflops").get<double>() / 50.0, 1e-12);
  }
  EXPECT_EQ(steps, 2);
}

TEST(Train, CheckpointsAreCompleteOrAbsent) {
  const std::string dir = test::temp_dir();
  TrainConfig c = small_config(make_dataset(dir), dir + "/run");
  c.out_keep_last = 1;
  train(c, RunStart::kFresh);
  // Only the newest step folder remains, with its completion marker; a half-written one
  // (no state.json) is never picked.
  EXPECT_EQ(latest_checkpoint(dir + "/run"), dir + "/run/step-00000006");
  EXPECT_FALSE(std::filesystem::exists(dir + "/run/step-00000003"));
  std::filesystem::create_directories(dir + "/run/step-00000009");
  EXPECT_EQ(latest_checkpoint(dir + "/run"), dir + "/run/step-00000006");
  EXPECT_TRUE(std::filesystem::exists(dir + "/run/best/model.safetensors"));
}

// data.drop_repeated_faces: the batches, stored rows and augmented ones alike, hold each face
// row once; without it the stored rows keep the repeats, as the reference's tokenizer does.
TEST(Train, BatchesDropRepeatedFacesOnRequest) {
  Mesh m;  // a square, the back side of one of its triangles, and one face three times
  m.vertices = {{0, 0, 0}, {1, 0, 0}, {1, 1, 0}, {0, 1, 0}, {0, 0, 1}};
  m.faces = {{0, 1, 2}, {0, 2, 3}, {0, 2, 1}, {0, 1, 4}, {0, 1, 4}, {0, 1, 4}};
  DatasetEntry e;
  e.name = e.group = "repeats.obj";
  e.source = "test";
  const Mesh n = normalize_mesh(m);
  for (const Vec3& v : n.vertices) e.vertices.insert(e.vertices.end(), {float(v[0]), float(v[1]), float(v[2])});
  for (const Tri& f : n.faces) e.triangles.insert(e.triangles.end(), f.begin(), f.end());
  for (int32_t t : face_rows(canonicalize(m))) e.tokens.push_back(uint16_t(t));
  const std::string path = test::temp_dir() + "/repeats.ifds";
  write_dataset(path, {e}, 7, "{}");
  const DatasetReader data(path);
  auto face_rows_of = [](const Tensor& batch) {  // (1, L): the rows of coordinates
    std::vector<std::vector<int64_t>> rows;
    for (int64_t r = 0; r + 9 <= batch.size(1); r += 9) {
      std::vector<int64_t> row(9);
      for (int64_t i = 0; i < 9; ++i) row[size_t(i)] = batch[0][r + i].item<int64_t>();
      if (*std::max_element(row.begin(), row.end()) <= 128) rows.push_back(row);
    }
    return rows;
  };
  BatchPlanOptions keep, drop;
  drop.drop_repeated_faces = true;
  EXPECT_EQ(face_rows_of(make_batch(data, {0}, false, 1, 0, keep).inputs).size(), 6u);
  for (bool augment : {false, true}) {
    const auto rows = face_rows_of(make_batch(data, {0}, augment, 1, 0, drop).inputs);
    EXPECT_EQ(rows.size(), 4u) << "augment " << augment;
    EXPECT_EQ(std::set<std::vector<int64_t>>(rows.begin(), rows.end()).size(), rows.size()) << "augment " << augment;
  }
}

// data.repeat_noise / data.flat_noise: copies of earlier face rows, or flat rows made from them,
// go in before face rows, each one unscored; what is left after taking them out is the sequence
// as it was, scored as it was.
TEST(Train, RowNoiseInsertsUnscoredCopiesAndFlatRows) {
  using Row = std::vector<int64_t>;
  const TokenizerConfig tk;
  constexpr size_t kRow = kTokensPerFace;
  Row clean(kRow, tk.bos());
  const size_t faces = 60;
  for (size_t f = 0; f < faces; ++f) {  // distinct, not flat
    const int64_t i = int64_t(f);
    clean.insert(clean.end(), {i, 10, 10, i + 1, 20 + i % 5, 10, i + 1, 10, 30 + i % 7});
  }
  clean.insert(clean.end(), kRow, tk.eos());
  Row seq = clean;
  std::mt19937_64 rng(5);
  EXPECT_EQ(insert_noise_rows(seq, {}, 800, rng, tk), clean);
  EXPECT_EQ(seq, clean);
  // No third corner on the grid (2 v1 - v0 and 2 v2 - v0 leave it, the midpoint is off it): a copy.
  const Row corner_face = {100, 100, 100, 0, 0, 1, 1, 0, 0}, next_face = {100, 100, 101, 0, 0, 2, 1, 1, 0};
  Row two(kRow, tk.bos());
  for (const Row* f : {&corner_face, &next_face}) two.insert(two.end(), f->begin(), f->end());
  two.insert(two.end(), kRow, tk.eos());
  Row expected_targets(kRow, tk.bos());
  expected_targets.insert(expected_targets.end(), corner_face.begin(), corner_face.end());
  expected_targets.insert(expected_targets.end(), kRow, tk.pad());
  expected_targets.insert(expected_targets.end(), next_face.begin(), next_face.end());
  expected_targets.insert(expected_targets.end(), kRow, tk.eos());
  EXPECT_EQ(insert_noise_rows(two, {0, 1.0}, 800, rng, tk), expected_targets);
  EXPECT_TRUE(std::equal(corner_face.begin(), corner_face.end(), two.begin() + 2 * kRow)) << "the copy in the inputs";

  // A flat row: the first corner and one other of `source`, then a third corner on their line.
  auto is_flat_from = [&](const Row& row, const Row& source) {
    const bool corners = std::equal(row.begin(), row.begin() + 3, source.begin()) &&
                         (std::equal(row.begin() + 3, row.begin() + 6, source.begin() + 3) ||
                          std::equal(row.begin() + 3, row.begin() + 6, source.begin() + 6));
    const int64_t u[3] = {row[3] - row[0], row[4] - row[1], row[5] - row[2]};
    const int64_t w[3] = {row[6] - row[0], row[7] - row[1], row[8] - row[2]};
    const bool on_line = u[1] * w[2] == u[2] * w[1] && u[2] * w[0] == u[0] * w[2] && u[0] * w[1] == u[1] * w[0];
    const bool distinct = !std::equal(row.begin() + 6, row.end(), row.begin()) && !std::equal(row.begin() + 6, row.end(), row.begin() + 3);
    const bool on_grid = std::all_of(row.begin(), row.end(), [&](int64_t t) { return tk.is_coordinate(t); });
    return corners && on_line && distinct && on_grid;
  };
  struct Case {
    RowNoise noise;
    size_t cap;
  };
  for (const Case& c : std::vector<Case>{{{0.3, 0}, 800}, {{1.0, 0}, 800}, {{1.0, 0}, 75}, {{0, 1.0}, 800}, {{0.2, 0.3}, 800}}) {
    const std::string name = "copy " + std::to_string(c.noise.copy) + " flat " + std::to_string(c.noise.flat);
    seq = clean;
    std::mt19937_64 rng2(11);
    const Row targets = insert_noise_rows(seq, c.noise, c.cap, rng2, tk);
    ASSERT_EQ(targets.size(), seq.size());
    ASSERT_EQ(seq.size() % kRow, 0u);
    Row kept_inputs, kept_targets;
    std::vector<Row> passed;  // original face rows so far
    size_t copies = 0, flats = 0, previous = 0;
    for (size_t r = 0; r < seq.size() / kRow; ++r) {
      const Row row(seq.begin() + std::ptrdiff_t(r * kRow), seq.begin() + std::ptrdiff_t((r + 1) * kRow));
      const Row target(targets.begin() + std::ptrdiff_t(r * kRow), targets.begin() + std::ptrdiff_t((r + 1) * kRow));
      if (target == Row(kRow, tk.pad())) {
        ASSERT_FALSE(passed.empty()) << name << ": a row before the first face";
        const auto reach = passed.end() - std::ptrdiff_t(std::min<size_t>(passed.size(), 32));
        if (std::find(reach, passed.end(), row) != passed.end()) {
          ++copies;
          previous += row == passed.back();
        } else {
          flats += std::any_of(reach, passed.end(), [&](const Row& source) { return is_flat_from(row, source); });
        }
        ASSERT_LT(r + 1, seq.size() / kRow);
        EXPECT_TRUE(tk.is_coordinate(seq[(r + 1) * kRow])) << name << ": a row before a special row";
        continue;
      }
      EXPECT_EQ(row, target);
      kept_inputs.insert(kept_inputs.end(), row.begin(), row.end());
      kept_targets.insert(kept_targets.end(), target.begin(), target.end());
      if (tk.is_coordinate(row[0])) passed.push_back(row);
    }
    EXPECT_EQ(kept_inputs, clean) << name;
    EXPECT_EQ(kept_targets, clean) << name;
    const size_t inserted = (seq.size() - clean.size()) / kRow;
    EXPECT_EQ(copies + flats, inserted) << name << ": every inserted row is a copy or a flat row";
    if (c.noise.copy + c.noise.flat == 1.0) {
      EXPECT_EQ(inserted, std::min(c.cap, 2 * faces - 1) - faces) << name << ": one before every face row but the first, up to the cap";
    }
    if (c.noise.copy == 1.0) {
      EXPECT_EQ(flats, 0u) << name;
      EXPECT_GT(previous, inserted / 4) << "the row just before is the most common source";
      EXPECT_LT(previous, inserted) << "sources also come from further back";
    } else if (c.noise.flat == 1.0) {
      EXPECT_GT(flats, inserted * 3 / 4) << name << ": a copy only where no third corner fits the grid";
    } else {
      EXPECT_GT(inserted, 5u) << name;
      EXPECT_LT(inserted, 45u) << name;
      if (c.noise.flat > 0) {
        EXPECT_GT(flats, 2u) << name;
      }
    }
  }

  // In batches: the same meshes, longer inputs, the same scored targets.
  const DatasetReader data(make_dataset(test::temp_dir()));
  const auto idx = data.indices(Split::kTrain);
  const std::vector<size_t> some(idx.begin(), idx.begin() + std::ptrdiff_t(std::min<size_t>(idx.size(), 4)));
  BatchPlanOptions plain, noisy;
  noisy.noise = {0.3, 0.3};
  for (bool augment : {false, true}) {
    const TokenBatch a = make_batch(data, some, augment, 3, 0, plain), b = make_batch(data, some, augment, 3, 0, noisy);
    EXPECT_TRUE(a.inputs.equal(a.targets));
    EXPECT_GT(b.inputs.size(1), a.inputs.size(1));
    EXPECT_EQ(b.targets.ne(tk.pad()).sum().item<int64_t>(), a.targets.ne(tk.pad()).sum().item<int64_t>());
    EXPECT_TRUE(b.inputs.equal(make_batch(data, some, augment, 3, 0, noisy).inputs)) << "seeded";
  }
}

// data.flat_fan: after a flat noise row, more rows of the same collapsed fan, as looping samples
// write them: each (A, C, D) after (A, B, C), D further along the same line, all unscored, on
// the grid, at most 16 after the first; the clean rows stay as they were.
TEST(Train, FlatFanNoiseContinuesAFlatRowAlongItsLine) {
  using Row = std::vector<int64_t>;
  const TokenizerConfig tk;
  constexpr size_t kRow = kTokensPerFace;
  Row clean(kRow, tk.bos());
  for (int64_t i = 0; i < 60; ++i) clean.insert(clean.end(), {i, 10, 10, i + 1, 20 + i % 5, 10, i + 1, 10, 30 + i % 7});
  clean.insert(clean.end(), kRow, tk.eos());
  Row seq = clean;
  std::mt19937_64 rng(7);
  const Row targets = insert_noise_rows(seq, {0, 0.3, 0.8}, 800, rng, tk);
  auto row_at = [&](const Row& v, size_t r) { return Row(v.begin() + std::ptrdiff_t(r * kRow), v.begin() + std::ptrdiff_t((r + 1) * kRow)); };
  auto collinear = [](const Row& r) {
    const int64_t u[3] = {r[3] - r[0], r[4] - r[1], r[5] - r[2]}, w[3] = {r[6] - r[0], r[7] - r[1], r[8] - r[2]};
    return u[1] * w[2] == u[2] * w[1] && u[2] * w[0] == u[0] * w[2] && u[0] * w[1] == u[1] * w[0];
  };
  auto dist2 = [](const int64_t* a, const int64_t* b) {
    int64_t d = 0;
    for (int i = 0; i < 3; ++i) d += (a[i] - b[i]) * (a[i] - b[i]);
    return d;
  };
  Row kept;
  size_t longest = 0, run = 0, fans = 0;
  Row prev;
  for (size_t r = 0; r < seq.size() / kRow; ++r) {
    const Row row = row_at(seq, r);
    if (row_at(targets, r) != Row(kRow, tk.pad())) {
      kept.insert(kept.end(), row.begin(), row.end());
      run = 0;
      continue;
    }
    EXPECT_TRUE(collinear(row)) << "row " << r;
    EXPECT_TRUE(std::all_of(row.begin(), row.end(), [&](int64_t t) { return tk.is_coordinate(t); }));
    if (run > 0) {  // a fan row after a flat one: the same first corner, the last corner again, one further
      EXPECT_TRUE(std::equal(row.begin(), row.begin() + 3, prev.begin())) << "row " << r;
      EXPECT_TRUE(std::equal(row.begin() + 3, row.begin() + 6, prev.begin() + 6)) << "row " << r;
      EXPECT_GT(dist2(row.data() + 6, row.data()), dist2(row.data() + 3, row.data())) << "row " << r;
      fans += run == 1;
    }
    prev = row;
    longest = std::max(longest, ++run);
  }
  EXPECT_EQ(kept, clean);
  EXPECT_GT(fans, 2u);
  EXPECT_LE(longest, 17u);
  EXPECT_GT(longest, 3u);
  TrainConfig c;
  EXPECT_THROW(c.set("data.flat_fan", "1"), Error);
  EXPECT_THROW(c.set("data.flat_fan", "-0.5"), Error);
}

// train.unlikelihood's tokens: each listed (position, coordinate) would, written there, copy an
// earlier face row or make a face without area (checked on the geometry here); at the face ends
// every coordinate that would is listed, except a scored target. The noise rows' positions count
// too: their own last tokens (a copy, a flat face) are what the model must learn not to write.
TEST(Train, UnlikelyTokensAreTheFaceRuleBreaks) {
  const TokenizerConfig tk;
  const DatasetReader data(make_dataset(test::temp_dir()));
  const auto idx = data.indices(Split::kTrain);
  const std::vector<size_t> some(idx.begin(), idx.begin() + std::ptrdiff_t(std::min<size_t>(idx.size(), 3)));
  BatchPlanOptions options;
  options.noise = {0.3, 0.3};
  EXPECT_FALSE(make_batch(data, some, false, 3, 0, options).unlikely.defined());
  options.unlikely = true;
  const TokenBatch batch = make_batch(data, some, false, 3, 0, options);
  const int64_t L = batch.inputs.size(1);
  const auto in = batch.inputs.accessor<int64_t, 2>();
  const auto target = batch.targets.accessor<int64_t, 2>();
  // Written at t, does v break a rule? A face row without area, or the same as an earlier row.
  auto breaks = [&](int64_t b, int64_t t, int64_t v) {
    const int64_t start = t - t % 9;
    std::vector<int64_t> row(9, 0);
    for (int64_t i = 0; i < 9; ++i) row[size_t(i)] = start + i < t ? in[b][start + i] : start + i == t ? v : -1;
    if (t % 9 == 8) {
      double u[3], w[3];
      for (int k = 0; k < 3; ++k) u[k] = double(row[size_t(3 + k)] - row[size_t(k)]), w[k] = double(row[size_t(6 + k)] - row[size_t(k)]);
      if (u[1] * w[2] - u[2] * w[1] == 0 && u[2] * w[0] - u[0] * w[2] == 0 && u[0] * w[1] - u[1] * w[0] == 0) return true;
      for (int64_t r = 9; r < start; r += 9) {
        bool same = true;
        for (int64_t i = 0; i < 9 && same; ++i) same = in[b][r + i] == row[size_t(i)];
        if (same) return true;
      }
      return false;
    }
    return t % 9 == 5 && row[3] == row[0] && row[4] == row[1] && row[5] == row[2];  // B on A
  };
  std::set<std::pair<int64_t, int64_t>> listed;
  const auto pairs = batch.unlikely.accessor<int64_t, 2>();
  int64_t in_noise_rows = 0;
  for (int64_t n = 0; n < batch.unlikely.size(0); ++n) {
    const int64_t b = pairs[n][0] / L, t = pairs[n][0] % L, v = pairs[n][1];
    listed.insert({pairs[n][0], v});
    ASSERT_GE(t, 9);
    if (target[b][t] == tk.pad()) ++in_noise_rows;
    else EXPECT_NE(v, target[b][t]) << "never a scored target";
    if (t % 9 != 7) {
      EXPECT_TRUE(breaks(b, t, v)) << "b " << b << " t " << t << " v " << v;
    }
  }
  EXPECT_GT(in_noise_rows, 5) << "the noise rows' copies and flat faces";
  int64_t face_ends = 0;
  for (int64_t b = 0; b < batch.inputs.size(0); ++b) {
    for (int64_t t = 17; t < L; t += 9) {
      if (!tk.is_coordinate(in[b][t - 8])) continue;  // PAD or EOS: no face row
      int64_t breaking = 0;
      for (int64_t v = 0; v <= tk.quant_max(); ++v) breaking += breaks(b, t, v);
      if (breaking == tk.quant_max() + 1) continue;  // nothing better to push towards
      ++face_ends;
      for (int64_t v = 0; v <= tk.quant_max(); ++v) {
        if ((target[b][t] == tk.pad() || v != target[b][t]) && breaks(b, t, v)) {
          EXPECT_TRUE(listed.count({b * L + t, v})) << "b " << b << " t " << t << " v " << v;
        }
      }
    }
  }
  EXPECT_GT(face_ends, 20);
}

// The unlikelihood term is -log(1 - p) of each listed token at the position before its target,
// and training with it lowers those probabilities.
TEST(Train, UnlikelihoodIsMinusLogOneMinusPAtThePredictingPosition) {
  torch::manual_seed(3);
  const Tensor logits = torch::randn({2, 27, 132}, torch::requires_grad());
  const Tensor unlikely = torch::tensor(std::vector<int64_t>{17, 5, 27 + 26, 7, 27 + 26, 9}).reshape({3, 2});
  const Tensor p = torch::softmax(logits.detach(), -1);
  const double expected = -std::log(1 - p[0][16][5].item<double>()) - std::log(1 - p[1][25][7].item<double>()) -
                          std::log(1 - p[1][25][9].item<double>());
  const Tensor ul = unlikelihood_sum(logits, unlikely);
  EXPECT_NEAR(ul.item<double>(), expected, 1e-5);
  ul.backward();
  EXPECT_GT(logits.grad()[1][25][7].item<double>(), 0) << "the gradient raises the loss with the listed logit";
  EXPECT_EQ(logits.grad()[0][17].abs().sum().item<double>(), 0) << "only predicting positions";
  EXPECT_EQ(unlikelihood_sum(logits, torch::zeros({0, 2}, torch::kLong)).item<double>(), 0);
}

// A run with train.unlikelihood logs the term, finite, and its loss still falls.
TEST(Train, UnlikelihoodRunLogsTheTerm) {
  const std::string dir = test::temp_dir();
  TrainConfig c = small_config(make_dataset(dir), dir + "/run");
  c.train_steps = 12;
  c.optim_lr = 1e-2;
  c.data_augment = false;
  c.train_unlikelihood = 1.0;
  c.data_repeat_noise = 0.2;
  c.out_save_every = 100;
  c.eval_every = 100;
  train(c, RunStart::kFresh);
  std::ifstream log(dir + "/run/log.jsonl");
  int64_t steps = 0;
  for (std::string line; std::getline(log, line);) {
    const auto j = nlohmann::json::parse(line);
    if (!j.contains("step") || !j.contains("loss")) continue;
    ASSERT_TRUE(j.contains("unlikelihood")) << line;
    EXPECT_TRUE(std::isfinite(j["unlikelihood"].get<double>()));
    EXPECT_GE(j["unlikelihood"].get<double>(), 0);
    ++steps;
  }
  EXPECT_EQ(steps, 12);
  const auto l = losses(dir + "/run/log.jsonl");
  EXPECT_LT(l.back(), l.front());
}

TEST(Train, ConfigRejectsUnknownKeysAndBadValues) {
  TrainConfig c;
  EXPECT_THROW(c.set("optim.lrr", "1"), Error);
  EXPECT_THROW(c.set("optim.lr", "fast"), Error);
  EXPECT_THROW(c.set("train.precision", "fp8"), Error);
  for (const auto& [key, value] : std::vector<std::pair<std::string, std::string>>{
           {"optim.lr", "-1"}, {"optim.lr", "nan"}, {"optim.lr", "0"}, {"optim.warmup", "1.5"},
           {"optim.grad_clip", "-1"}, {"data.max_faces", "0"}, {"train.threads", "-2"}, {"eval.every", "-1"},
           {"out.keep_last", "0"}, {"out.keep_every", "-5"}, {"model.dim", "1000000"}, {"data.batch_tokens", "99999999999"},
           {"model.blocks_per_stage", "0"}, {"data.repeat_noise", "1"}, {"data.repeat_noise", "-0.1"},
           {"data.repeat_noise", "nan"}, {"data.flat_noise", "-0.1"}, {"data.flat_noise", "1"},
           {"train.unlikelihood", "-1"}, {"train.unlikelihood", "nan"}, {"train.unlikelihood", "1e9"}}) {
    TrainConfig fresh;
    try {
      fresh.set(key, value);
      ADD_FAILURE() << key << " = " << value << " was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
    }
  }
  const std::string dir = test::temp_dir();
  std::ofstream(dir + "/c.txt") << "# comment\noptim.lr = 0.5\nmodel.preset = small\n";
  c = TrainConfig();
  c.load_file(dir + "/c.txt");
  EXPECT_EQ(c.optim_lr, 0.5);
  EXPECT_EQ(c.model_config().dim, 256);
  // The printed config loads back to the same config.
  std::ofstream(dir + "/d.txt") << c.to_text();
  TrainConfig d;
  d.load_file(dir + "/d.txt");
  EXPECT_EQ(d.to_text(), c.to_text());
  std::ofstream(dir + "/e.txt") << "nonsense line\n";
  EXPECT_THROW(d.load_file(dir + "/e.txt"), Error);
}

// One table row per key drives set(), to_text() and the resume check: every key appears once in
// the text, with the value set() stored, and values the text could not carry are refused.
TEST(Train, ConfigTableDrivesSetTextAndResume) {
  TrainConfig c;
  const std::string text = c.to_text();
  for (const TrainKey& k : kTrainKeys) {
    const std::string line = std::string(k.name) + " = " + c.value_text(k) + "\n";
    EXPECT_NE(text.find(line), std::string::npos) << k.name;
    EXPECT_EQ(resumable_key(k.name), k.resumable) << k.name;
  }
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), std::ptrdiff_t(kTrainKeys.size()));
  c.set("out.dir", "  runs/with spaces inside  ");
  EXPECT_EQ(c.out_dir, "runs/with spaces inside");
  c.set("train.seed", "12345678901");
  EXPECT_NE(c.to_text().find("train.seed = 12345678901\n"), std::string::npos);
  for (const char* bad : {"runs/a#b", "runs/a\nb", "runs/a\rb"}) {
    EXPECT_THROW(c.set("out.dir", bad), Error) << bad;
  }
  const std::string dir = test::temp_dir();
  std::ofstream(dir + "/huge.conf") << std::string(TrainConfig::kMaxConfigBytes + 1, '#');
  try {
    c.load_file(dir + "/huge.conf");
    ADD_FAILURE() << "a config file above the size limit loaded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("huge.conf"), std::string::npos) << e.what();
  }
}

TEST(Train, RecomputeIsNoneLinearOrAll) {
  TrainConfig c;
  EXPECT_EQ(c.train_recompute, "none");
  c.set("train.recompute", "linear");
  EXPECT_NE(c.to_text().find("train.recompute = linear"), std::string::npos);
  EXPECT_THROW(c.set("train.recompute", "some"), Error);
}

TEST(Train, DeviceIsCpuOrAnExistingGpu) {
  TrainConfig c;
  EXPECT_EQ(c.train_device, "cpu");
  c.set("train.device", "cuda:1");
  EXPECT_EQ(c.train_device, "cuda:1");
  for (const char* bad : {"gpu", "cuda:", "cuda:x", "cuda1", "CPU"}) {
    TrainConfig d;
    EXPECT_THROW(d.set("train.device", bad), Error) << bad;
  }
  EXPECT_EQ(training_device("cpu", 3), torch::Device(torch::kCPU));
  if (!torch::cuda::is_available()) {
    // A CPU-only machine says so instead of failing inside LibTorch.
    try {
      training_device("cuda", 0);
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("CUDA is not available"), std::string::npos) << e.what();
    }
  } else {
    // Worker i of a host takes GPU i; an index past the last GPU is an error.
    EXPECT_EQ(training_device("cuda", 0), torch::Device(torch::kCUDA, 0));
    const int64_t n = int64_t(torch::cuda::device_count());
    EXPECT_THROW(training_device("cuda:" + std::to_string(n), 0), Error);
    EXPECT_THROW(training_device("cuda", n), Error);
  }
}

TEST(Optim, NewtonSchulzOrthogonalizes) {
  torch::manual_seed(0);
  Tensor g = torch::randn({32, 64});
  Tensor x = newton_schulz5(g);
  Tensor s = torch::linalg_svdvals(x);
  // The quintic iteration drives singular values into roughly [0.7, 1.2] (Muon's design).
  EXPECT_GT(s.min().item<double>(), 0.5);
  EXPECT_LT(s.max().item<double>(), 1.3);
  EXPECT_EQ(newton_schulz5(torch::randn({64, 32})).sizes(), (torch::IntArrayRef{64, 32}));
}

// The optimizer runs each shape's matrices as one batch: every matrix of it must come out as if
// it ran alone (its own norm), and bfloat16 arithmetic (the reference's) must orthogonalize too.
TEST(Optim, NewtonSchulzBatchesMatchOneAtATimeAndBf16Orthogonalizes) {
  torch::manual_seed(1);
  const Tensor batch = torch::randn({3, 48, 80}) * torch::tensor({0.01, 1.0, 50.0}).view({3, 1, 1});
  const Tensor together = newton_schulz5(batch);
  for (int64_t i = 0; i < 3; ++i) {
    const Tensor alone = newton_schulz5(batch[i]);
    EXPECT_LT((together[i] - alone).abs().max().item<double>(), 1e-5) << "matrix " << i;
    EXPECT_GT(alone.abs().max().item<double>(), 0.05);  // not a zero matrix: the check has teeth
  }
  const Tensor tall = newton_schulz5(batch.transpose(1, 2));
  EXPECT_LT((tall - together.transpose(1, 2)).abs().max().item<double>(), 1e-5);

  const Tensor low = newton_schulz5(batch, 5, torch::kBFloat16);
  EXPECT_EQ(low.scalar_type(), torch::kFloat);
  for (int64_t i = 0; i < 3; ++i) {
    const Tensor s = torch::linalg_svdvals(low[i]);
    EXPECT_GT(s.min().item<double>(), 0.5) << "matrix " << i;
    EXPECT_LT(s.max().item<double>(), 1.3) << "matrix " << i;
    // The same matrix to within bfloat16's rounding, which the iteration amplifies (about 6% of
    // the norm here; an unrelated orthogonal matrix is about 140% away).
    EXPECT_LT(((low[i] - together[i]).norm() / together[i].norm()).item<double>(), 0.1) << "matrix " << i;
  }
}

TEST(Optim, MuonTakesMatricesAdamWTakesTheHeadAndVectors) {
  Tensor w = torch::randn({8, 4}, torch::requires_grad()), b = torch::randn({8}, torch::requires_grad());
  Tensor head = torch::randn({8, 4}, torch::requires_grad());
  Optimizer opt({{"blocks.0.w", w}, {"blocks.0.b", b}, {"output_proj.weight", head}}, OptimizerOptions{});
  EXPECT_TRUE(opt.uses_muon("blocks.0.w"));
  EXPECT_FALSE(opt.uses_muon("blocks.0.b"));
  EXPECT_FALSE(opt.uses_muon("output_proj.weight"));
  (w.sum() + b.sum() + head.sum()).backward();
  Tensor before = w.detach().clone();
  opt.step(1e-2);
  EXPECT_GT(test::max_abs_diff(before, w.detach()), 0.0);
  auto state = opt.state();
  EXPECT_EQ(state.count("blocks.0.w.momentum"), 1u);
  EXPECT_EQ(state.count("output_proj.weight.exp_avg_sq"), 1u);
}

TEST(Optim, WarmupThenCosine) {
  EXPECT_NEAR(scheduled_lr(0, 100, 10, 1.0), 0.1, 1e-12);
  EXPECT_NEAR(scheduled_lr(9, 100, 10, 1.0), 1.0, 1e-12);
  EXPECT_NEAR(scheduled_lr(55, 100, 10, 1.0), 0.5, 1e-12);
  EXPECT_NEAR(scheduled_lr(100, 100, 10, 1.0), 0.0, 1e-12);
}

TEST(Optim, RewarmupRampsOnlyAfterAStartPastZero) {
  EXPECT_EQ(rewarmup_factor(50, 0, 10), 1.0);  // a run from step 0 has its own warmup
  EXPECT_NEAR(rewarmup_factor(100, 100, 10), 0.1, 1e-12);
  EXPECT_NEAR(rewarmup_factor(104, 100, 10), 0.5, 1e-12);
  EXPECT_EQ(rewarmup_factor(109, 100, 10), 1.0);
  EXPECT_EQ(rewarmup_factor(500, 100, 10), 1.0);
  EXPECT_EQ(rewarmup_factor(100, 100, 0), 1.0);
}

// Each logged step's losses, in log order (a resumed run logs the steps after its checkpoint
// again). Every line must parse: a kill must not leave a torn line behind.
std::map<int64_t, std::vector<double>> losses_by_step(const std::string& log_path) {
  std::map<int64_t, std::vector<double>> out;
  std::ifstream in(log_path);
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line);  // throws on a torn line
    if (j.contains("step") && j.contains("loss") && j["loss"].is_number()) out[j["step"]].push_back(j["loss"]);
  }
  return out;
}

// SIGKILL at random moments, 20 times over one run. Checkpoints are written every step, so some
// kills land inside a checkpoint write. Every kill is real (the process ended by the signal, its
// newest checkpoint below the last step), every resume finds a complete checkpoint, and every
// loss the killed run ever logged equals the uninterrupted run's loss at that step.
TEST(TrainSlow, RandomKillsNeverBreakTheLossCurve) {
  if (!std::filesystem::exists(test::iflame_binary())) GTEST_SKIP() << "no iflame binary";
  constexpr int64_t kSteps = 60;
  constexpr int kKills = 20;
  const std::string dir = test::temp_dir();
  const std::string data = make_dataset(dir, 40);
  auto args = [&](const std::string& out, bool resume) {
    std::vector<std::string> a = {test::iflame_binary(), "train", "--preset", "ci", "--data", data,
                                  "--set", "out.dir=" + out, "--set", "train.steps=" + std::to_string(kSteps),
                                  "--set", "out.save_every=1", "--set", "log.every=1", "--set", "eval.every=0",
                                  "--set", "train.precision=fp32", "--set", "train.threads=1",
                                  "--set", "data.batch_tokens=1200"};
    if (resume) a.push_back("--resume");
    return a;
  };
  auto spawn = [](std::vector<std::string> a) {
    const pid_t pid = fork();
    if (pid == 0) {
      std::vector<char*> argv;
      for (auto& s : a) argv.push_back(s.data());
      argv.push_back(nullptr);
      if (!freopen("/dev/null", "w", stderr)) _exit(126);
      execv(argv[0], argv.data());
      _exit(127);
    }
    return pid;
  };
  auto wait_for = [](pid_t pid) {
    int status = 0;
    waitpid(pid, &status, 0);
    return status;
  };
  auto checkpoint_step = [](const std::string& path) {
    return path.empty() ? int64_t(0) : std::stoll(path.substr(path.rfind("step-") + 5));
  };

  const auto ref_start = std::chrono::steady_clock::now();
  ASSERT_EQ(wait_for(spawn(args(dir + "/full", false))), 0);
  const auto step_time = (std::chrono::steady_clock::now() - ref_start) / kSteps;
  const auto reference = losses_by_step(dir + "/full/log.jsonl");
  ASSERT_EQ(reference.size(), size_t(kSteps));

  const unsigned seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  const std::string out = dir + "/killed", log = out + "/log.jsonl";
  int kills = 0, inside_writes = 0;
  for (int attempt = 0; kills < kKills && attempt < 4 * kKills; ++attempt) {
    const size_t logged = test::line_count(log);
    const pid_t pid = spawn(args(out, attempt > 0));
    // Once this process has logged a step of its own, kill it at a random moment of the next few.
    int status = 0;
    pid_t ended = 0;
    for (int i = 0; i < 20000 && test::line_count(log) <= logged + 1 && (ended = waitpid(pid, &status, WNOHANG)) == 0;
         ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    if (ended == 0) {
      std::this_thread::sleep_for(std::uniform_real_distribution<double>(0, 2.5)(rng) * step_time);
      kill(pid, SIGKILL);
      status = wait_for(pid);
    }
    if (WIFEXITED(status)) {
      ASSERT_EQ(WEXITSTATUS(status), 0) << "a resume failed after " << kills << " kills";
      break;  // it finished before the kill: the run is done
    }
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    ++kills;
    for (const auto& e : std::filesystem::directory_iterator(out)) {
      inside_writes += e.path().filename().string().rfind(".tmp-", 0) == 0;
    }
    EXPECT_LT(checkpoint_step(latest_checkpoint(out)), kSteps) << "killed after its last step";
  }
  EXPECT_EQ(kills, kKills) << "the run finished first; its steps are too fast for " << kKills << " kills";
  ASSERT_EQ(wait_for(spawn(args(out, true))), 0);
  EXPECT_EQ(checkpoint_step(latest_checkpoint(out)), kSteps);

  const auto killed = losses_by_step(log);
  ASSERT_EQ(killed.size(), size_t(kSteps));
  for (const auto& [step, values] : killed) {
    for (double v : values) EXPECT_EQ(v, reference.at(step).front()) << "step " << step;
  }
  std::printf("%d kills, %d of them inside a checkpoint write, %zu steps logged twice or more\n", kills, inside_writes,
              size_t(std::count_if(killed.begin(), killed.end(), [](const auto& e) { return e.second.size() > 1; })));
}

// Training onto a disk that fills up (a small tmpfs, mounted in a user namespace): the run stops
// with an error that names the file and says why, the half-written checkpoint is removed, the
// previous checkpoint is intact, and --resume continues from it once there is room.
TEST(TrainSlow, AFullDiskStopsClearlyAndKeepsThePreviousCheckpoint) {
  if (!std::filesystem::exists(test::iflame_binary())) GTEST_SKIP() << "no iflame binary";
  const std::string dir = test::temp_dir();
  const std::string data = make_dataset(dir, 40);
  auto train_args = [&](const std::string& out, int64_t steps) {
    return "train --preset ci --data '" + data + "' --set out.dir='" + out + "' --set train.steps=" +
           std::to_string(steps) + " --set out.save_every=1 --set out.keep_last=1000 --set eval.every=0" +
           " --set train.precision=fp32 --set train.threads=1 --set data.batch_tokens=1200";
  };
  // One checkpoint's size, from a short run on the real disk.
  ASSERT_EQ(test::run_iflame(train_args(dir + "/probe", 1)).code, 0);
  uintmax_t checkpoint_bytes = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir + "/probe/step-00000001")) {
    if (e.is_regular_file()) checkpoint_bytes += e.file_size();
  }
  ASSERT_GT(checkpoint_bytes, 0u);
  // Room for two and a half checkpoints: the third write fails.
  const uintmax_t disk = checkpoint_bytes * 5 / 2 + 64 * 1024;
  const std::string mnt = dir + "/disk", copy = dir + "/copy";
  std::filesystem::create_directories(mnt);
  const std::string script = "mount -t tmpfs -o size=" + std::to_string(disk) + " tmpfs '" + mnt + "' || exit 90; '" +
                             test::iflame_binary() + "' " + train_args(mnt + "/run", 50) + " 2>'" + dir +
                             "/stderr.txt'; echo \\$? >'" + dir + "/code'; cp -a '" + mnt + "/run' '" + copy + "'";
  const auto ns = test::run_shell("unshare --user --map-root-user --mount sh -c \"" + script + "\" 2>&1");
  if (ns.code != 0 || !std::filesystem::exists(dir + "/code")) {
    GTEST_SKIP() << "cannot mount a small tmpfs here (needs user namespaces or root): " << ns.out;
  }
  EXPECT_EQ(read_file_text(dir + "/code"), "1\n") << "not a clean error exit";
  const std::string err = read_file_text(dir + "/stderr.txt");
  EXPECT_NE(err.find("No space left on device"), std::string::npos) << err;
  EXPECT_NE(err.find(mnt + "/run/"), std::string::npos) << err;
  for (const auto& e : std::filesystem::directory_iterator(copy)) {
    EXPECT_NE(e.path().filename().string().rfind(".tmp-", 0), 0u) << "left behind: " << e.path();
  }
  const std::string last = latest_checkpoint(copy);
  ASSERT_FALSE(last.empty()) << "no complete checkpoint survived";
  const int64_t step = std::stoll(last.substr(last.rfind("step-") + 5));
  EXPECT_GE(step, 1);
  EXPECT_LT(step, 50);
  // The survivor is whole: the run resumes from it, and the step after it has the loss that the
  // failed run logged for that step before its checkpoint write failed.
  const auto resumed = test::run_iflame(train_args(copy, step + 1) + " --resume");
  ASSERT_EQ(resumed.code, 0) << resumed.out;
  EXPECT_NE(resumed.out.find("resumed from " + last), std::string::npos) << resumed.out;
  const auto logged = losses_by_step(copy + "/log.jsonl");
  ASSERT_EQ(logged.count(step + 1), 1u);
  ASSERT_EQ(logged.at(step + 1).size(), 2u) << "the failed run and the resumed one each log the step once";
  EXPECT_EQ(logged.at(step + 1)[0], logged.at(step + 1)[1]);
}

}  // namespace
}  // namespace iflame
