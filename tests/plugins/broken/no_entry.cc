// A shared library that is not an lcake plugin: it exports no entry point.
extern "C" __attribute__((visibility("default"))) int not_an_lcake_plugin(int x) { return x + 1; }
