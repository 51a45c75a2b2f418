// io::output_file and the GGUF writer on it: what is at the output path is
// replaced atomically when it is a regular file, written in place when it is
// a FIFO or a character device, and never replaced otherwise.
#include <doctest/doctest.h>

#include "test_util.hpp"

#include <cstddef>
#include <filesystem>
#include <iterator>
#include <string>

#include <sys/stat.h>
#include <unistd.h>

#include "qtensor/io/gguf.hpp"
#include "qtensor/io/output_file.hpp"

using namespace qtensor;
using qtensor_test::message_of;
using qtensor_test::scratch_dir;
namespace fs = std::filesystem;

namespace {

void write(io::output_file& out, const std::string& text) {
    out.write({reinterpret_cast<const std::byte*>(text.data()), text.size()});
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// The names in `dir`, so a test sees any temporary file left behind.
std::size_t entries(const fs::path& dir) {
    return static_cast<std::size_t>(std::distance(fs::directory_iterator(dir), fs::directory_iterator()));
}

} // namespace

TEST_CASE("output_file: a regular file appears only on commit, keeps its mode, and nothing is left on failure") {
    const scratch_dir tmp;
    const std::string path = tmp / "out.bin";
    {
        io::output_file out(path);
        write(out, "new");
        CHECK(!fs::exists(path));
        CHECK(fs::exists(out.temp_path()));
    } // abandoned: the temporary file goes too
    CHECK(entries(tmp.path) == 0);

    std::ofstream(path) << "old";
    fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write);
    {
        io::output_file out(path);
        write(out, "new");
        CHECK(qtensor_test::read_file(path) == "old");
        out.commit();
    }
    CHECK(qtensor_test::read_file(path) == "new");
    CHECK(fs::status(path).permissions() == (fs::perms::owner_read | fs::perms::owner_write));
    CHECK(entries(tmp.path) == 1);

    CHECK(contains(message_of([&] { io::output_file{tmp / "no/dir/x"}; }), "cannot create the temporary file"));
}

TEST_CASE("output_file: a symbolic link stays a link; the file it leads to is replaced") {
    const scratch_dir tmp;
    fs::create_directory(tmp / "real");
    std::ofstream(tmp / "real/target") << "old";
    fs::create_symlink("real/target", tmp / "link");
    fs::create_symlink("real/absent", tmp / "dangling");
    for (const char* name : {"link", "dangling"}) {
        io::output_file out(tmp / name);
        write(out, name);
        out.commit();
        CHECK(fs::is_symlink(tmp / name));
        CHECK(qtensor_test::read_file(tmp / name) == name);
    }
    CHECK(qtensor_test::read_file(tmp / "real/target") == "link");
    CHECK(qtensor_test::read_file(tmp / "real/absent") == "dangling");

    // The GGUF writer goes through it: a link to a GGUF file stays a link.
    io::gguf_writer w;
    w.set("general.name", io::gguf_value::string("x"));
    w.write(tmp / "link");
    CHECK(fs::is_symlink(tmp / "link"));
    CHECK(io::gguf_file(tmp / "real/target").metadata().size() == 1);
}

TEST_CASE("output_file: a FIFO or a character device is written in place, never replaced") {
    const scratch_dir tmp;
    const std::string fifo = tmp / "fifo";
    qtensor_test::fifo_reader reader(fifo);
    io::gguf_writer w;
    w.set("general.name", io::gguf_value::string("through a pipe"));
    w.write(fifo);
    const std::string received = reader.take();
    CHECK(fs::is_fifo(fifo));
    CHECK(received.starts_with("GGUF"));
    CHECK(contains(received, "through a pipe"));
    CHECK(entries(tmp.path) == 1);

    // A pipe reached through /proc's magic link (what /dev/stdout is when
    // stdout is a pipe): its target "pipe:[N]" is no path to follow by hand.
    int ends[2];
    REQUIRE(::pipe(ends) == 0);
    {
        io::output_file out("/proc/self/fd/" + std::to_string(ends[1]));
        CHECK(out.temp_path().empty());
        write(out, "into the pipe");
        out.commit();
    }
    ::close(ends[1]);
    char got[32] = {};
    CHECK(::read(ends[0], got, sizeof got) == 13);
    CHECK(std::string(got) == "into the pipe");
    ::close(ends[0]);

    // /dev/null through a link in the scratch directory (the test must not
    // be able to harm /dev/null itself if the rule breaks).
    fs::create_symlink("/dev/null", tmp / "null");
    io::output_file out(tmp / "null");
    CHECK(out.temp_path().empty());
    write(out, "discarded");
    out.commit();
    CHECK(fs::is_symlink(tmp / "null"));
    CHECK(fs::is_character_file("/dev/null"));
}

TEST_CASE("output_file: a directory or a socket is refused before anything is written") {
    const scratch_dir tmp;
    fs::create_directory(tmp / "dir");
    CHECK(contains(message_of([&] { io::output_file{tmp / "dir"}; }), "dir: is a directory; an output must be"));

    const std::string socket_path = tmp / "sock";
    const qtensor_test::bound_socket listener(socket_path);
    io::gguf_writer w;
    CHECK(contains(message_of([&] { w.write(socket_path); }), "sock: is a socket"));
    CHECK(fs::is_socket(socket_path));
    CHECK(entries(tmp.path) == 2);
}
