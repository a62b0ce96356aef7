// The header alone, included twice, compiles as C++17 and links; the callback
// type accepts a C++ function with C linkage.
#include "st_secrets.h"
#include "st_secrets.h"

#include <cstdio>
#include <cstring>
#include <string>

extern "C" st_result cpp_compute(void *, const char *key, st_sink *sink) {
  return st_sink_write(sink, reinterpret_cast<const uint8_t *>(key), std::strlen(key));
}

int main() {
  st_cache *c = nullptr;
  if (st_cache_new(ST_CACHE_USE_DEFAULT, 0, ST_CACHE_USE_DEFAULT, &c, nullptr) != ST_OK) return 1;
  st_buf *b = nullptr;
  st_result r = st_cache_get_or_set(c, "cpp", cpp_compute, nullptr, -1, &b, nullptr);
  std::string got = b ? std::string(st_buf_str(b)) : std::string();
  st_buf_free(b);
  st_cache_free(c);
  std::printf("%s %s\n", st_result_name(r), got.c_str());
  return (r == ST_OK && got == "cpp" && st_version_major() == ST_VERSION_MAJOR) ? 0 : 1;
}
