package write

import (
	"fmt"
	"net/url"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/record"
	"github.com/cqrs-knative/cqrs-knative/functions/redisenv"
	"github.com/cqrs-knative/cqrs-knative/functions/serve"
	"github.com/cqrs-knative/cqrs-knative/functions/store"
)

// Config is the write function's environment; the Knative manifests use exactly
// these names.
type Config struct {
	redisenv.Redis
	RecordTypes      []string      `envconfig:"RECORD_TYPES"`
	MaxTextBytes     int           `envconfig:"MAX_TEXT_BYTES"`
	WriteReplicas    int           `envconfig:"WRITE_REPLICAS"`
	WriteWaitTimeout time.Duration `envconfig:"WRITE_WAIT_TIMEOUT"`
	IdempotencyTTL   time.Duration `envconfig:"IDEMPOTENCY_TTL"`
	Outbox
}

// Outbox is the outbox's part of the write function's environment. K_SINK (and
// K_CE_OVERRIDES) are Knative's: a SinkBinding whose subject is cqrs-write injects
// them. Without K_SINK there is no outbox: records are stored, not published.
type Outbox struct {
	Sink        string        `envconfig:"K_SINK"`
	Overrides   string        `envconfig:"K_CE_OVERRIDES"`
	MaxPending  int           `envconfig:"OUTBOX_MAX_PENDING"`
	Attempts    int           `envconfig:"OUTBOX_ATTEMPTS"`
	Lease       time.Duration `envconfig:"OUTBOX_LEASE"`
	PollEvery   time.Duration `envconfig:"OUTBOX_POLL"`
	SendTimeout time.Duration `envconfig:"OUTBOX_SEND_TIMEOUT"`
}

// check returns an error naming the first outbox variable that cannot work.
func (o Outbox) check() error {
	if o.Sink != "" {
		u, err := url.Parse(o.Sink)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("K_SINK=%q: must be an absolute http or https URL (Knative's SinkBinding sets it)", o.Sink)
		}
	}
	if _, err := parseOverrides(o.Overrides); err != nil {
		return fmt.Errorf("K_CE_OVERRIDES=%q: %w", o.Overrides, err)
	}
	switch {
	case o.MaxPending < 1 || o.MaxPending > 100000000:
		return fmt.Errorf("OUTBOX_MAX_PENDING=%d: must be between 1 and 100000000", o.MaxPending)
	case o.Attempts < 1 || o.Attempts > 100:
		return fmt.Errorf("OUTBOX_ATTEMPTS=%d: must be between 1 and 100", o.Attempts)
	case o.Lease < time.Second || o.Lease > 10*time.Minute:
		return fmt.Errorf("OUTBOX_LEASE=%s: must be between 1s and 10m", o.Lease)
	case o.PollEvery < 10*time.Millisecond || o.PollEvery > o.Lease/2:
		return fmt.Errorf("OUTBOX_POLL=%s: must be between 10ms and half of OUTBOX_LEASE (%s)", o.PollEvery, o.Lease/2)
	case o.SendTimeout < 10*time.Millisecond || o.SendTimeout > o.Lease/2:
		return fmt.Errorf("OUTBOX_SEND_TIMEOUT=%s: must be between 10ms and half of OUTBOX_LEASE (%s)", o.SendTimeout, o.Lease/2)
	}
	return nil
}

// DefaultConfig is the configuration with every variable unset.
func DefaultConfig() Config {
	return Config{
		Redis:            redisenv.Redis{RedisAddr: "cqrs-redis-master:6379", RedisSentinelMaster: "mymaster", RedisPoolSize: 64},
		RecordTypes:      append([]string(nil), record.DefaultTypes...),
		MaxTextBytes:     record.DefaultMaxTextBytes,
		WriteWaitTimeout: 500 * time.Millisecond,
		IdempotencyTTL:   24 * time.Hour,
		Outbox:           Outbox{MaxPending: 100000, Attempts: 5, Lease: 10 * time.Second, PollEvery: 250 * time.Millisecond, SendTimeout: 5 * time.Second},
	}
}

// Check returns an error naming the first variable with a value that cannot work.
func (c Config) Check() error {
	if err := c.Redis.Check(); err != nil {
		return err
	}
	switch {
	case c.MaxTextBytes < 1 || c.MaxTextBytes > serve.MaxBodyBytes/2:
		return fmt.Errorf("MAX_TEXT_BYTES=%d: must be between 1 and %d", c.MaxTextBytes, serve.MaxBodyBytes/2)
	case c.WriteReplicas < 0:
		return fmt.Errorf("WRITE_REPLICAS=%d: must not be negative", c.WriteReplicas)
	// WAIT takes whole milliseconds, and 0 means forever.
	case c.WriteWaitTimeout < time.Millisecond || c.WriteWaitTimeout > time.Minute:
		return fmt.Errorf("WRITE_WAIT_TIMEOUT=%s: must be between 1ms and 1m", c.WriteWaitTimeout)
	case c.IdempotencyTTL < time.Second:
		return fmt.Errorf("IDEMPOTENCY_TTL=%s: must be at least 1s", c.IdempotencyTTL)
	}
	if err := record.CheckTypes(c.RecordTypes); err != nil {
		return fmt.Errorf("RECORD_TYPES: %w", err)
	}
	return c.Outbox.check()
}

// redis is how the write function reaches the master. The socket read timeout
// outlasts the longest WAIT.
func (c Config) redis() store.Options {
	o := c.Redis.Options()
	o.ReadTimeout = c.WriteWaitTimeout + time.Second
	return o
}

// NewWithConfig returns a function that uses cfg instead of the environment.
func NewWithConfig(cfg Config) *Function {
	f := New()
	f.preset = &cfg
	return f
}
