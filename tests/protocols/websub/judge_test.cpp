// Independent judges of the live hub (notifier, on loopback):
//  - Debian's php-pubsubhubbub-publisher (pubsubhubbub\publisher\Publisher)
//    publishes a topic to nudge's hub; it counts only HTTP 204 as success.
//  - The subscriber here is plain sockets: it subscribes, echoes the
//    verification's challenge, receives the content POST, and
//    `openssl dgst -sha256 -hmac SECRET` over the received body must equal
//    the X-Hub-Signature the hub sent.
// Skipped when php (with curl), the publisher library or openssl is missing;
// failed instead under NUDGE_REQUIRE_TOOLS=1.
#include <gtest/gtest.h>
#include <poll.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "nudge/engine/registry.hpp"
#include "nudge/http/reader.hpp"
#include "nudge/notifier/notifier_server.hpp"
#include "nudge/protocols/registrations.hpp"
#include "nudge/websub/family.hpp"
#include "nudge/websub/form.hpp"
#include "support/require.hpp"
#include "support/shell.hpp"

using namespace nudge;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

constexpr const char* publisher_library = "/usr/share/php/Pubsubhubbub/Publisher/autoload.php";
const protocol::ip_endpoint any_loopback_port = protocol::ip_endpoint::v4(127, 0, 0, 1, 0);

/// The notifier in this process, serving EMSMDB and WebSub.
class live_hub {
 public:
  live_hub() {
    protocols::register_all();
    notifier::server_config cfg;
    cfg.tcp_listen = any_loopback_port;
    cfg.udp_bind = any_loopback_port;
    cfg.control = any_loopback_port;
    const engine::family* f = engine::registry::instance().find(websub::family_name);
    keys_ = engine::settings::defaults(*f);
    engine::server_context ctx;
    ctx.keys = &keys_;
    std::vector<notifier::served_protocol> others;
    others.push_back({f->name, f->make_server(ctx), any_loopback_port, any_loopback_port, {}});
    server_ = std::make_unique<notifier::notifier_server>(io_, cfg, [](notifier::log_level, std::string_view) {},
                                                          std::move(others));
    error_ = server_->start();
    if (error_) return;
    const auto& h = server_->host();
    for (std::size_t i = 0; i < h.protocol_count(); ++i)
      if (h.protocol_name(i) == websub::family_name) at_ = *h.listener_endpoint(i, 0);
    thread_ = std::thread([this] { io_.run(); });
  }
  ~live_hub() {
    if (!thread_.joinable()) return;
    asio::post(io_, [this] { server_->stop(); });
    thread_.join();
  }
  const std::optional<std::string>& error() const { return error_; }
  protocol::ip_endpoint at() const { return at_; }

 private:
  asio::io_context io_{1};
  engine::settings keys_;
  std::unique_ptr<notifier::notifier_server> server_;
  std::optional<std::string> error_;
  protocol::ip_endpoint at_;
  std::thread thread_;
};

bool readable_within(int fd, std::chrono::milliseconds wait) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, static_cast<int>(wait.count())) == 1;
}

/// One whole HTTP request from `s`, or nothing within 10 s.
std::optional<http::request> read_request(tcp::socket& s) {
  http::request_reader r;
  char buf[4096];
  for (;;) {
    auto d = r.next();
    if (d.complete()) return d.value;
    if (d.malformed() || !readable_within(s.native_handle(), std::chrono::seconds(10))) return std::nullopt;
    boost::system::error_code ec;
    const std::size_t n = s.read_some(asio::buffer(buf), ec);
    if (ec) return std::nullopt;
    r.feed(protocol::bytes_view(reinterpret_cast<const std::uint8_t*>(buf), n));
  }
}

std::optional<http::response> read_response(tcp::socket& s) {
  http::response_reader r;
  char buf[4096];
  for (;;) {
    auto d = r.next();
    if (d.complete()) return d.value;
    if (d.malformed() || !readable_within(s.native_handle(), std::chrono::seconds(10))) return std::nullopt;
    boost::system::error_code ec;
    const std::size_t n = s.read_some(asio::buffer(buf), ec);
    if (ec) return std::nullopt;
    r.feed(protocol::bytes_view(reinterpret_cast<const std::uint8_t*>(buf), n));
  }
}

std::optional<tcp::socket> accept_within(tcp::acceptor& a, std::chrono::seconds wait) {
  if (!readable_within(a.native_handle(), wait)) return std::nullopt;
  return a.accept();
}

/// Waits for the peer's close (the hub closes once it has read our answer).
void wait_for_close(tcp::socket& s) {
  char buf[256];
  while (readable_within(s.native_handle(), std::chrono::seconds(10))) {
    boost::system::error_code ec;
    s.read_some(asio::buffer(buf), ec);
    if (ec) return;
  }
}

