package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

func (e *env) addMongo(f *ferret, name string, extra ...string) {
	e.t.Helper()
	e.ok("", append([]string{"resources", "add", "--type", "mongodb", "--name", name, "--gateway", "gw1", "--connection-string", f.uri, "--tls=false"}, extra...)...)
	e.ok(mongoAdminPassword+"\n", "accounts", "add", name+"/app", "--username", "admin", "--password-stdin")
}

func mongoURI(t *testing.T, c *connection) string {
	var j struct{ URI string }
	line, _, _ := strings.Cut(c.proc.stdout.String(), "\n")
	json.Unmarshal([]byte(line), &j)
	if !strings.HasPrefix(j.URI, "mongodb://127.0.0.1:") {
		t.Fatalf("connect printed no MongoDB URI: %s", line)
	}
	return j.URI
}

func mongoClient(t *testing.T, uri string) *mongo.Client {
	return mongoClientWithin(t, uri, 10*time.Second)
}

// mongoClientWithin is a client that selects a server for at most the
// given time. The driver retries selection until then and only then reports
// the last error: a client meant to get pamd's error reply, which comes at
// once, is given a short one.
func mongoClientWithin(t *testing.T, uri string, selection time.Duration) *mongo.Client {
	c, err := mongo.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(selection))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Disconnect(context.Background()) })
	return c
}

type commandRecord struct {
	Type       string
	Database   string
	Collection string
	Command    string
	Data       string
	Status     *int
	Error      string
	Docs       int64
	Truncated  *struct{ Values int }
}

func TestMongoGoDriverThroughConnect(t *testing.T) {
	t.Parallel()
	f := startFerret(t, false)
	e := newEnv(t)
	e.addMongo(f, "mdb")
	c := e.connect("mdb/app")
	ctx := context.Background()
	coll := mongoClient(t, mongoURI(t, c)).Database("e2e").Collection("items")

	docs := make([]any, 10000)
	for i := range docs {
		docs[i] = bson.D{{Key: "i", Value: i}, {Key: "s", Value: strings.Repeat("x", 20)}}
	}
	if res, err := coll.InsertMany(ctx, docs); err != nil || len(res.InsertedIDs) != 10000 {
		t.Fatalf("insertMany: %v", err)
	}
	cur, err := coll.Find(ctx, bson.D{}, options.Find().SetBatchSize(500))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for cur.Next(ctx) {
		n++
	}
	if cur.Err() != nil || n != 10000 {
		t.Fatalf("cursor read %d documents: %v", n, cur.Err())
	}
	// Ten documents: FerretDB updates one at a time, each after a scan of
	// the collection (about 0.1 s apiece among 10,000 here).
	if res, err := coll.UpdateMany(ctx, bson.D{{Key: "i", Value: bson.D{{Key: "$lt", Value: 10}}}}, bson.D{{Key: "$set", Value: bson.D{{Key: "flag", Value: true}}}}); err != nil || res.ModifiedCount != 10 {
		t.Fatalf("updateMany: %+v %v", res, err)
	}
	if res, err := coll.DeleteMany(ctx, bson.D{{Key: "i", Value: bson.D{{Key: "$gte", Value: 9000}}}}); err != nil || res.DeletedCount != 1000 {
		t.Fatalf("deleteMany: %+v %v", res, err)
	}
	agg, err := coll.Aggregate(ctx, mongo.Pipeline{{{Key: "$match", Value: bson.D{{Key: "flag", Value: true}}}}, {{Key: "$count", Value: "n"}}})
	var out []bson.M
	if err != nil || agg.All(ctx, &out) != nil || len(out) != 1 || out[0]["n"] != int32(10) {
		t.Fatalf("aggregate: %v %v", out, err)
	}
	big := strings.Repeat("B", 15<<20)
	bigSum := fmt.Sprintf("%x", sha256.Sum256([]byte(big)))
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "big"}, {Key: "blob", Value: big}}); err != nil {
		t.Fatalf("15 MB document: %v", err)
	}
	var back struct{ Blob string }
	if err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: "big"}}).Decode(&back); err != nil || back.Blob != big {
		t.Fatalf("15 MB document read back: %v (%d bytes)", err, len(back.Blob))
	}
	bw, err := coll.BulkWrite(ctx, []mongo.WriteModel{
		mongo.NewInsertOneModel().SetDocument(bson.D{{Key: "i", Value: -1}}),
		mongo.NewUpdateOneModel().SetFilter(bson.D{{Key: "i", Value: 5}}).SetUpdate(bson.D{{Key: "$set", Value: bson.D{{Key: "bulk", Value: 1}}}}),
		mongo.NewDeleteOneModel().SetFilter(bson.D{{Key: "i", Value: 6}}),
	})
	if err != nil || bw.InsertedCount != 1 || bw.ModifiedCount != 1 || bw.DeletedCount != 1 {
		t.Fatalf("bulkWrite: %+v %v", bw, err)
	}
	if name, err := coll.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "i", Value: 1}}}); err != nil || name != "i_1" {
		t.Fatalf("createIndex: %q %v", name, err)
	}

	var recs []commandRecord
	e.waitFor("the command log", 10*time.Second, func() bool {
		e.json(&recs, "sessions", "logs", c.SessionID, "-o", "json")
		return len(recs) > 0 && recs[len(recs)-1].Command == "createIndexes"
	})
	seen := map[string]commandRecord{}
	getMores := 0
	for _, r := range recs {
		if r.Type != "command" {
			continue
		}
		if r.Command == "getMore" {
			getMores++
		}
		if _, ok := seen[r.Command]; !ok {
			seen[r.Command] = r // the first: the bulk write comes later
		}
		if len(r.Data) > 130<<10 {
			t.Errorf("logged %s is %d bytes: long values are not cut", r.Command, len(r.Data))
		}
	}
	if getMores < 19 {
		t.Errorf("%d getMore commands logged, want the cursor's 19+", getMores)
	}
	for cmd, want := range map[string]int64{"update": 10, "delete": 1000, "aggregate": 1} {
		if r := seen[cmd]; r.Docs != want || r.Database != "e2e" || r.Collection != "items" || r.Status == nil || *r.Status != 1 {
			t.Errorf("%s logged as %+v, want %d docs in e2e.items", cmd, r, want)
		}
	}
	if r := seen["insert"]; !strings.Contains(r.Data, "+documents:") {
		t.Errorf("insert logged without its documents count: %q", r.Data)
	}
	found := false
	for _, r := range recs {
		found = found || (r.Command == "insert" && strings.Contains(r.Data, " of 15728640 bytes; sha256 "+bigSum) && r.Truncated != nil && r.Truncated.Values > 0)
	}
	if !found {
		t.Error("the 15 MB insert is not logged with its long value cut")
	}
}

