package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/internal/backoff"
	"github.com/handoffhq/handoff/telemetry"
	"go.opentelemetry.io/otel/trace"
)

// Validator checks a delivered message before its handler runs, for
// WithValidator. registry.Validator is one: it checks the data against the
// schema registered for the topic.
type Validator interface {
	// ValidateMessage returns nil for a valid message, an error marked with
	// handoff.Permanent for one that will never be valid, or another error
	// when it could not tell (the registry is down): the message is then
	// retried.
	ValidateMessage(ctx context.Context, topic string, m *handoff.Message) error
}

// WithValidator checks every message before its handler runs: one the
// validator refuses for good is dead-lettered with class "schema", and the
// handler never sees it.
func WithValidator(v Validator) Option {
	return func(c *Consumer) error {
		if v == nil {
			return errors.New("consumer: WithValidator: validator must not be nil")
		}
		c.validator = v
		return nil
	}
}

// Option configures a Consumer.
type Option func(*Consumer) error

// WithWorkers sets how many messages are handled at once (default 4×GOMAXPROCS).
// Messages of one partition key are still handled one at a time, in order.
func WithWorkers(n int) Option {
	return func(c *Consumer) error {
		if n < 1 {
			return fmt.Errorf("consumer: WithWorkers(%d): must be ≥ 1", n)
		}
		c.workers = n
		return nil
	}
}

// WithMaxInFlight bounds deliveries accepted and not yet settled, including
// those held back behind an earlier message of their key (default 1000).
// It is passed to the broker as Subscription.MaxInFlight.
func WithMaxInFlight(n int) Option {
	return func(c *Consumer) error {
		if n < 1 {
			return fmt.Errorf("consumer: WithMaxInFlight(%d): must be ≥ 1", n)
		}
		c.maxInFlight = n
		return nil
	}
}

// WithMaxAttempts sets how many times a message is handled before it is
// dead-lettered (default 5; 1 means no retry).
func WithMaxAttempts(n int) Option {
	return func(c *Consumer) error {
		if n < 1 {
			return fmt.Errorf("consumer: WithMaxAttempts(%d): must be ≥ 1", n)
		}
		c.maxAttempts = n
		return nil
	}
}

// WithBackoff sets the redelivery delays: exponential with full jitter,
// from initial up to max (defaults 1s and 5m).
func WithBackoff(initial, max time.Duration) Option {
	return func(c *Consumer) error {
		if initial <= 0 {
			return fmt.Errorf("consumer: WithBackoff: initial %v: must be > 0", initial)
		}
		if max < initial {
			return fmt.Errorf("consumer: WithBackoff: max %v: must be ≥ initial %v", max, initial)
		}
		c.backoff = backoff.Exponential{Initial: initial, Max: max, Multiplier: 2}
		return nil
	}
}

// WithBatchSize lets a worker hand up to n messages (the heads of n
// different partition keys) to the handler at once. The handler must
// implement handoff.BatchHandler (an inbox handler does: one transaction
// with a savepoint per message; so does a [Mux]): New refuses a batch size
// above 1 for one that does not, rather than batch nothing. Batches form
// only from messages already waiting, so batching adds no latency when the
// load is light. A handler timeout bounds a whole batch. Default 1.
func WithBatchSize(n int) Option {
	return func(c *Consumer) error {
		if n < 1 {
			return fmt.Errorf("consumer: WithBatchSize(%d): must be ≥ 1", n)
		}
		c.batch = n
		return nil
	}
}

// WithUnordered lets later messages of a key run while an earlier one waits
// for its retry, and several messages of one key run at once. New refuses it
// together with WithRedeliveryGrace, which only ordered keys use.
func WithUnordered() Option {
	return func(c *Consumer) error { c.ordered = false; return nil }
}

// WithMaxMessageSize dead-letters (class "too-large") any delivered message
// larger than n bytes without running the handler. Zero means no limit.
func WithMaxMessageSize(n int) Option {
	return func(c *Consumer) error {
		if n < 0 {
			return fmt.Errorf("consumer: WithMaxMessageSize(%d): must be ≥ 0", n)
		}
		c.maxSize = n
		return nil
	}
}

// WithDrainTimeout bounds how long Run waits, after its context is done, for
// running handlers to finish; after it their contexts are cancelled (default 30s).
func WithDrainTimeout(d time.Duration) Option {
	return func(c *Consumer) error {
		if d <= 0 {
			return fmt.Errorf("consumer: WithDrainTimeout(%v): must be > 0", d)
		}
		c.drainTimeout = d
		return nil
	}
}

// WithHandlerTimeout bounds each handler call (default: none).
func WithHandlerTimeout(d time.Duration) Option {
	return func(c *Consumer) error {
		if d <= 0 {
			return fmt.Errorf("consumer: WithHandlerTimeout(%v): must be > 0", d)
		}
		c.timeout = d
		return nil
	}
}

// WithRedeliveryGrace sets how long a key stays held for a message's
// redelivery beyond one and a half times its retry delay (brokers round
// delays up: RabbitMQ's delay buckets by up to 25%) before later messages of
// the key may run (default 30s). The redelivery may have gone to another
// member of the group.
func WithRedeliveryGrace(d time.Duration) Option {
	return func(c *Consumer) error {
		if d <= 0 {
			return fmt.Errorf("consumer: WithRedeliveryGrace(%v): must be > 0", d)
		}
		c.waitGrace = d
		c.graceSet = true
		return nil
	}
}

// WithTracerProvider sets where process spans go (default: the global provider).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *Consumer) error {
		if tp == nil {
			return errors.New("consumer: WithTracerProvider(nil): provider is required")
		}
		c.tracer = tp.Tracer(telemetry.ScopeName)
		return nil
	}
}

// WithSystem names the broker in spans as messaging.system (e.g. "nats").
func WithSystem(name string) Option {
	return func(c *Consumer) error { c.system = name; return nil }
}

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(c *Consumer) error {
		if l == nil {
			return errors.New("consumer: WithLogger(nil): logger is required")
		}
		c.log = l
		return nil
	}
}

// WithObserver sets a hook told the outcome of every delivery.
func WithObserver(o Observer) Option {
	return func(c *Consumer) error { c.observer = o; return nil }
}
