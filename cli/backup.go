package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/pamd/pamd/store"
)

func (a *app) backupCommand() *cli.Command {
	return &cli.Command{
		Name:  "backup",
		Usage: "write a consistent copy of the server's data file (sealed under its master key) while it runs",
		Description: "Through the API (an admin's login), or from a stopped server's --data-dir.\n" +
			"To restore, start pamd server on a data dir holding the copy as pamd.db, with the same master key.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "out", Usage: "the file to write (must not exist; written 0600)"},
			&cli.StringFlag{Name: "data-dir", Usage: "copy the data file of a stopped server here instead of asking the running one"},
		},
		Before: before(noArgs, requireFlags("out")),
		Action: a.backup,
	}
}

func (a *app) backup(c *cli.Context) error {
	out := c.String("out")
	if _, err := os.Lstat(out); err == nil {
		return usageError("--out %s exists: pick a new file", out)
	}
	write := func(w io.Writer) (int64, error) {
		client, err := client(c)
		if err != nil {
			return 0, err
		}
		return client.Backup(c.Context, w)
	}
	if dir := c.String("data-dir"); dir != "" {
		write = func(w io.Writer) (int64, error) { return store.BackupFile(filepath.Join(dir, "pamd.db"), w) }
	}
	n, err := writeNewFile(out, write)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "backup of %d bytes written to %s; keep it apart from the master key\n", n, out)
	return nil
}

// writeNewFile writes path (0600) through a temporary file beside it,
// synced and renamed into place only once whole, so a cut copy never
// passes for a backup.
func writeNewFile(path string, write func(io.Writer) (int64, error)) (int64, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name()) // after the rename, there is nothing left to remove
	n, err := write(tmp)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return n, fmt.Errorf("backup to %s: %w", path, err)
	}
	return n, nil
}
