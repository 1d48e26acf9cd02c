// Package asciicast writes and reads terminal recordings in asciicast v2,
// the format of the asciinema player (docs.asciinema.org, "asciicast v2"):
// a first line holding a JSON header object, then one JSON array per event,
// [time in seconds, code, data], where code is "o" (output), "i" (input) or
// "r" (resize, data "COLSxROWS"), and times never decrease.
//
// Files: asciicast.go (Header, Event, Writer, Read), fuzz_test.go.
package asciicast
