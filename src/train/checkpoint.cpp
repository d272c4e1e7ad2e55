#include "train/checkpoint.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>

#include "model/weights.h"
#include "train/config.h"
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

// The run id a checkpoint carries ("" for checkpoints from before run ids, or unreadable ones).
std::string checkpoint_run_id(const fs::path& dir) {
  try {
    return nlohmann::json::parse(read_file_text((dir / "state.json").string())).value("run_id", std::string());
  } catch (const std::exception&) {
    return "";
  }
}

// This run's complete checkpoints, oldest first.
std::vector<fs::path> own_checkpoints(const RunFolder& run) {
  std::vector<fs::path> out;
  for (const fs::path& p : complete_checkpoints(run.dir)) {
    const std::string id = checkpoint_run_id(p);
    if (id == run.run_id || (run.legacy && id.empty())) out.push_back(p);
  }
  return out;
}

std::string new_run_id() {
  std::random_device rd;
  char buf[40];
  std::snprintf(buf, sizeof buf, "%08x%08x-%lld", rd(), rd(), (long long)::getpid());
  return buf;
}

std::map<std::string, std::string> config_lines(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    const auto eq = line.find(" = ");
    if (eq != std::string::npos) out[line.substr(0, eq)] = line.substr(eq + 3);
  }
  return out;
}

// Takes RUN/.lock exclusively (it records the holder's pid for the message of a refusal).
std::shared_ptr<int> lock_run_folder(const std::string& dir) {
  const std::string path = (fs::path(dir) / ".lock").string();
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) throw Error(path, std::string("cannot create the run folder's lock: ") + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    char pid[32] = {0};
    const ssize_t n = ::pread(fd, pid, sizeof pid - 1, 0);
    ::close(fd);
    throw Error(dir, "another iflame train (pid " + std::string(n > 0 ? pid : "?") +
                         ") is using this run folder; wait for it to end, or stop it first");
  }
  const std::string me = std::to_string(::getpid());
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, me.data(), me.size(), 0) != ssize_t(me.size())) {
    // The pid is only for messages; the lock itself holds.
  }
  return std::shared_ptr<int>(new int(fd), [](int* p) {
    ::close(*p);
    delete p;
  });
}

// Temporary checkpoint folders of runs that were killed while writing one (we hold the lock, so
// no live process is writing them).
void remove_stale_temporaries(const std::string& dir) {
  std::error_code ec;
  std::vector<fs::path> stale;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.path().filename().string().rfind(".tmp-", 0) == 0) stale.push_back(e.path());
  }
  for (const fs::path& p : stale) fs::remove_all(p, ec);
}

}  // namespace

RunFolder claim_run_folder(const std::string& dir, RunStart start) {
  RunFolder run;
  run.dir = dir;
  std::error_code ec;
  const bool non_empty = fs::is_directory(dir, ec) && !fs::is_empty(dir, ec);
  // A live run's folder is refused before anything moves it or writes in it.
  if (non_empty && fs::exists(fs::path(dir) / ".lock")) lock_run_folder(dir);
  if (non_empty && start == RunStart::kFresh) {
    throw Error(dir, "the run folder is not empty (another run's log or checkpoints); continue that run with --resume, "
                     "or start over with --overwrite (which first moves the folder to " + dir + ".old-N)");
  }
  if (non_empty && start == RunStart::kOverwrite) {
    int n = 1;
    while (fs::exists(dir + ".old-" + std::to_string(n))) ++n;
    run.moved_to = dir + ".old-" + std::to_string(n);
    fs::rename(dir, run.moved_to, ec);
    if (ec) throw Error(dir, "cannot move the old run aside to " + run.moved_to + ": " + ec.message());
  }
  fs::create_directories(dir, ec);
  if (ec) throw Error(dir, "cannot create the run folder: " + ec.message());
  run.lock = lock_run_folder(dir);
  remove_stale_temporaries(dir);
  const std::string run_json = (fs::path(dir) / "run.json").string();
  if (start == RunStart::kResume && fs::exists(run_json)) {
    try {
      run.run_id = nlohmann::json::parse(read_file_text(run_json)).at("run_id").get<std::string>();
    } catch (const std::exception& e) {
      throw Error(run_json, std::string("unreadable run identity: ") + e.what());
    }
    return run;
  }
  run.legacy = start == RunStart::kResume && !complete_checkpoints(dir).empty();
  run.run_id = new_run_id();
  write_file_atomic(run_json, nlohmann::json({{"run_id", run.run_id}}).dump() + "\n");
  return run;
}

bool resumable_key(const std::string& key) {
  const TrainKey* k = find_train_key(key);
  return k && k->resumable;
}

