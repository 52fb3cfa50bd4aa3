//go:build depsonly

// Package bench holds the comparison benchmarks; this file only keeps the
// peers' modules in go.mod for `go mod tidy`.
package bench

import (
	_ "github.com/ThreeDotsLabs/watermill"
	_ "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	_ "github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql"
	_ "github.com/failsafe-go/failsafe-go"
	_ "github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "github.com/nats-io/nats.go"
	_ "github.com/sony/gobreaker/v2"
)
