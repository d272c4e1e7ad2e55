// A run owns its folder: a new run never writes into another's, --overwrite moves it aside,
// --resume refuses a changed config, and pruning and resuming never take another run's checkpoints.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>

#include "io/safetensors.h"
#include "test_paths.h"
#include "train/checkpoint.h"
#include "train/train_test_util.h"
#include "train/trainer.h"
#include "util/error.h"
#include "util/fs.h"

namespace iflame {
namespace {

namespace fs = std::filesystem;

TrainConfig tiny_run(const std::string& data, const std::string& out) { return test::quick_config(data, out, 4, 2, 0); }

TEST(RunFolder, AFreshRunRefusesAFolderThatHoldsARunAndChangesNothing) {
  const std::string dir = test::temp_dir();
  const TrainConfig c = tiny_run(test::make_dataset(dir), dir + "/run");
  train(c, RunStart::kFresh);
  const size_t log_lines = test::line_count(dir + "/run/log.jsonl");
  const std::string run_json = read_file_text(dir + "/run/run.json");
  try {
    train(c, RunStart::kFresh);
    ADD_FAILURE() << "a second fresh run wrote into the folder";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(dir + "/run"), std::string::npos) << what;
    EXPECT_NE(what.find("--resume"), std::string::npos) << what;
    EXPECT_NE(what.find("--overwrite"), std::string::npos) << what;
  }
  EXPECT_EQ(test::line_count(dir + "/run/log.jsonl"), log_lines);
  EXPECT_EQ(read_file_text(dir + "/run/run.json"), run_json);
  EXPECT_TRUE(fs::exists(dir + "/run/step-00000004/state.json"));
}

TEST(RunFolder, OverwriteMovesTheOldRunAsideFirst) {
  const std::string dir = test::temp_dir();
  const TrainConfig c = tiny_run(test::make_dataset(dir), dir + "/run");
  train(c, RunStart::kFresh);
  const std::string old_id = read_file_text(dir + "/run/run.json");
  train(c, RunStart::kOverwrite);
  ASSERT_TRUE(fs::exists(dir + "/run.old-1/log.jsonl"));
  EXPECT_EQ(read_file_text(dir + "/run.old-1/run.json"), old_id);
  EXPECT_NE(read_file_text(dir + "/run/run.json"), old_id);
  EXPECT_TRUE(fs::exists(dir + "/run.old-1/step-00000004/state.json"));
  train(c, RunStart::kOverwrite);  // the next free name
  EXPECT_TRUE(fs::exists(dir + "/run.old-2/log.jsonl"));
}

TEST(RunFolder, ResumeRefusesAChangedConfigButTakesAResumableKey) {
  const std::string dir = test::temp_dir();
  TrainConfig c = tiny_run(test::make_dataset(dir), dir + "/run");
  train(c, RunStart::kFresh);
  TrainConfig changed = c;
  changed.optim_lr = 0.5;
  changed.train_steps = 6;
  try {
    train(changed, RunStart::kResume);
    ADD_FAILURE() << "resumed with another learning rate";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("optim.lr: saved"), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find("train.steps"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(dir + "/run/step-00000006"));
  TrainConfig longer = c;
  longer.train_steps = 6;  // a longer schedule is allowed
  EXPECT_EQ(train(longer, RunStart::kResume).steps, 6);
  EXPECT_TRUE(fs::exists(dir + "/run/step-00000006/state.json"));
}

// A resumed run whose data changed (data.drop_repeated_faces here) measures validation on other
// rows: best/ is replaced at its next validation even when the old best was lower.
TEST(RunFolder, ResumeOnChangedDataStartsBestAgain) {
  const std::string dir = test::temp_dir();
  TrainConfig c = test::quick_config(test::make_dataset(dir), dir + "/run", 4, 2, 2);
  train(c, RunStart::kFresh);
  auto best_step = [&] { return read_safetensors(dir + "/run/best/model.safetensors").metadata.at("step"); };
  ASSERT_EQ(best_step(), "4");
  // An old best no validation can beat.
  auto state = nlohmann::json::parse(read_file_text(dir + "/run/step-00000004/state.json"));
  state["best_val_loss"] = 0.0;
  write_file_atomic(dir + "/run/step-00000004/state.json", state.dump());

  c.train_steps = 6;  // the same data: best/ stays at step 4
  train(c, RunStart::kResume);
  EXPECT_EQ(best_step(), "4");
  c.train_steps = 8;
  c.data_drop_repeated_faces = true;
  train(c, RunStart::kResume);
  EXPECT_EQ(best_step(), "8");
}

TEST(RunFolder, PruningAndResumingLeaveAnotherRunsCheckpointsAlone) {
  const std::string dir = test::temp_dir();
  TrainConfig c = tiny_run(test::make_dataset(dir), dir + "/run");
  c.out_keep_last = 1;
  train(c, RunStart::kFresh);
  // A checkpoint of another run with a higher step, in the same folder.
  fs::copy(dir + "/run/step-00000004", dir + "/run/step-00000099");
  auto state = nlohmann::json::parse(read_file_text(dir + "/run/step-00000099/state.json"));
  state["run_id"] = "someone-else";
  state["step"] = 99;
  write_file_atomic(dir + "/run/step-00000099/state.json", state.dump());

  c.train_steps = 6;
  const TrainResult r = train(c, RunStart::kResume);
  EXPECT_EQ(r.steps, 6);  // resumed from its own step 4, not the other run's 99
  EXPECT_TRUE(fs::exists(dir + "/run/step-00000006/state.json"));
  EXPECT_FALSE(fs::exists(dir + "/run/step-00000004"));  // its own, pruned (keep_last 1)
  EXPECT_TRUE(fs::exists(dir + "/run/step-00000099/state.json"));  // the other run's, kept
}

TEST(RunFolder, KeepEveryKeepsThoseCheckpointsForGood) {
  const std::string dir = test::temp_dir();
  TrainConfig c = tiny_run(test::make_dataset(dir), dir + "/run");
  c.train_steps = 8;
  c.out_save_every = 1;
  c.out_keep_last = 1;
  c.out_keep_every = 3;
  train(c, RunStart::kFresh);
  for (int step = 1; step <= 8; ++step) {
    char name[32];
    std::snprintf(name, sizeof name, "/run/step-%08d", step);
    const bool kept = step % 3 == 0 || step == 8;  // multiples of 3, and the newest
    EXPECT_EQ(fs::exists(dir + name), kept) << name;
  }
}

TEST(RunFolder, ConfigDifferencesSkipResumableKeys) {
  const std::string a = "optim.lr = 0.001\ntrain.steps = 10\nmodel.dim = 128\n";
  const std::string b = "optim.lr = 0.002\ntrain.steps = 20\nmodel.dim = 128\ndata.augment = false\n";
  const auto d = config_differences(a, b);
  ASSERT_EQ(d.size(), 2u);
  // A key the saved text lacks held its default (data.augment: true).
  EXPECT_EQ(d[0], "data.augment: saved true, now false");
  EXPECT_EQ(d[1], "optim.lr: saved 0.001, now 0.002");
  EXPECT_TRUE(resumable_key("train.steps"));
  EXPECT_FALSE(resumable_key("model.dim"));
  // A key added later, at its default, is no difference; the resumable ones are listed on request.
  EXPECT_TRUE(config_differences(a, a + "data.augment = true\n").empty());
  const auto all = config_differences(a, b, /*with_resumable=*/true);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[2], "train.steps: saved 10, now 20");
}

// Two processes (or two trainers in one) never write one folder at once: the second claim is
// refused, names the holder's pid, and moves nothing, whichever way it starts.
TEST(RunFolder, ALiveRunsFolderIsRefusedUntilItEnds) {
  const std::string dir = test::temp_dir() + "/run";
  std::optional<RunFolder> holder = claim_run_folder(dir, RunStart::kFresh);
  const std::string id = holder->run_id;
  for (RunStart start : {RunStart::kResume, RunStart::kOverwrite, RunStart::kFresh}) {
    try {
      claim_run_folder(dir, start);
      ADD_FAILURE() << "a second claim of a live run's folder succeeded";
    } catch (const Error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find(dir), std::string::npos) << what;
      if (start != RunStart::kFresh) {
        EXPECT_NE(what.find("pid " + std::to_string(::getpid())), std::string::npos) << what;
      }
    }
  }
  EXPECT_FALSE(fs::exists(dir + ".old-1"));
  holder.reset();  // the run ends: its lock goes with it
  EXPECT_EQ(claim_run_folder(dir, RunStart::kResume).run_id, id);
}

TEST(RunFolder, ResumeRemovesTheTemporariesOfAKilledCheckpointWrite) {
  const std::string dir = test::temp_dir() + "/run";
  { claim_run_folder(dir, RunStart::kFresh); }
  fs::create_directories(dir + "/.tmp-step-00000006-12345");
  write_file_atomic(dir + "/.tmp-step-00000006-12345/model.safetensors", std::string("half"));
  const RunFolder run = claim_run_folder(dir, RunStart::kResume);
  EXPECT_FALSE(fs::exists(dir + "/.tmp-step-00000006-12345"));
  EXPECT_TRUE(fs::exists(dir + "/run.json"));
}

}  // namespace
}  // namespace iflame
