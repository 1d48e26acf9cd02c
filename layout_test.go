package main

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// The package rules of DESIGN.md's house style, held by a test: they hold
// for whatever packages the module has when it runs.

// listedPackage is what go list says of one package.
type listedPackage struct {
	ImportPath     string
	Dir            string
	Name           string
	GoFiles        []string
	CgoFiles       []string
	IgnoredGoFiles []string // other platforms and build tags (failpoints) count too
	Imports        []string
}

// sources are the package's non-test .go files, whatever their build tags.
func (p *listedPackage) sources() []string {
	var out []string
	for _, f := range slices.Concat(p.GoFiles, p.CgoFiles, p.IgnoredGoFiles) {
		if strings.HasSuffix(f, ".go") && !strings.HasSuffix(f, "_test.go") {
			out = append(out, f)
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

func listPackages(t *testing.T) []*listedPackage {
	t.Helper()
	out, err := exec.Command("go", "list", "-e", "-json=ImportPath,Dir,Name,GoFiles,CgoFiles,IgnoredGoFiles,Imports", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []*listedPackage
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		p := new(listedPackage)
		if err := dec.Decode(p); err != nil {
			t.Fatalf("go list output: %v", err)
		}
		if len(p.sources()) > 0 { // a directory of tests alone is no package to document
			pkgs = append(pkgs, p)
		}
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	return pkgs
}

// packageDocs parses the package's sources and returns, by file name, the
// package doc comments found.
func packageDocs(t *testing.T, p *listedPackage) map[string]*ast.CommentGroup {
	t.Helper()
	docs := map[string]*ast.CommentGroup{}
	fset := token.NewFileSet()
	for _, name := range p.sources() {
		f, err := parser.ParseFile(fset, filepath.Join(p.Dir, name), nil, parser.PackageClauseOnly|parser.ParseComments)
		if err != nil {
			t.Errorf("%s: %v", p.ImportPath, err)
			continue
		}
		if f.Doc != nil {
			docs[name] = f.Doc
		}
	}
	return docs
}

// TestPackageDocs: every package says what it is in exactly one package
// comment, and that comment is in doc.go (a command's may be in main.go).
func TestPackageDocs(t *testing.T) {
	for _, p := range listPackages(t) {
		docs := packageDocs(t, p)
		var where []string
		for name := range docs {
			where = append(where, name)
		}
		sort.Strings(where)
		switch {
		case len(docs) == 0:
			t.Errorf("%s: no package doc comment; write one in doc.go", p.ImportPath)
		case len(docs) > 1:
			t.Errorf("%s: %d package doc comments (%s); keep the one in doc.go", p.ImportPath, len(docs), strings.Join(where, ", "))
		case docs["doc.go"] == nil && !(p.Name == "main" && docs["main.go"] != nil): // a command's may stay in main.go
			t.Errorf("%s: the package doc comment is in %s; move it to doc.go", p.ImportPath, where[0])
		}
	}
}

// goFileName is a file name in a "Files:" list; paths into other packages
// ("proxy/local/local.go") are not this package's files.
var goFileName = regexp.MustCompile(`(?:^|[^\w/.-])([\w.-]+\.go)\b`)

// filesList returns the names in the "Files:" paragraph of a doc comment,
// and whether it has one. The paragraph runs to the first blank line.
func filesList(doc string) ([]string, bool) {
	i := strings.Index(doc, "Files:")
	if i < 0 {
		return nil, false
	}
	para := doc[i+len("Files:"):]
	if j := strings.Index(para, "\n\n"); j >= 0 {
		para = para[:j]
	}
	var names []string
	for _, m := range goFileName.FindAllStringSubmatch(para, -1) {
		if !strings.HasSuffix(m[1], "_test.go") { // naming a test file is allowed, not required
			names = append(names, m[1])
		}
	}
	sort.Strings(names)
	return slices.Compact(names), true
}

// TestDocFileLists: a doc.go that lists its package's files lists exactly
// the non-test .go files there are.
func TestDocFileLists(t *testing.T) {
	for _, p := range listPackages(t) {
		doc := packageDocs(t, p)["doc.go"]
		if doc == nil {
			continue // TestPackageDocs reports it
		}
		listed, ok := filesList(doc.Text())
		if !ok {
			continue
		}
		have := slices.DeleteFunc(p.sources(), func(f string) bool { return f == "doc.go" }) // it need not name itself
		for _, f := range have {
			if !slices.Contains(listed, f) {
				t.Errorf("%s: doc.go's Files list leaves out %s", p.ImportPath, f)
			}
		}
		for _, f := range listed {
			if !slices.Contains(have, f) {
				t.Errorf("%s: doc.go's Files list names %s, which the package does not have", p.ImportPath, f)
			}
		}
	}
}

// Package net may be imported by protocol packages only for these: types
// and pure functions, never a dial, a listen or a lookup.
var protocolNetAllowed = []string{"Addr", "Conn", "IP", "IPMask", "IPNet", "IPv4", "IPv4len", "IPv6len", "ParseCIDR", "ParseIP"}

// protocolForbidden are imports that would give a protocol package I/O of
// its own, or a logger.
var protocolForbidden = []string{"log", "log/slog", "net/http", "os", "os/exec"}

// TestProtocolDoesNoIO: the codecs in protocol/ read and write only what
// they are given. Test servers (tdstest) and other ...test helper packages
// are exempt: they are meant to listen and run processes.
func TestProtocolDoesNoIO(t *testing.T) {
	checked := 0
	for _, p := range listPackages(t) {
		rel, ok := strings.CutPrefix(p.ImportPath, "github.com/pamd/pamd/protocol")
		if !ok || (rel != "" && rel[0] != '/') || strings.HasSuffix(p.Name, "test") {
			continue
		}
		checked++
		for _, imp := range p.Imports {
			if slices.Contains(protocolForbidden, imp) {
				t.Errorf("%s imports %s: protocol packages do no I/O beyond the reader and writer they are given, and do not log", p.ImportPath, imp)
			}
		}
		if !slices.Contains(p.Imports, "net") {
			continue
		}
		fset := token.NewFileSet()
		for _, name := range p.sources() {
			f, err := parser.ParseFile(fset, filepath.Join(p.Dir, name), nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			local := ""
			for _, is := range f.Imports {
				if is.Path.Value == `"net"` {
					local = "net"
					if is.Name != nil {
						local = is.Name.Name
					}
				}
			}
			if local == "" {
				continue
			}
			ast.Inspect(f, func(n ast.Node) bool {
				sel, ok := n.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				if id, ok := sel.X.(*ast.Ident); ok && id.Name == local && !slices.Contains(protocolNetAllowed, sel.Sel.Name) {
					t.Errorf("%s: %s uses net.%s: protocol packages use package net for its types only", fset.Position(sel.Pos()), p.ImportPath, sel.Sel.Name)
				}
				return true
			})
		}
	}
	if checked < 5 {
		t.Fatalf("only %d protocol packages checked", checked)
	}
}
