package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

func TestBenchMongo(t *testing.T) {
	benchEnabled(t)
	f := startFerret(t, false)
	e := newEnv(t)
	e.addMongo(f, "mdb")
	c := e.connect("mdb/app")
	ctx := context.Background()
	direct, err := mongo.Connect(options.Client().ApplyURI(f.uri).SetAuth(options.Credential{Username: "admin", Password: mongoAdminPassword}))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Disconnect(ctx)
	through := mongoClient(t, mongoURI(t, c))
	n := 100000
	if quick() {
		n = 20000
	}
	work := func(cl *mongo.Client, db string) time.Duration {
		coll := cl.Database(db).Collection("bench")
		coll.Drop(ctx)
		docs := make([]any, n)
		for i := range docs {
			docs[i] = bson.D{{Key: "i", Value: i}, {Key: "name", Value: fmt.Sprintf("item-%d", i)}}
		}
		start := time.Now()
		if _, err := coll.InsertMany(ctx, docs); err != nil {
			t.Fatal(err)
		}
		cur, err := coll.Find(ctx, bson.D{})
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for cur.Next(ctx) {
			got++
		}
		if got != n {
			t.Fatalf("read back %d of %d", got, n)
		}
		return time.Since(start)
	}
	work(direct, "warm")
	dDirect := min(work(direct, "d1"), work(direct, "d2"))
	dPamd := min(work(through, "p1"), work(through, "p2"))
	ratio := dDirect.Seconds() / dPamd.Seconds()
	report(t, "mongodb bulk", fmt.Sprintf("insert then read back %d small documents: direct %s, through pamd %s; ratio %.2f (target >= 0.70)",
		n, dDirect.Round(time.Millisecond), dPamd.Round(time.Millisecond), ratio))
	if ratio < 0.7 {
		guard(t, "mongodb bulk ratio %.2f below 0.70", ratio)
	}
	ping := func(cl *mongo.Client) []time.Duration {
		return roundTrips(t, func() error { return cl.Database("admin").RunCommand(ctx, bson.D{{Key: "ping", Value: 1}}).Err() })
	}
	pd, pp := ping(direct), ping(through)
	report(t, "mongodb ping", fmt.Sprintf("ping x1000: direct p50 %s p99 %s; through pamd p50 %s p99 %s; p50 ratio %.1f",
		us(pct(pd, .5)), us(pct(pd, .99)), us(pct(pp, .5)), us(pct(pp, .99)), float64(pct(pp, .5))/float64(pct(pd, .5))))
}
