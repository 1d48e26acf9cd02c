package rotation

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/pamd/pamd/server/api"
	"github.com/pamd/pamd/store"
)

// ParseInterval reads a rotation interval: Go durations plus days ("30d");
// "0" or "off" turns the schedule off.
func ParseInterval(v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	if v == "0" || v == "off" || v == "" {
		return 0, nil
	}
	var d time.Duration
	var err error
	if n, ok := strings.CutSuffix(v, "d"); ok {
		var days int
		days, err = strconv.Atoi(n)
		d = time.Duration(days) * 24 * time.Hour
	} else {
		d, err = time.ParseDuration(v)
	}
	if err != nil || d < time.Second {
		return 0, api.Errorf(http.StatusBadRequest, "--rotation-interval %q: want a duration such as 30d, 12h or 90m (0 turns it off)", v)
	}
	return d, nil
}

// FormatInterval writes an interval as ParseInterval reads it.
func FormatInterval(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	}
	return d.String()
}

// NextRotation is when the schedule next rotates the account: an interval
// after the later of the schedule's start and the last attempt, or within
// an hour after a failure.
func NextRotation(r *store.Rotation) time.Time {
	if r.Interval == 0 {
		return time.Time{}
	}
	base, wait := r.Since, r.Interval
	if r.LastAttempt.After(base) {
		base = r.LastAttempt
	}
	if r.Result == "failure" && wait > time.Hour {
		wait = time.Hour
	}
	return base.Add(wait)
}

// View is an account's rotation for the API (nil: none set up or run).
func View(r *store.Rotation) *api.Rotation {
	if r.Interval == 0 && r.With == "" && r.LastAttempt.IsZero() && r.Pending == nil {
		return nil
	}
	v := &api.Rotation{RotateWith: r.With, LastAttempt: r.LastAttempt, LastSuccess: r.LastSuccess,
		Result: r.Result, Error: r.Error, Warning: r.Warning, NextRun: NextRotation(r), Pending: r.Pending != nil}
	if r.Interval > 0 {
		v.Interval = FormatInterval(r.Interval)
	}
	if r.Pending != nil {
		v.PendingSince = r.Pending.Since
	}
	return v
}

// Run resumes interrupted rotations and runs scheduled ones,
// looking every Config.Check and whenever a gateway connects, one
// rotation at a time. It starts none once ctx ends; the one running waits
// for its gateway until work ends (the shutdown's grace, as for requests).
func (s *Rotator) Run(ctx, work context.Context) {
	t := time.NewTicker(s.cfg.Check)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.wake:
		}
		s.rotateDue(ctx, work)
	}
}

func (s *Rotator) rotateDue(ctx, work context.Context) {
	type due struct {
		res, acct, name, trigger string
		via                      *store.Resource
	}
	var todo []due
	now := time.Now()
	s.st.View(func(tx *store.Tx) error {
		all, err := tx.Resources()
		for _, res := range all {
			accts, _ := tx.Accounts(res.ID)
			for _, a := range accts {
				switch {
				case a.Rotation.Pending != nil:
					todo = append(todo, due{res.ID, a.ID, res.Name + "/" + a.Name, "resumed after an interruption", res})
				case a.Rotation.Interval > 0 && !now.Before(NextRotation(&a.Rotation)):
					todo = append(todo, due{res.ID, a.ID, res.Name + "/" + a.Name, "scheduled", res})
				}
			}
		}
		return err
	})
	for _, d := range todo {
		if ctx.Err() != nil {
			return
		}
		if !s.cfg.Gateways.Reachable(d.via) {
			continue // a pending rotation waits for its gateway; a due one is tried when it is back
		}
		a, err := s.Rotate(work, d.res, d.acct, d.trigger, "system", "")
		switch {
		case err != nil:
			s.log.Warn("rotation not run", "account", d.name, "err", err)
		case a.Rotation.Result == "failure":
			s.log.Warn("rotation failed", "account", d.name, "trigger", d.trigger, "err", a.Rotation.Error)
		default:
			s.log.Info("rotated", "account", d.name, "trigger", d.trigger)
		}
	}
}
