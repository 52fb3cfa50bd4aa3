package natsserver_test

import (
	"fmt"
	"os"
	"strings"

	"github.com/handoffhq/handoff/adapter/nats"
	"github.com/handoffhq/handoff/adapter/natsserver"
)

// Start a server on a directory of its own; it picks a free port, so a NATS
// already running on 4222 is never disturbed.
func ExampleStart() {
	dir, err := os.MkdirTemp("", "natsserver-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	srv, err := natsserver.Start(dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Shutdown()
	fmt.Println(strings.HasPrefix(srv.URL(), "nats://127.0.0.1:"), !strings.HasSuffix(srv.URL(), ":4222"))

	_, err = natsserver.Start(dir) // the directory is locked
	fmt.Println(err != nil)
	// Output:
	// true true
	// true
}

// A client of package adapter/nats connected to the embedded server.
func Example_connect() {
	dataDir, err := os.MkdirTemp("", "natsserver-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dataDir)

	srv, err := natsserver.Start(dataDir) // a free port on 127.0.0.1
	if err != nil {
		panic(err)
	}
	defer srv.Shutdown()
	nc, err := nats.Connect(srv.URL()) // package adapter/nats
	if err != nil {
		panic(err)
	}
	defer nc.Close()
	fmt.Println(nc.IsConnected())
	// Output: true
}
