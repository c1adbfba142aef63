// A deterministic stand-in for libFuzzer, so the fuzz targets run in CI with
// GCC and the sanitizers: it runs every file of the corpus directories given
// on the command line, then SLUICE_FUZZ_ITERATIONS (default 20000) inputs
// made by mutating them (bit flips, byte changes, insertions, deletions,
// splices, truncation) with a fixed-seed PRNG. Not coverage-guided; the real
// libFuzzer build is scripts/fuzz.sh.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

uint64_t g_state = 0x5eed5eed5eedULL;
uint64_t next() {
  uint64_t z = (g_state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::string mutate(const std::vector<std::string>& corpus) {
  std::string s = corpus[next() % corpus.size()];
  int rounds = 1 + int(next() % 8);
  for (int r = 0; r < rounds; ++r) {
    size_t pos = s.empty() ? 0 : next() % (s.size() + 1);
    switch (next() % 7) {
      case 0:
        if (!s.empty() && pos < s.size()) s[pos] = char(s[pos] ^ (1u << (next() % 8)));
        break;
      case 1:
        if (!s.empty() && pos < s.size()) s[pos] = char(next());
        break;
      case 2: {
        static const char* kTokens[] = {"\"", "\\", "{", "}", "[", "]", ",", ":", "\n", "\r\n",
                                        "\\u00", "\xff", "\xc3", "1e999", "-", "null", "[[", "=", "\"\"\""};
        s.insert(pos, kTokens[next() % (sizeof kTokens / sizeof kTokens[0])]);
        break;
      }
      case 3:
        if (pos < s.size()) s.erase(pos, 1 + next() % 16);
        break;
      case 4: {
        const std::string& other = corpus[next() % corpus.size()];
        if (!other.empty()) {
          size_t from = next() % other.size();
          s.insert(pos, other.substr(from, 1 + next() % 64));
        }
        break;
      }
      case 5:
        if (pos < s.size()) s.resize(pos);
        break;
      case 6:
        if (!s.empty() && pos < s.size()) s.insert(pos, std::string(1 + next() % 300, s[pos]));
        break;
    }
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> corpus;
  for (int i = 1; i < argc; ++i) {
    std::filesystem::path p(argv[i]);
    std::vector<std::filesystem::path> files;
    if (std::filesystem::is_directory(p)) {
      for (const auto& e : std::filesystem::directory_iterator(p)) files.push_back(e.path());
    } else {
      files.push_back(p);
    }
    for (const auto& f : files) {
      std::ifstream in(f, std::ios::binary);
      corpus.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
  }
  if (corpus.empty()) corpus.emplace_back();
  for (const std::string& s : corpus) {
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(s.data()), s.size());
  }
  long iterations = 20000;
  if (const char* env = std::getenv("SLUICE_FUZZ_ITERATIONS")) iterations = std::atol(env);
  for (long i = 0; i < iterations; ++i) {
    std::string s = mutate(corpus);
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(s.data()), s.size());
  }
  std::printf("fuzz driver: %zu corpus inputs, %ld mutations, no failure\n", corpus.size(), iterations);
  return 0;
}
