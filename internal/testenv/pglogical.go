package testenv

import (
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// LogicalPostgresURL returns a connection URL on a PostgreSQL server with
// wal_level = logical, for tests of logical decoding (the relay's WAL mode),
// and the server's base URL (no search_path) for replication connections.
// In order of preference:
//
//   - HANDOFF_TEST_POSTGRES_LOGICAL, a server the caller configured;
//   - the test PostgreSQL server (HANDOFF_TEST_POSTGRES), when its
//     wal_level is logical already;
//   - a private cluster started for this test from the machine's own
//     PostgreSQL binaries (initdb in a temporary directory, as the postgres
//     user when running as root, on a free port, with wal_level = logical
//     and the given settings, "name=value"), stopped and removed at cleanup.
//
// The shared server is never reconfigured. Where none of these is possible
// the test is skipped with the reason, or fails under HANDOFF_TEST_REQUIRE=1.
// The returned URL points at a fresh schema (search_path), dropped at
// cleanup; replication slots and publications are per database, so callers
// name them with Unique.
func LogicalPostgresURL(t testing.TB, settings ...string) (schemaURL, baseURL string) {
	t.Helper()
	if v := os.Getenv("HANDOFF_TEST_POSTGRES_LOGICAL"); v != "" && len(settings) == 0 {
		return schemaOn(t, v), v
	}
	if len(settings) == 0 {
		base := env("HANDOFF_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
		if db, err := sql.Open("pgx", base); err == nil {
			var level string
			if db.QueryRow("SHOW wal_level").Scan(&level) == nil && level == "logical" {
				db.Close()
				return schemaOn(t, base), base
			}
			db.Close()
		}
	}
	base, err := startCluster(t, settings)
	if err != nil {
		msg := "no PostgreSQL with wal_level=logical: HANDOFF_TEST_POSTGRES_LOGICAL is not set, the test server's wal_level " +
			"is not logical, and a private cluster could not be started: " + err.Error()
		if Require() {
			t.Fatalf("%s; HANDOFF_TEST_REQUIRE=1 so this fails", msg)
		}
		t.Skip(msg)
	}
	return schemaOn(t, base), base
}

// schemaOn creates a fresh schema on the server at base and returns base
// with its search_path.
func schemaOn(t testing.TB, base string) string {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("PostgreSQL URL: %v", err)
	}
	db, err := sql.Open("pgx", base)
	if err == nil {
		err = pingRetry(db)
	}
	if err != nil {
		if db != nil {
			db.Close()
		}
		unavailable(t, "PostgreSQL (wal_level=logical)", "HANDOFF_TEST_POSTGRES_LOGICAL", u.Host, err)
	}
	schema := Unique("t_")
	if _, err := db.Exec("CREATE SCHEMA " + schema); err != nil {
		db.Close()
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		db.Exec("DROP SCHEMA " + schema + " CASCADE")
		db.Close()
	})
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// postgresBin finds the directory of the machine's PostgreSQL server
// binaries: pg_config --bindir, else the newest /usr/lib/postgresql/*/bin.
func postgresBin() (string, error) {
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		dir := strings.TrimSpace(string(out))
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err == nil {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi > vj
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("no initdb found (pg_config --bindir, /usr/lib/postgresql/*/bin, PATH)")
}

// startCluster runs a private PostgreSQL cluster with wal_level = logical
// and returns its URL (database postgres, user postgres, trust).
func startCluster(t testing.TB, settings []string) (string, error) {
	bin, err := postgresBin()
	if err != nil {
		return "", err
	}
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		// PostgreSQL refuses to run as root: run it as the postgres user.
		u, err := user.Lookup("postgres")
		if err != nil {
			return "", fmt.Errorf("running as root and no postgres user to run the server as: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	dir, err := os.MkdirTemp("", "handoff-pg-")
	if err != nil {
		return "", err
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", err
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return "", err
		}
	}
	data := filepath.Join(dir, "data")
	run := func(name string, args ...string) *exec.Cmd {
		cmd := exec.Command(filepath.Join(bin, name), args...)
		cmd.Dir = dir
		if cred != nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		}
		return cmd
	}
	// 1 MB WAL segments keep the cluster small and let tests fill a
	// max_slot_wal_keep_size quickly.
	if out, err := run("initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync", "--wal-segsize=1").CombinedOutput(); err != nil {
		return "", fmt.Errorf("initdb: %v: %s", err, out)
	}
	port, err := freePort()
	if err != nil {
		return "", err
	}
	args := []string{"-D", data, "-p", strconv.Itoa(port), "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=" + dir,
		"-c", "wal_level=logical", "-c", "max_replication_slots=20", "-c", "max_wal_senders=20", "-c", "fsync=off",
		"-c", "shared_buffers=32MB", "-c", "max_connections=100"}
	for _, s := range settings {
		args = append(args, "-c", s)
	}
	srv := run("postgres", args...)
	logf, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		return "", err
	}
	srv.Stdout, srv.Stderr = logf, logf
	if err := srv.Start(); err != nil {
		logf.Close()
		return "", fmt.Errorf("start postgres: %w", err)
	}
	exited := make(chan struct{})
	var werr error
	go func() { werr = srv.Wait(); logf.Close(); close(exited) }()
	t.Cleanup(func() {
		srv.Process.Signal(syscall.SIGINT) // fast shutdown of the server we started, by its PID
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			srv.Process.Kill()
			<-exited
		}
	})
	dsn := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return "", err
	}
	defer db.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		// Waiting for the server to accept connections: a readiness
		// check, not a synchronisation of the test's own steps.
		if err = db.Ping(); err == nil {
			return dsn, nil
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "server.log"))
			return "", fmt.Errorf("postgres exited: %v: %s", werr, log)
		default:
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("postgres did not accept connections within 60s: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
