package system

import (
	"bytes"
	_ "embed"
	"time"
)

// FileName is the conventional name of the file: handoff.yaml at a
// repository's root.
const FileName = "handoff.yaml"

// System is a decoded handoff.yaml. Every element remembers the line it was
// declared on, so later checks can point at it.
type System struct {
	Version     int
	Name        string
	Services    []*Service
	Topics      []*Topic
	Databases   []*Database
	DeadLetters []*DeadLetters
	Alerts      []*Alert
}

// Service is one deployable that owns its code, its databases and its
// integrations.
type Service struct {
	Name  string
	Owner string
	// Availability is the service's own SLO as a fraction (0.999), zero when
	// not declared.
	Availability float64
	// Latency is the service's own latency objective, zero when not declared.
	Latency time.Duration
	// Databases the service owns.
	Databases []string
	// Writes lists the tables the service writes, as "database.table".
	Writes       []string
	Integrations []*Integration
	Line         int
}

// Kind is an integration's class: synchronous (the caller waits) or
// asynchronous (through a topic).
type Kind string

// Kinds. The empty Kind is an integration nobody classified; the governance
// gate refuses it.
const (
	Sync  Kind = "sync"
	Async Kind = "async"
)

// Direction of an integration as seen from the service declaring it.
type Direction string

// Directions.
const (
	Call    Direction = "call"
	Publish Direction = "publish"
	Consume Direction = "consume"
)

// Integration is one handoff a service takes part in: a synchronous call to
// another service, or a publish to or consume from a topic.
type Integration struct {
	Kind      Kind
	Protocol  string
	Direction Direction
	// To is the called service of a synchronous integration.
	To string
	// Route is the HTTP route ("POST /payments") or gRPC method.
	Route string
	// Topic is the topic of an asynchronous integration.
	Topic string
	// Subject is the schema registry subject of the payload.
	Subject string
	// Group is the consumer group of a consume.
	Group    string
	Contract *ContractPair
	Line     int
}

// ContractPair names the consumer and provider of the consumer-driven
// contract that covers an integration.
type ContractPair struct {
	Consumer string
	Provider string
}

// Topic is a named stream of events.
type Topic struct {
	Name    string
	Owner   string
	Broker  string
	Subject string
	Line    int
}

// Database is a database some service owns.
type Database struct {
	Name   string
	Engine string
	Tables []string
	Line   int
}

// DeadLetters is a dead-letter store and the services whose failures go to it.
type DeadLetters struct {
	Name     string
	Database string
	Services []string
	Alert    string
	Line     int
}

// Alert is an alert route: which event pages whom, how fast.
type Alert struct {
	Name   string
	On     string
	Within time.Duration
	Route  string
	Owner  string
	Line   int
}

// Service returns the service named name, or nil.
func (s *System) Service(name string) *Service {
	for _, v := range s.Services {
		if v.Name == name {
			return v
		}
	}
	return nil
}

// Topic returns the topic named name, or nil.
func (s *System) Topic(name string) *Topic {
	for _, v := range s.Topics {
		if v.Name == name {
			return v
		}
	}
	return nil
}

// Alert returns the alert route named name, or nil.
func (s *System) Alert(name string) *Alert {
	for _, v := range s.Alerts {
		if v.Name == name {
			return v
		}
	}
	return nil
}

// Integrations calls fn for every integration with its service, in file
// order.
func (s *System) Integrations(fn func(*Service, *Integration)) {
	for _, svc := range s.Services {
		for _, in := range svc.Integrations {
			fn(svc, in)
		}
	}
}

func durationFrom(n int64) time.Duration { return time.Duration(n) }

//go:embed starter.yaml
var starter []byte

// Starter returns a commented handoff.yaml to start from: three services,
// both kinds of integration, a topic, databases, a dead-letter store and its
// alert route. `handoff init` writes it.
func Starter() []byte { return bytes.Clone(starter) }
