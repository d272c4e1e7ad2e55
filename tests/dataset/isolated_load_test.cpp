// dataset/isolated_load.h: a reader crash or hang in a child process becomes an error.
#include "dataset/isolated_load.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "dataset/dataset_test_util.h"
#include "error_text.h"
#include "mesh/load.h"
#include "test_paths.h"
#include "util/error.h"

namespace iflame {
namespace {

std::string error_of(const std::string& path, double timeout_s = 60) {
  return test::error_text([&] { load_mesh_isolated(path, timeout_s); });
}

TEST(IsolatedLoad, SameMeshAsInProcess) {
  const std::string dir = test::temp_dir();
  test::write_obj(dir + "/m.obj", test::random_mesh(3, 9));
  test::write_text(dir + "/t.md3", test::md3_bytes(false));
  for (const std::string& path : {dir + "/m.obj", dir + "/t.md3"}) {
    SCOPED_TRACE(path);
    const Mesh a = load_mesh(path), b = load_mesh_isolated(path);
    EXPECT_EQ(a.vertices, b.vertices);
    EXPECT_EQ(a.faces, b.faces);
  }
  EXPECT_TRUE(is_assimp_path("x/t.md3"));
  EXPECT_TRUE(is_assimp_path("x/t.GLB"));
  EXPECT_FALSE(is_assimp_path("x/t.obj"));
  EXPECT_FALSE(is_assimp_path("x/t.pmd"));
  EXPECT_FALSE(is_assimp_path("x/t.txt"));
}

TEST(IsolatedLoad, PassesReaderErrorsThrough) {
  const std::string dir = test::temp_dir();
  test::write_text(dir + "/bad.obj", "v 0 0 0\nf 1 2 3\n");
  const std::string what = error_of(dir + "/bad.obj");
  EXPECT_EQ(what.rfind(dir + "/bad.obj: ", 0), 0u) << what;
  EXPECT_NE(what.find("refers to vertex"), std::string::npos) << what;
}

TEST(IsolatedLoad, SurvivesAReaderCrash) {
  const std::string dir = test::temp_dir();
  test::write_text(dir + "/crash.md3", test::md3_bytes(true));
  const std::string what = error_of(dir + "/crash.md3");
  // Debian's assimp 5.2.5 segfaults here; a fixed assimp reports an error instead.
  EXPECT_EQ(what.rfind(dir + "/crash.md3: ", 0), 0u) << what;
  EXPECT_FALSE(what.empty());
}

TEST(IsolatedLoad, OneReaderServesManyFilesAndRestartsAfterACrash) {
  const std::string dir = test::temp_dir();
  test::write_text(dir + "/ok.md3", test::md3_bytes(false));
  test::write_text(dir + "/crash.md3", test::md3_bytes(true));
  test::write_text(dir + "/bad.obj", "garbage");
  IsolatedReader reader;
  EXPECT_EQ(reader.load(dir + "/ok.md3").faces.size(), 4u);
  const pid_t first = reader.pid();
  EXPECT_GT(first, 0);
  EXPECT_THROW(reader.load(dir + "/bad.obj"), Error);  // an error is a reply, not a crash
  EXPECT_EQ(reader.pid(), first);
  EXPECT_EQ(reader.load(dir + "/ok.md3").faces.size(), 4u);
  EXPECT_EQ(reader.pid(), first);
  try {
    reader.load(dir + "/crash.md3");  // segfaults Debian's assimp; a fixed one throws an error
  } catch (const Error&) {
  }
  EXPECT_EQ(reader.load(dir + "/ok.md3").faces.size(), 4u);  // restarted if it had died

  IsolatedReaderPool pool;
  for (int i = 0; i < 5; ++i) EXPECT_EQ(pool.load(dir + "/ok.md3").faces.size(), 4u);
  EXPECT_EQ(pool.size(), 1u);  // used one at a time: one process
}

TEST(IsolatedLoad, StopsAReaderThatHangs) {
  const std::string dir = test::temp_dir();
  const std::string fifo = dir + "/never.ply";  // opening a FIFO with no writer blocks forever
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const std::string what = error_of(fifo, 0.3);
  EXPECT_NE(what.find("took longer than 0.3 s"), std::string::npos) << what;
}

}  // namespace
}  // namespace iflame

namespace iflame {
namespace {

// 300 bytes of PLY that declare two billion vertices: assimp sizes its arrays from the header.
// Without the reader's memory cap this grew past 14 GB until the kernel killed it; with it, the
// file is refused as unreadable, quickly, and a valid file still loads in the same reader.
TEST(IsolatedLoad, AHeaderThatAsksForTerabytesHitsTheMemoryCap) {
  IFLAME_SKIP_UNDER_ASAN("its shadow memory makes an address-space cap meaningless");
  const std::string dir = test::temp_dir();
  const std::pair<const char*, std::string> bodies[] = {{"binary_little_endian", std::string(64, '\x01')},
                                                        {"ascii", "0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n"}};
  for (const auto& [format, body] : bodies) {
    const std::string path = dir + "/huge_" + format + ".ply";
    test::write_text(path, std::string("ply\nformat ") + format +
                               " 1.0\nelement vertex 2000000000\nproperty float x\nproperty float y\nproperty float z\n"
                               "element face 1\nproperty list uchar int vertex_indices\nend_header\n" + body);
    const std::string message = error_of(path);
    EXPECT_EQ(message.rfind(path, 0), 0u) << message;
    // Refused by the cap (an allocation failure), not by the kernel killing the reader.
    EXPECT_NE(message.find("bad_alloc"), std::string::npos) << message;
    EXPECT_THROW(load_untrusted_mesh(path), Error);
  }
  test::write_text(dir + "/ok.md3", test::md3_bytes(false));
  EXPECT_FALSE(load_untrusted_mesh(dir + "/ok.md3").faces.empty());
}

}  // namespace
}  // namespace iflame
