// Test helper: a program that does nothing but link Debian's libcpp-httplib, whose constructor
// asks OpenSSL for its error strings. The control of "the server skips the OpenSSL error strings
// ..." (test_server.cpp): with the probe preloaded, this one must count loads.
int main() { return 0; }
