// Package e2e holds the end-to-end tests of the whole stack: real redis-server
// master and replica, the built write, read and UI binaries, and the page driven in
// headless Chromium. It has no code of its own besides the tests.
package e2e