func runScript(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", name, err, out)
	}
	return string(out)
}

func TestMongoshAndPymongoThroughConnect(t *testing.T) {
	t.Parallel()
	mongosh := filepath.Join(repoRoot(), ".cache", "peers", "node_modules", ".bin", "mongosh")
	_, err := os.Stat(mongosh)
	needPeers(t, "mongosh", err == nil)
	f := startFerret(t, false)
	e := newEnv(t)
	e.addMongo(f, "mdb")
	c := e.connect("mdb/app")
	uri := mongoURI(t, c)
	// Each client inserts 3000 documents and reads them back in 30 batches,
	// then updates 5 (FerretDB updates one at a time, each after a scan of
	// the collection), deletes 5 and counts the updated ones.
	out := runScript(t, mongosh, "--quiet", uri, "--eval", `
		const c = db.getSiblingDB("sh").items;
		c.drop();
		c.insertMany(Array.from({length: 3000}, (_, i) => ({i})));
		let n = 0; c.find().batchSize(100).forEach(() => n++);
		const u = c.updateMany({i: {$lt: 5}}, {$set: {t: 1}}).modifiedCount;
		const d = c.deleteMany({i: {$gte: 2995}}).deletedCount;
		const a = c.aggregate([{$match: {t: 1}}, {$count: "n"}]).toArray()[0].n;
		c.createIndex({i: 1});
		print("mongosh " + n + " " + u + " " + d + " " + a);`)
	if !strings.Contains(out, "mongosh 3000 5 5 5") {
		t.Fatalf("mongosh: %s", out)
	}
	py := `
import sys, pymongo
c = pymongo.MongoClient(sys.argv[1], serverSelectionTimeoutMS=10000)["py"]["items"]
c.drop()
c.insert_many([{"i": i} for i in range(3000)])
n = sum(1 for _ in c.find().batch_size(100))
u = c.update_many({"i": {"$lt": 5}}, {"$set": {"t": 1}}).modified_count
d = c.delete_many({"i": {"$gte": 2995}}).deleted_count
a = list(c.aggregate([{"$match": {"t": 1}}, {"$count": "n"}]))[0]["n"]
c.create_index("i")
print("pymongo", n, u, d, a)
`
	if out := runScript(t, "/usr/bin/python3", "-c", py, uri); !strings.Contains(out, "pymongo 3000 5 5 5") {
		t.Fatalf("pymongo: %s", out)
	}
	// A client that sends credentials anyway is told it needs none.
	cred := strings.Replace(uri, "mongodb://", "mongodb://admin:"+mongoAdminPassword+"@", 1)
	outB, _ := exec.Command(mongosh, "--quiet", cred, "--eval", "db.runCommand({ping: 1})").CombinedOutput()
	if !strings.Contains(string(outB), "no credentials needed") {
		t.Fatalf("mongosh with credentials: %s", outB)
	}
	py2 := `
import sys, pymongo
try:
    pymongo.MongoClient(sys.argv[1], serverSelectionTimeoutMS=5000).admin.command("ping")
except Exception as e:
    print(e)
`
	if out := runScript(t, "/usr/bin/python3", "-c", py2, cred); !strings.Contains(out, "no credentials needed") {
		t.Fatalf("pymongo with credentials: %s", out)
	}
}

