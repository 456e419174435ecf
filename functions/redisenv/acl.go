package redisenv

import "strings"

// The least privileges of each function's ACL user: its keys, no Pub/Sub channel,
// and the commands it sends, those its scripts run included (Redis checks every
// command a script runs against the caller's ACL). docs/configuration.md and
// knative/redis/values-tls.yaml hold the same rules, and tests check that they do
// and that the functions work under them and need every command listed (except
// those Reserved names).
const (
	// ACLKeys are the keys both users may touch: the store's, and no other.
	ACLKeys = "~cqrs:*"
	// ACLChannels is no channel at all: neither function subscribes or publishes on
	// Redis (Sentinels are asked separately, with their own users).
	ACLChannels = "resetchannels"

	// WriteCommands are cqrs-write's, on the master: readiness (PING), the scripts
	// loaded and run (SCRIPT LOAD, EVALSHA, and EVAL, go-redis' fallback), WAIT for
	// WRITE_REPLICAS, INFO memory for the limits check, and what the scripts run:
	// the create script, and the event outbox's (its stream, its dead letters, the
	// delivery counts, and the lease a relay holds with SET, PEXPIRE and DEL).
	WriteCommands = "-@all +ping +script|load +evalsha +eval +wait +info" +
		" +get +set +del +hget +hset +hdel +hincrby +append +strlen +time +xadd +xlen +xrange +xdel +pexpire"

	// ReadCommands are cqrs-read's, on a replica and, for its fallback, the master:
	// readiness, the read-only scripts (SCRIPT LOAD, EVALSHA_RO, and EVAL_RO,
	// go-redis' fallback) and what they and a record's lookup read.
	ReadCommands = "-@all +ping +script|load +evalsha_ro +eval_ro +get +hget +hmget +getrange +strlen +time"
)

// On a Redis Cluster, both users also read the slot map (CLUSTER SHARDS), and the
// read user sends READONLY on each connection to a replica, which then serves its
// master's slots. The ACL is per node: every node needs the users.
const (
	WriteClusterCommands = WriteCommands + " +cluster|shards"
	ReadClusterCommands  = ReadCommands + " +cluster|shards +readonly"
)

// SentinelRule is the rule of the functions' user on the Sentinels, which keep users
// of their own: asking for the master and the replicas of a master set, and hearing
// of a failover on the two channels go-redis listens to.
const SentinelRule = "resetchannels &+switch-master &+replica-reconf-done" +
	" -@all +ping +sentinel|get-master-addr-by-name +sentinel|replicas +sentinel|sentinels +subscribe"

// Reserved are the commands of WriteCommands and ReadCommands that the functions'
// tests cannot be sure to make them send: go-redis' fallbacks to a script's text,
// which depend on whether the script was loaded yet.
var Reserved = []string{"eval", "eval_ro"}

// ACLRule is the ACL SETUSER rule of user with password and commands.
func ACLRule(user, password, commands string) string {
	return strings.Join([]string{user, "on", ">" + password, "resetkeys", ACLKeys, ACLChannels, commands}, " ")
}

// Commands are the command names that commands grants, in order (lower case, as
// Redis' ACL and commandstats name them).
func Commands(commands string) []string {
	var out []string
	for _, f := range strings.Fields(commands) {
		if c, ok := strings.CutPrefix(f, "+"); ok && !strings.HasPrefix(c, "@") {
			out = append(out, c)
		}
	}
	return out
}
