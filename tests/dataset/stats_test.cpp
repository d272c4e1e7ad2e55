// The unigram baseline on a dataset small enough to compute by hand.
#include "dataset/stats.h"

#include <gtest/gtest.h>

#include <cmath>

#include "test_paths.h"
#include "util/error.h"

namespace iflame {
namespace {

DatasetEntry one_face(Split split, std::vector<uint16_t> tokens) {
  DatasetEntry e;
  e.name = "m" + std::to_string(tokens[8]) + (split == Split::kTrain ? ".train" : ".val");
  e.split = split;
  e.vertices = {0.f, 0.f, 0.f, 1.f, 0.f, 0.f, 0.f, 1.f, 0.f};
  e.triangles = {0, 1, 2};
  e.tokens = std::move(tokens);
  return e;
}

TEST(DatasetStats, UnigramBaselineByHand) {
  const std::string path = test::temp_dir() + "/d.ifds";
  std::vector<DatasetEntry> entries = {one_face(Split::kTrain, {5, 5, 5, 5, 5, 5, 5, 5, 5}),
                                       one_face(Split::kVal, {5, 5, 5, 5, 5, 5, 5, 5, 7})};
  write_dataset(path, entries, 7, "{}");
  const UnigramBaseline b = unigram_baseline(DatasetReader(path));
  // Train targets: nine 5s and nine EOS (131); add-one smoothing over 132 tokens: /150.
  EXPECT_EQ(b.train_targets, 18);
  EXPECT_EQ(b.val_targets, 18);
  const double expected = (17 * -std::log(10.0 / 150.0) + -std::log(1.0 / 150.0)) / 18.0;
  EXPECT_NEAR(b.cross_entropy, expected, 1e-12);
  EXPECT_NEAR(b.perplexity, std::exp(expected), 1e-9);
  EXPECT_NEAR(b.accuracy, 8.0 / 18.0, 1e-12);  // 5 (the first of the tied most frequent) hits 8
}

TEST(DatasetStats, UnigramBaselineCanLeaveOutRepeatedFaceRows) {
  const std::string path = test::temp_dir() + "/d.ifds";
  DatasetEntry val = one_face(Split::kVal, {5, 5, 5, 5, 5, 5, 5, 5, 7});
  val.tokens.insert(val.tokens.end(), {5, 5, 5, 5, 5, 5, 5, 5, 7});  // the same row again
  DatasetEntry train = one_face(Split::kTrain, {5, 5, 5, 5, 5, 5, 5, 5, 5});
  train.tokens.insert(train.tokens.end(), {5, 5, 5, 5, 5, 5, 5, 5, 5});
  write_dataset(path, {train, val}, 7, "{}");
  const UnigramBaseline all = unigram_baseline(DatasetReader(path));
  EXPECT_EQ(all.train_targets, 27);  // two rows and the EOS row
  EXPECT_EQ(all.val_targets, 27);
  const UnigramBaseline once = unigram_baseline(DatasetReader(path), 0, /*drop_repeated_faces=*/true);
  EXPECT_EQ(once.train_targets, 18);
  EXPECT_EQ(once.val_targets, 18);
  // As UnigramBaselineByHand: nine 5s and nine EOS in train, scored on one row and EOS.
  const double expected = (17 * -std::log(10.0 / 150.0) + -std::log(1.0 / 150.0)) / 18.0;
  EXPECT_NEAR(once.cross_entropy, expected, 1e-12);
}

TEST(DatasetStats, UnigramBaselineHonoursMaxFacesAndNeedsBothSplits) {
  const std::string path = test::temp_dir() + "/d.ifds";
  DatasetEntry big = one_face(Split::kTrain, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  big.tokens.insert(big.tokens.end(), {1, 2, 3, 4, 5, 6, 7, 8, 9});  // 2 faces
  write_dataset(path, {big, one_face(Split::kTrain, {5, 5, 5, 5, 5, 5, 5, 5, 5}), one_face(Split::kVal, {5, 5, 5, 5, 5, 5, 5, 5, 5})}, 7, "{}");
  const UnigramBaseline b = unigram_baseline(DatasetReader(path), /*max_faces=*/1);
  EXPECT_EQ(b.train_meshes, 1);
  EXPECT_EQ(b.train_targets, 18);

  const std::string no_val = test::temp_dir() + "/n.ifds";
  write_dataset(no_val, {one_face(Split::kTrain, {5, 5, 5, 5, 5, 5, 5, 5, 5})}, 7, "{}");
  try {
    unigram_baseline(DatasetReader(no_val));
    FAIL() << "no error without a validation split";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("validation"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace iflame