func TestMongoFailuresReachTheClient(t *testing.T) {
	t.Parallel()
	f := startFerret(t, false)
	e := newEnv(t)
	// A connection string with credentials or a database is refused.
	for _, bad := range []string{"mongodb://u:p@" + f.addr, "mongodb://" + f.addr + "/mydb"} {
		errOut := e.fails("", "resources", "add", "--type", "mongodb", "--name", "x", "--gateway", "gw1", "--connection-string", bad, "--tls=false")
		if !strings.Contains(errOut, "must not") {
			t.Fatalf("%s accepted: %q", bad, errOut)
		}
	}
	e.addMongo(f, "mdb")
	// A wrong password is refused when the account is added...
	if errOut := e.fails("wrong-password\n", "accounts", "add", "mdb/bad", "--username", "admin", "--password-stdin"); !strings.Contains(errOut, "refused the stored credential") {
		t.Fatalf("wrong password at add: %q", errOut)
	}
	// ...and when the password changes later, the client gets an error reply saying so.
	ctx := context.Background()
	adminAuth, _ := mongo.Connect(options.Client().ApplyURI(f.uri).SetAuth(options.Credential{Username: "admin", Password: mongoAdminPassword}))
	defer adminAuth.Disconnect(ctx)
	if err := adminAuth.Database("admin").RunCommand(ctx, bson.D{{Key: "createUser", Value: "rotating"}, {Key: "pwd", Value: "Rotating-Pass-1"}, {Key: "roles", Value: bson.A{}}}).Err(); err != nil {
		t.Fatalf("createUser: %v", err)
	}
	e.ok("Rotating-Pass-1\n", "accounts", "add", "mdb/rot", "--username", "rotating", "--password-stdin")
	if err := adminAuth.Database("admin").RunCommand(ctx, bson.D{{Key: "dropUser", Value: "rotating"}}).Err(); err != nil {
		t.Fatalf("dropUser: %v", err)
	}
	c := e.connect("mdb/rot")
	err := mongoClientWithin(t, mongoURI(t, c), 3*time.Second).Ping(ctx, nil)
	if err == nil || !strings.Contains(err.Error(), "pamd: the MongoDB server of resource mdb refused the stored credential of account rot") {
		t.Fatalf("stale stored password: %v", err)
	}
	mongoPasswordsHidden(t, e, mongoAdminPassword, "Rotating-Pass-1")
}

