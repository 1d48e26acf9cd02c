// Package asciicast writes and reads terminal recordings in asciicast v2,
// the format of the asciinema player (docs.asciinema.org, "asciicast v2"):
// a first line holding a JSON header object, then one JSON array per event,
// [time in seconds, code, data], where code is "o" (output), "i" (input),
// "r" (resize, data "COLSxROWS") or "m" (marker), and times never decrease.
//
// Terminal sizes are bounded (MinSize..MaxSize, ClampSize): Read clamps the
// header's, and pamd clamps every size it records or replays.
//
// pamd also records channels that had no terminal (ssh -T, ssh host
// command), which have three streams: stdin, stdout and stderr. Their
// records keep the three apart (record types "i", "o" and "e"). An
// exported recording uses only the standard codes, so that any asciicast
// v2 player shows all of it: "i" events carry the input as read, and every
// stream is also written as "o" data rendered by Plain (LF as CRLF, input
// echoed, stderr in red, SGR 31).
//
// Files: asciicast.go (Header, Event, Writer, Read, ClampSize, Plain),
// asciicast_test.go (with the fuzz test).
package asciicast
