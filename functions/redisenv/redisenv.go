// Package redisenv is the Redis part of both functions' environment: where Redis is
// (one address, the Sentinels that name the master, or nodes of a Redis Cluster), who the functions are to it
// (a password, or an ACL user), how they connect (plain TCP, or TLS) and the size of
// the connection pool, checked the same way for both. None of it depends on the
// mode: the same settings reach a master, its replicas and the Sentinels.
package redisenv

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cqrs-knative/cqrs-knative/functions/store"
)

// Redis is embedded in each function's Config; its defaults are the function's.
type Redis struct {
	RedisAddr     string `envconfig:"REDIS_ADDR"`
	RedisUsername string `envconfig:"REDIS_USERNAME"`
	RedisPassword string `envconfig:"REDIS_PASSWORD"`

	RedisSentinelAddrs    []string `envconfig:"REDIS_SENTINEL_ADDRS"`
	RedisSentinelMaster   string   `envconfig:"REDIS_SENTINEL_MASTER"`
	RedisSentinelUsername string   `envconfig:"REDIS_SENTINEL_USERNAME"`
	RedisSentinelPassword string   `envconfig:"REDIS_SENTINEL_PASSWORD"`

	// RedisClusterAddrs, when set, names nodes of a Redis Cluster (any: the functions
	// learn the rest), and RedisPartitions the partitions the store is split into
	// there (0: DefaultPartitions).
	RedisClusterAddrs []string `envconfig:"REDIS_CLUSTER_ADDRS"`
	RedisPartitions   int      `envconfig:"REDIS_PARTITIONS"`

	RedisPoolSize int `envconfig:"REDIS_POOL_SIZE"`

	// RedisTLS is on or off (true or false); the files and the server name below
	// are read only with it on.
	RedisTLS           string `envconfig:"REDIS_TLS"`
	RedisTLSCAFile     string `envconfig:"REDIS_TLS_CA_FILE"`
	RedisTLSServerName string `envconfig:"REDIS_TLS_SERVER_NAME"`
	RedisTLSCertFile   string `envconfig:"REDIS_TLS_CERT_FILE"`
	RedisTLSKeyFile    string `envconfig:"REDIS_TLS_KEY_FILE"`
}

// DefaultPartitions is the number of partitions of a store on a Redis Cluster when
// REDIS_PARTITIONS is not set: enough for 16 masters, and a page reads every one.
const DefaultPartitions = 16

// Check returns an error naming the first variable whose value cannot work. With
// TLS on, it reads the certificate files, so that a missing or broken one stops the
// process at start rather than failing every connection later.
func (r Redis) Check() error {
	cluster := len(r.RedisClusterAddrs) > 0
	switch {
	case cluster && len(r.RedisSentinelAddrs) > 0:
		return errors.New("REDIS_CLUSTER_ADDRS: set with REDIS_SENTINEL_ADDRS; a Redis Cluster has no Sentinels, choose one")
	case cluster && (r.RedisPartitions < 0 || r.RedisPartitions > store.MaxPartitions):
		return fmt.Errorf("REDIS_PARTITIONS=%d: must be between 1 and %d", r.RedisPartitions, store.MaxPartitions)
	case !cluster && r.RedisPartitions > 1:
		return fmt.Errorf("REDIS_PARTITIONS=%d: partitions are for a Redis Cluster (REDIS_CLUSTER_ADDRS); one Redis holds one", r.RedisPartitions)
	case !cluster && r.RedisAddr == "" && len(r.RedisSentinelAddrs) == 0:
		return errors.New("REDIS_ADDR: must not be empty")
	case len(r.RedisSentinelAddrs) > 0 && r.RedisSentinelMaster == "":
		return errors.New("REDIS_SENTINEL_MASTER: must be set with REDIS_SENTINEL_ADDRS")
	case r.RedisPoolSize < 1 || r.RedisPoolSize > 10000:
		return fmt.Errorf("REDIS_POOL_SIZE=%d: must be between 1 and 10000", r.RedisPoolSize)
	// go-redis sends a user name only with a password: without one, the functions
	// would silently be Redis' default user.
	case r.RedisUsername != "" && r.RedisPassword == "":
		return errors.New("REDIS_USERNAME: set without REDIS_PASSWORD; an ACL user needs its password")
	case r.RedisSentinelUsername != "" && r.RedisSentinelPassword == "":
		return errors.New("REDIS_SENTINEL_USERNAME: set without REDIS_SENTINEL_PASSWORD; a Sentinel user needs its password")
	case len(r.RedisSentinelAddrs) == 0 && r.RedisSentinelUsername != "":
		return errors.New("REDIS_SENTINEL_USERNAME: set without REDIS_SENTINEL_ADDRS")
	case len(r.RedisSentinelAddrs) == 0 && r.RedisSentinelPassword != "":
		return errors.New("REDIS_SENTINEL_PASSWORD: set without REDIS_SENTINEL_ADDRS")
	}
	for name, addrs := range map[string][]string{"REDIS_SENTINEL_ADDRS": r.RedisSentinelAddrs, "REDIS_CLUSTER_ADDRS": r.RedisClusterAddrs} {
		for _, a := range addrs {
			if strings.TrimSpace(a) == "" {
				return fmt.Errorf("%s=%q: holds an empty address", name, strings.Join(addrs, ","))
			}
		}
	}
	_, err := r.tlsConfig()
	return err
}

// Options are the store's connection options for these settings. Check must have
// passed: it read the certificate files, which are read here again.
func (r Redis) Options() store.Options {
	return store.Options{
		Addr:             r.RedisAddr,
		Username:         r.RedisUsername,
		Password:         r.RedisPassword,
		TLS:              r.mustTLSConfig(),
		SentinelAddrs:    r.RedisSentinelAddrs,
		SentinelMaster:   r.RedisSentinelMaster,
		SentinelUsername: r.RedisSentinelUsername,
		SentinelPassword: r.RedisSentinelPassword,
		PoolSize:         r.RedisPoolSize,
	}
}

// Partitions is the number of partitions of the store these settings name.
func (r Redis) Partitions() int {
	switch {
	case len(r.RedisClusterAddrs) == 0:
		return 1
	case r.RedisPartitions == 0:
		return DefaultPartitions
	}
	return r.RedisPartitions
}

// Cluster returns the Redis Cluster these settings name, reached with o (its
// address aside), or nil when they name one Redis or Sentinels.
func (r Redis) Cluster(o store.Options) *store.Cluster {
	if len(r.RedisClusterAddrs) == 0 {
		return nil
	}
	return store.NewCluster(o, r.RedisClusterAddrs)
}