// TestMongoExpiryCutsConnections: at expiry operations fail and
// connections are cut.
func TestMongoExpiryCutsConnections(t *testing.T) {
	// Not parallel (runs before the parallel tests, alone): it asserts a 1 s window at expiry.
	f := startFerret(t, false)
	e := newEnv(t)
	e.addMongo(f, "mdb")
	ctx := context.Background()
	c := e.connect("mdb/app", "--duration", "3s")
	cl := mongoClient(t, mongoURI(t, c))
	if err := cl.Ping(ctx, nil); err != nil {
		t.Fatal(err)
	}
	held, err := net.Dial("tcp", c.addr()) // a client connection held open across the expiry
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	time.Sleep(time.Until(c.ExpiresAt)) // the expiry is what is tested
	if cut, err := waitClosed(held, 3*time.Second); err != nil || cut > time.Second {
		t.Fatalf("client connection cut %s after expiry (%v), want within 1 s", cut, err)
	}
	// The client's pooled connections are cut as the held one was.
	e.waitFor("the client's ping to fail after the expiry", 3*time.Second, func() bool {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		return cl.Ping(pctx, nil) != nil
	})
	<-c.proc.done
	if !strings.Contains(c.proc.stderr.String(), "expired") {
		t.Fatalf("connect after expiry: %q", c.proc.stderr.String())
	}
	mongoPasswordsHidden(t, e, mongoAdminPassword)
}

// mongoPasswordsHidden checks that the stored passwords appear nowhere a
// user can see (session logs, the resource, the audit log, any process's
// output), nor in the data file; it stops the server to read that.
func mongoPasswordsHidden(t *testing.T, e *env, passwords ...string) {
	t.Helper()
	var sessions []sessionDetail
	e.json(&sessions, "sessions", "list", "-o", "json")
	var all strings.Builder
	for _, s := range sessions {
		all.WriteString(e.ok("", "sessions", "logs", s.ID, "-o", "json"))
	}
	all.WriteString(e.ok("", "resources", "show", "mdb", "-o", "json"))
	all.WriteString(e.ok("", "audit", "list", "-o", "json"))
	all.WriteString(e.allOutput())
	e.stopServer()
	raw, _ := os.ReadFile(filepath.Join(e.dir, "server", "pamd.db"))
	for _, pw := range passwords {
		if strings.Contains(all.String(), pw) {
			t.Fatal("a stored MongoDB password appeared in pamd's output")
		}
		if strings.Contains(string(raw), pw) {
			t.Fatal("a stored MongoDB password is in the data file in the clear")
		}
	}
}

func TestMongoUnreachableServerIsAnErrorReply(t *testing.T) {
	t.Parallel()
	f := startFerret(t, false)
	e := newEnv(t)
	e.addMongo(f, "mdb")
	f.stop()
	c := e.connect("mdb/app")
	err := mongoClientWithin(t, mongoURI(t, c), 3*time.Second).Ping(context.Background(), nil)
	if err == nil || !strings.Contains(err.Error(), "pamd: cannot reach the MongoDB server of resource mdb") {
		t.Fatalf("unreachable server: %v", err)
	}
}

func TestMongoTLSVerification(t *testing.T) {
	t.Parallel()
	f := startFerret(t, true)
	e := newEnv(t)
	tlsURI := "mongodb://" + f.tlsAddr
	errOut := e.fails("", "resources", "add", "--type", "mongodb", "--name", "strict", "--gateway", "gw1", "--connection-string", tlsURI)
	if !strings.Contains(errOut, "TLS") || !strings.Contains(errOut, "--tls-ca-file") {
		t.Fatalf("unverifiable server accepted or unclear: %q", errOut)
	}
	e.ok("", "resources", "add", "--type", "mongodb", "--name", "verified", "--gateway", "gw1", "--connection-string", tlsURI, "--tls-ca-file", f.caFile)
	_, warn, err := e.run("", "resources", "add", "--type", "mongodb", "--name", "lax", "--gateway", "gw1", "--connection-string", tlsURI, "--tls-reject-unauthorized=false")
	if err != nil || !strings.Contains(warn, "verification is off") {
		t.Fatalf("unverified TLS: %v %q", err, warn)
	}
	e.ok(mongoAdminPassword+"\n", "accounts", "add", "verified/app", "--username", "admin", "--password-stdin")
	c := e.connect("verified/app")
	if err := mongoClient(t, mongoURI(t, c)).Ping(context.Background(), nil); err != nil {
		t.Fatalf("ping over verified TLS: %v", err)
	}
}
