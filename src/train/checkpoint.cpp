#include "train/checkpoint.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "model/weights.h"
#include "util/error.h"
#include "util/fs.h"

namespace iflame {

namespace fs = std::filesystem;

namespace {

std::string step_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "step-%08lld", (long long)step);
  return buf;
}

std::vector<fs::path> complete_checkpoints(const std::string& run_dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(run_dir, ec)) {
    const std::string name = e.path().filename().string();
    if (e.is_directory() && name.rfind("step-", 0) == 0 && fs::exists(e.path() / "state.json")) out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

std::string save_checkpoint(const std::string& run_dir, IFlameModelImpl& model, const Optimizer& optimizer,
                            const TrainState& state, int64_t keep_last) {
  const fs::path final_dir = fs::path(run_dir) / step_name(state.step);
  const fs::path tmp = fs::path(run_dir) / (".tmp-" + step_name(state.step) + "-" + std::to_string(::getpid()));
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  save_model(model, (tmp / "model.safetensors").string(), {{"step", std::to_string(state.step)}});
  SafetensorsFile opt;
  for (const auto& [name, t] : optimizer.state()) opt.tensors[name] = from_torch(t);
  opt.metadata["step"] = std::to_string(optimizer.steps());
  write_safetensors(opt, (tmp / "optimizer.safetensors").string());
  nlohmann::json j = {{"step", state.step},
                      {"optimizer_step", optimizer.steps()},
                      {"epoch", state.data.epoch},
                      {"batch", state.data.batch},
                      {"best_val_loss", state.best_val_loss},
                      {"config", state.config_text}};
  write_file_atomic((tmp / "state.json").string(), j.dump(1) + "\n");  // the completion marker
  fs::remove_all(final_dir);
  fs::rename(tmp, final_dir);
  auto all = complete_checkpoints(run_dir);
  for (size_t i = 0; i + size_t(std::max<int64_t>(keep_last, 1)) < all.size(); ++i) fs::remove_all(all[i]);
  return final_dir.string();
}

void save_best(const std::string& run_dir, IFlameModelImpl& model, const TrainState& state) {
  fs::create_directories(fs::path(run_dir) / "best");
  save_model(model, (fs::path(run_dir) / "best" / "model.safetensors").string(),
             {{"step", std::to_string(state.step)}, {"val_loss", std::to_string(state.best_val_loss)}});
}

std::string latest_checkpoint(const std::string& run_dir) {
  auto all = complete_checkpoints(run_dir);
  return all.empty() ? "" : all.back().string();
}

TrainState load_checkpoint(const std::string& dir, IFlameModelImpl& model, Optimizer& optimizer) {
  const std::string state_path = dir + "/state.json";
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file_text(state_path));
  } catch (const nlohmann::json::exception& e) {
    throw Error(state_path, std::string("corrupt checkpoint state: ") + e.what());
  }
  load_weights(model, read_safetensors(dir + "/model.safetensors"), dir + "/model.safetensors");
  SafetensorsFile opt = read_safetensors(dir + "/optimizer.safetensors");
  std::map<std::string, torch::Tensor> tensors;
  for (const auto& [name, t] : opt.tensors) tensors[name] = to_torch(t);
  try {
    optimizer.load_state(tensors, j.at("optimizer_step").get<int64_t>());
  } catch (const Error& e) {
    throw Error(dir + "/optimizer.safetensors", e.what());
  }
  TrainState s;
  s.step = j.at("step").get<int64_t>();
  s.data.epoch = j.at("epoch").get<int64_t>();
  s.data.batch = j.at("batch").get<int64_t>();
  s.best_val_loss = j.at("best_val_loss").get<double>();
  s.config_text = j.at("config").get<std::string>();
  return s;
}

}  // namespace iflame
