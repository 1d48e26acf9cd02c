// Package storetest opens stores for tests and checks them afterwards, as
// bbolt's own test helper checks its file after every test: when the test
// ends the store is closed, opened again from its file, and every value in
// every bucket must open under the data key (store.Store.Check). A test that
// leaves a value sealed for the wrong place, or a file bbolt finds
// inconsistent, fails.
//
// Files: storetest.go.
package storetest
