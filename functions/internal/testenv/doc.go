// Package testenv gives tests the real parts they run against: a Redis master and
// replica (real redis-server processes), the functions served in-process on them,
// this module's built binaries, headless Chromium, and one-line HTTP calls. A part
// that is missing skips the test, except under CI=true, where it fails: a missing
// tool must never look like a pass.
package testenv
