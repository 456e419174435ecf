// Package knative holds the project's Knative manifests (Services, Broker,
// Triggers), the Bitnami Redis values they depend on, and the tests that check them
// with Knative's own validation code.
package knative
