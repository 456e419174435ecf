// Package events holds black-box tests of the CloudEvents contract: they build the
// cqrs-write and cqrs-read commands, run them as processes on a real Redis master
// and replica, and talk to them only over HTTP with the CloudEvents SDK's client,
// the way a Knative Broker delivers events and reads the replies.
package events
