// The main of every doctest binary. ctest gives each test LCAKE_SOURCE_DIR and LCAKE_BINARY_DIR;
// a test binary run by hand gets the source and build trees it was built from instead.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdlib>

int main(int argc, char** argv) {
  setenv("LCAKE_SOURCE_DIR", LCAKE_TEST_SOURCE_DIR, 0);
  setenv("LCAKE_BINARY_DIR", LCAKE_TEST_BINARY_DIR, 0);
  doctest::Context context(argc, argv);
  return context.run();
}
