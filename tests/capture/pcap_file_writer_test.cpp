#include "nudge/capture/pcap_file_writer.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

#include "frame_parse.hpp"
#include "nudge/capture/frame_synthesizer.hpp"

namespace nudge::capture {
namespace {

std::uint32_t le32(const std::vector<std::uint8_t>& b, std::size_t at) {
  return std::uint32_t{b[at]} | std::uint32_t{b[at + 1]} << 8 | std::uint32_t{b[at + 2]} << 16 |
         std::uint32_t{b[at + 3]} << 24;
}
std::uint16_t le16(const std::vector<std::uint8_t>& b, std::size_t at) {
  return static_cast<std::uint16_t>(b[at] | b[at + 1] << 8);
}

std::filesystem::path temp_file(const char* name) {
  return std::filesystem::temp_directory_path() /
         (std::string("nudge_capture_") + std::to_string(::getpid()) + "_" + name);
}

TEST(PcapFileWriter, WritesClassicPcap) {
  const auto path = temp_file("writer.pcap");
  memory_sink mem;
  {
    pcap_file_writer w;
    ASSERT_EQ(w.open(path, std::chrono::seconds(1700000000)), capture_error::none) << w.error_text();
    tee_sink both(w, mem);
    frame_synthesizer s(both);
    ASSERT_EQ(s.tcp_open(time_point{std::chrono::microseconds(1'500'000)}, test::ep(10, 0, 0, 2, 50123),
                         test::ep(10, 0, 0, 1, 7777)),
              capture_error::none);
    EXPECT_EQ(w.frames_written(), 3u);
    EXPECT_EQ(w.close(), capture_error::none) << w.error_text();
    EXPECT_FALSE(w.is_open());
  }
  std::ifstream in(path, std::ios::binary);
  const std::vector<std::uint8_t> b((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::filesystem::remove(path);

  ASSERT_EQ(b.size(), 24u + 3 * 16 + 66 + 66 + 54);
  EXPECT_EQ(le32(b, 0), 0xa1b2c3d4u);  // microsecond timestamps
  EXPECT_EQ(le16(b, 4), 2);
  EXPECT_EQ(le16(b, 6), 4);
  EXPECT_EQ(le32(b, 16), 65535u);  // snaplen
  EXPECT_EQ(le32(b, 20), 1u);      // LINKTYPE_ETHERNET
  std::size_t at = 24;
  for (const auto& f : mem.frames()) {
    EXPECT_EQ(le32(b, at), 1700000001u);
    EXPECT_EQ(le32(b, at + 4), 500000u);
    EXPECT_EQ(le32(b, at + 8), f.bytes.size());
    EXPECT_EQ(le32(b, at + 12), f.bytes.size());
    EXPECT_TRUE(std::equal(f.bytes.begin(), f.bytes.end(), b.begin() + static_cast<std::ptrdiff_t>(at + 16)));
    at += 16 + f.bytes.size();
  }
}

TEST(PcapFileWriter, ReportsOpenFailure) {
  pcap_file_writer w;
  EXPECT_EQ(w.open("/nonexistent-nudge-dir/x.pcap"), capture_error::open_failed);
  EXPECT_FALSE(w.is_open());
  EXPECT_FALSE(w.error_text().empty());
  const std::uint8_t byte = 0;
  w.frame(time_point{}, std::span(&byte, 1));
  EXPECT_EQ(w.frames_dropped(), 1u);
  EXPECT_EQ(w.close(), capture_error::not_open);
}

TEST(PcapFileWriter, MoveKeepsTheFile) {
  const auto path = temp_file("moved.pcap");
  pcap_file_writer a;
  ASSERT_EQ(a.open(path), capture_error::none);
  pcap_file_writer b(std::move(a));
  EXPECT_FALSE(a.is_open());  // NOLINT(bugprone-use-after-move): moved-from state is specified
  EXPECT_TRUE(b.is_open());
  const std::vector<std::uint8_t> frame(60, 0xab);
  b.frame(time_point{}, frame);
  EXPECT_EQ(b.close(), capture_error::none);
  EXPECT_EQ(std::filesystem::file_size(path), 24u + 16 + 60);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace nudge::capture
