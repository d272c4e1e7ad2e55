// Shared helpers of the trainer tests: a tiny dataset and the losses of a run's log.
#pragma once
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "dataset/format.h"
#include "train/config.h"

namespace iflame::test {

// The `ci` preset made quick for tests: fp32, 1200-token batches, no console log.
inline TrainConfig quick_config(const std::string& data, const std::string& out, int64_t steps, int64_t save_every,
                                int64_t eval_every) {
  TrainConfig c = train_preset("ci");
  c.data_train = data;
  c.out_dir = out;
  c.train_steps = steps;
  c.out_save_every = save_every;
  c.eval_every = eval_every;
  c.train_precision = "fp32";
  c.data_batch_tokens = 1200;
  c.log_every = 0;
  return c;
}

// A small dataset of random boxy meshes (a few to ~40 faces), 3 of them in val.
inline std::string make_dataset(const std::string& dir, int count = 24) {
  std::mt19937_64 rng(99);
  std::vector<DatasetEntry> entries;
  for (int i = 0; i < count; ++i) {
    Mesh m;
    const int nv = 6 + int(rng() % 20);
    for (int v = 0; v < nv; ++v) m.vertices.push_back({uniform(rng, -1, 1), uniform(rng, -1, 1), uniform(rng, -1, 1)});
    const int nf = 4 + int(rng() % 36);
    for (int f = 0; f < nf; ++f) m.faces.push_back({int32_t(rng() % nv), int32_t(rng() % nv), int32_t(rng() % nv)});
    const Mesh n = normalize_mesh(m);
    const CanonicalMesh cm = canonicalize(m);
    if (cm.faces.empty()) continue;
    DatasetEntry e;
    e.name = "mesh" + std::to_string(i) + ".obj";
    e.group = e.name;
    e.source = "test";
    e.split = i % 8 == 0 ? Split::kVal : Split::kTrain;
    for (const Vec3& v : n.vertices) e.vertices.insert(e.vertices.end(), {float(v[0]), float(v[1]), float(v[2])});
    for (const Tri& f : n.faces) {
      if (f[0] != f[1] && f[1] != f[2] && f[0] != f[2]) e.triangles.insert(e.triangles.end(), f.begin(), f.end());
    }
    for (int32_t t : face_rows(cm)) e.tokens.push_back(uint16_t(t));
    e.input_faces = uint32_t(m.faces.size());
    entries.push_back(std::move(e));
  }
  const std::string path = dir + "/data.ifds";
  write_dataset(path, entries, 7, "{}");
  return path;
}

// The training losses of a run's log.jsonl, one per logged step.
inline std::vector<double> losses(const std::string& log_path) {
  std::vector<double> out;
  std::ifstream in(log_path);
  std::string line;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    if (j.contains("loss") && j["loss"].is_number() && j.contains("lr")) out.push_back(j["loss"].get<double>());
  }
  return out;
}

// The number of lines of a text file (0 when it is missing).
inline size_t line_count(const std::string& path) {
  std::ifstream in(path);
  size_t n = 0;
  for (std::string line; std::getline(in, line);) ++n;
  return n;
}

}  // namespace iflame::test
