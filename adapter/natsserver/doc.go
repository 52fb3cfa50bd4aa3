// Package natsserver runs a NATS server with JetStream inside the process:
// the embedded default broker of handoff dev, of the examples and of tests.
// It is a package of its own so that a service that only talks to an
// external NATS (package adapter/nats) does not link the server.
//
//	srv, err := natsserver.Start(dataDir) // a free port on 127.0.0.1
//	defer srv.Shutdown()
//	nc, err := nats.Connect(srv.URL())    // package adapter/nats
//
// Streams live in a file store under the directory, which is locked against
// a second server (in this or another process, [ErrDirInUse]), so they
// survive a restart on the same directory. [Server.Restart] stops and starts
// the server on the same directory and port, for tests of a broker outage.
package natsserver
