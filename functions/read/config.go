package read

import (
	"fmt"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/record"
	"github.com/cqrs-knative/cqrs-knative/functions/redisenv"
	"github.com/cqrs-knative/cqrs-knative/functions/store"
)

// Fallback policies for reads the replica cannot serve in time.
const (
	FallbackMaster = "master"
	FallbackNone   = "none"
)

// Config is the read function's environment; the Knative manifests use exactly these
// names.
type Config struct {
	redisenv.Redis
	RedisMasterAddr string        `envconfig:"REDIS_MASTER_ADDR"`
	RecordTypes     []string      `envconfig:"RECORD_TYPES"`
	ReadMaxWait     time.Duration `envconfig:"READ_MAX_WAIT"`
	ReadFallback    string        `envconfig:"READ_FALLBACK"`
	ReadSearchSlots int           `envconfig:"READ_SEARCH_SLOTS"`
}

// DefaultConfig is the configuration with every variable unset.
func DefaultConfig() Config {
	return Config{
		Redis:           redisenv.Redis{RedisAddr: "cqrs-redis-replicas:6379", RedisSentinelMaster: "mymaster", RedisPoolSize: 64},
		RedisMasterAddr: "cqrs-redis-master:6379",
		RecordTypes:     append([]string(nil), record.DefaultTypes...),
		ReadMaxWait:     500 * time.Millisecond,
		ReadFallback:    FallbackMaster,
		ReadSearchSlots: 2,
	}
}

// Check returns an error naming the first variable with a value that cannot work.
func (c Config) Check() error {
	if err := c.Redis.Check(); err != nil {
		return err
	}
	switch {
	case c.ReadMaxWait < 0 || c.ReadMaxWait > 30*time.Second:
		return fmt.Errorf("READ_MAX_WAIT=%s: must be between 0 and 30s", c.ReadMaxWait)
	case c.ReadFallback != FallbackMaster && c.ReadFallback != FallbackNone:
		return fmt.Errorf("READ_FALLBACK=%q: must be %q or %q", c.ReadFallback, FallbackMaster, FallbackNone)
	case c.ReadSearchSlots < 1 || c.ReadSearchSlots > 64:
		return fmt.Errorf("READ_SEARCH_SLOTS=%d: must be between 1 and 64", c.ReadSearchSlots)
	case c.ReadFallback == FallbackMaster && c.RedisMasterAddr == "" && len(c.RedisSentinelAddrs) == 0:
		return fmt.Errorf("REDIS_MASTER_ADDR: must be set when READ_FALLBACK=master")
	}
	if err := record.CheckTypes(c.RecordTypes); err != nil {
		return fmt.Errorf("RECORD_TYPES: %w", err)
	}
	return nil
}

// replica is how the read function reaches the replicas.
func (c Config) replica() store.Options {
	o := c.Redis.Options()
	o.Replicas = true
	return o
}

// master is how the read function reaches the master for its fallback.
func (c Config) master() store.Options {
	o := c.Redis.Options()
	o.Addr = c.RedisMasterAddr
	return o
}

// NewWithConfig returns a function that uses cfg instead of the environment.
func NewWithConfig(cfg Config) *Function {
	f := New()
	f.preset = &cfg
	return f
}