std::vector<std::string> config_differences(const std::string& saved, const std::string& now, bool with_resumable) {
  const auto a = config_lines(saved), b = config_lines(now);
  // A key the text lacks was added after it was written: it held the default (what the trainer
  // did before the key existed), so old runs stay resumable.
  const auto defaults = config_lines(TrainConfig{}.to_text());
  auto value = [&](const auto& lines, const std::string& k) {
    auto it = lines.find(k);
    if (it != lines.end()) return it->second;
    it = defaults.find(k);
    return it == defaults.end() ? std::string("(unset)") : it->second;
  };
  std::set<std::string> keys;
  for (const auto& [k, v] : a) keys.insert(k);
  for (const auto& [k, v] : b) keys.insert(k);
  std::vector<std::string> out;
  for (const std::string& k : keys) {
    if (!with_resumable && resumable_key(k)) continue;
    const std::string va = value(a, k), vb = value(b, k);
    if (va != vb) out.push_back(k + ": saved " + va + ", now " + vb);
  }
  return out;
}

std::string save_checkpoint(const RunFolder& run, IFlameModelImpl& model, const Optimizer& optimizer,
                            const TrainState& state, int64_t keep_last, int64_t keep_every) {
  const fs::path final_dir = fs::path(run.dir) / step_name(state.step);
  const fs::path tmp = fs::path(run.dir) / (".tmp-" + step_name(state.step) + "-" + std::to_string(::getpid()));
  fs::remove_all(tmp);
  try {
    fs::create_directories(tmp);
    save_model(model, (tmp / "model.safetensors").string(), {{"step", std::to_string(state.step)}});
    SafetensorsFile opt;
    for (const auto& [name, t] : optimizer.state()) opt.tensors[name] = from_torch(t);
    opt.metadata["step"] = std::to_string(optimizer.steps());
    write_safetensors(opt, (tmp / "optimizer.safetensors").string());
    nlohmann::json j = {{"run_id", run.run_id},
                        {"step", state.step},
                        {"start_step", state.start_step},
                        {"optimizer_step", optimizer.steps()},
                        {"epoch", state.data.epoch},
                        {"batch", state.data.batch},
                        {"best_val_loss", state.best_val_loss},
                        {"config", state.config_text}};
    write_file_atomic((tmp / "state.json").string(), j.dump(1) + "\n");  // the completion marker
    fsync_directory(tmp.string());
  } catch (...) {
    std::error_code ec;
    fs::remove_all(tmp, ec);  // give a full disk its space back; the previous checkpoints stand
    throw;
  }
  // A checkpoint of the same step is replaced only when it is this run's (a resumed run redoes
  // the steps after its last checkpoint); another run's is never touched.
  if (fs::exists(final_dir)) {
    const std::string id = checkpoint_run_id(final_dir);
    if (!(id == run.run_id || (run.legacy && id.empty()))) {
      fs::remove_all(tmp);
      throw Error(final_dir.string(), "belongs to another run; not overwriting it");
    }
    fs::remove_all(final_dir);
  }
  fs::rename(tmp, final_dir);
  fsync_directory(run.dir);
  std::vector<fs::path> prunable;  // this run's, except those kept for good
  for (const fs::path& p : own_checkpoints(run)) {
    const int64_t step = std::strtoll(p.filename().string().c_str() + 5, nullptr, 10);  // "step-%08lld"
    if (keep_every <= 0 || step <= 0 || step % keep_every != 0) prunable.push_back(p);
  }
  for (size_t i = 0; i + size_t(std::max<int64_t>(keep_last, 1)) < prunable.size(); ++i) fs::remove_all(prunable[i]);
  return final_dir.string();
}

void save_best(const std::string& run_dir, IFlameModelImpl& model, const TrainState& state) {
  fs::create_directories(fs::path(run_dir) / "best");
  save_model(model, (fs::path(run_dir) / "best" / "model.safetensors").string(),
             {{"step", std::to_string(state.step)}, {"val_loss", std::to_string(state.best_val_loss)}});
  fsync_directory((fs::path(run_dir) / "best").string());
}

std::string latest_checkpoint(const RunFolder& run) {
  auto own = own_checkpoints(run);
  return own.empty() ? "" : own.back().string();
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
  s.start_step = j.value("start_step", int64_t(0));  // absent before train.init existed
  s.data.epoch = j.at("epoch").get<int64_t>();
  s.data.batch = j.at("batch").get<int64_t>();
  s.best_val_loss = j.at("best_val_loss").get<double>();
  s.config_text = j.at("config").get<std::string>();
  return s;
}

}  // namespace iflame
