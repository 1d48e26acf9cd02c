package tunnel

import (
	"encoding/json"
	"errors"
	"fmt"
)

// RecordBatch is the type of a record that carries others: records of one
// connection that a handler recorded together, to spare the spool, the
// upload and the store a record each (a PostgreSQL query log under load
// holds about a hundred statements per batch). Its Data is their JSON
// encodings as an array, in order; each leaves out the session,
// connection, channel and database, which are the batch's.
const RecordBatch = "batch"

// MaxBatch bounds the records one batch may carry.
const MaxBatch = 10000

// Unbatch is what r carries: the records of a batch, with the batch's
// session, connection, channel and database, or else r itself. A batch
// inside a batch, or more than MaxBatch records, is an error.
func Unbatch(r Record) ([]Record, error) {
	if r.Type != RecordBatch {
		return []Record{r}, nil
	}
	var in []Record
	if err := json.Unmarshal([]byte(r.Data), &in); err != nil {
		return nil, fmt.Errorf("tunnel: batch record: %w", err)
	}
	if len(in) > MaxBatch {
		return nil, fmt.Errorf("tunnel: batch record of %d records, at most %d", len(in), MaxBatch)
	}
	for i := range in {
		if in[i].Type == RecordBatch {
			return nil, errors.New("tunnel: a batch record inside a batch")
		}
		in[i].Seq, in[i].SessionID, in[i].ConnectionID, in[i].Channel = r.Seq, r.SessionID, r.ConnectionID, r.Channel
		if in[i].Database == "" {
			in[i].Database = r.Database
		}
	}
	return in, nil
}
