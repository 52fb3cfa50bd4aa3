package main

import (
	"fmt"
	"log/slog"

	"github.com/handoffhq/handoff/internal/httpguard"
)

const tokenFileHelp = "file of scoped tokens, one scope:token a line (scope read, write or admin; # comments)"

// readTokenFile reads the scoped tokens of --token-file path (none when
// path is empty), refusing one that is also --token (admin already), and
// warns when others than the file's owner may read it.
func readTokenFile(path, token string, log *slog.Logger) ([]httpguard.ScopedToken, error) {
	if path == "" {
		return nil, nil
	}
	toks, perm, err := httpguard.ReadTokenFile(path)
	if err != nil {
		return nil, fmt.Errorf("--token-file: %w", err)
	}
	for _, t := range toks {
		if t.Token == token {
			return nil, fmt.Errorf("--token-file: token file %s line %d: the token is --token's too: give each token once", path, t.Line)
		}
	}
	if httpguard.GroupOrOthersRead(perm) {
		log.Warn("the token file may be read by its group or others: chmod 600 it", "file", path, "mode", perm.String())
	}
	return toks, nil
}
