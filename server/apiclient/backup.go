package apiclient

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/pamd/pamd/server/api"
)

// Backup streams a consistent copy of the server's data file into w and
// returns its size. The copy is sealed under the server's master key.
func (c *Client) Backup(ctx context.Context, w io.Writer) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", c.Base+"/api/v1/backup", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("cannot reach pamd server %s: %w", c.Base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		ae := &api.Error{}
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if json.Unmarshal(data, ae) != nil || ae.Message == "" {
			ae.Message = "server answered " + resp.Status
		}
		ae.Status = resp.StatusCode
		return 0, ae
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("backup cut after %d bytes: %w", n, err)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return n, fmt.Errorf("backup cut after %d of %d bytes", n, resp.ContentLength)
	}
	return n, nil
}
