// The page of `iflame serve` in headless Chromium: it loads from the server, a click on Generate
// streams a mesh into a tile (its canvas fills, its counter counts the faces), and the tile then
// offers the OBJ and GLB downloads. Skipped, with the reason, without chromium or the viewer bundle.
#include <gtest/gtest.h>

#include <httplib.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "browser_util.h"
#include "mesh/readers.h"
#include "model/model_test_util.h"
#include "serve/server.h"
#include "test_paths.h"
#include "util/error.h"
#include "util/fs.h"
#include "view/gallery.h"

namespace iflame::serve {
namespace {

using nlohmann::json;

TEST(ServePageBrowserSlow, GenerateStreamsAMeshIntoATileAndOffersDownloads) {
  const std::string chromium = test::find_chromium();
  if (chromium.empty()) GTEST_SKIP() << "chromium is not installed (scripts/setup.sh installs it; or set IFLAME_CHROMIUM)";
  ServerOptions options;
  try {
    options.viewer_script = read_file_text(view::find_viewer_script());
  } catch (const Error& e) {
    GTEST_SKIP() << e.what();
  }
  const std::string page = read_file_text(test::source_dir() + "/web/src/serve.html");
  const std::string harness = read_file_text(test::source_dir() + "/tests/serve/page_harness.js");
  options.page_html = page.substr(0, page.rfind("</body>")) + "<script>" + harness + "</script></body></html>";
  options.port = 0;
  options.model_name = "tiny";

  IFlameModel model = test::random_tiny_model(31);
  {
    torch::NoGradGuard no_grad;  // no EOS: the mesh has exactly the 30 faces asked for
    model->output_proj->bias[TokenizerConfig{}.eos()].fill_(-1e4);
  }
  Batcher batcher(model, TokenizerConfig{}, BatcherOptions{});
  Server server(batcher, TokenizerConfig{}, options);
  const int port = server.bind();
  std::thread thread([&] { server.run(); });

  // The harness posts its findings to a second server of the test's own.
  std::mutex mutex;
  std::condition_variable reported;
  std::string text;
  httplib::Server reporter;
  reporter.Post("/report", [&](const httplib::Request& req, httplib::Response&) {
    std::lock_guard<std::mutex> lock(mutex);
    text = req.body;
    reported.notify_all();
  });
  const int report_port = reporter.bind_to_any_port("127.0.0.1");
  std::thread report_thread([&] { reporter.listen_after_bind(); });

  const std::string dir = test::temp_dir();
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/?report=http://127.0.0.1:" + std::to_string(report_port) + "/report";
  const test::CliRun browser = test::run_shell(test::headless_chromium(chromium, dir + "/profile") + "'" + url + "' >/dev/null 2>'" +
                                                 dir + "/chromium.log' & echo $!");
  {
    std::unique_lock<std::mutex> lock(mutex);
    reported.wait_for(lock, std::chrono::seconds(90), [&] { return !text.empty(); });
  }
  test::run_shell("kill " + browser.out + " 2>/dev/null");
  reporter.stop();
  report_thread.join();
  server.stop();
  thread.join();
  ASSERT_FALSE(text.empty()) << "the page never reported; chromium's log is in " << dir;
  const json h = json::parse(text);
  json fields = json::array();
  for (const SamplingSwitch& rule : sampling_switches()) fields.push_back(rule.field);
  EXPECT_EQ(h["switches"], fields) << "one checkbox per sampling switch, from /health";
  json request = {{"seed", 5}, {"max_faces", 30}};
  for (const SamplingSwitch& rule : sampling_switches()) request[rule.field] = rule.member == &SamplingOptions::escape_loops;
  EXPECT_EQ(h["request"], request) << "a changed box sends every box as it stands";
  EXPECT_EQ(h["tile_at_click"], true) << "the click made no tile";
  EXPECT_EQ(h["faces"], 30);
  EXPECT_EQ(h["finished"], "max_faces");
  EXPECT_NE(h["info"].get<std::string>().find("30 faces"), std::string::npos) << h["info"];
  EXPECT_NE(h["info"].get<std::string>().find("tokens/s"), std::string::npos) << h["info"];
  EXPECT_GT(h["after"].get<int>(), h["before"].get<int>() + 500) << "the canvas did not fill";
  EXPECT_EQ(h["downloads"], json::array({"iflame-seed5.obj", "iflame-seed5.glb"}));
  const std::string obj = h["obj"];
  const Mesh mesh = readers::read_obj(std::vector<uint8_t>(obj.begin(), obj.end()), "download");
  EXPECT_GT(mesh.faces.size(), 0u);
  EXPECT_LE(mesh.faces.size(), 30u);
  EXPECT_EQ(h["glb"]["magic"], 0x46546c67);  // "glTF"
  EXPECT_EQ(h["glb"]["version"], 2);
  EXPECT_EQ(h["glb"]["length"], h["glb"]["bytes"]);
}

}  // namespace
}  // namespace iflame::serve
