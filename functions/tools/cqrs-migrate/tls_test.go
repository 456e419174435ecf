package main_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/testenv"
)

// TestMigrateOverTLS: cqrs-migrate reaches Redis as the functions do, through the
// same variables: over TLS, with a password, naming the server; a setting that
// cannot work stops it with one line, and a Redis that refuses it says why.
func TestMigrateOverTLS(t *testing.T) {
	certs := testenv.MakeCerts(t)
	m := testenv.SecureMaster(t, testenv.Secure{Certs: certs, AdminPassword: "admin-secret"})
	bin := testenv.Build(t, "./functions/tools/cqrs-migrate")
	run := func(env ...string) (string, int) {
		cmd := exec.Command(bin, "-addr", m.Addr())
		cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
		out, _ := cmd.CombinedOutput()
		return strings.TrimSpace(string(out)), cmd.ProcessState.ExitCode()
	}
	tlsEnv := []string{"REDIS_PASSWORD=admin-secret", "REDIS_TLS=on", "REDIS_TLS_CA_FILE=" + certs.CA, "REDIS_TLS_SERVER_NAME=" + testenv.ServerName}
	if out, code := run(tlsEnv...); code != 0 || !strings.Contains(out, "0 records copied") {
		t.Errorf("over TLS: exit %d, %q; want 0 and nothing copied", code, out)
	}
	if out, code := run("REDIS_TLS=maybe"); code != 2 || out != `cqrs-migrate: configuration: REDIS_TLS="maybe": must be on or off` {
		t.Errorf("REDIS_TLS=maybe: exit %d, %q; want 2 and one line naming it", code, out)
	}
	other := testenv.MakeCerts(t)
	wrongCA := append(append([]string(nil), tlsEnv...), "REDIS_TLS_CA_FILE="+other.CA)
	if out, code := run(wrongCA...); code != 1 || !strings.Contains(out, "not signed by a CA trusted here; check REDIS_TLS_CA_FILE") {
		t.Errorf("another CA: exit %d, %q; want 1 and the reason", code, out)
	}
}