void answer(tcp::socket& s, int status, const std::string& body) {
  const std::string text = "HTTP/1.1 " + std::to_string(status) + " " + std::string(http::reason_phrase(status)) +
                           "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  asio::write(s, asio::buffer(text));
}

}  // namespace

TEST(websub_judge, php_publisher_gets_its_204_and_openssl_agrees_with_the_signature) {
  using test_support::have_program;
  using test_support::run_shell;
  NUDGE_REQUIRE(have_program("php") && have_program("openssl"), "php and openssl (apt-get install php-cli openssl)");
  NUDGE_REQUIRE(std::filesystem::exists(publisher_library),
                "the WebSub publisher library (apt-get install php-pubsubhubbub-publisher)");
  NUDGE_REQUIRE(run_shell("php -m 2>/dev/null").find("curl") != std::string::npos, "PHP's curl (apt-get install php-curl)");

  live_hub hub;
  ASSERT_FALSE(hub.error()) << *hub.error();
  asio::io_context io;
  tcp::acceptor callbacks(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const std::string secret = "judge-secret-" + std::to_string(::getpid());
  const std::string topic = websub::topic_url(hub.at(), "/o=nudge/cn=Recipients/cn=judge");
  const std::string callback = "http://127.0.0.1:" + std::to_string(callbacks.local_endpoint().port()) + "/judge";
  const std::string hub_url = "http://" + hub.at().to_string() + "/hub";

  // Subscribe: 202.
  tcp::socket s(io);
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), hub.at().port));
  websub::form f;
  f.add("hub.mode", "subscribe");
  f.add("hub.topic", topic);
  f.add("hub.callback", callback);
  f.add("hub.lease_seconds", "600");
  f.add("hub.secret", secret);
  const std::string body = websub::encode_form(f);
  asio::write(s, asio::buffer("POST /hub HTTP/1.1\r\nHost: " + hub.at().to_string() +
                              "\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: " +
                              std::to_string(body.size()) + "\r\n\r\n" + body));
  const auto accepted = read_response(s);
  ASSERT_TRUE(accepted);
  ASSERT_EQ(accepted->status, 202) << accepted->body;

  // The verification of intent: echo the challenge.
  auto v = accept_within(callbacks, std::chrono::seconds(10));
  ASSERT_TRUE(v) << "the hub never called back to verify";
  const auto get = read_request(*v);
  ASSERT_TRUE(get);
  ASSERT_EQ(get->method, "GET");
  const auto q = websub::decode_form(std::string_view(get->target).substr(get->target.find('?') + 1));
  ASSERT_TRUE(q.complete());
  EXPECT_EQ(q.value.find("hub.mode"), "subscribe");
  EXPECT_EQ(q.value.find("hub.topic"), topic);
  EXPECT_EQ(q.value.find("hub.lease_seconds"), "600");
  answer(*v, 200, std::string(q.value.find("hub.challenge").value_or("")));
  wait_for_close(*v);

  // The real publisher: true only on 204.
  int status = -1;
  const std::string out =
      run_shell("php -r 'require \"" + std::string(publisher_library) +
                    "\"; $p = new pubsubhubbub\\publisher\\Publisher($argv[1]);"
                    " echo $p->publish_update($argv[2]) ? \"published\" : \"refused\";' '" +
                    hub_url + "' '" + topic + "' 2>&1",
                &status);
  EXPECT_EQ(status, 0) << out;
  EXPECT_EQ(out, "published");

  // The content, signed.
  auto c = accept_within(callbacks, std::chrono::seconds(10));
  ASSERT_TRUE(c) << "the hub never delivered";
  const auto post = read_request(*c);
  ASSERT_TRUE(post);
  EXPECT_EQ(post->method, "POST");
  EXPECT_EQ(post->target, "/judge");
  answer(*c, 204, "");
  const std::string signature(post->headers.find("X-Hub-Signature").value_or(""));
  ASSERT_EQ(signature.rfind("sha256=", 0), 0u) << signature;
  const auto file = std::filesystem::temp_directory_path() / ("websub-judge-" + std::to_string(::getpid()) + ".body");
  std::ofstream(file, std::ios::binary) << post->body;
  const std::string digest = run_shell("openssl dgst -sha256 -hmac '" + secret + "' -r '" + file.string() + "'", &status);
  std::filesystem::remove(file);
  ASSERT_EQ(status, 0);
  EXPECT_EQ("sha256=" + digest.substr(0, digest.find(' ')), signature) << digest;
  const std::string link(post->headers.find("Link").value_or(""));
  EXPECT_NE(link.find("<" + hub_url + ">; rel=\"hub\""), std::string::npos) << link;
  EXPECT_NE(link.find("<" + topic + ">; rel=\"self\""), std::string::npos) << link;
}
