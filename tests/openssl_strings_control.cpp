// Test helper: a program that does nothing but link Debian's libcpp-httplib, whose constructor
// asks OpenSSL for its error strings and configuration. The control of "the server declines
// OpenSSL's strings and configuration ..." (test_server.cpp): with the probe preloaded,
// this one must count both.
int main() { return 0; }
